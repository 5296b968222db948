//! A link's tap: fires when the link forwards a chosen client command, and holds the reply.
//!
//! [`super::LinkControl::arm_tap`] arms the link with a command name and a key. While it is
//! armed, the writer of every connection's client→server direction cuts what it forwards
//! into RESP frames (the unit [`super::shape`] uses) and looks at each command: its name
//! (case-insensitively) and its key — the first argument, or for `EVAL`/`EVALSHA` one of its
//! `KEYS`. The first match takes the arming (one hit per arming; several armings may be in
//! force, each fires once), closes that connection's server→client direction (its [`Gate`]),
//! forwards the frame, and hands the owner a [`TapHit`] with the instant the frame had been
//! written. An arming whose receiver is dropped is forgotten. Nothing the server sends on that
//! connection is delivered until the owner opens the gate (or drops it), or [`GATE_BOUND`]
//! passes. Bytes pass unchanged: the tap only looks.
//!
//! An unarmed link parses nothing: its writers check one atomic flag per chunk (and the reply
//! side one atomic count). Frames are
//! looked for from the first chunk forwarded after arming, which a client that waits for its
//! replies (every lock client) starts on a frame boundary; a chunk that does not parse as
//! RESP is skipped whole, and looking starts again at the next one.

use super::shape::frame_len;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// The longest a gate holds a connection's replies when its owner never opens it.
pub const GATE_BOUND: Duration = Duration::from_secs(10);

/// What a tap reports when it fires.
#[derive(Debug)]
pub struct TapHit {
    /// When the matching frame had been written to the target.
    pub at: Instant,
    /// The command's name as the client sent it (`SET`, `evalsha`).
    pub command: String,
    /// The key it matched on.
    pub key: String,
    /// Holds what the target sends back on that connection until opened (or dropped).
    pub gate: Gate,
}

/// The held server→client direction of the connection a tap fired on. Opening it (or
/// dropping it) delivers what was held, in order.
#[derive(Debug)]
pub struct Gate {
    held: Arc<ReplyGate>,
}

impl Gate {
    /// Delivers what was held, and everything after it.
    pub fn open(self) {
        // Dropping opens.
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.held.open();
    }
}

/// One connection's reply gate, shared by its two directions: closed by the tap (on the
/// client→server writer), waited on by the server→client writer. Holds count: it is open
/// once every hit that closed it has opened it.
#[derive(Debug, Default)]
pub(super) struct ReplyGate {
    /// How many hits hold it (the fast path: an open gate costs one load).
    holds: AtomicUsize,
    /// When it was last closed, for [`GATE_BOUND`].
    since: Mutex<Option<Instant>>,
    opened: Notify,
}

impl ReplyGate {
    fn close(&self) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.holds.fetch_add(1, Ordering::AcqRel);
    }

    fn open(&self) {
        let _ = self
            .holds
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.opened.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.holds.load(Ordering::Acquire) > 0
    }

    /// Waits while the gate is closed, at most until [`GATE_BOUND`] after it last closed
    /// (then it opens whatever holds it).
    pub(super) async fn pass(&self) {
        while self.is_closed() {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if !self.is_closed() {
                return;
            }
            let since = *self.since.lock().unwrap_or_else(|e| e.into_inner());
            let until = since.unwrap_or_else(Instant::now) + GATE_BOUND;
            if tokio::time::timeout_at(until.into(), opened).await.is_err() {
                self.holds.store(0, Ordering::Release);
                return;
            }
        }
    }
}

/// What an armed tap waits for, and where it reports.
#[derive(Debug)]
struct Arm {
    command: String,
    key: Vec<u8>,
    tx: oneshot::Sender<TapHit>,
}

impl Arm {
    fn matches(&self, words: &[Vec<u8>]) -> bool {
        words
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case(self.command.as_bytes()))
            && touches(words, &self.key)
    }
}

/// The armings one frame fired: each one's key and where it reports.
type Armings = Vec<(String, oneshot::Sender<TapHit>)>;

/// A link's tap, shared by its connections (and by every clone of its control): the armings
/// in force, each firing once.
#[derive(Debug, Default)]
pub(super) struct TapSlot {
    armed: AtomicBool,
    arms: Mutex<Vec<Arm>>,
}

impl TapSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arm>> {
        self.arms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn arm(&self, command: &str, key: &str) -> oneshot::Receiver<TapHit> {
        let (tx, rx) = oneshot::channel();
        let mut arms = self.lock();
        arms.retain(|a| !a.tx.is_closed());
        arms.push(Arm {
            command: command.to_string(),
            key: key.as_bytes().to_vec(),
            tx,
        });
        self.armed.store(true, Ordering::Release);
        rx
    }

    pub(super) fn disarm(&self) {
        let mut arms = self.lock();
        arms.clear();
        self.armed.store(false, Ordering::Release);
    }

    /// Whether an arming is in force (one whose owner went away counts until the next look).
    pub(super) fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// Forgets the armings whose owners went away; whether any is left.
    fn prune(&self) -> bool {
        let mut arms = self.lock();
        arms.retain(|a| !a.tx.is_closed());
        let left = !arms.is_empty();
        self.armed.store(left, Ordering::Release);
        left
    }

    /// Takes the armings `frame` fires: the command's name as sent, and each arming's key
    /// and where it reports.
    fn take_matching(&self, frame: &[u8]) -> Option<(String, Armings)> {
        let words = command_words(frame)?;
        let mut arms = self.lock();
        if !arms.iter().any(|a| a.matches(&words)) {
            return None;
        }
        let (hit, kept): (Vec<Arm>, Vec<Arm>) = std::mem::take(&mut *arms)
            .into_iter()
            .partition(|a| a.matches(&words));
        *arms = kept;
        self.armed.store(!arms.is_empty(), Ordering::Release);
        let name = String::from_utf8_lossy(words.first()?).into_owned();
        let fired = hit
            .into_iter()
            .map(|a| (String::from_utf8_lossy(&a.key).into_owned(), a.tx))
            .collect();
        Some((name, fired))
    }
}

/// The tap's side of one connection's client→server writer: the frame being gathered.
#[derive(Debug)]
pub(super) struct Watcher {
    slot: Arc<TapSlot>,
    gate: Arc<ReplyGate>,
    /// Bytes of a frame not yet whole (only while armed).
    pending: Vec<u8>,
}

/// A frame that fired the tap: where it ends in the chunk, and what to report.
pub(super) struct Fired {
    /// Bytes of the chunk up to and including the frame's last.
    pub(super) end: usize,
    command: String,
    /// Each arming it fired: its key and where it reports (each holds the gate once).
    armings: Armings,
    gate: Arc<ReplyGate>,
}

impl Fired {
    /// Reports the hit to every arming it fired, the frame written at `at`; a hit nobody
    /// waits for any more opens its hold at once.
    pub(super) fn report(self, at: Instant) {
        for (key, tx) in self.armings {
            let hit = TapHit {
                at,
                command: self.command.clone(),
                key,
                gate: Gate {
                    held: self.gate.clone(),
                },
            };
            // A refused hit is dropped, and its hold on the gate with it.
            let _ = tx.send(hit);
        }
    }

    /// The frame could not be written: nothing is reported, and the gate opens again.
    pub(super) fn cancel(self) {
        for _ in &self.armings {
            self.gate.open();
        }
    }
}

impl Watcher {
    pub(super) fn new(slot: Arc<TapSlot>, gate: Arc<ReplyGate>) -> Watcher {
        Watcher {
            slot,
            gate,
            pending: Vec::new(),
        }
    }

    /// Looks at `chunk`, about to be forwarded: when a frame in it fires the tap, the gate is
    /// closed and where the frame ends is returned (the caller writes up to there, then
    /// reports). Costs one atomic load when the tap is not armed.
    pub(super) fn look(&mut self, chunk: &[u8]) -> Option<Fired> {
        if !self.slot.is_armed() || !self.slot.prune() {
            self.pending.clear();
            return None;
        }
        let held = self.pending.len();
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(len) = frame_len(&self.pending[start..]) {
            let frame = &self.pending[start..start + len];
            start += len;
            if let Some((command, armings)) = self.slot.take_matching(frame) {
                for _ in &armings {
                    self.gate.close();
                }
                self.pending.clear();
                return Some(Fired {
                    end: start - held,
                    command,
                    armings,
                    gate: self.gate.clone(),
                });
            }
        }
        self.pending.drain(..start);
        if self.pending.len() > super::shape::MAX_FRAME || !resp_start(&self.pending) {
            // Not a command the tap can read (or a frame too long to hold): look again from
            // the next chunk.
            self.pending.clear();
        }
        None
    }
}

/// Whether `buf` could start a RESP frame or an inline command (empty: yes).
fn resp_start(buf: &[u8]) -> bool {
    match buf.first() {
        None => true,
        Some(b) => b"*$+-:_,#!=(%~>|".contains(b) || b.is_ascii_alphabetic(),
    }
}

/// A command's words: a RESP array of bulk strings, or an inline command's words.
fn command_words(frame: &[u8]) -> Option<Vec<Vec<u8>>> {
    use redis_protocol::resp2::{decode::decode, types::OwnedFrame};
    match decode(frame) {
        Ok(Some((OwnedFrame::Array(items), _))) => items
            .into_iter()
            .map(|item| match item {
                OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => Some(b),
                _ => None,
            })
            .collect(),
        Ok(_) => None,
        Err(_) if frame.first().is_some_and(u8::is_ascii_alphabetic) => Some(
            frame
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
        ),
        Err(_) => None,
    }
}

/// Whether the command `words` touches `key`: its first argument, or for `EVAL`/`EVALSHA`
/// (and their read-only forms) one of its `KEYS`.
fn touches(words: &[Vec<u8>], key: &[u8]) -> bool {
    let Some(name) = words.first() else {
        return false;
    };
    let script = [&b"EVAL"[..], b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s));
    if !script {
        return words.get(1).is_some_and(|k| k == key);
    }
    let numkeys = words
        .get(2)
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    words.iter().skip(3).take(numkeys).any(|k| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(words: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", words.len()).into_bytes();
        for w in words {
            out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
        }
        out
    }

    fn words(ws: &[&str]) -> Vec<Vec<u8>> {
        ws.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_command_touches_its_first_argument_and_a_script_its_keys_only() {
        assert!(touches(&words(&["GET", "k"]), b"k"));
        assert!(!touches(&words(&["GET", "j"]), b"k"));
        assert!(!touches(&words(&["PING"]), b"k"));
        let eval = words(&["EVALSHA", "abc", "2", "j", "k", "k2"]);
        assert!(touches(&eval, b"k"));
        assert!(!touches(&eval, b"k2"), "an ARGV is not a key");
        assert!(!touches(&words(&["EVAL", "return 1", "0", "k"]), b"k"));
    }

    #[test]
    fn commands_are_read_from_resp_arrays_and_inline_lines() {
        assert_eq!(
            command_words(&resp(&["SET", "k", "v"])),
            Some(words(&["SET", "k", "v"]))
        );
        assert_eq!(command_words(b"get k\r\n"), Some(words(&["get", "k"])));
        assert_eq!(command_words(b":1\r\n"), None);
    }

    #[test]
    fn the_watcher_fires_once_on_the_matching_frame_across_chunks() {
        let slot = Arc::new(TapSlot::default());
        let gate = Arc::new(ReplyGate::default());
        let mut w = Watcher::new(slot.clone(), gate.clone());
        assert!(w.look(&resp(&["GET", "k"])).is_none(), "unarmed");
        let _rx = slot.arm("get", "k");
        let get = resp(&["GET", "k"]);
        let chunk = [
            resp(&["GET", "other"]),
            resp(&["SET", "k", "v"]),
            get.clone(),
        ]
        .concat();
        let split = chunk.len() - 3;
        assert!(w.look(&chunk[..split]).is_none());
        let fired = w.look(&[&chunk[split..], &resp(&["GET", "k"])[..]].concat());
        assert_eq!(fired.as_ref().map(|f| f.end), Some(3), "ends with the GET");
        assert!(gate.is_closed());
        assert!(!slot.is_armed(), "one hit per arming");
        assert!(w.look(&get).is_none());
    }
}
