//! The fault proxy: a TCP relay with one listener per link, where a link is cut, healed or
//! delayed on its own. Both real backends put their links through it (the processes provider
//! one per client and node, the containers provider one per node).
//!
//! Bytes pass unchanged, in both directions. A cut behaves as TCP does under a partition:
//! nothing is delivered while the link is cut, and what was sent meanwhile is delivered, in
//! order, when the cut heals (the cut is checked at delivery, so bytes read before the cut
//! are held too). A new connection made while the link is cut is accepted but not dialled on
//! until it heals. A delay holds every chunk until its arrival time plus the delay in force
//! at delivery.
//!
//! Memory is bounded: each direction of a connection holds at most [`HELD_CHUNKS`] chunks of
//! at most [`CHUNK`] bytes. At the cap the relay stops reading from the sender, whose kernel
//! buffers then fill and whose writes then block, as when a TCP peer's window closes; nothing
//! is dropped.
//!
//! A link may also be shaped ([`shape`]): the scenario's latency drawn per RESP frame, and
//! its loss (a lost frame ends that direction of its connection). A shaped direction holds
//! at most [`HELD_CHUNKS`] units of at most [`shape::MAX_FRAME`] + [`CHUNK`] bytes.
//!
//! Dropping a [`Link`] stops its listener and every connection it relays (their tasks are
//! aborted), closing both ends.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

pub mod shape;
pub use shape::Shaping;

/// The most bytes read at once, per direction.
pub const CHUNK: usize = 16 * 1024;
/// How many chunks one direction of a connection holds before it stops reading.
pub const HELD_CHUNKS: usize = 64;

/// Which way bytes flow through a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From whoever connected to the link toward its target.
    ToTarget,
    /// From the target back to whoever connected.
    FromTarget,
}

/// A link's state: how many cuts hold it, and the delay each way.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    cuts: usize,
    to_target: Duration,
    from_target: Duration,
}

impl State {
    fn delay(&self, dir: Direction) -> Duration {
        match dir {
            Direction::ToTarget => self.to_target,
            Direction::FromTarget => self.from_target,
        }
    }
}

/// Cuts, heals and delays one link; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct LinkControl {
    state: Arc<watch::Sender<State>>,
}

impl Default for LinkControl {
    fn default() -> Self {
        LinkControl {
            state: Arc::new(watch::channel(State::default()).0),
        }
    }
}

impl LinkControl {
    /// Cuts the link (cuts count: a link cut twice passes again after two heals).
    pub fn cut(&self) {
        self.state.send_modify(|s| s.cuts += 1);
    }

    /// Undoes one cut; the held bytes are delivered once no cut is left.
    pub fn heal(&self) {
        self.state
            .send_modify(|s| s.cuts = s.cuts.saturating_sub(1));
    }

    /// Whether a cut holds the link now.
    pub fn is_cut(&self) -> bool {
        self.state.borrow().cuts > 0
    }

    /// Delays every chunk flowing in `dir` by `by` (zero: none).
    pub fn set_delay(&self, dir: Direction, by: Duration) {
        self.state.send_modify(|s| match dir {
            Direction::ToTarget => s.to_target = by,
            Direction::FromTarget => s.from_target = by,
        });
    }

    fn watch(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }
}

/// One relay: a listener on `127.0.0.1` whose connections are relayed to a target. It runs on
/// the runtime it was started on until dropped.
#[derive(Debug)]
pub struct Link {
    port: u16,
    control: LinkControl,
    task: JoinHandle<()>,
}

impl Link {
    /// Listens on a free loopback port and relays each connection to `target` (`host:port`), under a fresh
    /// control; the relay runs on `runtime`.
    pub fn start(runtime: &Handle, target: impl Into<String>) -> io::Result<Link> {
        Link::start_with(runtime, target.into(), LinkControl::default())
    }

    /// As [`Link::start`], under `control` (links sharing a control are cut together).
    pub fn start_with(runtime: &Handle, target: String, control: LinkControl) -> io::Result<Link> {
        Link::start_shaped(runtime, target, control, None)
    }

    /// As [`Link::start_with`], every connection shaped by `shaping` when given.
    pub fn start_shaped(
        runtime: &Handle,
        target: String,
        control: LinkControl,
        shaping: Option<Shaping>,
    ) -> io::Result<Link> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let state = control.watch();
        let task = runtime.spawn(async move {
            // Inside the runtime: registering with its reactor cannot fail for want of one.
            if let Ok(listener) = TcpListener::from_std(std_listener) {
                accept(listener, target, state, shaping).await;
            }
        });
        Ok(Link {
            port,
            control,
            task,
        })
    }

    /// The loopback port the link listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The link's control.
    pub fn control(&self) -> &LinkControl {
        &self.control
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The connections' tasks live in the accept task's JoinSet, which aborts them when it
        // is dropped with the task.
        self.task.abort();
    }
}

/// Accepts connections and relays each one, reaping those that end.
async fn accept(
    listener: TcpListener,
    target: String,
    state: watch::Receiver<State>,
    shaping: Option<Shaping>,
) {
    let mut conns = JoinSet::new();
    let mut made = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let shapers = shaping.as_ref().map(|s| {
                        (s.shaper(made, Direction::ToTarget), s.shaper(made, Direction::FromTarget))
                    });
                    made += 1;
                    conns.spawn(relay(client, target.clone(), state.clone(), shapers));
                }
                Err(_) => return,
            },
            Some(_) = conns.join_next() => {}
        }
    }
}

/// Relays one connection to `target` (dialled once the link is not cut).
async fn relay(
    client: TcpStream,
    target: String,
    mut state: watch::Receiver<State>,
    shapers: Option<(shape::Shaper, shape::Shaper)>,
) {
    if state.wait_for(|s| s.cuts == 0).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(target.as_str()).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (to, from) = match shapers {
        Some((to, from)) => (Some(to), Some(from)),
        None => (None, None),
    };
    tokio::join!(
        pipe(cr, sw, state.clone(), Direction::ToTarget, to),
        pipe(sr, cw, state, Direction::FromTarget, from),
    );
}

/// One direction: a reader that stamps chunks as they arrive (or, shaped, the units its
/// shaper makes of them, stamped with when each is due) into a bounded queue, and a writer
/// that delivers each when the link is not cut and its delay has passed.
async fn pipe<R, W>(
    mut from: R,
    mut to: W,
    state: watch::Receiver<State>,
    dir: Direction,
    mut shaper: Option<shape::Shaper>,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(HELD_CHUNKS);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut units = Vec::new();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Some(shaper) = shaper.as_mut() else {
                if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                    break;
                }
                continue;
            };
            // After a loss the shaper yields nothing: the rest is read and discarded.
            shaper.push(Instant::now(), &buf[..n], &mut units);
            for unit in units.drain(..) {
                if tx.send(unit).await.is_err() {
                    return;
                }
            }
        }
    };
    let write = async move {
        let mut state = state;
        while let Some((at, bytes)) = rx.recv().await {
            if due(&mut state, at, dir).await.is_err() {
                return;
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

/// Waits until a chunk that arrived `at` may be delivered: no cut, and its delay passed (both
/// checked again whenever the link's state changes).
async fn due(
    state: &mut watch::Receiver<State>,
    at: Instant,
    dir: Direction,
) -> Result<(), watch::error::RecvError> {
    loop {
        let now = *state.borrow_and_update();
        if now.cuts > 0 {
            state.changed().await?;
            continue;
        }
        let when = at + now.delay(dir);
        if Instant::now() >= when {
            return Ok(());
        }
        tokio::select! {
            () = sleep_until(when) => {}
            changed = state.changed() => changed?,
        }
    }
}

/// Sleeps until `when`, to within the scheduler's wake-up latency: tokio's timer counts whole
/// milliseconds (a 0.2 ms wait takes up to 1.2 ms), which would swamp a shaped sub-millisecond
/// latency, so the wait is a Linux timerfd ([`tokio_timerfd`]); tokio's timer only when one
/// cannot be made or read.
async fn sleep_until(when: Instant) {
    if let Ok(delay) = tokio_timerfd::Delay::new(when) {
        if delay.await.is_ok() {
            return;
        }
    }
    tokio::time::sleep_until(when.into()).await;
}

#[cfg(test)]
mod tests;
