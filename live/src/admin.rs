//! Small synchronous helpers the providers share to set up and steer their servers.

use crate::LiveError;
use std::time::Duration;

/// A free TCP port on the loopback interface (free when asked; bind it soon).
pub fn free_port() -> Result<u16, LiveError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One synchronous command to the server at `addr` (`host:port`), with short timeouts.
pub fn query<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> Result<T, String> {
    let client = redis::Client::open(format!("redis://{addr}")).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn).map_err(|e| e.to_string())
}
