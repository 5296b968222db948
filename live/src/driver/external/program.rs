//! Starting an external client program and acting on it: where a shipped adapter lives, the
//! program's environment, its process group, and the signals that pause and kill it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The folder of shipped adapters (`adapters/bin`): `LOCKSIM_ADAPTERS` when set, else
/// `adapters/bin` under the working directory, else the one in locksim's own source tree.
pub fn adapters_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOCKSIM_ADAPTERS") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from("adapters/bin");
    if here.is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters/bin")
}

/// Whether a shipped adapter is called `name`.
pub fn adapter_exists(name: &str) -> bool {
    !name.contains('/') && adapters_dir().join(name).is_file()
}

/// The names of the shipped adapters, sorted.
pub fn adapter_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(adapters_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The command line `program` stands for, checked to exist: an adapter's file, or the
/// command's first word found as a path or on `PATH`. Why not, for the error.
pub(crate) fn resolve(program: &scenario::Program) -> Result<Vec<String>, String> {
    match program {
        scenario::Program::Adapter(name) => {
            let path = adapters_dir().join(name);
            if name.contains('/') || !path.is_file() {
                return Err(format!(
                    "no shipped adapter is called `{name}` (in {}); the adapters are: {}",
                    adapters_dir().display(),
                    adapter_names().join(", ")
                ));
            }
            Ok(vec![path.to_string_lossy().into_owned()])
        }
        scenario::Program::Command(argv) => {
            let first = argv.first().map(String::as_str).unwrap_or_default();
            if find(first).is_none() {
                return Err(format!(
                    "`{first}` is not a file and is not on PATH, so the program cannot start"
                ));
            }
            Ok(argv.clone())
        }
    }
}

/// Where `program` would be run from: the path itself when it has a slash, else the first
/// match on `PATH`.
fn find(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Starts `argv` with `env` added, stdout piped, stderr to `stderr_log`, stdin closed, in a
/// process group of its own (so a pause or a kill reaches every process it starts), and
/// dying with the thread that calls this (`PR_SET_PDEATHSIG`).
pub(crate) fn spawn(
    argv: &[String],
    env: &[(String, String)],
    stderr_log: &Path,
) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let (first, rest) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut cmd = Command::new(first);
    cmd.args(rest)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_log)?)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `sig` to every process of the group `pid` leads.
pub(crate) fn signal_group(pid: i32, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) on the process group of a child we started and have not reaped.
    if unsafe { libc::kill(-pid, sig) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The last `lines` lines of the file at `path`, joined by ` | ` (empty when unreadable).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let last: Vec<&str> = text.lines().rev().take(lines).collect();
    last.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
