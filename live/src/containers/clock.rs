//! Server clocks in containers: the clock shim ([`crate::clock`]) that an image built by
//! `scripts/build-image.sh` carries (its label [`super::engine::CLOCK_SHIM_LABEL`] names the
//! path) is preloaded into every Redis node, and each node's control file lives in a per-run
//! directory on the host, bind-mounted read-only into the container at [`MOUNT`]. The shim maps
//! the file shared; the host rewrites it and the server sees the change at its next clock read
//! (a bind mount shares the host's page cache), as on processes.
//!
//! This needs an engine on this machine (a bind mount names a host path) and such an image:
//! otherwise the provider has no clocks and refuses `clocks.nodes` and node `clock_jump`s.
//! The control files outlive a node's container (a restart keeps its clock, as a machine's
//! would) and are removed with the provider.

use crate::clock::{ControlFile, ServerClock};
use crate::{FaultError, LiveError};
use scenario::ClockSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where the control files appear inside a container.
pub(super) const MOUNT: &str = "/locksim-clock";

/// The run's node clocks.
pub(super) struct Clocks {
    /// The host directory of the control files.
    dir: PathBuf,
    /// The shim's path inside the image.
    shim: String,
    /// Each node's control file, by node name.
    files: Mutex<BTreeMap<String, ControlFile>>,
}

impl Clocks {
    /// A control file for each of `nodes`, under a new host directory named after `run`, each
    /// clock starting as `specs` says (true time for a node it does not name).
    pub(super) fn create(
        run: &str,
        shim: String,
        nodes: &[String],
        specs: &BTreeMap<String, ClockSpec>,
    ) -> std::io::Result<Clocks> {
        let dir = std::env::temp_dir().join(format!("{run}-clocks"));
        std::fs::create_dir_all(&dir)?;
        let mut files = BTreeMap::new();
        for node in nodes {
            let spec = specs.get(node).cloned().unwrap_or_default();
            let clock = ServerClock::starting(spec.offset_ms, spec.rate);
            let file = ControlFile::create(&dir.join(file_name(node)), clock);
            match file {
                Ok(f) => {
                    files.insert(node.clone(), f);
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            }
        }
        Ok(Clocks {
            dir,
            shim,
            files: Mutex::new(files),
        })
    }

    /// The environment and bind mount that put `node`'s container on its clock (nothing for a
    /// name without a control file, such as a Sentinel).
    pub(super) fn container_setup(&self, node: &str) -> (Vec<String>, Vec<String>) {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if !files.contains_key(node) {
            return (Vec::new(), Vec::new());
        }
        let env = vec![
            format!("LD_PRELOAD={}", self.shim),
            format!("{}={MOUNT}/{}", crate::clock::CONTROL_ENV, file_name(node)),
        ];
        let binds = vec![format!("{}:{MOUNT}:ro", self.dir.display())];
        (env, binds)
    }

    /// Steps `node`'s clock by `by_ms` now; where it stands after.
    pub(super) fn jump(&self, node: &str, by_ms: i64) -> Result<ServerClock, LiveError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let file = files.get_mut(node).ok_or_else(|| {
            LiveError::fault(format!("clock jump on {node}"), FaultError::NoSuchNode)
        })?;
        let clock = file.clock().jumped(crate::clock::real_now_ns(), by_ms);
        file.set(clock)?;
        Ok(clock)
    }
}

impl Drop for Clocks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The control file's name for `node`.
fn file_name(node: &str) -> String {
    format!("{node}.clock")
}
