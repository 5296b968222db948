//! Cleanup: everything a run created is removed when its provider is dropped (also while
//! unwinding from a panic), and everything this process created when it is interrupted.

use super::{engine, Containers, LABEL, RUN_LABEL};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

/// Runs `f` on a runtime of its own, on a thread of its own: for the work that must be done
/// where no runtime can be borrowed (in `Drop`, which may run inside another runtime, where
/// blocking on it is not allowed; and on a signal).
fn on_own_thread(
    name: &str,
    f: impl Future<Output = ()> + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(f);
            }
        })
        .ok()
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.poller.take() {
            let _ = t.join();
        }
        let ids: Vec<String> = self
            .slots()
            .iter_mut()
            .filter_map(|s| s.id.take())
            .collect();
        let nets = [self.ports_net.clone(), self.mesh_net.clone()];
        let filter = format!("{RUN_LABEL}={}", self.run);
        // A client of its own: this one's connections may belong to a runtime that is busy
        // running this very drop.
        let cleanup = on_own_thread("locksim-containers-drop", async move {
            let Ok(docker) = engine::connect().await else {
                return;
            };
            for id in ids {
                let _ = engine::remove(&docker, &id).await;
            }
            for net in &nets {
                let _ = docker.remove_network(net).await;
            }
            // Whatever is left with this run's label (a container whose id was lost).
            engine::remove_labelled(&docker, &filter).await;
        });
        if let Some(t) = cleanup {
            let _ = t.join();
        }
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP (once per process): removes everything labelled
/// `locksim=<pid>` and exits with 128 + the signal.
pub(super) fn install_signal_cleanup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = on_own_thread("locksim-containers-signals", watch_signals());
    });
}

async fn watch_signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let code = tokio::select! {
        _ = int.recv() => 130,
        _ = term.recv() => 143,
        _ = hup.recv() => 129,
    };
    eprintln!("locksim: signal caught, removing this process's containers");
    let filter = format!("{LABEL}={}", std::process::id());
    let cleanup = async {
        if let Ok(docker) = engine::connect().await {
            engine::remove_labelled(&docker, &filter).await;
        }
    };
    // A second signal stops waiting for the engine.
    tokio::select! {
        _ = cleanup => {}
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    std::process::exit(code);
}
