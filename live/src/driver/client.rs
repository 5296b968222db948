//! One client task: it hosts a scenario client ([`workload::Host`]), sends its commands on
//! its own connections, writes to the in-process resource, and takes replies, pauses,
//! crashes and clock jumps from its inbox.

use super::record::Recorder;
use crate::conn::NodeConn;
use crate::link::Gate;
use crate::Provider;
use checker::{Effect, Event as H, Healed};
use lock_core::{Event as LockEvent, Reply, RequestId};
use scenario::After;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use workload::{Host, Input, Output, Resource};

/// What reaches a client task's inbox.
pub(super) enum Msg {
    Reply { request: RequestId, reply: Reply },
    Pause(Duration),
    Crash,
    ClockJump(i64),
}

/// When a client task starts.
pub(super) struct Start {
    /// `start_ms` as an instant.
    pub(super) at: Instant,
    /// `start_ms`.
    pub(super) ms: u64,
    /// The condition to wait for, and the client's description for messages.
    pub(super) after: Option<(After, String)>,
    /// The taps armed for an `after.forwarded`.
    pub(super) tapping: Option<super::forwarded::Tapping>,
    /// How far the fault schedule got (see [`super::inject_faults`]).
    pub(super) faults_done: watch::Receiver<u64>,
}

/// One client task's state.
pub(super) struct LiveClient {
    pub(super) host: Host,
    pub(super) conns: Vec<Arc<NodeConn>>,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) rec: Arc<Recorder>,
    pub(super) resource: Arc<Mutex<Resource>>,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
}

impl Start {
    /// Waits until the client may start: `start_ms`, after the faults scheduled up to it,
    /// and after its condition; `None` when the condition was not seen in time, else the
    /// gate holding a forwarded command's reply (if it waited for one), to drop once started.
    pub(super) async fn wait(mut self, rec: &Recorder) -> Option<Option<Gate>> {
        tokio::time::sleep_until(self.at.into()).await;
        // The faults scheduled up to this millisecond come first (an aborted schedule: go on).
        let ms = self.ms;
        let _ = self.faults_done.wait_for(|b| ms < *b).await;
        let mut gate = None;
        if let Some((after, what)) = self.after {
            let tapping = self.tapping.take();
            match super::forwarded::wait_after(rec, &after, self.at, &what, tapping).await {
                Some((when, held)) => {
                    gate = held;
                    tokio::time::sleep_until(when.into()).await;
                }
                None => return None,
            }
        }
        Some(gate)
    }
}

impl LiveClient {
    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Msg>, start: Start) {
        let Some(gate) = start.wait(&self.rec).await else {
            return;
        };
        self.feed(Input::Start);
        // A forwarded command's reply is held until this client has started.
        drop(gate);
        while !self.host.client().is_done() && !self.host.client().is_crashed() {
            let wake = self.next_deadline();
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Msg::Reply { request, reply }) => self.feed(Input::Lock(LockEvent::Reply { request, reply })),
                    Some(Msg::Pause(d)) => self.pause(d).await,
                    Some(Msg::Crash) | None => break,
                    Some(Msg::ClockJump(by)) => {
                        let now = self.rec.now_us();
                        self.host.jump_clock(now, by);
                        self.rec.observe(Effect::ClockSet {
                            target: self.host.client().name().to_string(),
                            offset_ms: (self.host.clock().local(now) as f64 - now as f64) / 1000.0,
                        });
                    }
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let mut out = Vec::new();
                    self.host.handle_timeout(self.rec.now_us(), &mut out);
                    self.carry_out(out);
                }
            }
        }
        if !self.host.client().is_done() || self.host.client().is_crashed() {
            self.rec.record(H::ClientCrashed {
                client: self.host.client().name().to_string().into(),
            });
        }
    }

    /// A stop-the-world pause: the task does nothing at all for `d`.
    async fn pause(&self, d: Duration) {
        let client = self.host.client().name().to_string();
        self.rec.observe(Effect::ClientPaused {
            client: client.clone(),
        });
        tokio::time::sleep(d).await;
        self.rec.record(H::Heal(Healed::ResumeClient {
            client: client.clone(),
        }));
        self.rec.observe(Effect::ClientResumed { client });
    }

    /// When the next timer comes due (far away when none is pending).
    fn next_deadline(&self) -> Instant {
        match self.host.poll_timeout(self.rec.now_us()) {
            Some(at) => self.rec.start + Duration::from_micros(at),
            None => self.rec.start + Duration::from_secs(1 << 20),
        }
    }

    /// Feeds `input` now and carries out what the client asks.
    fn feed(&mut self, input: Input) {
        let mut out = Vec::new();
        self.host.handle(input, self.rec.now_us(), &mut out);
        self.carry_out(out);
    }

    /// Sends the commands, writes to the resource and records; the host keeps the timers.
    fn carry_out(&mut self, mut out: Vec<Output>) {
        while !out.is_empty() {
            let mut acked = false;
            for o in out.drain(..) {
                match o {
                    Output::Send {
                        instance,
                        request,
                        command,
                    } => {
                        let conn = self.conns[self.provider.route(instance)].clone();
                        let tx = self.tx.clone();
                        tokio::spawn(async move {
                            let reply = conn.send(&command).await;
                            let _ = tx.send(Msg::Reply { request, reply });
                        });
                    }
                    Output::Write {
                        commit,
                        fencing_token,
                    } => {
                        let write = self
                            .resource
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take_write(self.host.client().name(), fencing_token);
                        self.rec.record(write);
                        acked |= commit;
                    }
                    Output::Record(event) => self.rec.record(event),
                    Output::Timer { .. } | Output::Crash => {}
                }
            }
            if acked {
                // The in-process resource acknowledges at once.
                self.host
                    .handle(Input::CommitAcked, self.rec.now_us(), &mut out);
            }
        }
    }
}
