//! The primary's endpoint for an external program in a replicated topology: one loopback port
//! whose every new connection goes to whichever node is the primary now, as a managed Redis
//! endpoint or a virtual IP follows a failover. It dials the client's own link to that node,
//! so the link's cuts, delays and taps still apply.

use crate::Provider;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running endpoint; dropping it stops it and every connection it carries.
pub(crate) struct Endpoint {
    /// The `redis://` URL a program connects to.
    pub(crate) url: String,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Listens on a free loopback port; each connection is relayed to `links[route(0)]`
    /// (`host:port`, the client's own link to each node, in node order).
    pub(crate) async fn start(
        provider: Arc<dyn Provider>,
        links: Vec<String>,
    ) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut program, _)) = accepted else { return };
                        let Some(target) = links.get(provider.route(0)).cloned() else { continue };
                        conns.spawn(async move {
                            let Ok(mut node) = TcpStream::connect(target).await else { return };
                            let _ = program.set_nodelay(true);
                            let _ = node.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut program, &mut node).await;
                        });
                    }
                    Some(_) = conns.join_next() => {}
                }
            }
        });
        Ok(Endpoint { url, task })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` of a `redis://host:port[/db]` URL.
pub(crate) fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}
