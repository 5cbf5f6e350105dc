//! `lyncdr run --manifests DIR`: the operator without Kubernetes, for Lync shops that keep their
//! desired state in a directory (e.g. a git checkout). Each round reads the manifests again,
//! observes each deployment, plans, applies the same policy as the operator (the same
//! annotations: pause, approve by plan hash), executes through the same engine, and writes the
//! status of every resource to a file. The journal and the operator memory live in a state
//! directory, so a restart resumes or stalls exactly as the operator does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::manifests::{self, Manifest};
use crate::api::{
    APPROVE_ANNOTATION, Approval, ConferenceContentRestoreStatus, DriftPolicy, LyncDeployment, LyncDeploymentStatus, ManagementPolicy,
    PAUSED_ANNOTATION, PoolPairStatus, StepStatus, Transport, UserPlacementStatus,
};
use crate::desired;
use crate::engine::executor::{Event, RunOutcome, StepResult};
use crate::engine::journal::FileJournal;
use crate::engine::{Engine, Settings, Unready};
use crate::lync::HttpSim;
use crate::model::{History, Span};
use crate::status::{self, Gate, Phase, Round};

#[derive(Debug, Clone)]
pub struct Options {
    pub manifests: PathBuf,
    pub state_dir: PathBuf,
    /// Where to write the status of every resource (JSON); default `<state_dir>/status.json`.
    pub status_file: Option<PathBuf>,
    /// One round, then exit.
    pub once: bool,
    /// Overrides the deployments' `connection.simulatorUrl`.
    pub simulator: Option<String>,
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
    #[error("state directory {path}: {message}")]
    State { path: String, message: String },
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> StandaloneError {
    StandaloneError::State { path: path.display().to_string(), message: e.to_string() }
}

/// Runs rounds until interrupted (or once). Returns the last status file.
pub async fn run(opts: &Options) -> Result<StatusFile, StandaloneError> {
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| state_err(&opts.state_dir, e))?;
    let status_path = opts.status_file.clone().unwrap_or_else(|| opts.state_dir.join("status.json"));
    let mut report: StatusFile = std::fs::read(&status_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    loop {
        let ms = manifests::load(&opts.manifests)?;
        let all = desired::compile(&ms)?;
        let mut poll = Span::mins(1);
        for d in &all {
            let Some(dep) = ms.iter().find_map(|m| match m {
                Manifest::Deployment(x) if x.metadata.name.as_deref() == Some(&d.deployment) => Some(x.as_ref()),
                _ => None,
            }) else {
                continue;
            };
            poll = poll.min(dep.spec.policy.poll_interval.max(Span::secs(5)));
            let prev = report.deployments.get(&d.deployment).cloned().unwrap_or_default();
            let next = round(opts, &ms, dep, d, prev).await?;
            print_summary(&d.deployment, &next);
            report.deployments.insert(d.deployment.clone(), next);
        }
        let bytes = serde_json::to_vec_pretty(&report).map_err(|e| state_err(&status_path, e))?;
        std::fs::write(&status_path, bytes).map_err(|e| state_err(&status_path, e))?;
        if opts.once {
            return Ok(report);
        }
        tokio::select! {
            _ = tokio::time::sleep(poll.to_std()) => {}
            _ = tokio::signal::ctrl_c() => return Ok(report),
        }
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

async fn round(
    opts: &Options,
    ms: &[Manifest],
    dep: &LyncDeployment,
    d: &desired::Desired,
    prev: DeploymentReport,
) -> Result<DeploymentReport, StandaloneError> {
    let name = &d.deployment;
    let history_path = opts.state_dir.join(format!("{name}.history.json"));
    let history: History = std::fs::read(&history_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let journal = FileJournal::new(opts.state_dir.join(format!("{name}.journal.json")));
    let generation = generation_of(dep);
    let ann = dep.metadata.annotations.clone().unwrap_or_default();
    let url = opts
        .simulator
        .clone()
        .or_else(|| dep.spec.connection.as_ref().filter(|c| c.transport == Transport::Simulator).and_then(|c| c.simulator_url.clone()));
    let progress: std::sync::Mutex<BTreeMap<String, StepStatus>> = Default::default();
    let sink = |e: Event| record(&progress, e);

    let (phase, observed, plan, history) = match url {
        None => (
            Phase::Stalled {
                step: String::new(),
                reason: "spec.connection: transport Simulator with simulatorUrl is needed (or --simulator)".into(),
            },
            None,
            None,
            history,
        ),
        Some(url) => match HttpSim::connect(&url).await {
            Err(e) => (Phase::Unobservable(e.to_string()), None, None, history),
            Ok(lync) => {
                let mut engine = Engine::new(&lync, &journal, history);
                engine.settings = Settings {
                    concurrency: dep.spec.policy.concurrency.clamp(1, 16) as usize,
                    by: "lyncdr run --manifests".into(),
                    ..Settings::default()
                };
                let policy = &dep.spec.policy;
                let gate = Gate {
                    paused: ann.get(PAUSED_ANNOTATION).is_some_and(|v| v == "true"),
                    observe_only: policy.management_policy == ManagementPolicy::ObserveOnly,
                    drift_report_only: policy.drift == DriftPolicy::Report,
                    manual_approval: policy.approval == Approval::Manual,
                    approved_hash: ann.get(APPROVE_ANNOTATION).map(String::as_str),
                    generation,
                    applied_generation: prev.status.applied_generation,
                };
                // Plans run until the deployment converges, blocks, waits or stalls; the status
                // shows the last observation.
                let mut result = (Phase::Converged, None, None);
                for _ in 0..engine.settings.max_rounds {
                    match engine.prepare(d, &sink).await {
                        Err(Unready::Stalled { step, reason }) => result = (Phase::Stalled { step, reason }, None, None),
                        Err(Unready::Unobservable(e)) => result = (Phase::Unobservable(e), None, None),
                        Err(Unready::Conflict(e)) => result = (Phase::Conflict(e), None, None),
                        Ok((o, p)) => {
                            let phase = gate.decide(&p);
                            if phase == Phase::Executing {
                                match engine.execute(d, &p, &sink).await {
                                    RunOutcome::Completed | RunOutcome::Replan(_) => {
                                        result = (phase, Some(o), Some(p));
                                        continue;
                                    }
                                    RunOutcome::Failed { step, error } => {
                                        result = (Phase::Stalled { step, reason: error }, Some(o), Some(p))
                                    }
                                    RunOutcome::Stalled { step, reason } => result = (Phase::Stalled { step, reason }, Some(o), Some(p)),
                                }
                            } else {
                                result = (phase, Some(o), Some(p));
                            }
                        }
                    }
                    break;
                }
                let (phase, o, p) = result;
                (phase, o, p, engine.history())
            }
        },
    };
    std::fs::write(&history_path, serde_json::to_vec(&history).unwrap_or_default()).map_err(|e| state_err(&history_path, e))?;
    let drift = plan.as_ref().is_some_and(|p| !p.is_empty() && prev.status.applied_generation == Some(generation));
    let progress = progress.into_inner().unwrap_or_default();
    let r = Round {
        desired: d,
        observed: observed.as_ref(),
        plan: plan.as_ref(),
        phase: phase.clone(),
        generation,
        drift,
        progress: &progress,
        now: Time(Timestamp::now()),
    };
    let mut out = DeploymentReport { status: status::deployment_status(Some(&prev.status), &r), ..Default::default() };
    if plan.as_ref().is_some_and(|p| p.is_empty() && p.blockers.is_empty()) {
        out.status.applied_generation = Some(generation);
    }
    out.status.history = serde_json::to_string(&history).ok();
    for m in ms {
        match m {
            Manifest::PoolPair(p) if p.spec.deployment == *name => {
                if let Some(pd) = d.pairs.iter().find(|x| Some(&x.name) == p.metadata.name.as_ref()) {
                    let n = pd.name.clone();
                    out.pool_pairs
                        .insert(n.clone(), status::pair_status(prev.pool_pairs.get(&n), &r, pd, p.metadata.generation.unwrap_or(0)));
                }
            }
            Manifest::UserPlacement(p) if p.spec.deployment == *name => {
                if let Some(pd) = d.placements.iter().find(|x| Some(&x.name) == p.metadata.name.as_ref()) {
                    let n = pd.name.clone();
                    out.user_placements.insert(
                        n.clone(),
                        status::placement_status(prev.user_placements.get(&n), &r, pd, p.metadata.generation.unwrap_or(0)),
                    );
                }
            }
            Manifest::ContentRestore(p) if p.spec.deployment == *name => {
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
    Ok(out)
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

fn record(progress: &std::sync::Mutex<BTreeMap<String, StepStatus>>, e: Event) {
    let Ok(mut p) = progress.lock() else { return };
    match e {
        Event::StepStarted { id, command, run_on, at } => {
            p.insert(
                id.clone(),
                StepStatus { id, command, run_on, state: "Running".into(), started_at: Some(at.to_string()), ..Default::default() },
            );
        }
        Event::StepFinished { id, at, result } => {
            let entry = p.entry(id.clone()).or_insert_with(|| StepStatus { id, ..Default::default() });
            let (state, msg) = match result {
                StepResult::Succeeded => ("Succeeded", None),
                StepResult::Skipped => ("Skipped", None),
                StepResult::Stale(m) => ("Pending", Some(m)),
                StepResult::Failed(m) => ("Failed", Some(m)),
                StepResult::Stalled(m) => ("Unknown", Some(m)),
            };
            entry.state = state.into();
            entry.message = msg;
            entry.finished_at = Some(at.to_string());
        }
        Event::Observed { .. } => {}
    }
}
