//! Waiting for a forwarded command (`after.forwarded`): the client's links are tapped when
//! the run starts, before any client sends (a condition seen before `at_ms` counts, as every
//! condition's does), the first hit is recorded as [`Effect::Forwarded`] (which meets the
//! condition), and the hit's gate — which holds the server's reply — is handed to whoever
//! waited, to be opened once they have acted.

use super::record::Recorder;
use crate::link::{Gate, TapHit};
use crate::Provider;
use checker::{Effect, Event as H};
use scenario::{After, Condition, Forwarded};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinSet;

/// The taps armed for one wait, and the gate of the first hit.
pub(super) struct Tapping {
    /// The first hit's gate, until the waiter takes it.
    gate: Arc<Mutex<Option<Gate>>>,
    /// One task per link, waiting for its hit; aborted when the wait ends.
    tasks: JoinSet<()>,
}

impl Tapping {
    /// Arms every link of `f.client`'s for `f`'s command and key (`key` when it names none).
    pub(super) fn arm(
        provider: &dyn Provider,
        rec: &Arc<Recorder>,
        f: &Forwarded,
        key: &str,
    ) -> Result<Tapping, crate::LiveError> {
        let links = provider.client_links(&f.client)?;
        let key = f.key_or(key).to_string();
        let gate = Arc::new(Mutex::new(None));
        let mut tasks = JoinSet::new();
        for (node, control) in links {
            let rx = control.arm_tap(&f.command, &key);
            let (rec, gate) = (rec.clone(), gate.clone());
            let client = f.client.clone();
            tasks.spawn(async move {
                // A hit lost with its connection (the frame could not be written) ends this
                // link's part; the others still wait.
                let Ok(hit) = rx.await else { return };
                first_hit(&rec, &gate, client, node, hit);
            });
        }
        Ok(Tapping { gate, tasks })
    }

    /// Ends the wait: withdraws its armings (their receivers go with the tasks) and gives the
    /// first hit's gate, if any.
    fn finish(mut self) -> Option<Gate> {
        self.tasks.abort_all();
        self.gate.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The first hit of a wait keeps its gate and is recorded; a later one (another node's link,
/// hit at nearly the same time) is let through.
fn first_hit(
    rec: &Recorder,
    gate: &Mutex<Option<Gate>>,
    client: String,
    node: String,
    hit: TapHit,
) {
    let mut slot = gate.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return; // dropping `hit` opens its gate
    }
    *slot = Some(hit.gate);
    drop(slot);
    rec.record_at(
        hit.at,
        H::Observed(Effect::Forwarded {
            client,
            node,
            command: hit.command,
            key: hit.key,
        }),
    );
}

/// Arms the taps `after` needs, if it waits for a forwarded command (`resource_key` for one
/// that names no key).
pub(super) fn arm_for(
    provider: &dyn Provider,
    rec: &Arc<Recorder>,
    after: Option<&After>,
    resource_key: &str,
) -> Result<Option<Tapping>, crate::LiveError> {
    match after.map(|a| &a.condition) {
        Some(Condition::Forwarded(f)) => Tapping::arm(provider, rec, f, resource_key).map(Some),
        _ => Ok(None),
    }
}

/// Waits for `after` on behalf of `what` from `at`, as [`Recorder::wait_after`] does; with
/// the taps of a forwarded command (armed by [`arm_for`]) the gate holding the server's reply
/// comes back with the instant to act at (open it — drop it — once acted).
pub(super) async fn wait_after(
    rec: &Recorder,
    after: &After,
    at: Instant,
    what: &str,
    tapping: Option<Tapping>,
) -> Option<(Instant, Option<Gate>)> {
    let when = rec.wait_after(after, at, what).await;
    let gate = tapping.and_then(Tapping::finish);
    when.map(|w| (w, gate))
}
