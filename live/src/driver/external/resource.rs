//! The protected resource as an external program reaches it: one loopback port per client,
//! speaking one line per write (`WRITE` or `WRITE <fencing token>`, answered `OK` or
//! `REJECTED`), each write stamped when it arrives and judged by the run's one resource.

use super::super::record::Recorder;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use workload::Resource;

/// Where a client's writes go, and how a bad line is reported.
pub(crate) struct ResourcePort {
    /// The port's `host:port`, for `LOCKSIM_RESOURCE`.
    pub(crate) addr: String,
    listener: TcpListener,
}

impl ResourcePort {
    /// Opens a port on a free loopback address.
    pub(crate) async fn open() -> std::io::Result<ResourcePort> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        Ok(ResourcePort { addr, listener })
    }

    /// Serves `client`'s writes until the task is dropped, each stamped after a drain of
    /// `pipes` (so after every line printed before it); a line that is not a write is passed
    /// to `bad` (the line and why) and its connection closed.
    pub(crate) async fn serve(
        self,
        client: String,
        rec: Arc<Recorder>,
        resource: Arc<Mutex<Resource>>,
        pipes: Arc<super::Pipes>,
        bad: impl Fn(String) + Send + Sync + Clone + 'static,
    ) {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((stream, _)) = accepted else { return };
                    let (client, rec, resource, bad) =
                        (client.clone(), rec.clone(), resource.clone(), bad.clone());
                    let pipes = pipes.clone();
                    conns.spawn(async move {
                        let _ = stream.set_nodelay(true);
                        let (r, mut w) = stream.into_split();
                        let mut lines = BufReader::new(r).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let fencing = match parse_write(&line) {
                                Ok(f) => f,
                                Err(why) => return bad(format!("the resource got {line:?}: {why}")),
                            };
                            // What the programs printed before this write is recorded first.
                            pipes.drain(&rec);
                            let write = resource
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .take_write(&client.as_str().into(), fencing);
                            let accepted =
                                matches!(write, checker::Event::Write { accepted: true, .. });
                            rec.record(write);
                            let answer: &[u8] = if accepted { b"OK\n" } else { b"REJECTED\n" };
                            if w.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    });
                }
                Some(_) = conns.join_next() => {}
            }
        }
    }
}

/// A write line: `WRITE` (no token) or `WRITE <token>`; the token, or why the line is not one.
fn parse_write(line: &str) -> Result<Option<u64>, String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("WRITE"), None, _) => Ok(None),
        (Some("WRITE"), Some(t), None) => t
            .parse()
            .map(Some)
            .map_err(|_| format!("the fencing token `{t}` is not a whole number")),
        _ => Err("a write is `WRITE` or `WRITE <fencing token>`, one per line".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_write;

    #[test]
    fn writes_with_and_without_a_token_and_nothing_else() {
        assert_eq!(parse_write("WRITE"), Ok(None));
        assert_eq!(parse_write("WRITE 12"), Ok(Some(12)));
        assert!(parse_write("WRITE x").unwrap_err().contains("`x`"));
        assert!(parse_write("write").is_err());
        assert!(parse_write("WRITE 1 2").is_err());
    }
}
