//! Small helpers the providers and probes share to set up and steer their servers: one command
//! to one server, synchronous or async, with short timeouts.

use crate::LiveError;
use redis::{FromRedisValue, RedisError};
use std::time::Duration;

/// How long opening an admin connection may take.
const CONNECT: Duration = Duration::from_millis(500);
/// How long an admin command's reply may take.
const REPLY: Duration = Duration::from_secs(2);

/// A free TCP port on the loopback interface (free when asked; bind it soon).
pub(crate) fn free_port() -> Result<u16, LiveError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `args` as a command; an error when there is none.
fn command(args: &[&str]) -> Result<redis::Cmd, RedisError> {
    let (name, rest) = args.split_first().ok_or_else(|| {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no command",
        ))
    })?;
    let mut cmd = redis::cmd(name);
    for a in rest {
        cmd.arg(*a);
    }
    Ok(cmd)
}

/// One synchronous command to the server at `addr` (`host:port`), with short timeouts (for
/// threads of their own and the blocking pool).
pub(crate) fn query<T: FromRedisValue>(addr: &str, args: &[&str]) -> Result<T, RedisError> {
    let cmd = command(args)?;
    let client = redis::Client::open(format!("redis://{addr}"))?;
    let mut conn = client.get_connection_with_timeout(CONNECT)?;
    conn.set_read_timeout(Some(REPLY))?;
    cmd.query(&mut conn)
}

/// One command to the server at `addr` (`host:port`) from async code, with short timeouts.
pub(crate) async fn ask<T: FromRedisValue>(addr: &str, args: &[&str]) -> Result<T, RedisError> {
    let cmd = command(args)?;
    let client = redis::Client::open(format!("redis://{addr}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT))
        .set_response_timeout(Some(REPLY));
    let asked = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        cmd.query_async(&mut conn).await
    };
    tokio::time::timeout(CONNECT + REPLY, asked)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no reply in time",
            )))
        })
}
