//! The TCP relay between clients and one node's published port: where clients are cut off from
//! a node (it stops forwarding, in both directions, like a network that drops packets: what was
//! sent arrives after the cut heals, as TCP would deliver it).

use crate::LiveError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP relay on `127.0.0.1` to `target` that forwards, in both directions, only while `gate`
/// reads 0 (bytes already read wait; new connections wait before dialling). Returns the port
/// it listens on. It runs on the caller's runtime until every sender of `gate` is dropped.
pub(super) async fn start(target: String, gate: watch::Receiver<usize>) -> Result<u16, LiveError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let mut closed = gate.clone();
        loop {
            let client = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((client, _)) => client,
                    Err(_) => return,
                },
                () = gone(&mut closed) => return,
            };
            tokio::spawn(forward(client, target.clone(), gate.clone()));
        }
    });
    Ok(port)
}

/// Returns once every sender of `gate` is gone.
async fn gone(gate: &mut watch::Receiver<usize>) {
    while gate.changed().await.is_ok() {}
}

/// Relays one client connection to `target` (dialled once the gate opens).
async fn forward(client: TcpStream, target: String, mut gate: watch::Receiver<usize>) {
    if gate.wait_for(|n| *n == 0).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::spawn(pipe(cr, sw, gate.clone()));
    tokio::spawn(pipe(sr, cw, gate));
}

/// Copies `from` to `to` while the gate is open; waits while it is shut.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: watch::Receiver<usize>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if gate.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if gate.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
