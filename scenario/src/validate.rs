//! Loading and whole-scenario validation: everything that would stop a run is found here.

use crate::condition::{After, Condition};
use crate::error::ScenarioError;
use crate::fault::FaultAction;
use crate::model::{Backend, Scenario, Topology, Workload};
use crate::space::{FaultKind, Span};
use checker::quote::{clip, strip_position};
use lock_core::recipe::{MAX_INSTANCES, MAX_MS};
use std::collections::BTreeSet;
use std::path::Path;

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let error = |line, reason| ScenarioError {
            file: path.to_path_buf(),
            field: String::new(),
            line,
            reason,
            data: None,
        };
        let bytes =
            std::fs::read(path).map_err(|e| error(None, format!("cannot read the file: {e}")))?;
        let text = crate::datafile::utf8(bytes).map_err(|(line, why)| error(Some(line), why))?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Scenario, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let mut field = e.path().to_string();
            let inner = e.into_inner();
            let mut reason = strip_position(&inner.to_string()).to_string();
            let syntax = inner.is_syntax() || inner.is_eof();
            if syntax && (field == "." || field == "?" || field.ends_with('?')) {
                // A syntax error around a key: find the field from the text itself.
                let at = crate::locate::offset_of(text, inner.line(), inner.column());
                let (path, after) = crate::locate::field_at(text, at);
                field = path;
                reason = match (field.is_empty(), after) {
                    (true, Some(a)) => {
                        format!("{reason} (column {}, after field `{a}`)", inner.column())
                    }
                    (true, None) => {
                        format!("{reason} (column {}, at the top level)", inner.column())
                    }
                    (false, _) => format!("{reason} (column {})", inner.column()),
                };
            } else if let Some(map) = field.strip_suffix(".?") {
                // serde_path_to_error writes a bad map key as `?`: name the map and say "key".
                field = map.to_string();
                reason = format!("bad key: {reason}");
            }
            ScenarioError {
                file: origin.to_path_buf(),
                field: clip(if field == "." { "" } else { &field }),
                line: (inner.line() > 0).then_some(inner.line()),
                reason: clip(&reason),
                data: None,
            }
        })?;
        let mut scenario = scenario;
        scenario.load_data(origin)?;
        scenario.resolve_forwarded_keys();
        scenario
            .validate()
            .map_err(|(field, reason)| ScenarioError {
                file: origin.to_path_buf(),
                field: clip(&field),
                line: None,
                reason: clip(&reason),
                data: None,
            })?;
        Ok(scenario)
    }

    /// Gives every `after.forwarded` that names no key the scenario's `resource.key`.
    fn resolve_forwarded_keys(&mut self) {
        let key = self.resource.key.clone();
        let faults = self.faults.iter_mut().filter_map(|f| f.after.as_mut());
        let starts = self.clients.iter_mut().filter_map(|c| c.after.as_mut());
        for after in faults.chain(starts) {
            if let Condition::Forwarded(f) = &mut after.condition {
                f.key.get_or_insert_with(|| key.clone());
            }
        }
    }

    /// Checks everything the parser cannot: names that exist, times inside the run, sane
    /// numbers. Returns the field path and the reason of the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: String, reason: String| Err((field, reason));
        if self.name.trim().is_empty() {
            return fail("name".into(), "must not be empty".into());
        }
        too_long("name", &self.name, MAX_NAME_BYTES)?;
        too_long("description", &self.description, MAX_DESCRIPTION_BYTES)?;
        if self.duration_ms == 0 || self.duration_ms > MAX_MS {
            return fail(
                "duration_ms".into(),
                format!(
                    "must be between 1 and {MAX_MS} ms, got {}",
                    self.duration_ms
                ),
            );
        }
        if self.backends.is_empty() {
            return fail("backends".into(), "name at least one backend".into());
        }
        match &self.topology {
            Topology::Replicated { replicas, .. } if *replicas == 0 || *replicas > 16 => {
                return fail(
                    "topology.replicated.replicas".into(),
                    format!("needs between 1 and 16 replicas, got {replicas}"),
                )
            }
            Topology::Replicated {
                replication_lag_ms, ..
            } if !(0.0..=MAX_MS as f64).contains(replication_lag_ms) => {
                return fail(
                    "topology.replicated.replication_lag_ms".into(),
                    format!("must be between 0 and {MAX_MS} ms, got {replication_lag_ms}"),
                )
            }
            Topology::Replicated { repl_timeout_ms, .. } if *repl_timeout_ms < 1000 || *repl_timeout_ms > MAX_MS => {
                return fail(
                    "topology.replicated.repl_timeout_ms".into(),
                    format!("must be between 1000 and {MAX_MS} ms (Redis counts it in whole seconds), got {repl_timeout_ms}"),
                )
            }
            Topology::Replicated {
                sentinel: Some(s), ..
            } if s.down_after_ms == 0 || s.down_after_ms > MAX_MS => {
                return fail(
                    "topology.replicated.sentinel.down_after_ms".into(),
                    format!("must be between 1 and {MAX_MS} ms, got {}", s.down_after_ms),
                )
            }
            Topology::Redlock { instances } if *instances == 0 || *instances > MAX_INSTANCES => {
                return fail(
                    "topology.redlock.instances".into(),
                    format!("needs between 1 and {MAX_INSTANCES} instances, got {instances}"),
                )
            }
            _ => {}
        }
        let nodes: BTreeSet<String> = self.topology.node_names().into_iter().collect();
        let instances = self.topology.lock_instances();
        if let Err(e) = self.recipe.validate(instances) {
            return fail(format!("recipe.{}", e.field), e.reason);
        }
        if let Some(w) = &self.recipe.wait_replicas {
            match &self.topology {
                Topology::Replicated { replicas, .. } if w.replicas as usize <= *replicas => {}
                Topology::Replicated { replicas, .. } => {
                    return fail(
                        "recipe.wait_replicas.replicas".into(),
                        format!(
                            "{} is more than the topology's {replicas} replicas",
                            w.replicas
                        ),
                    )
                }
                _ => {
                    return fail(
                        "recipe.wait_replicas".into(),
                        "needs a replicated topology".into(),
                    )
                }
            }
        }
        for (field, d) in [
            ("network.latency", &self.network.latency),
            ("network.resource_latency", &self.network.resource_latency),
        ] {
            d.check().or_else(|r| fail(field.into(), r))?;
        }
        if !(0.0..1.0).contains(&self.network.loss) {
            return fail(
                "network.loss".into(),
                format!("must be in [0, 1), got {}", self.network.loss),
            );
        }
        if self.resource.key.is_empty() {
            return fail("resource.key".into(), "must not be empty".into());
        }
        too_long("resource.key", &self.resource.key, MAX_KEY_BYTES)?;
        if self.clients.is_empty() || self.clients.len() > 1000 {
            return fail(
                "clients".into(),
                format!(
                    "name between 1 and 1000 clients, got {}",
                    self.clients.len()
                ),
            );
        }
        let mut clients = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let at = |f: &str| format!("clients[{i}].{f}");
            if c.name.is_empty() {
                return fail(at("name"), "must not be empty".into());
            }
            too_long(&at("name"), &c.name, MAX_NAME_BYTES)?;
            if c.name == "resource" {
                return fail(
                    at("name"),
                    "`resource` is reserved: it names the protected resource in partitions".into(),
                );
            }
            if nodes.contains(&c.name) {
                return fail(
                    at("name"),
                    format!("`{}` is already the name of a node", c.name),
                );
            }
            if !clients.insert(c.name.clone()) {
                return fail(at("name"), format!("`{}` is used by two clients", c.name));
            }
            if c.start_ms > self.duration_ms {
                return fail(
                    at("start_ms"),
                    format!(
                        "{} is past the end of the run ({} ms)",
                        c.start_ms, self.duration_ms
                    ),
                );
            }
            if c.iterations == 0 || c.iterations > 1_000_000 {
                return fail(
                    at("iterations"),
                    format!("must be between 1 and 1000000, got {}", c.iterations),
                );
            }
            c.work_ms.check().or_else(|r| fail(at("work_ms"), r))?;
            c.think_ms.check().or_else(|r| fail(at("think_ms"), r))?;
            if c.crash_after_commands == Some(0) {
                return fail(
                    at("crash_after_commands"),
                    "must be at least 1 (or absent)".into(),
                );
            }
            if c.workload == Workload::SetOnce && c.iterations != 1 {
                return fail(at("iterations"), "a set-once writer writes once".into());
            }
            if let Some(program) = &c.program {
                check_program(program, c).or_else(|r| fail(at("program"), r))?;
                if self.supports(Backend::Sim) {
                    return fail(
                        at("program"),
                        "the simulator cannot run an external program: list only real backends \
                         (`processes`, `containers`) in `backends`"
                            .into(),
                    );
                }
            }
        }
        for (kind, names, known) in [
            ("nodes", &self.clocks.nodes, &nodes),
            ("clients", &self.clocks.clients, &clients),
        ] {
            for (name, spec) in names {
                let field = format!("clocks.{kind}.{name}");
                if !known.contains(name) {
                    return fail(
                        field,
                        format!("no {} is named `{name}`", &kind[..kind.len() - 1]),
                    );
                }
                if !(0.5..=2.0).contains(&spec.rate) {
                    return fail(
                        format!("{field}.rate"),
                        format!("must be between 0.5 and 2.0, got {}", spec.rate),
                    );
                }
                if !(spec.offset_ms.is_finite() && spec.offset_ms.abs() <= MAX_MS as f64) {
                    return fail(
                        format!("{field}.offset_ms"),
                        format!("must be within ±{MAX_MS} ms"),
                    );
                }
            }
        }
        let is_replica = |n: &str| n.starts_with("replica-") && nodes.contains(n);
        for (i, f) in self.faults.iter().enumerate() {
            let field = format!("faults[{i}].{}", f.action.kind());
            if f.at_ms > self.duration_ms {
                return fail(
                    format!("faults[{i}].at_ms"),
                    format!(
                        "{} is past the end of the run ({} ms)",
                        f.at_ms, self.duration_ms
                    ),
                );
            }
            let node = |n: &str| {
                if nodes.contains(n) {
                    Ok(())
                } else {
                    Err((
                        field.clone(),
                        format!("no node is named `{n}` (nodes: {})", join(&nodes)),
                    ))
                }
            };
            let client = |c: &str| {
                if clients.contains(c) {
                    Ok(())
                } else {
                    Err((
                        field.clone(),
                        format!("no client is named `{c}` (clients: {})", join(&clients)),
                    ))
                }
            };
            let positive = |d: u64| {
                if d > 0 && d <= MAX_MS {
                    Ok(())
                } else {
                    Err((
                        format!("{field}.for_ms"),
                        format!("must be between 1 and {MAX_MS}"),
                    ))
                }
            };
            match &f.action {
                FaultAction::Crash(n) => node(n)?,
                FaultAction::Restart { node: n, .. } => node(n)?,
                FaultAction::Promote(n) => {
                    node(n)?;
                    if !is_replica(n) {
                        return fail(
                            field,
                            format!("`{n}` is not a replica of a replicated topology"),
                        );
                    }
                }
                FaultAction::PauseNode { node: n, for_ms } => {
                    node(n)?;
                    if let Some(d) = for_ms {
                        positive(*d)?;
                    }
                }
                FaultAction::ResumeNode(n) => node(n)?,
                FaultAction::PauseClient { client: c, for_ms } => {
                    client(c)?;
                    positive(*for_ms)?;
                }
                FaultAction::CrashClient(c) => client(c)?,
                FaultAction::ClockJump { by_ms, .. } if by_ms.unsigned_abs() > MAX_MS => {
                    return fail(
                        format!("{field}.by_ms"),
                        format!("must be within ±{MAX_MS} ms"),
                    );
                }
                FaultAction::ClockJump { target, .. } => {
                    if !nodes.contains(target) && !clients.contains(target) {
                        return fail(
                            format!("{field}.target"),
                            format!("no node or client is named `{target}`"),
                        );
                    }
                }
                FaultAction::Partition {
                    between,
                    and,
                    for_ms,
                    ..
                } => {
                    if between.is_empty() || and.is_empty() {
                        return fail(
                            field,
                            "both sides of a partition need at least one name".into(),
                        );
                    }
                    // Sets, so that checking is linear in the names given.
                    let mut sides = [BTreeSet::new(), BTreeSet::new()];
                    for (side, names) in [between, and].into_iter().enumerate() {
                        for n in names {
                            if !nodes.contains(n) && !clients.contains(n) && n != "resource" {
                                return fail(field, format!("no node or client is named `{n}`"));
                            }
                            if !sides[side].insert(n.as_str()) {
                                return fail(field, format!("`{n}` is named twice on one side"));
                            }
                        }
                    }
                    if let Some(n) = sides[0].intersection(&sides[1]).next() {
                        return fail(field, format!("`{n}` is on both sides"));
                    }
                    if let Some(d) = for_ms {
                        positive(*d)?;
                    }
                }
            }
        }
        let waits = self
            .faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((format!("faults[{i}].after"), f.after.as_ref()?, None)));
        let starts = self.clients.iter().enumerate().filter_map(|(i, c)| {
            Some((
                format!("clients[{i}].after"),
                c.after.as_ref()?,
                Some(&c.name),
            ))
        });
        for (field, after, own) in waits.chain(starts) {
            validate_after(&field, after, own, &nodes, &clients)?;
        }
        if let Some(space) = &self.fault_space {
            self.validate_space(space, &nodes, &clients)?;
        }
        if self.expect.is_empty() {
            return fail(
                "expect".into(),
                "name at least one property and its outcome".into(),
            );
        }
        Ok(())
    }

    fn validate_space(
        &self,
        space: &crate::space::FaultSpace,
        nodes: &BTreeSet<String>,
        clients: &BTreeSet<String>,
    ) -> Result<(), (String, String)> {
        let fail = |field: String, reason: String| Err((field, reason));
        if space.kinds.is_empty() {
            return fail(
                "fault_space.kinds".into(),
                "an empty fault space: name at least one fault kind".into(),
            );
        }
        if space.max_faults == 0 || space.max_faults > 20 {
            return fail(
                "fault_space.max_faults".into(),
                format!("must be between 1 and 20, got {}", space.max_faults),
            );
        }
        let [lo, hi] = space.window_ms;
        if lo > hi || hi > self.duration_ms {
            return fail(
                "fault_space.window_ms".into(),
                format!(
                    "needs 0 <= from <= to <= duration_ms ({}), got [{lo}, {hi}]",
                    self.duration_ms
                ),
            );
        }
        for (field, range) in [
            ("replication_lag_ms", space.replication_lag_ms),
            ("latency_ms", space.latency_ms),
        ] {
            if let Some([a, b]) = range {
                if !(0.0 <= a && a <= b && b <= MAX_MS as f64) {
                    return fail(
                        format!("fault_space.{field}"),
                        format!("needs 0 <= low <= high, got [{a}, {b}]"),
                    );
                }
            }
        }
        if space.replication_lag_ms.is_some()
            && !matches!(self.topology, Topology::Replicated { .. })
        {
            return fail(
                "fault_space.replication_lag_ms".into(),
                "needs a replicated topology".into(),
            );
        }
        let is_replica = |n: &str| n.starts_with("replica-") && nodes.contains(n);
        for (i, kind) in space.kinds.iter().enumerate() {
            let field = format!("fault_space.kinds[{i}].{}", kind.name());
            if kind.targets().is_empty() {
                return fail(field, "names no target".into());
            }
            let mut seen = BTreeSet::new();
            for t in kind.targets() {
                if !seen.insert(t.as_str()) {
                    return fail(field, format!("`{t}` is named twice"));
                }
                let known = match kind {
                    FaultKind::PauseClient { .. } | FaultKind::CrashClient { .. } => {
                        clients.contains(t)
                    }
                    FaultKind::ClockJump { .. } => nodes.contains(t) || clients.contains(t),
                    FaultKind::Partition { .. } => {
                        nodes.contains(t) || clients.contains(t) || t == "resource"
                    }
                    FaultKind::Promote { .. } => is_replica(t),
                    _ => nodes.contains(t),
                };
                if !known {
                    return fail(field, format!("`{t}` is not a valid target here"));
                }
            }
            let range_ok = match kind {
                FaultKind::PauseNode {
                    for_ms: Span::Range([a, b]),
                    ..
                }
                | FaultKind::PauseClient {
                    for_ms: Span::Range([a, b]),
                    ..
                }
                | FaultKind::Partition { for_ms: [a, b], .. } => 1 <= *a && a <= b && *b <= MAX_MS,
                FaultKind::PauseNode {
                    for_ms: Span::Dist(d),
                    ..
                }
                | FaultKind::PauseClient {
                    for_ms: Span::Dist(d),
                    ..
                } => {
                    d.check().or_else(|r| fail(format!("{field}.for_ms"), r))?;
                    true
                }
                FaultKind::ClockJump { by_ms: [a, b], .. } => {
                    a <= b && a.unsigned_abs() <= MAX_MS && b.unsigned_abs() <= MAX_MS
                }
                _ => true,
            };
            if !range_ok {
                return fail(
                    field,
                    "its range is empty or out of bounds (needs 1 <= low <= high)".into(),
                );
            }
            check_grid(kind).or_else(|r| fail(format!("{field}.grid_ms"), r))?;
            if matches!(kind, FaultKind::Partition { parties, .. } if parties.len() < 2) {
                return fail(field, "a partition needs at least two parties".into());
            }
        }
        Ok(())
    }

    /// Whether the scenario declares that `backend` can play it.
    pub fn supports(&self, backend: Backend) -> bool {
        self.backends.contains(&backend)
    }
}

/// Checks a fault kind's `grid_ms`: 1 to [`crate::space::MAX_GRID`] values, each within the
/// kind's range (for a distribution: 1 ms to the longest pause a scenario may state).
fn check_grid(kind: &FaultKind) -> Result<(), String> {
    let (len, out_of_range) = match kind {
        FaultKind::PauseNode {
            for_ms,
            grid_ms: Some(g),
            ..
        }
        | FaultKind::PauseClient {
            for_ms,
            grid_ms: Some(g),
            ..
        } => {
            let [lo, hi] = match for_ms {
                Span::Range(r) => *r,
                Span::Dist(_) => [1, MAX_MS],
            };
            (
                g.len(),
                g.iter()
                    .find(|v| !(lo..=hi).contains(*v))
                    .map(|v| format!("{v} is outside [{lo}, {hi}]")),
            )
        }
        FaultKind::Partition {
            for_ms: [lo, hi],
            grid_ms: Some(g),
            ..
        } => (
            g.len(),
            g.iter()
                .find(|v| !(lo..=hi).contains(v))
                .map(|v| format!("{v} is outside [{lo}, {hi}]")),
        ),
        FaultKind::ClockJump {
            by_ms: [lo, hi],
            grid_ms: Some(g),
            ..
        } => (
            g.len(),
            g.iter()
                .find(|v| !(lo..=hi).contains(v))
                .map(|v| format!("{v} is outside [{lo}, {hi}]")),
        ),
        _ => return Ok(()),
    };
    if len == 0 || len > crate::space::MAX_GRID {
        return Err(format!(
            "needs 1 to {} values, not {len}",
            crate::space::MAX_GRID
        ));
    }
    out_of_range.map_or(Ok(()), Err)
}

/// Checks a client's external program: a non-empty name or command, and nothing the
/// client protocol cannot carry out (a set-once workload, a crash placed by command count).
fn check_program(
    program: &crate::model::Program,
    c: &crate::model::ClientSpec,
) -> Result<(), String> {
    match program {
        crate::model::Program::Adapter(name) if name.trim().is_empty() => {
            return Err("an adapter's name must not be empty".into())
        }
        crate::model::Program::Command(argv)
            if argv.first().is_none_or(|p| p.trim().is_empty()) =>
        {
            return Err("a command must name a program first".into())
        }
        _ => {}
    }
    if c.workload != Workload::Lock {
        return Err("an external program runs the lock workload only".into());
    }
    if c.crash_after_commands.is_some() {
        return Err(
            "`crash_after_commands` counts locksim's own commands; for a program place a `crash_client` fault instead"
                .into(),
        );
    }
    Ok(())
}

/// Checks one `after`: its node or client exists, a promotion or a dropped replica names a
/// replica, a client does not wait for its own grant or its own command, a forwarded
/// command is named, and the times are in range.
fn validate_after(
    field: &str,
    after: &After,
    own: Option<&String>,
    nodes: &BTreeSet<String>,
    clients: &BTreeSet<String>,
) -> Result<(), (String, String)> {
    let c = &after.condition;
    let at = format!("{field}.{}", c.kind());
    let name = c.name().to_string();
    match c {
        Condition::Acquired(_) if !clients.contains(&name) => {
            return Err((
                at,
                format!("no client is named `{name}` (clients: {})", join(clients)),
            ))
        }
        Condition::Acquired(_) if own == Some(&name) => {
            return Err((at, "a client cannot wait for its own grant".into()))
        }
        Condition::Acquired(_) => {}
        Condition::Forwarded(_) if !clients.contains(&name) => {
            return Err((
                format!("{at}.client"),
                format!("no client is named `{name}` (clients: {})", join(clients)),
            ))
        }
        Condition::Forwarded(_) if own == Some(&name) => {
            return Err((
                format!("{at}.client"),
                "a client cannot wait for its own command (it sends nothing before it starts)"
                    .into(),
            ))
        }
        Condition::Forwarded(f) if f.command.trim().is_empty() => {
            return Err((
                format!("{at}.command"),
                "name the command to wait for (`GET`, `SET`, `EVALSHA`)".into(),
            ))
        }
        Condition::Forwarded(f) if f.command.contains(char::is_whitespace) => {
            return Err((
                format!("{at}.command"),
                format!("`{}` is not one command name (no spaces)", f.command),
            ))
        }
        Condition::Forwarded(f) if f.key.as_deref() == Some("") => {
            return Err((
                format!("{at}.key"),
                "must not be empty (leave it out for the scenario's resource.key)".into(),
            ))
        }
        Condition::Forwarded(f) => {
            if let Some(key) = &f.key {
                too_long(&format!("{at}.key"), key, MAX_KEY_BYTES)?;
            }
        }
        _ if !nodes.contains(&name) => {
            return Err((
                at,
                format!("no node is named `{name}` (nodes: {})", join(nodes)),
            ))
        }
        Condition::Promoted(_) | Condition::ReplicaDropped(_) if !name.starts_with("replica-") => {
            return Err((at, format!("`{name}` is not a replica")))
        }
        _ => {}
    }
    if after.timeout_ms == 0 || after.timeout_ms > MAX_MS {
        return Err((
            format!("{field}.timeout_ms"),
            format!("must be between 1 and {MAX_MS}"),
        ));
    }
    if after.delay_ms > MAX_MS {
        return Err((
            format!("{field}.delay_ms"),
            format!("must be at most {MAX_MS}"),
        ));
    }
    Ok(())
}

/// The longest scenario or client name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest `resource.key`, in bytes (every command and key change in a history carries it).
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest `description`, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// Refuses `value` when it is longer than `max` bytes.
fn too_long(field: &str, value: &str, max: usize) -> Result<(), (String, String)> {
    if value.len() > max {
        return Err((
            field.to_string(),
            format!("is {} bytes long; the limit is {max}", value.len()),
        ));
    }
    Ok(())
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}
