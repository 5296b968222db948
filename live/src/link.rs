//! The fault proxy: a TCP relay with one listener per link, where a link is cut, healed or
//! delayed on its own. Both real backends put their links through it (one per client and
//! node on both; the processes provider also one per replication link).
//!
//! Bytes pass unchanged, in both directions. A cut is checked when a chunk is delivered (so
//! bytes read before the cut meet it too) and does what its [`PartitionMode`] says
//! (scenarios/README.md, "Partitions"):
//! - `hold`, as TCP does under a partition: nothing is delivered while the link is cut, and
//!   what was sent meanwhile is delivered, in order, when the cut heals. A new connection
//!   made while cut is accepted but not dialled on until it heals.
//! - `blackhole`: what meets the cut is dropped; connections stay open but dead. At the heal
//!   a connection that lost bytes is closed (reset: its byte stream is no longer whole), and
//!   one that lost nothing carries on. A new connection is accepted, its bytes dropped.
//! - `reset`: when the cut strikes every connection of the link is reset (RST, to both
//!   ends), and while it lasts a new connection is reset as soon as it is accepted.
//!
//! Cuts count, per mode; while cuts of several modes hold a link the strongest acts: reset,
//! then blackhole, then hold. A delay holds every chunk until its arrival time plus the
//! delay in force at delivery.
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
//! A link may be tapped ([`tap`], [`LinkControl::arm_tap`]): the next client command of a
//! given name and key is forwarded, then that connection's replies are held until the tap's
//! owner opens the hit's [`Gate`], so a fault lands between the command and its reply.
//!
//! Dropping a [`Link`] stops its listener and every connection it relays (their tasks are
//! aborted), closing both ends.

pub use checker::PartitionMode;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

pub mod shape;
pub use shape::Shaping;
pub mod tap;
pub use tap::{Gate, TapHit};

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

/// A link's state: how many cuts of each mode hold it, how many reset cuts ever struck, and
/// the delay each way.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Cuts in force, by mode: hold, blackhole, reset.
    cuts: [usize; 3],
    /// Reset cuts so far: a connection that saw fewer is reset.
    resets: u64,
    to_target: Duration,
    from_target: Duration,
    /// What the target sent that is still delayed when the target closes is lost (see
    /// [`LinkControl::lose_delayed_on_target_close`]).
    lose_delayed_on_close: bool,
}

/// Where a mode's count sits in [`State::cuts`]; the highest index in force acts.
fn mode_index(mode: PartitionMode) -> usize {
    match mode {
        PartitionMode::Hold => 0,
        PartitionMode::Blackhole => 1,
        PartitionMode::Reset => 2,
    }
}

impl State {
    /// The mode that acts on the link now, if a cut holds it.
    fn mode(&self) -> Option<PartitionMode> {
        const MODES: [PartitionMode; 3] = [
            PartitionMode::Hold,
            PartitionMode::Blackhole,
            PartitionMode::Reset,
        ];
        (0..3).rev().find(|i| self.cuts[*i] > 0).map(|i| MODES[i])
    }

    fn delay(&self, dir: Direction) -> Duration {
        match dir {
            Direction::ToTarget => self.to_target,
            Direction::FromTarget => self.from_target,
        }
    }
}

/// Cuts, heals, delays and taps one link; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct LinkControl {
    state: Arc<watch::Sender<State>>,
    tap: Arc<tap::TapSlot>,
}

impl Default for LinkControl {
    fn default() -> Self {
        LinkControl {
            state: Arc::new(watch::channel(State::default()).0),
            tap: Arc::default(),
        }
    }
}

impl LinkControl {
    /// Cuts the link in `mode` (cuts count: a link cut twice passes again after two heals).
    /// A reset cut resets every connection of the link at once.
    pub fn cut(&self, mode: PartitionMode) {
        self.state.send_modify(|s| {
            s.cuts[mode_index(mode)] += 1;
            if mode == PartitionMode::Reset {
                s.resets += 1;
            }
        });
    }

    /// Undoes one cut of `mode`; the held bytes are delivered once no cut is left.
    pub fn heal(&self, mode: PartitionMode) {
        self.state.send_modify(|s| {
            let n = &mut s.cuts[mode_index(mode)];
            *n = n.saturating_sub(1);
        });
    }

    /// Whether a cut holds the link now.
    pub fn is_cut(&self) -> bool {
        self.state.borrow().mode().is_some()
    }

    /// Delays every chunk flowing in `dir` by `by` (zero: none).
    pub fn set_delay(&self, dir: Direction, by: Duration) {
        self.state.send_modify(|s| match dir {
            Direction::ToTarget => s.to_target = by,
            Direction::FromTarget => s.from_target = by,
        });
    }

    /// Makes what the target sent and the delay still holds lost when the target closes its
    /// end: a replication link, whose lag stands for writes still in the primary's buffers,
    /// which die with it (as the simulator's crash loses them), while bytes already due are
    /// delivered.
    pub fn lose_delayed_on_target_close(&self) {
        self.state.send_modify(|s| s.lose_delayed_on_close = true);
    }

    /// Arms the link's tap ([`tap`]): the next client command named `command` (any case)
    /// that touches `key`, on any of the link's connections, is forwarded, then the replies
    /// of that connection are held until the hit's [`Gate`] is opened, and the hit is sent
    /// on the returned channel. One hit per arming; armings add up (each fires once), and
    /// dropping the receiver withdraws its arming.
    pub fn arm_tap(&self, command: &str, key: &str) -> tokio::sync::oneshot::Receiver<TapHit> {
        self.tap.arm(command, key)
    }

    /// Withdraws every arming of the tap (a hit already sent is not taken back).
    pub fn disarm_tap(&self) {
        self.tap.disarm();
    }

    /// Whether the tap is armed now.
    pub fn tap_armed(&self) -> bool {
        self.tap.is_armed()
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
        let slot = control.tap.clone();
        let task = runtime.spawn(async move {
            // Inside the runtime: registering with its reactor cannot fail for want of one.
            if let Ok(listener) = TcpListener::from_std(std_listener) {
                accept(listener, target, state, shaping, slot).await;
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
    slot: Arc<tap::TapSlot>,
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
                    conns.spawn(relay(client, target.clone(), state.clone(), shapers, slot.clone()));
                }
                Err(_) => return,
            },
            Some(_) = conns.join_next() => {}
        }
    }
}

/// One relayed connection as the cuts see it: the reset cuts it has lived through, and
/// whether it lost bytes to a blackhole (shared by both directions).
#[derive(Debug, Clone)]
struct Conn {
    resets: u64,
    lossy: Arc<AtomicBool>,
}

impl Conn {
    /// Whether the connection must be reset now: a reset cut struck since it was made, or it
    /// lost bytes to a blackhole and no blackhole or reset cut holds the link any more.
    fn doomed(&self, s: &State) -> bool {
        s.resets != self.resets
            || (self.lossy.load(Ordering::Acquire)
                && !matches!(
                    s.mode(),
                    Some(PartitionMode::Blackhole | PartitionMode::Reset)
                ))
    }
}

/// Marks a connection to be reset when closed: RST rather than FIN, so its peer sees
/// "connection reset".
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Resets the connection whose write half `to` is: no FIN first (`forget`), and a RST once
/// its read half is dropped too.
fn reset_half(to: OwnedWriteHalf) {
    reset(to.as_ref());
    to.forget();
}

/// Relays one connection to `target`, dialled once no cut holds the link; reset at once while
/// a reset cut holds it.
async fn relay(
    mut client: TcpStream,
    target: String,
    mut state: watch::Receiver<State>,
    shapers: Option<(shape::Shaper, shape::Shaper)>,
    slot: Arc<tap::TapSlot>,
) {
    let conn = Conn {
        resets: state.borrow().resets,
        lossy: Arc::new(AtomicBool::new(false)),
    };
    if !admit(&mut client, &mut state, &conn).await {
        reset(&client);
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
    // The tap looks at what goes to the target and closes the gate on what comes back.
    let gate = Arc::new(tap::ReplyGate::default());
    let watcher = tap::Watcher::new(slot, gate.clone());
    tokio::join!(
        pipe(
            (cr, sw),
            state.clone(),
            Direction::ToTarget,
            conn.clone(),
            to,
            Tapped::Watch(watcher)
        ),
        pipe(
            (sr, cw),
            state,
            Direction::FromTarget,
            conn,
            from,
            Tapped::Gated(gate)
        ),
    );
}

/// Waits, before dialling, until no cut holds the link; false when the connection is to be
/// reset instead (a reset cut, or bytes dropped by a blackhole meanwhile).
async fn admit(client: &mut TcpStream, state: &mut watch::Receiver<State>, conn: &Conn) -> bool {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let now = *state.borrow_and_update();
        if now.mode() == Some(PartitionMode::Reset) || conn.doomed(&now) {
            return false;
        }
        match now.mode() {
            None => return true,
            Some(PartitionMode::Blackhole) => tokio::select! {
                read = client.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => conn.lossy.store(true, Ordering::Release),
                },
                changed = state.changed() => if changed.is_err() { return false },
            },
            Some(_) => {
                if state.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// What a chunk's writer does with it.
enum Fate {
    /// Deliver it now.
    Deliver,
    /// Drop it (a blackhole).
    Drop,
    /// Reset the connection.
    Reset,
}

/// The tap's part in one direction of a connection.
enum Tapped {
    /// Toward the target: the tap looks at each chunk before it is written.
    Watch(tap::Watcher),
    /// Back from the target: each chunk waits while the gate is closed.
    Gated(Arc<tap::ReplyGate>),
}

/// One direction: a reader that stamps chunks as they arrive into a bounded queue, and a
/// writer that delivers each when the link is not cut and its delay has passed (or drops it,
/// or resets the connection, as the cut's mode says), past the tap.
async fn pipe(
    (mut from, mut to): (OwnedReadHalf, OwnedWriteHalf),
    state: watch::Receiver<State>,
    dir: Direction,
    conn: Conn,
    mut shaper: Option<shape::Shaper>,
    mut tapped: Tapped,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(HELD_CHUNKS);
    // When the sender closed its end, for links that lose what is delayed then.
    let closed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let closed = closed_at.clone();
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut units = Vec::new();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    *closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    break;
                }
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
        loop {
            let chunk = tokio::select! {
                chunk = rx.recv() => chunk,
                changed = state.changed() => match changed {
                    Ok(()) if conn.doomed(&state.borrow_and_update()) => {
                        reset_half(to);
                        return;
                    }
                    Ok(()) => continue,
                    Err(_) => return,
                },
            };
            let Some((at, bytes)) = chunk else { break };
            if let Tapped::Gated(gate) = &tapped {
                gate.pass().await;
            }
            match due(&mut state, at, dir, &conn).await {
                Ok(Fate::Deliver) if lost_with_sender(&state.borrow(), dir, at, &closed_at) => {
                    break;
                }
                Ok(Fate::Deliver) => {}
                Ok(Fate::Drop) => continue,
                Ok(Fate::Reset) => {
                    reset_half(to);
                    return;
                }
                Err(_) => return,
            }
            let fired = match &mut tapped {
                Tapped::Watch(watcher) => watcher.look(&bytes),
                Tapped::Gated(_) => None,
            };
            if let Some(fired) = fired {
                // The frame that fired goes first, then the hit is reported.
                let end = fired.end;
                if to.write_all(&bytes[..end]).await.is_err() {
                    fired.cancel();
                    return;
                }
                fired.report(Instant::now());
                if to.write_all(&bytes[end..]).await.is_err() {
                    return;
                }
                continue;
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    // A reset ends the writer early: the reader, blocked on a quiet peer, ends with it.
    tokio::pin!(read);
    tokio::pin!(write);
    let mut read_done = false;
    loop {
        tokio::select! {
            () = &mut read, if !read_done => read_done = true,
            () = &mut write => return,
        }
    }
}

/// Waits until a chunk that arrived `at` may be delivered: no cut, and its delay passed (both
/// checked again whenever the link's state changes). A blackhole drops it; a reset cut, or
/// the heal of a blackhole that dropped some of the connection's bytes, resets it.
/// Whether a chunk stamped `at`, due now, was still delayed when its sender (the target)
/// closed, on a link that loses such chunks.
fn lost_with_sender(
    s: &State,
    dir: Direction,
    at: Instant,
    closed_at: &std::sync::Mutex<Option<Instant>>,
) -> bool {
    if dir != Direction::FromTarget || !s.lose_delayed_on_close {
        return false;
    }
    let closed = *closed_at.lock().unwrap_or_else(|e| e.into_inner());
    closed.is_some_and(|closed| at + s.delay(dir) > closed)
}

async fn due(
    state: &mut watch::Receiver<State>,
    at: Instant,
    dir: Direction,
    conn: &Conn,
) -> Result<Fate, watch::error::RecvError> {
    loop {
        let now = *state.borrow_and_update();
        if conn.doomed(&now) {
            return Ok(Fate::Reset);
        }
        match now.mode() {
            Some(PartitionMode::Blackhole) => {
                conn.lossy.store(true, Ordering::Release);
                return Ok(Fate::Drop);
            }
            Some(_) => {
                state.changed().await?;
                continue;
            }
            None => {}
        }
        let when = at + now.delay(dir);
        if Instant::now() >= when {
            return Ok(Fate::Deliver);
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
