//! Whether a process is stopped, as `/proc/<pid>/stat` says: how a SIGSTOP is confirmed, for
//! servers (the processes provider) and for external client programs alike.

use std::time::{Duration, Instant};

/// The state letter of process `pid` (`R`, `S`, `T` for stopped, ...), `None` when it cannot
/// be read (the process is gone).
pub(crate) fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name in parentheses: "123 (redis-server) T ...".
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Waits until process `pid` is seen stopped (`T`), for at most `within`; the last state
/// seen when it is not.
pub(crate) async fn wait_stopped(pid: i32, within: Duration) -> Result<(), Option<char>> {
    let deadline = Instant::now() + within;
    loop {
        let now = state(pid);
        if now == Some('T') {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(now);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
