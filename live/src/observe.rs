//! Seeing what a fault did on a real server: synchronous probes the driver runs (on tokio's
//! blocking pool) after each fault and while the run lasts.
//!
//! A fault is only as good as its observed effect: a crash is confirmed when the server stops
//! answering, a restart or a resume when it answers `PING` again, a promotion when `ROLE`
//! says `master`, and a primary dropping a stalled replica when the replica leaves its
//! `INFO replication`.

use crate::admin::query;
use std::time::{Duration, Instant};

/// How often a probe asks again.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// Asks `probe` until it says yes or `within` has passed; `what` names the awaited state.
fn until(within: Duration, what: &str, mut probe: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if probe() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what} was not seen within {within:?}"));
        }
        std::thread::sleep(PROBE_EVERY);
    }
}

/// Waits until the server at `addr` no longer answers `PING`.
pub fn wait_down(addr: &str, within: Duration) -> Result<(), String> {
    until(within, "the node down", || {
        query::<String>(addr, &["PING"]).is_err()
    })
}

/// Waits until the server at `addr` answers `PING`.
pub fn wait_up(addr: &str, within: Duration) -> Result<(), String> {
    until(within, "the node answering", || {
        query::<String>(addr, &["PING"]).is_ok()
    })
}

/// Waits until `ROLE` on the server at `addr` says `master`.
pub fn wait_primary(addr: &str, within: Duration) -> Result<(), String> {
    until(within, "the node a primary", || {
        query::<redis::Value>(addr, &["ROLE"]).is_ok_and(|v| role_is_master(&v))
    })
}

fn role_is_master(v: &redis::Value) -> bool {
    match v {
        redis::Value::Array(items) => matches!(
            items.first(),
            Some(redis::Value::BulkString(b)) if b == b"master"
        ),
        _ => false,
    }
}

/// The replicas a primary streams to now, as `(ip, port)` from its `INFO replication`.
pub fn connected_replicas(addr: &str) -> Result<Vec<(String, u16)>, String> {
    let info = query::<String>(addr, &["INFO", "replication"])?;
    Ok(parse_replicas(&info))
}

/// The `slaveN:ip=..,port=..,...` lines of `INFO replication`.
fn parse_replicas(info: &str) -> Vec<(String, u16)> {
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains(":ip="))
        .filter_map(|l| {
            let (_, fields) = l.split_once(':')?;
            let field = |k: &str| {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            };
            Some((field("ip")?.to_string(), field("port")?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_replica_lines_of_info_replication() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=40001,state=online,offset=42,lag=0\r\n\
            slave1:ip=replica-2,port=6379,state=wait_bgsave,offset=0,lag=1\r\n\
            master_failover_state:no-failover\r\n";
        assert_eq!(
            parse_replicas(info),
            [
                ("127.0.0.1".to_string(), 40001),
                ("replica-2".to_string(), 6379)
            ]
        );
        assert!(parse_replicas("role:master\r\nconnected_slaves:0\r\n").is_empty());
    }

    #[test]
    fn role_master_is_told_from_replica() {
        let role = |r: &str| redis::Value::Array(vec![redis::Value::BulkString(r.into())]);
        assert!(role_is_master(&role("master")));
        assert!(!role_is_master(&role("slave")));
        assert!(!role_is_master(&redis::Value::Nil));
    }
}
