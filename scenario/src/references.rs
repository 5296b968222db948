//! A scenario's references to data files: reading them when it loads, and rewriting them
//! when it is written somewhere else.

use crate::error::ScenarioError;
use crate::model::{Dist, Scenario};
use crate::space::{FaultKind, Span};
use std::path::Path;

impl Scenario {
    /// Every distribution in the scenario, with its field path.
    fn dists_mut(&mut self) -> Vec<(String, &mut Dist)> {
        let mut out = vec![
            ("network.latency".to_string(), &mut self.network.latency),
            (
                "network.resource_latency".to_string(),
                &mut self.network.resource_latency,
            ),
        ];
        for (i, c) in self.clients.iter_mut().enumerate() {
            out.push((format!("clients[{i}].work_ms"), &mut c.work_ms));
            out.push((format!("clients[{i}].think_ms"), &mut c.think_ms));
        }
        if let Some(space) = &mut self.fault_space {
            for (i, kind) in space.kinds.iter_mut().enumerate() {
                let name = kind.name();
                if let FaultKind::PauseNode {
                    for_ms: Span::Dist(d),
                    ..
                }
                | FaultKind::PauseClient {
                    for_ms: Span::Dist(d),
                    ..
                } = kind
                {
                    out.push((format!("fault_space.kinds[{i}].{name}.for_ms"), d));
                }
            }
        }
        out
    }

    /// Reads every data file the scenario names, relative to `origin`'s directory; the
    /// first that cannot be used is the error (naming `origin`, the field, the data file,
    /// its line and the reason).
    pub(crate) fn load_data(&mut self, origin: &Path) -> Result<(), ScenarioError> {
        let dir = origin.parent().unwrap_or(Path::new(""));
        for (field, d) in self.dists_mut() {
            let Dist::Empirical(e) = d else { continue };
            let key = e.file().map(|(_, key)| key).unwrap_or_default();
            e.load(dir).map_err(|data| ScenarioError {
                file: origin.to_path_buf(),
                field: checker::quote::clip(&format!("{field}.{key}")),
                line: None,
                reason: checker::quote::clip(&data.to_string()),
                data: Some(Box::new(data)),
            })?;
        }
        Ok(())
    }

    /// The data files the scenario read when it loaded (their resolved paths), in field
    /// order: with the scenario file itself, everything a run of it depends on.
    pub fn data_files(&self) -> Vec<std::path::PathBuf> {
        let mut s = self.clone();
        s.dists_mut()
            .into_iter()
            .filter_map(|(_, d)| match d {
                Dist::Empirical(e) => e.resolved().map(Path::to_path_buf),
                _ => None,
            })
            .collect()
    }

    /// The scenario as it must be written to `file` to load again from there: every data
    /// file reference rewritten relative to `file`'s directory (absolute when the two share
    /// no directory below the root). The data are the same; only the references change.
    pub fn relocated(&self, file: &Path) -> Scenario {
        let mut s = self.clone();
        let dir = file.parent().unwrap_or(Path::new(""));
        for (_, d) in s.dists_mut() {
            if let Dist::Empirical(e) = d {
                e.rebase(dir);
            }
        }
        s
    }
}
