//! One client's connection to one Redis node: the canonical encoding of lock-core's commands
//! sent with the `redis` crate, replies mapped back, reconnecting after a failure.

use crate::Timeouts;
use lock_core::{Command, Reply};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::Mutex;

/// Where connections report a server that stopped answering: one line per URL, the first
/// failure only.
pub type ProblemSink = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// A lazily (re)connected link from one client to one node.
pub struct NodeConn {
    url: String,
    timeouts: Timeouts,
    slot: Mutex<Option<MultiplexedConnection>>,
    problems: Option<(ProblemSink, std::time::Instant)>,
}

impl NodeConn {
    /// A link to `url` (e.g. `redis://127.0.0.1:6379`); nothing is opened yet.
    pub fn new(url: String, timeouts: Timeouts) -> NodeConn {
        NodeConn {
            url,
            timeouts,
            slot: Mutex::new(None),
            problems: None,
        }
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

    /// Opens the connection now (within the connect timeout), if it is not open.
    pub async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client =
            redis::Client::open(self.url.as_str()).map_err(|e| format!("{}: {e}", self.url))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response));
        let conn = tokio::time::timeout(
            self.timeouts.connect,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| {
            format!(
                "{}: no connection within {:?}",
                self.url, self.timeouts.connect
            )
        })?
        .map_err(|e| format!("{}: {e}", self.url))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Sends one command and returns Redis's reply; transport failures become
    /// [`Reply::Error`] and drop the connection so the next command reconnects.
    pub async fn send(&self, command: &Command) -> Reply {
        let mut conn = match self.connect().await {
            Ok(c) => c,
            Err(e) => {
                self.report(&e);
                return Reply::Error(e);
            }
        };
        match to_cmd(command).query_async::<Value>(&mut conn).await {
            Ok(v) => from_value(v),
            Err(e) => {
                if !matches!(e.kind(), redis::ErrorKind::Server(_)) {
                    // The transport failed: reconnect on the next command.
                    *self.slot.lock().await = None;
                    self.report(&e.to_string());
                }
                Reply::Error(e.to_string())
            }
        }
    }
}

/// The `redis` crate command for a lock-core command: exactly `Command::args`.
pub fn to_cmd(command: &Command) -> redis::Cmd {
    let args = command.args();
    let mut cmd = redis::cmd(&args[0]);
    for a in &args[1..] {
        cmd.arg(a);
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
