//! Seeing what a fault did on a real server: async probes the driver runs after each fault
//! and while the run lasts.
//!
//! A fault is only as good as its observed effect: a crash is confirmed when the server stops
//! answering, a restart or a resume when it answers `PING` again, a promotion when `ROLE`
//! says `master`, and a primary dropping a stalled replica when the replica leaves its
//! `INFO replication`.

use crate::admin::ask;
use crate::clock::{real_now_ns, ServerClock};
use crate::ProbeError;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a probe asks again.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// Asks `probe` until it says yes or `within` has passed; `what` names the awaited state.
async fn until<F: Future<Output = bool>>(
    within: Duration,
    what: &'static str,
    mut probe: impl FnMut() -> F,
) -> Result<(), ProbeError> {
    let deadline = Instant::now() + within;
    loop {
        if probe().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ProbeError::NotSeen { what, within });
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Waits until the server at `addr` no longer answers `PING`.
pub async fn wait_down(addr: &str, within: Duration) -> Result<(), ProbeError> {
    until(within, "the node down", || async {
        ask::<String>(addr, &["PING"]).await.is_err()
    })
    .await
}

/// Waits until the server at `addr` answers `PING`.
pub async fn wait_up(addr: &str, within: Duration) -> Result<(), ProbeError> {
    until(within, "the node answering", || async {
        ask::<String>(addr, &["PING"]).await.is_ok()
    })
    .await
}

/// How far a node's `TIME` may stray from where its clock was set, beyond the probe's own
/// round trip.
const CLOCK_TOLERANCE_NS: i64 = 20_000_000;

/// Waits until `TIME` on the server at `addr` reads `clock` (within the probe's round trip
/// and [`CLOCK_TOLERANCE_NS`]).
pub async fn wait_clock(
    addr: &str,
    clock: &ServerClock,
    within: Duration,
) -> Result<(), ProbeError> {
    until(within, "the node's clock where it was set", || async {
        let before = real_now_ns();
        let time = ask::<(i64, i64)>(addr, &["TIME"]).await;
        let after = real_now_ns();
        time.is_ok_and(|(s, us)| {
            let read = s * 1_000_000_000 + us * 1_000;
            // The true time at the read lies in [before, after].
            let (low, high) = (read - after, read - before);
            let want = clock.offset_ns_at((before + after) / 2);
            low - CLOCK_TOLERANCE_NS <= want && want <= high + CLOCK_TOLERANCE_NS
        })
    })
    .await
}

/// Waits until `ROLE` on the server at `addr` says `master`.
pub async fn wait_primary(addr: &str, within: Duration) -> Result<(), ProbeError> {
    until(within, "the node a primary", || async {
        ask::<redis::Value>(addr, &["ROLE"])
            .await
            .is_ok_and(|v| role_is_master(&v))
    })
    .await
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
pub async fn connected_replicas(addr: &str) -> Result<Vec<(String, u16)>, ProbeError> {
    let info = ask::<String>(addr, &["INFO", "replication"]).await?;
    Ok(parse_replicas(&info))
}

/// The port of the primary the server at `addr` follows (`master_port` in its
/// `INFO replication`; `None` for a primary).
pub async fn master_port(addr: &str) -> Result<Option<u16>, ProbeError> {
    let info = ask::<String>(addr, &["INFO", "replication"]).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("master_port:"))
        .and_then(|p| p.trim().parse().ok()))
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
