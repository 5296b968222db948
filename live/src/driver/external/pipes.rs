//! The programs' stdout pipes, read together so that the history keeps cause before effect.
//!
//! Each program's lines are read by a thread of its own, and its resource writes by an async
//! task, and a thread can be scheduled late. Stamping each line when its own reader gets to
//! it could then put an effect before its cause: B's `acquired` (granted once A's release
//! deleted the key) before A's `releasing`, or a write before the `acquired` printed ahead of
//! it. So every read drains **every** program's pipe at once and stamps all the lines it found
//! with one instant: whatever a program printed before it acted is in its pipe by the time the
//! act's effect reaches locksim, so it is read in the same drain or an earlier one, never a
//! later one. A resource write drains first too, and is stamped after.

use super::super::record::Recorder;
use super::protocol::Session;
use super::ProgramHandle;
use crate::ProgramProblem;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::ChildStdout;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One program's stdout as the drains see it.
struct Pipe {
    out: ChildStdout,
    /// Bytes read, not yet a whole line.
    partial: Vec<u8>,
    session: Session,
    handle: Arc<ProgramHandle>,
    /// The program closed its stdout (it exited, or was killed).
    eof: bool,
    /// It printed a line that is not the protocol (the failure is raised, the group killed).
    broke: bool,
}

/// What a program's reader learns once its pipe is closed.
pub(crate) struct Closed {
    /// It broke the protocol.
    pub(crate) broke: bool,
    /// Acquisitions it began.
    pub(crate) acquires: u32,
    /// It was inside a critical section when its output ended.
    pub(crate) holding: bool,
}

/// Every program's pipe in one run.
#[derive(Default)]
pub(crate) struct Pipes {
    pipes: Mutex<Vec<Pipe>>,
}

impl Pipes {
    /// Takes `out` (made non-blocking here) into the drains; its index.
    pub(crate) fn add(
        &self,
        out: ChildStdout,
        handle: Arc<ProgramHandle>,
    ) -> std::io::Result<usize> {
        let fd = out.as_raw_fd();
        // SAFETY: fcntl on a pipe we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let mut pipes = self.lock();
        pipes.push(Pipe {
            out,
            partial: Vec::new(),
            session: Session::new(&handle.client),
            handle,
            eof: false,
            broke: false,
        });
        Ok(pipes.len() - 1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pipe>> {
        self.pipes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what every pipe holds now and records its lines, all stamped with one instant.
    pub(crate) fn drain(&self, rec: &Recorder) {
        let mut pipes = self.lock();
        let mut buf = [0u8; 16 * 1024];
        for p in pipes.iter_mut().filter(|p| !p.eof) {
            loop {
                match p.out.read(&mut buf) {
                    Ok(0) => {
                        p.eof = true;
                        break;
                    }
                    Ok(n) => p.partial.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break, // WouldBlock: all read
                }
            }
        }
        let at = Instant::now();
        for p in pipes.iter_mut().filter(|p| !p.broke) {
            let mut start = 0;
            while let Some(nl) = p.partial[start..].iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&p.partial[start..start + nl]).into_owned();
                start += nl + 1;
                if !p.read_line(&line, at, rec) {
                    break;
                }
            }
            p.partial.drain(..start);
            if p.eof && !p.broke && !p.partial.is_empty() {
                // A last line without its newline.
                let line = String::from_utf8_lossy(&std::mem::take(&mut p.partial)).into_owned();
                p.read_line(&line, at, rec);
            }
        }
    }

    /// Waits until pipe `index` has something to read (or is closed), at most `ms`.
    pub(crate) fn wait_readable(&self, index: usize, ms: i32) {
        let fd = match self.lock().get(index) {
            Some(p) if !p.eof => p.out.as_raw_fd(),
            _ => return,
        };
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own; the pipe is not closed while it is in `pipes`.
        unsafe { libc::poll(&mut poll, 1, ms) };
    }

    /// What pipe `index` came to, once it is closed; `None` while it is open.
    pub(crate) fn closed(&self, index: usize) -> Option<Closed> {
        let pipes = self.lock();
        let p = pipes.get(index)?;
        (p.eof || p.broke).then(|| Closed {
            broke: p.broke,
            acquires: p.session.acquires(),
            holding: p.session.holding(),
        })
    }
}

impl Pipe {
    /// Records one line; false when it broke the protocol (reading stops).
    fn read_line(&mut self, line: &str, at: Instant, rec: &Recorder) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        match self.session.read(line) {
            Ok(events) => {
                for e in events {
                    rec.record_at(at, e);
                }
                *self
                    .handle
                    .last_line
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(line.to_string());
                true
            }
            Err(reason) => {
                self.handle.fail(ProgramProblem::NotProtocol {
                    line_no: self.session.lines(),
                    line: checker::quote::clip(line),
                    reason,
                });
                self.broke = true;
                if let Some(pid) = self.handle.pid() {
                    let _ = super::program::signal_group(pid, libc::SIGKILL);
                }
                false
            }
        }
    }
}
