//! One client's connection to one Redis node: lock-core's commands sent with the `redis`
//! crate as [`Command::wire`] encodes them (scripts by `EVALSHA`, loaded on first use), replies
//! mapped back, reconnecting after a failure.
//!
//! With [`NodeConn::with_breaker`], a node that stopped answering is not sent a pile of
//! requests that will all time out: after a transport failure (timeout, refused, reset) the
//! link lets one request through at a time as a probe and fails the others at once with
//! [`Reply::Error`], until a probe is answered. A Redlock over five nodes with one frozen then
//! costs one pending request on the frozen node, not one per acquisition.

use crate::{ConnectError, Timeouts};
use lock_core::{Command, Reply, Wire, Word};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

/// Where connections report a server that stopped answering: one line per URL, the first
/// failure only.
pub type ProblemSink = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// A lazily (re)connected link from one client to one node.
pub struct NodeConn {
    url: String,
    timeouts: Timeouts,
    /// The open connection; a plain mutex, held only to clone or replace it (never across an
    /// await), so a send on an open connection costs no async locking.
    slot: std::sync::Mutex<Option<MultiplexedConnection>>,
    /// Held while connecting, so concurrent sends open one connection, not several.
    connecting: tokio::sync::Mutex<()>,
    problems: Option<(ProblemSink, std::time::Instant)>,
    /// Whether the circuit breaker is on.
    breaker: bool,
    /// The last request failed in transport: only probes go out.
    suspect: AtomicBool,
    /// A probe is under way.
    probing: AtomicBool,
}

/// The message of a request the circuit breaker failed without sending it.
pub const BREAKER_OPEN: &str = "not sent: the node's last request failed and a probe is under way";

impl NodeConn {
    /// A link to `url` (e.g. `redis://127.0.0.1:6379`); nothing is opened yet.
    pub fn new(url: String, timeouts: Timeouts) -> NodeConn {
        NodeConn {
            url,
            timeouts,
            slot: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            problems: None,
            breaker: false,
            suspect: AtomicBool::new(false),
            probing: AtomicBool::new(false),
        }
    }

    /// Turns the circuit breaker on (see the module docs): after a transport failure, one
    /// request at a time goes out until one is answered; the others fail at once.
    pub fn with_breaker(mut self) -> NodeConn {
        self.breaker = true;
        self
    }

    /// Whether the breaker holds requests back now (the last request failed in transport).
    pub fn is_suspect(&self) -> bool {
        self.suspect.load(Ordering::Acquire)
    }

    /// Reports transport failures to `sink`, with times relative to `start`.
    pub fn reporting_to(mut self, sink: ProblemSink, start: std::time::Instant) -> NodeConn {
        self.problems = Some((sink, start));
        self
    }

    fn report(&self, what: &str) {
        if let Some((sink, start)) = &self.problems {
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            sink.entry(self.url.clone()).or_insert_with(|| {
                format!(
                    "{} stopped answering at {:.3} ms: {what}",
                    self.url,
                    start.elapsed().as_secs_f64() * 1000.0
                )
            });
        }
    }

    fn open(&self) -> Option<MultiplexedConnection> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, conn: Option<MultiplexedConnection>) {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = conn;
    }

    /// Opens the connection now (within the connect timeout), if it is not open.
    pub async fn connect(&self) -> Result<MultiplexedConnection, ConnectError> {
        if let Some(c) = self.open() {
            return Ok(c);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(c) = self.open() {
            return Ok(c); // another send connected while this one waited
        }
        let client = redis::Client::open(self.url.as_str())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response));
        let conn = tokio::time::timeout(self.timeouts.connect, async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            load_scripts(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        })
        .await
        .map_err(|_| ConnectError::Timeout(self.timeouts.connect))??;
        self.set(Some(conn.clone()));
        Ok(conn)
    }

    /// Sends one command and returns Redis's reply; transport failures become
    /// [`Reply::Error`] and drop the connection so the next command reconnects. With the
    /// breaker on and the node suspect, only one command at a time is sent (a probe); the
    /// others return [`BREAKER_OPEN`] at once.
    pub async fn send(&self, command: &Command) -> Reply {
        if !self.breaker {
            return self.send_now(command).await.0;
        }
        let probe = self.suspect.load(Ordering::Acquire);
        if probe && self.probing.swap(true, Ordering::AcqRel) {
            return Reply::Error(format!("{}: {BREAKER_OPEN}", self.url));
        }
        // Ends the probe even when this future is dropped midway.
        let _probing = probe.then(|| ProbeGuard(&self.probing));
        let (reply, transport_failed) = self.send_now(command).await;
        if transport_failed {
            self.suspect.store(true, Ordering::Release);
        } else if probe {
            self.suspect.store(false, Ordering::Release);
        }
        reply
    }

    /// Sends one command; the reply, and whether the transport failed.
    async fn send_now(&self, command: &Command) -> (Reply, bool) {
        let mut conn = match self.connect().await {
            Ok(c) => c,
            Err(e) => {
                let e = format!("{}: {}", self.url, crate::chain(&e));
                self.report(&e);
                return (Reply::Error(e), true);
            }
        };
        let result = match command.wire() {
            Wire::Plain(words) => plain(&words).query_async::<Value>(&mut conn).await,
            Wire::Script { script, keys, args } => {
                let mut call = hashed(script).prepare_invoke();
                for k in keys {
                    call.key(k);
                }
                for a in args {
                    match a {
                        Word::Text(t) => call.arg(t),
                        Word::Int(n) => call.arg(n),
                    };
                }
                // EVALSHA; on NOSCRIPT (first use, or a server that restarted or was promoted)
                // the crate loads the script and sends it again.
                call.invoke_async::<Value>(&mut conn).await
            }
        };
        match result {
            Ok(v) => (from_value(v), false),
            Err(e) => {
                let transport = !matches!(e.kind(), redis::ErrorKind::Server(_));
                if transport {
                    // The transport failed: reconnect on the next command.
                    self.set(None);
                    self.report(&e.to_string());
                }
                (Reply::Error(e.to_string()), transport)
            }
        }
    }
}

/// Loads every lock script on a new connection (one round trip), before any command is sent
/// on it.
///
/// Without it, a script's first EVALSHA meets NOSCRIPT and the `redis` crate loads the script
/// and sends the call again; a command sent meanwhile on the same connection then overtakes
/// it. Seen on redis-server processes: a failed counting acquire's cleanup (the release
/// script) ran before the slow acquire it cleans up, which then granted a hold nobody
/// released (`safe-counting-acquire-not-resent`). A connection lost to a restart or a
/// failover is opened again, and loads them again; NOSCRIPT after that (a `SCRIPT FLUSH`)
/// is still handled by the crate.
async fn load_scripts(conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for script in lock_core::Script::ALL {
        pipe.cmd("SCRIPT").arg("LOAD").arg(script.body()).ignore();
    }
    pipe.query_async::<()>(conn).await
}

/// Clears the probe-under-way flag when the probe ends, however it ends.
struct ProbeGuard<'a>(&'a AtomicBool);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The `redis` crate's handle on one of the lock protocol's scripts, hashed once.
fn hashed(script: lock_core::Script) -> &'static redis::Script {
    use lock_core::Script as S;
    static RELEASE: LazyLock<redis::Script> =
        LazyLock::new(|| redis::Script::new(S::Release.body()));
    static EXTEND: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(S::Extend.body()));
    static FENCED_ACQUIRE: LazyLock<redis::Script> =
        LazyLock::new(|| redis::Script::new(S::FencedAcquire.body()));
    static COUNTING_ACQUIRE: LazyLock<redis::Script> =
        LazyLock::new(|| redis::Script::new(S::CountingAcquire.body()));
    static COUNTING_RELEASE: LazyLock<redis::Script> =
        LazyLock::new(|| redis::Script::new(S::CountingRelease.body()));
    static COUNTING_EXTEND: LazyLock<redis::Script> =
        LazyLock::new(|| redis::Script::new(S::CountingExtend.body()));
    match script {
        S::Release => &RELEASE,
        S::Extend => &EXTEND,
        S::FencedAcquire => &FENCED_ACQUIRE,
        S::CountingAcquire => &COUNTING_ACQUIRE,
        S::CountingRelease => &COUNTING_RELEASE,
        S::CountingExtend => &COUNTING_EXTEND,
    }
}

/// The `redis` crate command for a plain command's words, encoded straight from them.
fn plain(words: &[Word<'_>]) -> redis::Cmd {
    let size = words.iter().map(|w| match w {
        Word::Text(t) => t.len(),
        Word::Int(_) => 20,
    });
    let mut cmd = redis::Cmd::with_capacity(words.len(), size.sum());
    for w in words {
        match w {
            Word::Text(t) => cmd.arg(*t),
            Word::Int(n) => cmd.arg(*n),
        };
    }
    cmd
}

/// A Redis reply in lock-core's terms.
pub fn from_value(v: Value) -> Reply {
    match v {
        Value::Nil => Reply::Nil,
        Value::Okay => Reply::Ok,
        Value::Int(n) => Reply::Int(n),
        Value::SimpleString(s) if s == "OK" => Reply::Ok,
        Value::SimpleString(s) => Reply::Bulk(s),
        Value::BulkString(b) => Reply::Bulk(String::from_utf8_lossy(&b).into_owned()),
        Value::ServerError(e) => Reply::Error(format!("{e:?}")),
        other => Reply::Error(format!("unexpected reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::testing::start;
    use crate::Provider;
    use lock_core::SharedStr;
    use scenario::Topology;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn get() -> Command {
        Command::Get { key: "k".into() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_breaker_sends_one_probe_at_a_time_to_a_frozen_node_and_closes_when_it_answers() {
        let Some(p) = start(&Topology::Single {}) else {
            return;
        };
        let (node, url) = p.nodes().remove(0);
        let timeouts = Timeouts {
            connect: Duration::from_millis(300),
            response: Duration::from_millis(300),
        };
        let conn = Arc::new(NodeConn::new(url, timeouts).with_breaker());
        assert_eq!(conn.send(&get()).await, Reply::Nil);
        assert!(!conn.is_suspect());

        p.pause(&node).await.unwrap();
        // Two requests in flight when the node froze: both time out, the node turns suspect.
        let g = get();
        let (a, b) = tokio::join!(conn.send(&g), conn.send(&g));
        assert!(matches!(a, Reply::Error(_)) && matches!(b, Reply::Error(_)));
        assert!(conn.is_suspect());

        // One probe goes out; while it is pending, the others fail at once without sending.
        let probe = tokio::spawn({
            let conn = conn.clone();
            async move { conn.send(&get()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        for _ in 0..100 {
            match conn.send(&get()).await {
                Reply::Error(e) => assert!(e.contains(BREAKER_OPEN), "{e}"),
                other => panic!("a frozen node answered {other:?}"),
            }
        }
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "failed fast, not after a timeout each: {:?}",
            t.elapsed()
        );
        assert!(matches!(probe.await.unwrap(), Reply::Error(_)));
        assert!(
            conn.is_suspect(),
            "an unanswered probe keeps the breaker open"
        );

        // A probe dropped midway (its caller gave up) lets the next one through.
        let g = get();
        let dropped = tokio::time::timeout(Duration::from_millis(50), conn.send(&g)).await;
        assert!(
            dropped.is_err(),
            "the frozen node cannot answer within 50 ms"
        );
        let t = Instant::now();
        let r = conn.send(&g).await;
        assert!(
            !matches!(&r, Reply::Error(e) if e.contains(BREAKER_OPEN)),
            "the next request is a probe again, not refused: {r:?}"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "it waited for the node"
        );

        // The node wakes up: the next probe is answered and the breaker closes.
        p.resume(&node).await.unwrap();
        let mut answered = false;
        for _ in 0..20 {
            if conn.send(&get()).await == Reply::Nil {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(answered, "the resumed node answers a probe");
        assert!(!conn.is_suspect());
        let g = get();
        let (a, b) = tokio::join!(conn.send(&g), conn.send(&g));
        assert_eq!(
            (a, b),
            (Reply::Nil, Reply::Nil),
            "closed: all requests go out again"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scripts_are_loaded_on_connect_so_commands_run_in_the_order_sent() {
        let Some(p) = start(&Topology::Single {}) else {
            return;
        };
        let (node, url) = p.nodes().remove(0);
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(5),
        };
        let conn = NodeConn::new(url, timeouts);
        let mut raw = conn.connect().await.expect("the server accepts");
        let mut exists = redis::cmd("SCRIPT");
        exists.arg("EXISTS");
        for script in lock_core::Script::ALL {
            exists.arg(hashed(script).get_hash());
        }
        let loaded: Vec<i64> = exists.query_async(&mut raw).await.unwrap();
        assert_eq!(loaded, vec![1; lock_core::Script::ALL.len()]);

        // A slow counting acquire and its cleanup, sent in that order while the server is
        // frozen: the cleanup must find the hold the acquire counted, not run first.
        let (key, token) = (SharedStr::from("k"), SharedStr::from("t"));
        let acquire = Command::CountingAcquire {
            key: key.clone(),
            token: token.clone(),
            ttl_ms: Some(60_000),
        };
        let cleanup = Command::CountingRelease {
            key: key.clone(),
            token,
            ttl_ms: Some(60_000),
        };
        p.pause(&node).await.unwrap();
        // `join!` polls in order: both commands are queued on the connection, acquire first,
        // before the third future thaws the server.
        let (granted, released, resumed) =
            tokio::join!(conn.send(&acquire), conn.send(&cleanup), p.resume(&node));
        resumed.unwrap();
        assert_eq!((granted, released), (Reply::Int(1), Reply::Int(1)));
        assert_eq!(conn.send(&Command::Get { key }).await, Reply::Nil);
    }

    #[tokio::test]
    async fn without_the_breaker_every_request_goes_out() {
        // Nothing listens on port 1: each request tries (and fails) to connect.
        let conn = NodeConn::new(
            "redis://127.0.0.1:1".into(),
            Timeouts {
                connect: Duration::from_millis(200),
                response: Duration::from_millis(200),
            },
        );
        for _ in 0..3 {
            match conn.send(&get()).await {
                Reply::Error(e) => assert!(!e.contains(BREAKER_OPEN), "{e}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(!conn.is_suspect());
    }
}
