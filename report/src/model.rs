//! What a timeline shows, read from a history: lanes of intervals and marks on one true-time
//! axis. Pure data, no drawing.

use checker::{Event, Healed, Injected, KeyChange, Record};
use std::collections::BTreeMap;

/// A half-open interval of true time, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub from: u64,
    pub to: u64,
}

/// One holding interval of a client: Acquired until its section ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hold {
    pub span: Span,
    pub fencing_token: Option<u64>,
    /// The history ended (or the client crashed) while it still held the lock.
    pub open_at_end: bool,
}

/// A point event on a client lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientMark {
    /// The resource accepted (true) or rejected (false) a write.
    Write { accepted: bool },
    /// One acquisition attempt failed.
    AttemptFailed,
    /// The client gave up acquiring.
    AcquireFailed,
    /// The lock core reported the lock lost.
    Lost,
    /// The watchdog's extension was confirmed.
    Extended,
    /// A set-once write won.
    SetOnceWon,
    /// The client process died.
    Crashed,
}

/// Everything drawn on one client's lane.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ClientLane {
    pub name: String,
    pub holds: Vec<Hold>,
    pub acquiring: Vec<Span>,
    pub paused: Vec<Span>,
    pub marks: Vec<(u64, ClientMark)>,
}

/// Which value a node's copy of the key held over a span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeySegment {
    pub span: Span,
    pub holder: String,
    /// The segment ended because the key's TTL ran out (on the node's clock).
    pub expired: bool,
}

/// Everything drawn on one node's lane (one key on one node).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct NodeLane {
    pub node: String,
    /// The key, shown only when the history changes several keys.
    pub key: String,
    pub segments: Vec<KeySegment>,
    /// Each change: when, what, whether it came through replication.
    pub changes: Vec<(u64, KeyChange, bool)>,
    /// When the node was down (crashed) or paused, from the fault records.
    pub down: Vec<(Span, &'static str)>,
}

/// A fault line of the history: injected, healed, or an observed effect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultMark {
    pub t_us: u64,
    /// The record itself (a `Fault`, `Heal` or `Observed` event).
    pub event: Event,
    /// Its description for people, derived from the record.
    pub description: String,
}

impl FaultMark {
    /// Whether this is an observed effect rather than something the schedule did.
    pub fn observed(&self) -> bool {
        matches!(self.event, Event::Observed(_))
    }
}

/// One node's or client's clock over the run: where it started and its jumps. The default
/// is a clock on true time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClockLine {
    /// Offset from true time at the start, in ms.
    pub offset_ms: f64,
    /// Speed relative to true time.
    pub rate: f64,
    /// Jumps: when (true time, µs) and by how much (ms), from the clock-jump fault records.
    pub jumps: Vec<(u64, f64)>,
}

impl Default for ClockLine {
    fn default() -> Self {
        ClockLine {
            offset_ms: 0.0,
            rate: 1.0,
            jumps: Vec::new(),
        }
    }
}

impl ClockLine {
    /// How far the clock is from true time at `t_us`, in ms: the start offset, the drift
    /// accumulated since, and the jumps up to then.
    pub fn offset_at(&self, t_us: u64) -> f64 {
        let drift = (self.rate - 1.0) * t_us as f64 / 1000.0;
        let jumped: f64 = self
            .jumps
            .iter()
            .filter(|(t, _)| *t <= t_us)
            .map(|(_, by)| by)
            .sum();
        self.offset_ms + drift + jumped
    }
}

/// The run's parameters from `RunStarted`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RunInfo {
    pub scenario: String,
    pub backend: String,
    pub seed: u64,
    pub resource: String,
    pub ttl_ms: Option<u64>,
}

/// A whole timeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Model {
    pub info: Option<RunInfo>,
    /// The last time on the axis (at least 1 ms).
    pub end_us: u64,
    pub clients: Vec<ClientLane>,
    pub nodes: Vec<NodeLane>,
    /// Whether node lanes need the key in their label (several keys changed).
    pub several_keys: bool,
    pub faults: Vec<FaultMark>,
    /// Clocks that were not on true time (a start offset, a rate, or jumps), by name.
    pub clocks: BTreeMap<String, ClockLine>,
}

impl Model {
    /// Reads a history. Records are taken in order; times are not required to be sorted.
    pub(crate) fn from_records(records: &[Record]) -> Model {
        let end_us = records.iter().map(|r| r.t_us).max().unwrap_or(0).max(1_000);
        let mut info = None;
        let mut client_order: Vec<String> = Vec::new();
        let mut clients: BTreeMap<String, ClientLane> = BTreeMap::new();
        let mut open_hold: BTreeMap<String, (u64, Option<u64>)> = BTreeMap::new();
        let mut open_acq: BTreeMap<String, u64> = BTreeMap::new();
        let mut node_order: Vec<(String, String)> = Vec::new();
        let mut node_events: BTreeMap<(String, String), Vec<NodeChange>> = BTreeMap::new();
        let mut faults = Vec::new();
        let mut clocks: BTreeMap<String, ClockLine> = BTreeMap::new();

        for r in records {
            let t = r.t_us;
            if let Some(c) = r.event.client() {
                if !clients.contains_key(c) {
                    client_order.push(c.to_string());
                    clients.insert(
                        c.to_string(),
                        ClientLane {
                            name: c.to_string(),
                            ..ClientLane::default()
                        },
                    );
                }
            }
            match &r.event {
                Event::RunStarted(start) => {
                    let checker::RunStart {
                        scenario,
                        backend,
                        seed,
                        resource,
                        ttl_ms,
                        clocks: starts,
                        ..
                    } = &**start;
                    for (name, c) in starts {
                        let line = clocks.entry(name.clone()).or_default();
                        line.offset_ms = c.offset_ms;
                        line.rate = c.rate;
                    }
                    info = Some(RunInfo {
                        scenario: scenario.clone(),
                        backend: backend.clone(),
                        seed: *seed,
                        resource: resource.clone(),
                        ttl_ms: *ttl_ms,
                    })
                }
                Event::Fault(_) | Event::Heal(_) | Event::Observed(_) => {
                    if let Event::Fault(Injected::ClockJump { target, by_ms }) = &r.event {
                        clocks
                            .entry(target.clone())
                            .or_default()
                            .jumps
                            .push((t, *by_ms as f64));
                    }
                    faults.push(FaultMark {
                        t_us: t,
                        event: r.event.clone(),
                        description: r.event.fault_description().unwrap_or_default(),
                    })
                }
                Event::AcquireStarted { client } => {
                    open_acq.insert(client.to_string(), t);
                }
                Event::Acquired {
                    client,
                    fencing_token,
                    ..
                } => {
                    if let Some(from) = open_acq.remove(client.as_str()) {
                        push_span(&mut clients, client, from, t, |l| &mut l.acquiring);
                    }
                    if let Some((from, tok)) = open_hold.remove(client.as_str()) {
                        push_hold(&mut clients, client, from, t, tok, false);
                    }
                    open_hold.insert(client.to_string(), (t, *fencing_token));
                }
                Event::AcquireFailed { client, .. } => {
                    if let Some(from) = open_acq.remove(client.as_str()) {
                        push_span(&mut clients, client, from, t, |l| &mut l.acquiring);
                    }
                    push_mark(&mut clients, client, t, ClientMark::AcquireFailed);
                }
                Event::AttemptFailed { client, .. } => {
                    push_mark(&mut clients, client, t, ClientMark::AttemptFailed)
                }
                Event::Extended { client } => {
                    push_mark(&mut clients, client, t, ClientMark::Extended)
                }
                Event::Lost { client, .. } => push_mark(&mut clients, client, t, ClientMark::Lost),
                Event::SectionEnded { client, .. } => {
                    if let Some((from, tok)) = open_hold.remove(client.as_str()) {
                        push_hold(&mut clients, client, from, t, tok, false);
                    }
                }
                Event::Write {
                    client, accepted, ..
                } => push_mark(
                    &mut clients,
                    client,
                    t,
                    ClientMark::Write {
                        accepted: *accepted,
                    },
                ),
                Event::SetOnceWon { client, .. } => {
                    push_mark(&mut clients, client, t, ClientMark::SetOnceWon)
                }
                Event::ClientCrashed { client } => {
                    if let Some(from) = open_acq.remove(client.as_str()) {
                        push_span(&mut clients, client, from, t, |l| &mut l.acquiring);
                    }
                    if let Some((from, tok)) = open_hold.remove(client.as_str()) {
                        push_hold(&mut clients, client, from, t, tok, true);
                    }
                    push_mark(&mut clients, client, t, ClientMark::Crashed);
                }
                Event::KeyChanged {
                    node,
                    key,
                    change,
                    replicated,
                    holder,
                    ttl_left_us,
                } => {
                    let id = (node.to_string(), key.to_string());
                    if !node_events.contains_key(&id) {
                        node_order.push(id.clone());
                    }
                    node_events.entry(id).or_default().push(NodeChange {
                        t,
                        change: *change,
                        replicated: *replicated,
                        holder: holder.as_ref().map(|h| h.to_string()),
                        ttl_left_us: *ttl_left_us,
                    });
                }
                Event::AttemptStarted { .. }
                | Event::Released { .. }
                | Event::ClientSaid { .. }
                | Event::CommandSent { .. }
                | Event::ReplyReceived { .. }
                | Event::Inconclusive { .. }
                | Event::RunEnded {} => {}
            }
        }
        for (client, from) in open_acq {
            push_span(&mut clients, &client, from, end_us, |l| &mut l.acquiring);
        }
        for (client, (from, tok)) in open_hold {
            push_hold(&mut clients, &client, from, end_us, tok, true);
        }

        let several_keys = {
            let mut keys: Vec<&str> = node_order.iter().map(|(_, k)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.len() > 1
        };
        let mut nodes: Vec<NodeLane> = node_order
            .into_iter()
            .map(|id| {
                let changes = node_events.remove(&id).unwrap_or_default();
                node_lane(id.0, id.1, &changes, end_us)
            })
            .collect();
        infer_outages(&faults, &mut nodes, &mut clients, end_us);

        let clients = client_order
            .iter()
            .filter_map(|c| clients.remove(c))
            .collect();
        Model {
            info,
            end_us,
            clients,
            nodes,
            several_keys,
            faults,
            clocks,
        }
    }
}

/// One `KeyChanged` record on a (node, key).
struct NodeChange {
    t: u64,
    change: KeyChange,
    replicated: bool,
    holder: Option<String>,
    ttl_left_us: Option<u64>,
}

fn node_lane(node: String, key: String, changes: &[NodeChange], end_us: u64) -> NodeLane {
    let mut lane = NodeLane {
        node,
        key,
        ..NodeLane::default()
    };
    // The value held now: since when, by whom, until when it expires.
    let mut current: Option<(u64, String, Option<u64>)> = None;
    for c in changes {
        lane.changes.push((c.t, c.change, c.replicated));
        // Close the current value if it expired before this change.
        if let Some((from, holder, Some(exp))) = &current {
            if *exp <= c.t {
                push_segment(&mut lane, *from, *exp, holder, true);
                current = None;
            }
        }
        let keeps_value = matches!(
            c.change,
            KeyChange::Set | KeyChange::Extended | KeyChange::Resynced
        );
        let expires = c.ttl_left_us.map(|l| c.t.saturating_add(l));
        match (&c.holder, keeps_value) {
            (Some(h), true) => match &mut current {
                // Same value, new expiry: one continuous segment.
                Some((_, held, exp)) if held == h => *exp = expires,
                _ => {
                    if let Some((from, held, _)) = current.take() {
                        push_segment(&mut lane, from, c.t, &held, false);
                    }
                    current = Some((c.t, h.clone(), expires));
                }
            },
            _ => {
                if let Some((from, held, _)) = current.take() {
                    push_segment(&mut lane, from, c.t, &held, false);
                }
            }
        }
    }
    if let Some((from, held, exp)) = current {
        match exp {
            Some(e) if e < end_us => push_segment(&mut lane, from, e, &held, true),
            _ => push_segment(&mut lane, from, end_us, &held, false),
        }
    }
    lane
}

fn push_segment(lane: &mut NodeLane, from: u64, to: u64, holder: &str, expired: bool) {
    lane.segments.push(KeySegment {
        span: Span {
            from,
            to: to.max(from),
        },
        holder: holder.to_string(),
        expired,
    });
}

fn push_span(
    clients: &mut BTreeMap<String, ClientLane>,
    client: &str,
    from: u64,
    to: u64,
    field: impl Fn(&mut ClientLane) -> &mut Vec<Span>,
) {
    if let Some(l) = clients.get_mut(client) {
        field(l).push(Span {
            from,
            to: to.max(from),
        });
    }
}

fn push_hold(
    clients: &mut BTreeMap<String, ClientLane>,
    client: &str,
    from: u64,
    to: u64,
    fencing_token: Option<u64>,
    open_at_end: bool,
) {
    if let Some(l) = clients.get_mut(client) {
        l.holds.push(Hold {
            span: Span {
                from,
                to: to.max(from),
            },
            fencing_token,
            open_at_end,
        });
    }
}

fn push_mark(clients: &mut BTreeMap<String, ClientLane>, client: &str, t: u64, m: ClientMark) {
    if let Some(l) = clients.get_mut(client) {
        l.marks.push((t, m));
    }
}

/// Node outages (crash to restart, pause to resume) and client pauses, from the fault
/// records.
fn infer_outages(
    faults: &[FaultMark],
    nodes: &mut [NodeLane],
    clients: &mut BTreeMap<String, ClientLane>,
    end_us: u64,
) {
    // (node name) -> (since, what)
    let mut node_open: BTreeMap<String, (u64, &'static str)> = BTreeMap::new();
    let mut client_open: BTreeMap<String, u64> = BTreeMap::new();
    let close_node = |nodes: &mut [NodeLane], name: &str, from: u64, to: u64, what| {
        for lane in nodes.iter_mut().filter(|l| l.node == name) {
            lane.down.push((
                Span {
                    from,
                    to: to.max(from),
                },
                what,
            ));
        }
    };
    for f in faults {
        match &f.event {
            Event::Fault(Injected::PauseClient { client, .. }) => {
                client_open.entry(client.clone()).or_insert(f.t_us);
            }
            Event::Heal(Healed::ResumeClient { client }) => {
                if let Some(from) = client_open.remove(client) {
                    push_span(clients, client, from, f.t_us, |l| &mut l.paused);
                }
            }
            Event::Fault(Injected::Crash { node }) => {
                node_open.entry(node.clone()).or_insert((f.t_us, "down"));
            }
            Event::Fault(Injected::PauseNode { node, .. }) => {
                node_open.entry(node.clone()).or_insert((f.t_us, "paused"));
            }
            Event::Fault(Injected::Restart { node, .. } | Injected::ResumeNode { node })
            | Event::Heal(Healed::ResumeNode { node }) => {
                if let Some((from, what)) = node_open.remove(node) {
                    close_node(nodes, node, from, f.t_us, what);
                }
            }
            _ => {}
        }
    }
    for (n, (from, what)) in node_open {
        close_node(nodes, &n, from, end_us, what);
    }
    for (c, from) in client_open {
        push_span(clients, &c, from, end_us, |l| &mut l.paused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t_us: u64, event: Event) -> Record {
        Record { t_us, event }
    }

    fn key(
        t: u64,
        node: &str,
        change: KeyChange,
        holder: Option<&str>,
        ttl: Option<u64>,
    ) -> Record {
        rec(
            t,
            Event::KeyChanged {
                node: node.into(),
                key: "k".into(),
                change,
                replicated: false,
                holder: holder.map(checker::SharedStr::from),
                ttl_left_us: ttl,
            },
        )
    }

    #[test]
    fn key_segments_merge_extensions_and_stop_at_expiry() {
        let recs = vec![
            key(0, "n", KeyChange::Set, Some("A"), Some(100)),
            key(50, "n", KeyChange::Extended, Some("A"), Some(100)),
            key(500, "n", KeyChange::Set, Some("B"), None),
            key(600, "n", KeyChange::Deleted, None, None),
            rec(2_000, Event::RunEnded {}),
        ];
        let m = Model::from_records(&recs);
        let segs: Vec<(u64, u64, &str, bool)> = m.nodes[0]
            .segments
            .iter()
            .map(|s| (s.span.from, s.span.to, s.holder.as_str(), s.expired))
            .collect();
        assert_eq!(segs, vec![(0, 150, "A", true), (500, 600, "B", false)]);
    }

    #[test]
    fn holds_end_at_section_end_crash_or_run_end() {
        let recs = vec![
            rec(
                10,
                Event::Acquired {
                    client: "A".into(),
                    token: "t".into(),
                    fencing_token: Some(1),
                    valid_for_us: None,
                },
            ),
            rec(
                20,
                Event::Acquired {
                    client: "B".into(),
                    token: "u".into(),
                    fencing_token: None,
                    valid_for_us: None,
                },
            ),
            rec(30, Event::ClientCrashed { client: "A".into() }),
            rec(5_000, Event::RunEnded {}),
        ];
        let m = Model::from_records(&recs);
        assert_eq!(m.clients[0].name, "A");
        assert_eq!(m.clients[0].holds[0].span, Span { from: 10, to: 30 });
        assert!(m.clients[0].holds[0].open_at_end);
        assert_eq!(
            m.clients[1].holds[0].span,
            Span {
                from: 20,
                to: 5_000
            }
        );
        assert!(m.nodes.is_empty());
    }

    #[test]
    fn crashes_and_restarts_become_outages() {
        let recs = vec![
            key(0, "primary", KeyChange::Set, Some("A"), None),
            rec(
                10,
                Event::Fault(Injected::Crash {
                    node: "primary".into(),
                }),
            ),
            rec(
                90,
                Event::Fault(Injected::Restart {
                    node: "primary".into(),
                    persistence: false,
                }),
            ),
            rec(2_000, Event::RunEnded {}),
        ];
        let m = Model::from_records(&recs);
        assert_eq!(m.nodes[0].down, vec![(Span { from: 10, to: 90 }, "down")]);
    }
}
