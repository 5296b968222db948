//! The history of a live run as it is written, and waiting on it for conditions.

use checker::{Effect, Event as H, Record};
use scenario::{After, Condition};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The history being written, stamped with the harness's monotonic clock. Conditions
/// (`after`) wait on it.
pub(super) struct Recorder {
    pub(super) start: Instant,
    pub(super) records: Mutex<Vec<Record>>,
    /// Woken on every record, for [`Recorder::wait_for`].
    pub(super) grew: tokio::sync::Notify,
    /// What is waiting for which condition now (`faults[1] (crash primary)` → `A acquiring
    /// the lock`); still waiting when the run ends makes it inconclusive.
    pub(super) pending: Mutex<BTreeMap<String, Condition>>,
}

impl Recorder {
    pub(super) fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub(super) fn record(&self, event: H) {
        self.record_at(Instant::now(), event);
    }

    /// Records `event` as of `at` (an observation made a little earlier); the history is put in
    /// time order when the run ends.
    pub(super) fn record_at(&self, at: Instant, event: H) {
        let t_us = at.saturating_duration_since(self.start).as_micros() as u64;
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.push(Record { t_us, event });
        drop(records);
        self.grew.notify_waiters();
    }

    pub(super) fn observe(&self, effect: Effect) {
        self.record(H::Observed(effect));
    }

    pub(super) fn inconclusive(&self, reason: String) {
        self.record(H::Inconclusive { reason });
    }

    /// Waits until the history shows `condition`, at the latest until `until`; the time it was
    /// first seen.
    pub(super) async fn wait_for(&self, condition: &Condition, until: Instant) -> Option<u64> {
        let mut scanned = 0;
        loop {
            let grew = self.grew.notified();
            tokio::pin!(grew);
            grew.as_mut().enable();
            {
                let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(r) = records[scanned..]
                    .iter()
                    .find(|r| condition.met_by(&r.event))
                {
                    return Some(r.t_us);
                }
                scanned = records.len();
            }
            if tokio::time::timeout_at(until.into(), grew).await.is_err() {
                return None;
            }
        }
    }

    /// Waits for `after` on behalf of `what` (`faults[1] (crash primary)`), from `at`; records
    /// why the run is inconclusive when it is not seen in time. The instant to act at.
    pub(super) async fn wait_after(
        &self,
        after: &After,
        at: Instant,
        what: &str,
    ) -> Option<Instant> {
        let until = at + Duration::from_millis(after.timeout_ms);
        let pending = || self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending().insert(what.to_string(), after.condition.clone());
        let seen = self.wait_for(&after.condition, until).await;
        pending().remove(what);
        match seen {
            Some(t) => {
                let seen = self.start + Duration::from_micros(t);
                Some(at.max(seen + Duration::from_millis(after.delay_ms)))
            }
            None => {
                let within = format!("within {} ms", after.timeout_ms);
                self.inconclusive(after.condition.not_seen(what, &within));
                None
            }
        }
    }
}
