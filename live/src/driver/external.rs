//! External clients: a user's program in a scenario client's place, speaking the client
//! protocol (docs/client-protocol.md). It is the second kind of client host: where
//! [`super::client::LiveClient`] runs locksim's own client loop, this starts the program,
//! hands it the setup in its environment, stamps each line it prints on arrival and turns it
//! into the same history records, and serves it the protected resource. Faults reach it as
//! signals to its process group (SIGSTOP/SIGCONT, SIGKILL) and through its clock shim.

mod endpoint;
mod pipes;
mod program;
mod protocol;
mod resource;

use super::client::Start;
use super::record::Recorder;
use crate::clock::{ControlFile, ServerClock};
use crate::{LiveError, ProgramProblem, Provider};
use checker::{Effect, Event as H, Healed};
use endpoint::{host_port, Endpoint};
use rand::Rng;
use scenario::{Program, Scenario, Topology};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use workload::Resource;

pub(super) use pipes::Pipes;
pub(crate) use program::resolve;
pub use program::{adapter_exists, adapter_names, adapters_dir};

/// How long programs still running when the run's time is up get to finish their
/// iterations before they are killed and the run fails.
pub(super) const GRACE: Duration = Duration::from_secs(3);

/// The first thing that went wrong with any program, which stops the run.
#[derive(Default)]
pub(super) struct Failure {
    first: Mutex<Option<LiveError>>,
    /// Woken when `first` is set.
    pub(super) raised: Notify,
}

impl Failure {
    fn raise(&self, error: LiveError) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error);
            self.raised.notify_waiters();
            self.raised.notify_one();
        }
    }

    /// The failure, if one was raised.
    pub(super) fn take(&self) -> Option<LiveError> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether one was raised.
    pub(super) fn raised(&self) -> bool {
        self.first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// One external program as the driver and the fault schedule see it while it runs.
pub(super) struct ProgramHandle {
    client: String,
    described: String,
    /// The process group's leader while it runs.
    pid: Mutex<Option<i32>>,
    /// Becomes true when the program has exited (or never started).
    exited: watch::Sender<bool>,
    /// A `crash_client` fault killed it: its exit is the fault's, not a failure.
    killed_by_fault: AtomicBool,
    /// The run is over: whatever the program does now is not judged.
    stopping: AtomicBool,
    /// What it printed last, for messages.
    last_line: Mutex<Option<String>>,
    /// The control file of its clock shim.
    clock: Mutex<Option<ControlFile>>,
    failure: Arc<Failure>,
}

impl ProgramHandle {
    fn fail(&self, problem: ProgramProblem) {
        if !self.stopping.load(Ordering::SeqCst) {
            self.failure.raise(LiveError::Program {
                client: self.client.clone(),
                program: self.described.clone(),
                problem,
            });
        }
    }

    fn pid(&self) -> Option<i32> {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> Result<i32, LiveError> {
        self.pid()
            .filter(|_| !*self.exited.borrow())
            .ok_or_else(|| LiveError::fault(&self.client, crate::FaultError::ProgramNotRunning))
    }

    /// Kills the program's whole group, if it runs; nothing it does from now on is judged.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(pid) = self.pid().filter(|_| !*self.exited.borrow()) {
            let _ = program::signal_group(pid, libc::SIGKILL);
        }
    }

    /// Whether it is still running and not held stopped by a pause.
    fn busy(&self) -> bool {
        match self.pid() {
            Some(pid) => !*self.exited.borrow() && crate::proc_state::state(pid) != Some('T'),
            None => false,
        }
    }

    /// After the run's time: waits up to [`GRACE`] for the program to finish; one still busy
    /// then is a failure (it is killed by [`ProgramHandle::stop`] after).
    pub(super) async fn finish(&self, duration_ms: u64) {
        let mut exited = self.exited.subscribe();
        let deadline = Instant::now() + GRACE;
        while self.busy() && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(20), exited.wait_for(|e| *e)).await;
        }
        if self.busy() {
            let said = match self
                .last_line
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                Some(l) => format!("its last line was {l:?}"),
                None => "it printed nothing".into(),
            };
            self.fail(ProgramProblem::StillRunning {
                duration_ms,
                grace_ms: GRACE.as_millis() as u64,
                said,
                history: Vec::new(), // the driver fills it in
            });
        }
    }

    /// Carries out a fault that targets this client: a pause, a crash or a clock jump.
    pub(super) async fn inject(
        self: &Arc<Self>,
        action: &scenario::FaultAction,
        rec: &Arc<Recorder>,
        end: Instant,
        within: Duration,
    ) -> Result<(), LiveError> {
        match action {
            scenario::FaultAction::PauseClient { for_ms, .. } => {
                self.pause(*for_ms, rec, end, within).await
            }
            scenario::FaultAction::CrashClient(_) => self.crash(rec, within).await,
            scenario::FaultAction::ClockJump { target, by_ms } => {
                let offset_ms = self.jump_clock(*by_ms)?;
                rec.observe(Effect::ClockSet {
                    target: target.clone(),
                    offset_ms,
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `pause_client`: SIGSTOP to the group, confirmed by the leader's state; SIGCONT after
    /// `for_ms` (unless the run is over by then).
    async fn pause(
        self: &Arc<Self>,
        for_ms: u64,
        rec: &Arc<Recorder>,
        end: Instant,
        within: Duration,
    ) -> Result<(), LiveError> {
        let pid = self.running()?;
        program::signal_group(pid, libc::SIGSTOP)?;
        crate::proc_state::wait_stopped(pid, within)
            .await
            .map_err(|state| {
                LiveError::fault(
                    format!("pause {}", self.client),
                    crate::FaultError::NotStopped { within, state },
                )
            })?;
        rec.observe(Effect::ClientPaused {
            client: self.client.clone(),
        });
        let (me, rec) = (self.clone(), rec.clone());
        tokio::spawn(async move {
            let resume = Instant::now() + Duration::from_millis(for_ms);
            tokio::time::sleep_until(resume.min(end).into()).await;
            if resume > end {
                return; // the run is over: the program is killed stopped
            }
            rec.record(H::Heal(Healed::ResumeClient {
                client: me.client.clone(),
            }));
            if program::signal_group(pid, libc::SIGCONT).is_ok() {
                rec.observe(Effect::ClientResumed {
                    client: me.client.clone(),
                });
            }
        });
        Ok(())
    }

    /// `crash_client`: SIGKILL to the group, confirmed by the program's exit.
    async fn crash(&self, rec: &Recorder, within: Duration) -> Result<(), LiveError> {
        let pid = self.running()?;
        self.killed_by_fault.store(true, Ordering::SeqCst);
        program::signal_group(pid, libc::SIGKILL)?;
        let mut exited = self.exited.subscribe();
        tokio::time::timeout(within, exited.wait_for(|e| *e))
            .await
            .map_err(|_| {
                LiveError::fault(
                    format!("crash {}", self.client),
                    crate::FaultError::NoAnswer(within),
                )
            })?
            .map_err(|_| LiveError::fault(&self.client, crate::FaultError::ProgramNotRunning))?;
        rec.record(H::ClientCrashed {
            client: self.client.clone().into(),
        });
        Ok(())
    }

    /// A client `clock_jump`: steps the program's wall clock by `by_ms` through its shim;
    /// the clock's offset now.
    fn jump_clock(&self, by_ms: i64) -> Result<f64, LiveError> {
        let mut file = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        let file = file
            .as_mut()
            .ok_or_else(|| LiveError::fault(&self.client, crate::FaultError::ProgramNotRunning))?;
        let now = crate::clock::real_now_ns();
        file.set(file.clock().jumped(now, by_ms))?;
        Ok(file.clock().offset_ms_at(now))
    }
}

/// Everything one external client needs to run, made before the run starts (so what cannot
/// start is refused first).
pub(super) struct ExternalClient {
    handle: Arc<ProgramHandle>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    iterations: u32,
    dir: PathBuf,
    clock: ServerClock,
    rec: Arc<Recorder>,
    pipes: Arc<pipes::Pipes>,
    /// The resource port's task and the endpoint live as long as the client.
    _serving: tokio::task::JoinHandle<()>,
    _endpoint: Option<Endpoint>,
}

/// What the driver keeps of the external clients: their handles, killed when dropped (on
/// success, failure and panic).
#[derive(Default)]
pub(super) struct Programs {
    /// By scenario client index; `None` for locksim's own clients.
    pub(super) handles: Vec<Option<Arc<ProgramHandle>>>,
    /// The run's folder for stderr logs, clock files and the shim.
    pub(super) dir: Option<PathBuf>,
}

impl Drop for Programs {
    fn drop(&mut self) {
        for h in self.handles.iter().flatten() {
            h.stop();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The folder of one run's program files.
pub(super) fn run_dir() -> std::io::Result<PathBuf> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "locksim-programs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// What [`ExternalClient::prepare`] needs from the run.
pub(super) struct Setup<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) index: usize,
    pub(super) seed: u64,
    pub(super) program: &'a Program,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) rec: Arc<Recorder>,
    pub(super) resource: Arc<Mutex<Resource>>,
    pub(super) failure: Arc<Failure>,
    /// Every program's stdout in this run, drained together.
    pub(super) pipes: Arc<Pipes>,
    pub(super) dir: PathBuf,
    pub(super) shim: PathBuf,
}

impl ExternalClient {
    /// Finds the program, opens its resource port (and endpoint), and writes its
    /// environment; nothing is started yet.
    pub(super) async fn prepare(s: Setup<'_>) -> Result<ExternalClient, LiveError> {
        let spec = &s.scenario.clients[s.index];
        let described = s.program.describe();
        let problem = |problem| LiveError::Program {
            client: spec.name.clone(),
            program: described.clone(),
            problem,
        };
        let argv = program::resolve(s.program).map_err(|e| problem(ProgramProblem::NotFound(e)))?;
        let handle = Arc::new(ProgramHandle {
            client: spec.name.clone(),
            described: described.clone(),
            pid: Mutex::new(None),
            exited: watch::channel(false).0,
            killed_by_fault: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            last_line: Mutex::new(None),
            clock: Mutex::new(None),
            failure: s.failure.clone(),
        });
        let port = resource::ResourcePort::open().await?;
        let resource_addr = port.addr.clone();
        let bad = {
            let h = handle.clone();
            move |why: String| h.fail(ProgramProblem::Resource(why))
        };
        let serving = tokio::spawn(port.serve(
            spec.name.clone(),
            s.rec.clone(),
            s.resource,
            s.pipes.clone(),
            bad,
        ));
        let urls: Vec<String> = s
            .provider
            .client_nodes(&spec.name)?
            .into_iter()
            .map(|(_, u)| u)
            .collect();
        let (nodes, endpoint) = match &s.scenario.topology {
            Topology::Replicated { .. } => {
                let links = urls.iter().map(|u| host_port(u).to_string()).collect();
                let e = Endpoint::start(s.provider.clone(), links).await?;
                (e.url.clone(), Some(e))
            }
            _ => (urls.join(","), None),
        };
        let mut rng = workload::streams::client(s.seed, s.index);
        let mut draw = |d: &scenario::Dist| {
            (0..spec.iterations)
                .map(|_| format!("{}", d.quantile_ms(rng.gen::<f64>()).round() as u64))
                .collect::<Vec<_>>()
                .join(",")
        };
        let works = draw(&spec.work_ms);
        let thinks = draw(&spec.think_ms);
        let recipe = &s.scenario.recipe;
        let clock_spec = s
            .scenario
            .clocks
            .clients
            .get(&spec.name)
            .cloned()
            .unwrap_or_default();
        let clock_file = s.dir.join(format!("{}.clock", spec.name));
        let env = vec![
            ("LOCKSIM_CLIENT", spec.name.clone()),
            ("LOCKSIM_NODES", nodes),
            ("LOCKSIM_KEY", s.scenario.resource.key.clone()),
            (
                "LOCKSIM_TTL_MS",
                recipe.ttl_ms.map(|t| t.to_string()).unwrap_or_default(),
            ),
            ("LOCKSIM_WORK_MS", works),
            ("LOCKSIM_THINK_MS", thinks),
            ("LOCKSIM_ITERATIONS", spec.iterations.to_string()),
            (
                "LOCKSIM_ACQUIRE_TIMEOUT_MS",
                acquire_timeout_ms(&recipe.retry, s.scenario.duration_ms).to_string(),
            ),
            ("LOCKSIM_RETRY_DELAY_MS", recipe.retry.base_ms.to_string()),
            ("LOCKSIM_WATCHDOG", u8::from(recipe.watchdog).to_string()),
            ("LOCKSIM_RESOURCE", resource_addr),
            ("LOCKSIM_SEED", s.seed.to_string()),
            ("PYTHONUNBUFFERED", "1".into()),
            ("LD_PRELOAD", s.shim.to_string_lossy().into_owned()),
            (
                crate::clock::CONTROL_ENV,
                clock_file.to_string_lossy().into_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(ExternalClient {
            handle,
            argv,
            env,
            iterations: spec.iterations,
            dir: s.dir,
            clock: ServerClock::starting(clock_spec.offset_ms, clock_spec.rate),
            rec: s.rec,
            pipes: s.pipes,
            _serving: serving,
            _endpoint: endpoint,
        })
    }

    /// The handle the driver and the faults use.
    pub(super) fn handle(&self) -> Arc<ProgramHandle> {
        self.handle.clone()
    }

    /// Waits for the client's start, runs the program to its end, and judges how it ended.
    pub(super) async fn run(self, start: Start) {
        let Some(gate) = start.wait(&self.rec).await else {
            let _ = self.handle.exited.send_replace(true);
            return;
        };
        let h = self.handle.clone();
        let clock_path = self.dir.join(format!("{}.clock", h.client));
        match ControlFile::create(&clock_path, self.clock) {
            Ok(f) => *h.clock.lock().unwrap_or_else(|e| e.into_inner()) = Some(f),
            Err(e) => {
                h.fail(ProgramProblem::Spawn(e));
                let _ = h.exited.send_replace(true);
                return;
            }
        }
        let stderr_log = self.dir.join(format!("{}.stderr", h.client));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (argv, env, rec, me) = (self.argv, self.env, self.rec.clone(), h.clone());
        let pipes = self.pipes.clone();
        let log = stderr_log.clone();
        // One thread per program: it starts the child (which dies with it), reads its stdout
        // and stamps each line the moment it is read, whatever the async workers are doing.
        let spawned = std::thread::Builder::new()
            .name(format!("locksim-program-{}", h.client))
            .spawn(move || {
                let _ = done_tx.send(read_program(&argv, &env, &log, &rec, &pipes, &me));
            });
        // A forwarded command's reply is held until this client has started.
        drop(gate);
        if let Err(e) = spawned {
            h.fail(ProgramProblem::Spawn(e));
            let _ = h.exited.send_replace(true);
            return;
        }
        let ended = done_rx.await;
        let _ = h.exited.send_replace(true);
        let Ok(Some((status, acquires))) = ended else {
            return; // it never started (the failure is raised) or broke the protocol
        };
        if h.killed_by_fault.load(Ordering::SeqCst) {
            return;
        }
        let stderr = match program::tail(&stderr_log, 5) {
            t if t.is_empty() => String::new(),
            t => format!("; stderr: {t}"),
        };
        if !status.success() {
            h.fail(ProgramProblem::Failed { status, stderr });
        } else if acquires < self.iterations {
            h.fail(ProgramProblem::ExitedEarly {
                acquires,
                iterations: self.iterations,
                stderr,
            });
        }
    }
}

/// The program's life on its own thread: starts it, has its lines recorded (by the drains of
/// [`pipes::Pipes`]), waits for it. Its exit status and acquisitions, or `None` when it did
/// not start or broke the protocol (the failure is raised, the program killed).
fn read_program(
    argv: &[String],
    env: &[(String, String)],
    stderr_log: &std::path::Path,
    rec: &Recorder,
    pipes: &pipes::Pipes,
    h: &Arc<ProgramHandle>,
) -> Option<(std::process::ExitStatus, u32)> {
    let mut child = match program::spawn(argv, env, stderr_log) {
        Ok(c) => c,
        Err(e) => {
            h.fail(ProgramProblem::Spawn(e));
            return None;
        }
    };
    let pid = child.id() as i32;
    *h.pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
    let added = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout pipe"))
        .and_then(|out| pipes.add(out, h.clone()));
    let index = match added {
        Ok(i) => i,
        Err(e) => {
            h.fail(ProgramProblem::Spawn(e));
            let _ = program::signal_group(pid, libc::SIGKILL);
            let _ = child.wait();
            return None;
        }
    };
    let closed = loop {
        pipes.wait_readable(index, 100);
        pipes.drain(rec);
        if let Some(c) = pipes.closed(index) {
            break c;
        }
    };
    let status = child.wait().ok();
    // Whatever it left in its group dies with it.
    let _ = program::signal_group(pid, libc::SIGKILL);
    if closed.broke {
        return None;
    }
    let ours = h.killed_by_fault.load(Ordering::SeqCst) || h.stopping.load(Ordering::SeqCst);
    if closed.holding && !ours {
        // Exited inside its critical section: the section ends here.
        rec.record(H::ClientCrashed {
            client: h.client.clone().into(),
        });
    }
    status.map(|s| (s, closed.acquires))
}

/// How long one acquire may keep retrying under `retry`: the delays between its attempts
/// without jitter, or the whole run when it retries forever.
fn acquire_timeout_ms(retry: &lock_core::RetryPolicy, duration_ms: u64) -> u64 {
    match retry.max_attempts {
        None => duration_ms,
        Some(max) => (1..max.max(1))
            .map(|a| {
                let exp = a.saturating_sub(1).min(30);
                retry.base_ms.saturating_mul(1u64 << exp).min(retry.cap_ms)
            })
            .sum::<u64>()
            .max(retry.base_ms),
    }
}
