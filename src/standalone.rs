//! `lyncdr run --manifests DIR`: the operator without Kubernetes, for Lync shops that keep their
//! desired state in a directory (e.g. a git checkout). Each round reads the manifests again,
//! observes each deployment, plans, applies the same policy as the operator (the same
//! annotations: pause, approve by plan hash, resolve a journal entry), executes through the same
//! engine, and writes the status of every resource to a file. The journal and the operator
//! memory live together in a state directory (`<name>.journal.json`), so a restart resumes or
//! stalls exactly as the operator does; a lock file per deployment (`<name>.lock`) keeps a second
//! process from acting on the same deployment.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::manifests::{self, Manifest};
use crate::api::{
    ConferenceContentRestoreStatus, Connection, LyncDeployment, LyncDeploymentStatus, PoolPairStatus, RESOLVE_ANNOTATION, StepStatus,
    Transport, UserPlacementStatus, resolve_target,
};
use crate::connection::{ConnectError, Connector, DefaultConnector, SecretsDir};
use crate::desired;
use crate::engine::executor::{Event, RunOutcome};
use crate::engine::journal::{FileJournal, Journal, resolve_by_person};
use crate::engine::{DesiredSource, Engine, Settings, Unready};
use crate::model::{Span, Stamp};
use crate::planner::Plan;
use crate::status::{self, Gate, Phase, Round};

#[derive(Debug, Clone)]
pub struct Options {
    pub manifests: PathBuf,
    pub state_dir: PathBuf,
    /// Where to write the status of every resource (JSON); default `<state_dir>/status.json`.
    pub status_file: Option<PathBuf>,
    /// One round, then exit.
    pub once: bool,
    /// Overrides the deployments' connection: `lyncdr sim serve` at this URL.
    pub simulator: Option<String>,
    /// Where a WinRM connection's `credentialsSecret` is read from: the files of a Secret as
    /// Kubernetes mounts it, `<dir>/<namespace>/<name>/` or `<dir>/<name>/`, with `username`
    /// and `password` ([`SecretsDir`]).
    pub secrets_dir: Option<PathBuf>,
}

/// Everything the standalone front end knows, as written to the status file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFile {
    pub deployments: BTreeMap<String, DeploymentReport>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentReport {
    pub status: LyncDeploymentStatus,
    pub pool_pairs: BTreeMap<String, PoolPairStatus>,
    pub user_placements: BTreeMap<String, UserPlacementStatus>,
    pub conference_content_restores: BTreeMap<String, ConferenceContentRestoreStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error("{0}")]
    Manifests(#[from] manifests::ManifestError),
    #[error("{0}")]
    Desired(#[from] desired::DesiredError),
    #[error("{option} {path}: {message}")]
    State { option: &'static str, path: String, message: String },
}

fn state_err(option: &'static str, path: &Path, e: impl std::fmt::Display) -> StandaloneError {
    StandaloneError::State { option, path: path.display().to_string(), message: e.to_string() }
}

/// The file-name stem of a deployment's state: its name, prefixed by its namespace when it has
/// one. Names and namespaces are DNS-1123 (checked when the manifests are read), so the stem
/// cannot leave the state directory and `_` cannot occur in either.
pub fn state_key(d: &desired::Desired) -> String {
    if d.namespace.is_empty() { d.deployment.clone() } else { format!("{}_{}", d.namespace, d.deployment) }
}

/// The journal file of a deployment in a state directory.
pub fn journal_path(state_dir: &Path, key: &str) -> PathBuf {
    state_dir.join(format!("{key}.journal.json"))
}

/// Checks that a directory exists (creating it) and takes files, before anything is executed.
fn writable_dir(option: &'static str, dir: &Path) -> Result<(), StandaloneError> {
    std::fs::create_dir_all(dir).map_err(|e| state_err(option, dir, format!("cannot create the directory: {e}")))?;
    let probe = dir.join(format!(".lyncdr-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| state_err(option, dir, format!("cannot write there: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes a file atomically (temporary file, sync, rename).
fn write_atomic(option: &'static str, path: &Path, bytes: &[u8]) -> Result<(), StandaloneError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |e: std::io::Error| state_err(option, path, format!("cannot write: {e}"));
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Runs rounds until interrupted (or once). Returns the last status file.
pub async fn run(opts: &Options) -> Result<StatusFile, StandaloneError> {
    writable_dir("--state-dir", &opts.state_dir)?;
    let status_path = opts.status_file.clone().unwrap_or_else(|| opts.state_dir.join("status.json"));
    let status_dir = status_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    writable_dir("--status-file", status_dir)?;
    let mut report: StatusFile = match std::fs::read(&status_path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            eprintln!("warning: {} is not a lyncdr status file ({e}); starting a new one", status_path.display());
            StatusFile::default()
        }),
        Err(_) => StatusFile::default(),
    };
    if let Some(dir) = &opts.secrets_dir
        && !dir.is_dir()
    {
        return Err(state_err(
            "--secrets-dir",
            dir,
            "is not a directory; it holds <name>/username and <name>/password of each credentialsSecret",
        ));
    }
    // One connection per deployment, kept across rounds (warm WinRM sessions, the observer's
    // memo) and made again when what it was made from changes (a rotated password included).
    let connector = match &opts.secrets_dir {
        Some(root) => DefaultConnector::new(std::sync::Arc::new(SecretsDir { root: root.clone() })),
        None => DefaultConnector::default(),
    };
    // One writer per deployment: held for the life of the process.
    let mut leases: BTreeMap<String, File> = BTreeMap::new();
    loop {
        let ms = manifests::load(&opts.manifests)?;
        let all = desired::compile(&ms)?;
        let mut poll = Span::mins(1);
        for d in &all {
            let Some(dep) = ms.iter().find_map(|m| match m {
                Manifest::Deployment(x) if x.metadata.name.as_deref() == Some(&d.deployment) && m.namespace() == d.namespace => {
                    Some(x.as_ref())
                }
                _ => None,
            }) else {
                continue;
            };
            let key = state_key(d);
            if !leases.contains_key(&key) {
                leases.insert(key.clone(), lease(&opts.state_dir, &key)?);
            }
            poll = poll.min(dep.spec.policy.poll_interval.max(Span::secs(5)));
            let prev = report.deployments.get(&key).cloned().unwrap_or_default();
            let next = round(opts, &connector, &ms, dep, d, &key, prev).await;
            print_summary(&key, &next);
            report.deployments.insert(key, next);
        }
        let bytes = serde_json::to_vec_pretty(&report).map_err(|e| state_err("--status-file", &status_path, e))?;
        write_atomic("--status-file", &status_path, &bytes)?;
        if opts.once {
            return Ok(report);
        }
        tokio::select! {
            _ = tokio::time::sleep(poll.to_std()) => {}
            _ = tokio::signal::ctrl_c() => return Ok(report),
        }
    }
}

/// Takes the deployment's writer lock, or says which file another process holds.
fn lease(state_dir: &Path, key: &str) -> Result<File, StandaloneError> {
    let path = state_dir.join(format!("{key}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| state_err("--state-dir", &path, format!("cannot open the lock file: {e}")))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(state_err(
            "--state-dir",
            &path,
            "another lyncdr process acts on this deployment (it holds this lock); one writer per deployment",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(state_err("--state-dir", &path, format!("cannot lock: {e}"))),
    }
}

fn print_summary(name: &str, r: &DeploymentReport) {
    let ready = r.status.conditions.iter().find(|c| c.type_ == "Ready");
    println!(
        "LyncDeployment/{name}: Ready={} ({}) plan {}",
        ready.map(|c| c.status.as_str()).unwrap_or("Unknown"),
        ready.map(|c| c.message.as_str()).unwrap_or(""),
        r.status.plan.as_ref().map(|p| format!("{} [{}]", p.hash, p.progress)).unwrap_or_else(|| "none".into())
    );
}

/// What one round found and did.
struct RoundOutcome {
    phase: Phase,
    observed: Option<crate::model::Observed>,
    plan: Option<crate::planner::Plan>,
    history: Option<crate::model::History>,
    journal: Option<Vec<crate::api::JournalStatus>>,
}

impl RoundOutcome {
    fn only(phase: Phase) -> RoundOutcome {
        RoundOutcome { phase, observed: None, plan: None, history: None, journal: None }
    }
}

async fn round(
    opts: &Options,
    connector: &DefaultConnector,
    ms: &[Manifest],
    dep: &LyncDeployment,
    d: &desired::Desired,
    key: &str,
    prev: DeploymentReport,
) -> DeploymentReport {
    let generation = generation_of(dep);
    let ann = dep.metadata.annotations.clone().unwrap_or_default();
    let progress = Progress::default();
    let sink = |e: Event| progress.record(key, &e);
    let mut handled_resolve = prev.status.last_handled_resolve.clone();
    let outcome = match FileJournal::open(journal_path(&opts.state_dir, key), Some(&opts.state_dir.join(format!("{key}.history.json")))) {
        // A journal or memory that cannot be read stalls: nothing is dropped silently.
        Err(e) => RoundOutcome::only(Phase::stalled(e.to_string())),
        Ok(journal) => {
            if let Some(v) = ann.get(RESOLVE_ANNOTATION).filter(|v| handled_resolve.as_ref() != Some(*v)) {
                match resolve_by_person(&journal, resolve_target(v), "annotation lyncdr.io/resolve", Stamp(0)).await {
                    Ok(found) => {
                        if found {
                            println!("LyncDeployment/{key}: journal entry {} resolved by annotation", resolve_target(v));
                        }
                        handled_resolve = Some(v.clone());
                    }
                    Err(e) => eprintln!("LyncDeployment/{key}: cannot resolve {}: {e}", resolve_target(v)),
                }
            }
            let mut out = act(opts, connector, dep, d, key, &journal, generation, &prev, &progress, &sink).await;
            // The latest entries, pending ones first to see, as the operator shows them in status.
            if let Ok(entries) = journal.entries().await {
                let skip = entries.len().saturating_sub(20);
                out.journal = Some(status::journal_status(&entries[skip..]));
            }
            out
        }
    };
    let drift = outcome.plan.as_ref().is_some_and(|p| !p.is_empty() && prev.status.applied_generation == Some(generation));
    let progress = progress.steps();
    let r = Round {
        desired: d,
        observed: outcome.observed.as_ref(),
        plan: outcome.plan.as_ref(),
        phase: outcome.phase.clone(),
        generation,
        drift,
        progress: &progress,
        now: Time(Timestamp::now()),
    };
    let mut out = DeploymentReport { status: status::deployment_status(Some(&prev.status), &r), ..Default::default() };
    if outcome.plan.as_ref().is_some_and(|p| p.is_empty() && p.blockers.is_empty()) && !matches!(outcome.phase, Phase::Stalled { .. }) {
        out.status.applied_generation = Some(generation);
    }
    if let Some(h) = &outcome.history {
        out.status.history = serde_json::to_value(h).ok();
    }
    if let Some(j) = outcome.journal {
        out.status.journal = j;
    }
    out.status.last_handled_resolve = handled_resolve;
    for m in ms.iter().filter(|m| m.namespace() == d.namespace) {
        match m {
            Manifest::PoolPair(p) if p.spec.deployment == d.deployment => {
                if let Some(pd) = d.pairs.iter().find(|x| Some(&x.name) == p.metadata.name.as_ref()) {
                    let n = pd.name.clone();
                    out.pool_pairs
                        .insert(n.clone(), status::pair_status(prev.pool_pairs.get(&n), &r, pd, p.metadata.generation.unwrap_or(0)));
                }
            }
            Manifest::UserPlacement(p) if p.spec.deployment == d.deployment => {
                if let Some(pd) = d.placements.iter().find(|x| Some(&x.name) == p.metadata.name.as_ref()) {
                    let n = pd.name.clone();
                    out.user_placements.insert(
                        n.clone(),
                        status::placement_status(prev.user_placements.get(&n), &r, pd, p.metadata.generation.unwrap_or(0)),
                    );
                }
            }
            Manifest::ContentRestore(p) if p.spec.deployment == d.deployment => {
                if let Some(pd) = d.restores.iter().find(|x| Some(&x.name) == p.metadata.name.as_ref()) {
                    let n = pd.name.clone();
                    out.conference_content_restores.insert(
                        n.clone(),
                        status::restore_status(prev.conference_content_restores.get(&n), &r, pd, p.metadata.generation.unwrap_or(0)),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// Connects, settles the journal, observes, plans, and executes what policy allows, until the
/// deployment converges, blocks, waits or stalls.
#[allow(clippy::too_many_arguments)]
async fn act(
    opts: &Options,
    connector: &DefaultConnector,
    dep: &LyncDeployment,
    d: &desired::Desired,
    key: &str,
    journal: &FileJournal,
    generation: i64,
    prev: &DeploymentReport,
    progress: &Progress,
    sink: &(dyn Fn(Event) + Send + Sync),
) -> RoundOutcome {
    let conn = match (&opts.simulator, &dep.spec.connection) {
        (Some(u), _) => Connection { transport: Transport::Simulator, simulator_url: Some(u.clone()), ..Connection::default() },
        (None, Some(c)) => c.clone(),
        (None, None) => {
            return RoundOutcome::only(Phase::stalled(
                "spec.connection: required; set transport: Simulator and simulatorUrl (or pass --simulator), or transport: WinRM with endpoints and credentialsSecret (and --secrets-dir)",
            ));
        }
    };
    let live = &ManifestSource { manifests: opts.manifests.clone(), key: key.to_string(), applied: prev.status.applied_generation };
    // The connector finds the Secret's namespace in its key; its errors name the field, and
    // this front end adds where else the value can come from.
    let lync = match connector.connect(&format!("{}/{}", d.namespace, d.deployment), &conn).await {
        Ok(l) => l,
        Err(ConnectError::Backend(e)) => return RoundOutcome::only(Phase::Unobservable(e.to_string())),
        Err(e @ ConnectError::NoSimulatorUrl) => return RoundOutcome::only(Phase::stalled(format!("{e} (or pass --simulator)"))),
        Err(ConnectError::Secret { name, .. }) if opts.secrets_dir.is_none() => {
            return RoundOutcome::only(Phase::stalled(format!(
                "spec.connection.credentialsSecret: lyncdr run --manifests reads {name} from files: pass --secrets-dir DIR, with DIR/{name}/username and DIR/{name}/password (a Secret mounted as a volume has this layout)"
            )));
        }
        Err(e) => return RoundOutcome::only(Phase::stalled(e.to_string())),
    };
    let mut engine = Engine::new(&*lync, journal);
    engine.settings = Settings {
        concurrency: dep.spec.policy.concurrency.clamp(1, 16) as usize,
        by: "lyncdr run --manifests".into(),
        ..Settings::default()
    };
    engine.live = Some(live);
    let gate = Gate::of(dep, generation, prev.status.applied_generation);
    let mut out = RoundOutcome::only(Phase::Converged);
    for _ in 0..engine.settings.max_rounds {
        match engine.prepare(d, sink).await {
            Err(Unready::Stalled { stall, observed, plan }) => {
                out = RoundOutcome {
                    phase: Phase::Stalled { step: stall.step, resource: stall.resource, reason: stall.reason },
                    observed: observed.map(|o| *o),
                    plan,
                    ..RoundOutcome::only(Phase::Converged)
                };
            }
            Err(Unready::Unobservable(e)) => out = RoundOutcome::only(Phase::Unobservable(e.to_string())),
            Err(Unready::Conflict(e)) => out = RoundOutcome::only(Phase::Conflict(e.to_string())),
            Ok((o, p)) => {
                let phase = gate.decide(&p);
                if phase == Phase::Executing {
                    progress.start(&p);
                    match engine.execute(d, &p, sink).await {
                        RunOutcome::Completed | RunOutcome::Replan(_) => {
                            out = RoundOutcome { phase, observed: Some(o), plan: Some(p), ..RoundOutcome::only(Phase::Converged) };
                            continue;
                        }
                        RunOutcome::Failed { step, error: reason } | RunOutcome::Stalled { step, reason } => {
                            let phase = Phase::stalled_at(&step, Some(&p), reason);
                            out = RoundOutcome { phase, observed: Some(o), plan: Some(p), ..RoundOutcome::only(Phase::Converged) };
                        }
                    }
                } else {
                    out = RoundOutcome { phase, observed: Some(o), plan: Some(p), ..RoundOutcome::only(Phase::Converged) };
                }
            }
        }
        break;
    }
    out.history = Some(engine.history());
    out
}

/// Manifests in files have no generation; a hash of the spec stands in, so a spec change is
/// recognised as one (and not as drift).
fn generation_of(dep: &LyncDeployment) -> i64 {
    dep.metadata.generation.unwrap_or_else(|| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&dep.spec).unwrap_or_default().hash(&mut h);
        (h.finish() >> 1) as i64
    })
}

/// The progress of the plan running in a round, shown in the status file and as lines on
/// standard output (the operator shows the same as status and Events).
#[derive(Default)]
struct Progress {
    inner: std::sync::Mutex<(Option<Plan>, BTreeMap<String, StepStatus>)>,
}

impl Progress {
    fn start(&self, p: &Plan) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 = Some(p.clone());
        }
    }
    fn record(&self, key: &str, e: &Event) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (plan, steps) = &mut *g;
        let Some(plan) = plan.as_ref() else { return };
        if let Some(note) = status::record_progress(steps, plan, e) {
            println!("LyncDeployment/{key}: {}: {}", note.reason, note.message);
        }
    }
    fn steps(&self) -> BTreeMap<String, StepStatus> {
        self.inner.lock().map(|g| g.1.clone()).unwrap_or_default()
    }
}

/// The desired state of one deployment as its manifests say now: read again before each step
/// of a running plan, so an edit made meanwhile (consent withdrawn, a pause, approval mode)
/// stops the steps it no longer wants.
struct ManifestSource {
    manifests: PathBuf,
    key: String,
    applied: Option<i64>,
}

impl DesiredSource for ManifestSource {
    fn current(&self, plan_hash: &str) -> Result<std::sync::Arc<desired::Desired>, String> {
        let ms = manifests::load(&self.manifests).map_err(|e| format!("the manifests cannot be read now: {e}"))?;
        let all = desired::compile(&ms).map_err(|e| format!("the manifests are no longer valid: {e}"))?;
        let d = all.into_iter().find(|d| state_key(d) == self.key).ok_or("the LyncDeployment is no longer in the manifests")?;
        let dep = ms
            .iter()
            .find_map(|m| match m {
                Manifest::Deployment(x) if x.metadata.name.as_deref() == Some(&d.deployment) && m.namespace() == d.namespace => Some(x),
                _ => None,
            })
            .ok_or("the LyncDeployment is no longer in the manifests")?;
        Gate::of(dep, generation_of(dep), self.applied).allows_running(plan_hash)?;
        Ok(std::sync::Arc::new(d))
    }
}
