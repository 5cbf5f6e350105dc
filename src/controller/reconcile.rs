//! One reconcile of a LyncDeployment: gather its resources, check them, observe the deployment,
//! plan, decide what policy allows (pause, observe-only, drift, manual approval), publish the
//! plan, execute it through the engine with the journal in status, and write every resource's
//! status (only when it changed). Progress of a running plan streams into status and Events.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, warn};

use super::journal::StatusJournal;
use super::metrics::{DeploymentLabels, ErrorLabels, Metered, ReconcileLabels};
use super::{Ctx, FINALIZER};
use crate::api::{
    APPROVE_ANNOTATION, Approval, ConferenceContentRestore, DriftPolicy, LyncDeployment, LyncDeploymentStatus, ManagementPolicy,
    PAUSED_ANNOTATION, PoolPair, RECONCILE_REQUESTED_ANNOTATION, RESOLVE_ANNOTATION, StepStatus, UserPlacement, resolve_target,
};
use crate::desired::{self, Desired};
use crate::engine::executor::{Event, RunOutcome, StepResult};
use crate::engine::journal::resolve_by_person;
use crate::engine::{Engine, Settings, Unready};
use crate::model::{History, Observed, Span};
use crate::planner::{Plan, Remember};
use crate::status::{self, Gate, Phase, Round};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
        }
    }
}

pub fn error_policy(_obj: Arc<DeserializeGuard<LyncDeployment>>, err: &Error, ctx: Arc<Ctx>) -> Action {
    warn!(error = %err, "reconcile failed");
    ctx.metrics.reconcile_errors.get_or_create(&ErrorLabels { controller: "lyncdeployment".into(), category: err.category().into() }).inc();
    Action::requeue(Duration::from_secs(30))
}

pub async fn reconcile(obj: Arc<DeserializeGuard<LyncDeployment>>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = match &obj.0 {
        Err(invalid) => {
            // One malformed object must not stall the others: report it and wait for a fix.
            warn!(name = ?invalid.metadata.name, error = %invalid.error, "LyncDeployment does not match the schema");
            Ok(Action::await_change())
        }
        Ok(dep) => reconcile_deployment(dep, &ctx).await,
    };
    ctx.metrics.reconcile_duration.observe(start.elapsed().as_secs_f64());
    let label = if result.is_ok() { "success" } else { "error" };
    ctx.metrics.reconcile.get_or_create(&ReconcileLabels { controller: "lyncdeployment".into(), result: label.into() }).inc();
    result
}

/// The resources of one deployment, with their previous status and generation.
struct Children {
    pairs: Vec<PoolPair>,
    placements: Vec<UserPlacement>,
    restores: Vec<ConferenceContentRestore>,
    /// Resources that do not match the schema, by `Kind/name`.
    malformed: Vec<String>,
}

async fn list<K>(ctx: &Ctx, ns: &str, deployment: &str, dep_of: impl Fn(&K) -> &str) -> Result<(Vec<K>, Vec<String>), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api: Api<DeserializeGuard<K>> = Api::namespaced(ctx.client.clone(), ns);
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for g in api.list(&ListParams::default()).await?.items {
        match g.0 {
            Ok(k) if dep_of(&k) == deployment => ok.push(k),
            Ok(_) => {}
            Err(invalid) => bad.push(format!("{}/{}: {}", K::kind(&()), invalid.metadata.name.unwrap_or_default(), invalid.error)),
        }
    }
    ok.sort_by_key(|k| k.name_any());
    Ok((ok, bad))
}

async fn children(ctx: &Ctx, ns: &str, name: &str) -> Result<Children, Error> {
    let (pairs, mut malformed) = list::<PoolPair>(ctx, ns, name, |p| &p.spec.deployment).await?;
    let (placements, m2) = list::<UserPlacement>(ctx, ns, name, |p| &p.spec.deployment).await?;
    let (restores, m3) = list::<ConferenceContentRestore>(ctx, ns, name, |p| &p.spec.deployment).await?;
    malformed.extend(m2);
    malformed.extend(m3);
    Ok(Children { pairs, placements, restores, malformed })
}

/// Merge-patches a status only when it changed.
async fn write_status<K, S>(api: &Api<K>, name: &str, prev: Option<&S>, new: &S) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let a = prev.map(|p| serde_json::to_value(p).unwrap_or_default());
    let b = serde_json::to_value(new).unwrap_or_default();
    if a.as_ref() == Some(&b) {
        return Ok(());
    }
    let patch = match &a {
        Some(a) => merge_diff(a, &b),
        None => b,
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({ "status": patch }))).await?;
    Ok(())
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`. A merge patch leaves keys it
/// does not mention as they are, and status fields are omitted when empty (`steps`, `blockers`,
/// `notices`, ...): without an explicit `null` the steps of a finished plan or a resolved blocker
/// stayed in status for good.
fn merge_diff(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) => {
                        out.insert(k.clone(), merge_diff(ov, nv));
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

struct RoundOutcome {
    /// The `lyncdr.io/resolve` value acted upon this round.
    handled_resolve: Option<String>,
    phase: Phase,
    observed: Option<Observed>,
    plan: Option<Plan>,
    drift: bool,
    applied: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
async fn write_all(
    ctx: &Ctx,
    dep: &LyncDeployment,
    kids: &Children,
    desired: &Desired,
    o: &RoundOutcome,
    progress: &BTreeMap<String, StepStatus>,
    journal: Option<&StatusJournal>,
    history: Option<&History>,
) -> Result<(), Error> {
    let ns = dep.namespace().unwrap_or_default();
    let name = dep.name_any();
    let now = Time(Timestamp::now());
    let generation = dep.metadata.generation.unwrap_or(0);
    let round = Round {
        desired,
        observed: o.observed.as_ref(),
        plan: o.plan.as_ref(),
        phase: o.phase.clone(),
        generation,
        drift: o.drift,
        progress,
        now: now.clone(),
    };
    let prev = dep.status.clone();
    let mut st: LyncDeploymentStatus = status::deployment_status(prev.as_ref(), &round);
    st.applied_generation = o.applied.or(prev.as_ref().and_then(|p| p.applied_generation));
    if let Some(j) = journal {
        st.journal = j.status();
    }
    if o.handled_resolve.is_some() {
        st.last_handled_resolve = o.handled_resolve.clone();
    }
    if let Some(h) = history {
        st.history = serde_json::to_string(h).ok();
    }
    st.last_handled_reconcile_at = dep.annotations().get(RECONCILE_REQUESTED_ANNOTATION).cloned().or(st.last_handled_reconcile_at);
    let api: Api<LyncDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &name, prev.as_ref(), &st).await?;

    let labels = DeploymentLabels { deployment: name.clone() };
    ctx.metrics.drift.get_or_create(&labels).set(i64::from(o.drift));
    ctx.metrics.awaiting_approval.get_or_create(&labels).set(i64::from(o.phase == Phase::AwaitingApproval));
    if let Some(obs) = &o.observed {
        for (p, po) in &obs.pools {
            let risk = po.module(crate::model::BackupModule::PresenceFocus).is_some_and(|m| !m.export.is_synced());
            ctx.metrics
                .data_at_risk
                .get_or_create(&super::metrics::PoolLabels { deployment: name.clone(), pool: p.to_string() })
                .set(i64::from(risk));
        }
    }

    let pp_api: Api<PoolPair> = Api::namespaced(ctx.client.clone(), &ns);
    for (obj, d) in kids.pairs.iter().filter_map(|obj| desired.pairs.iter().find(|d| d.name == obj.name_any()).map(|d| (obj, d))) {
        let s = status::pair_status(obj.status.as_ref(), &round, d, obj.metadata.generation.unwrap_or(0));
        write_status(&pp_api, &obj.name_any(), obj.status.as_ref(), &s).await?;
    }
    let up_api: Api<UserPlacement> = Api::namespaced(ctx.client.clone(), &ns);
    for (obj, d) in kids.placements.iter().filter_map(|obj| desired.placements.iter().find(|d| d.name == obj.name_any()).map(|d| (obj, d)))
    {
        let s = status::placement_status(obj.status.as_ref(), &round, d, obj.metadata.generation.unwrap_or(0));
        write_status(&up_api, &obj.name_any(), obj.status.as_ref(), &s).await?;
    }
    let cr_api: Api<ConferenceContentRestore> = Api::namespaced(ctx.client.clone(), &ns);
    for (obj, d) in kids.restores.iter().filter_map(|obj| desired.restores.iter().find(|d| d.name == obj.name_any()).map(|d| (obj, d))) {
        let s = status::restore_status(obj.status.as_ref(), &round, d, obj.metadata.generation.unwrap_or(0));
        write_status(&cr_api, &obj.name_any(), obj.status.as_ref(), &s).await?;
    }
    Ok(())
}

/// The `action` of an Event. kube's Recorder folds Events with the same type, reason, action and
/// object into one series that keeps the first note: with `action = reason`, every StepStarted
/// of a plan showed as one Event with the first step's note ("x9"), and PlanReady or
/// AwaitingApproval kept the hash of an older plan. Deriving the action from the note keeps the
/// series for repeats of the same note (a Stalled reported every poll) and nothing else.
fn event_action(reason: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    note.hash(&mut h);
    format!("{reason}-{:08x}", h.finish() as u32)
}

async fn event(ctx: &Ctx, dep: &LyncDeployment, type_: EventType, reason: &str, note: String) {
    let note: String = note.chars().take(1000).collect();
    let ev = KubeEvent { type_, reason: reason.into(), action: event_action(reason, &note), note: Some(note), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &dep.object_ref(&())).await {
        warn!(error = %e, "cannot publish event");
    }
}

async fn ensure_finalizer(ctx: &Ctx, dep: &LyncDeployment, present: bool) -> Result<(), Error> {
    let api: Api<LyncDeployment> = Api::namespaced(ctx.client.clone(), &dep.namespace().unwrap_or_default());
    let mut list: Vec<String> = dep.finalizers().to_vec();
    let has = list.iter().any(|f| f == FINALIZER);
    if has == present {
        return Ok(());
    }
    if present {
        list.push(FINALIZER.into());
    } else {
        list.retain(|f| f != FINALIZER);
    }
    let body = json!({ "metadata": { "finalizers": list, "resourceVersion": dep.resource_version() } });
    api.patch(&dep.name_any(), &PatchParams::default(), &Patch::Merge(&body)).await?;
    Ok(())
}

async fn reconcile_deployment(dep: &LyncDeployment, ctx: &Ctx) -> Result<Action, Error> {
    let ns = dep.namespace().unwrap_or_default();
    let name = dep.name_any();
    let key = format!("{ns}/{name}");
    let poll = dep.spec.policy.poll_interval.max(Span::secs(5));
    if dep.metadata.deletion_timestamp.is_some() {
        // Deleting a resource never changes Lync: only operator state goes.
        ctx.metrics.forget(&name);
        ctx.connector.forget(&key);
        ensure_finalizer(ctx, dep, false).await?;
        info!(deployment = %key, "deleted; Lync left as it is");
        return Ok(Action::await_change());
    }
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(15)));
    }
    // Status holds the journal and the operator's memory, so it must be the latest one. The
    // controller's cache lags behind our own status writes: a reconcile triggered by one of them
    // (or requeued right after a plan) can start before the watch delivers it, and would plan
    // from an older memory (a routine Response Group export ran again) and write back an older
    // journal. Read the object itself.
    let fresh = match Api::<LyncDeployment>::namespaced(ctx.client.clone(), &ns).get_opt(&name).await? {
        Some(d) if d.metadata.deletion_timestamp.is_none() => d,
        // Deleted meanwhile: the watch brings the deletion.
        _ => return Ok(Action::await_change()),
    };
    let dep = &fresh;
    ensure_finalizer(ctx, dep, true).await?;
    let generation = dep.metadata.generation.unwrap_or(0);
    let prev = dep.status.clone().unwrap_or_default();
    let ann = dep.annotations().clone();
    let paused = ann.get(PAUSED_ANNOTATION).is_some_and(|v| v == "true");
    let kids = children(ctx, &ns, &name).await?;
    let empty_progress = BTreeMap::new();
    let handled_resolve = ann.get(RESOLVE_ANNOTATION).cloned();
    let fail = |phase: Phase| RoundOutcome { handled_resolve: None, phase, observed: None, plan: None, drift: false, applied: None };

    for m in &kids.malformed {
        warn!(deployment = %key, resource = %m, "resource does not match the schema; ignored");
    }
    let desired = match desired::build(dep, kids.pairs.iter().collect(), kids.placements.iter().collect(), kids.restores.iter().collect())
        .and_then(|d| {
            for p in &kids.pairs {
                desired::check_pair(p)?;
            }
            for p in &kids.placements {
                desired::check_placement(p)?;
            }
            desired::check_deployment(dep)?;
            Ok(d)
        }) {
        Ok(d) => d,
        Err(e) => {
            let d = Desired { deployment: name.clone(), ..Default::default() };
            write_all(ctx, dep, &kids, &d, &fail(Phase::Conflict(e.to_string())), &empty_progress, None, None).await?;
            event(ctx, dep, EventType::Warning, "Conflict", e.to_string()).await;
            return Ok(Action::requeue(poll.to_std()));
        }
    };
    let Some(conn) = &dep.spec.connection else {
        let why = "spec.connection is required: set transport and simulatorUrl (or the WinRM endpoints)".to_string();
        write_all(ctx, dep, &kids, &desired, &fail(Phase::stalled(why)), &empty_progress, None, None).await?;
        return Ok(Action::requeue(poll.to_std()));
    };
    let lync = match ctx.connector.connect(&key, conn).await {
        Ok(l) => l,
        Err(e) => {
            write_all(ctx, dep, &kids, &desired, &fail(Phase::Unobservable(e)), &empty_progress, None, None).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let metered = Metered { inner: lync, metrics: ctx.metrics.clone() };
    let api: Api<LyncDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    // The memory is never dropped silently: what it says (an automatic failover, pending Edge
    // setup) decides what lyncdr may do on its own.
    let history: History = match prev.history.as_deref().map(serde_json::from_str).transpose() {
        Ok(h) => h.unwrap_or_default(),
        Err(e) => {
            let why = format!(
                "status.history (the operator memory) cannot be read ({e}); lyncdr will not act on a deployment whose memory it lost. Remove status.history only after checking which failovers were automatic"
            );
            write_all(ctx, dep, &kids, &desired, &fail(Phase::stalled(why.clone())), &empty_progress, None, None).await?;
            event(ctx, dep, EventType::Warning, "Stalled", why).await;
            return Ok(Action::requeue(poll.to_std()));
        }
    };
    let journal = StatusJournal::new(api.clone(), &name, &prev.journal, history);
    if let Some(value) = ann.get(RESOLVE_ANNOTATION).filter(|v| prev.last_handled_resolve.as_ref() != Some(*v)) {
        let step = resolve_target(value);
        match resolve_by_person(&journal, step, "annotation lyncdr.io/resolve", crate::lync::Lync::now(&metered)).await {
            Ok(true) => event(ctx, dep, EventType::Normal, "JournalResolved", format!("step {step} marked resolved by annotation")).await,
            Ok(false) => {}
            Err(e) => warn!(deployment = %key, error = %e, "cannot resolve the journal entry"),
        }
    }
    let mut engine = Engine::new(&metered, &journal);
    engine.settings =
        Settings { concurrency: dep.spec.policy.concurrency.clamp(1, 16) as usize, by: ctx.instance.clone(), ..Settings::default() };
    let leader = ctx.leader.clone();
    // Set when `lyncdr.io/paused` appears while the plan runs: the running steps finish, the
    // next ones do not start (the executor checks the fence before each change).
    let paused_now = Arc::new(AtomicBool::new(false));
    let paused_fence = paused_now.clone();
    engine.fence = Some(Box::new(move || *leader.borrow() && !paused_fence.load(Ordering::SeqCst)));

    // Progress of a running plan: into status and Events, as it happens.
    let progress: Arc<Mutex<BTreeMap<String, StepStatus>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let sink = move |e: Event| {
        let _ = tx.send(e);
    };

    let (observed, plan) = match engine.prepare(&desired, &sink).await {
        Ok(x) => x,
        Err(unready) => {
            let mut outcome = fail(Phase::Converged);
            outcome.handled_resolve = handled_resolve.clone();
            let (wait, reason) = match unready {
                Unready::Stalled { stall, observed, plan } => {
                    // Shown as it is now, but nothing runs.
                    outcome.phase = Phase::Stalled { step: stall.step, resource: stall.resource, reason: stall.reason.clone() };
                    outcome.observed = observed.map(|o| *o);
                    outcome.plan = plan;
                    (poll.to_std(), ("Stalled", stall.reason))
                }
                Unready::Unobservable(e) => {
                    outcome.phase = Phase::Unobservable(e.clone());
                    (Duration::from_secs(30), ("ObservationFailed", e))
                }
                Unready::Conflict(e) => {
                    outcome.phase = Phase::Conflict(e.clone());
                    (poll.to_std(), ("Conflict", e))
                }
            };
            write_all(ctx, dep, &kids, &desired, &outcome, &empty_progress, Some(&journal), Some(&engine.history())).await?;
            event(ctx, dep, EventType::Warning, reason.0, reason.1).await;
            return Ok(Action::requeue(wait));
        }
    };
    ctx.metrics
        .last_observation
        .get_or_create(&DeploymentLabels { deployment: name.clone() })
        .set(Timestamp::now().as_millisecond() as f64 / 1000.0);

    let policy = &dep.spec.policy;
    let gate = Gate {
        paused,
        observe_only: policy.management_policy == ManagementPolicy::ObserveOnly,
        drift_report_only: policy.drift == DriftPolicy::Report,
        manual_approval: policy.approval == Approval::Manual,
        approved_hash: ann.get(APPROVE_ANNOTATION).map(String::as_str),
        generation,
        applied_generation: prev.applied_generation,
    };
    let drift = gate.drift(&plan);
    let automatic = plan.steps.iter().any(|s| s.remember.iter().any(|r| matches!(r, Remember::AutomaticFailover { .. })));
    let phase = gate.decide(&plan);
    let applied = (plan.is_empty() && plan.blockers.is_empty()).then_some(generation);
    let published = prev.plan.as_ref().map(|p| p.hash.as_str()) != Some(plan.hash.as_str());
    if published && !plan.is_empty() {
        let (t, reason) =
            if phase == Phase::AwaitingApproval { (EventType::Normal, "AwaitingApproval") } else { (EventType::Normal, "PlanReady") };
        event(
            ctx,
            dep,
            t,
            reason,
            format!(
                "plan {} with {} steps: {}",
                plan.hash,
                plan.steps.len(),
                plan.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .await;
        if drift {
            event(
                ctx,
                dep,
                EventType::Warning,
                "DriftDetected",
                format!("the deployment drifted from its desired state; {} steps would correct it", plan.steps.len()),
            )
            .await;
        }
        if automatic {
            event(
                ctx,
                dep,
                EventType::Warning,
                "AutomaticFailover",
                "a pool confirmed down for its grace period is failed over automatically".into(),
            )
            .await;
        }
    }
    let mut o = RoundOutcome {
        handled_resolve: handled_resolve.clone(),
        phase: phase.clone(),
        observed: Some(observed),
        plan: Some(plan.clone()),
        drift,
        applied,
    };
    write_all(ctx, dep, &kids, &desired, &o, &empty_progress, Some(&journal), Some(&engine.history())).await?;

    if phase != Phase::Executing {
        drop(sink);
        let wait = match (&phase, plan.recheck_after) {
            (_, Some(r)) => r.min(poll),
            _ => poll,
        };
        return Ok(Action::requeue(wait.max(Span::secs(1)).to_std()));
    }

    // Execute, streaming progress.
    let labels = DeploymentLabels { deployment: name.clone() };
    let progress_task = {
        let progress = progress.clone();
        let api = api.clone();
        let name = name.clone();
        let plan = plan.clone();
        let recorder = ctx.recorder.clone();
        let reference = dep.object_ref(&());
        let metrics = ctx.metrics.clone();
        let labels = labels.clone();
        let paused_now = paused_now.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let (note, warn_) = {
                    let mut p = progress.lock().unwrap_or_else(|x| x.into_inner());
                    match &e {
                        Event::StepStarted { id, command, run_on, at } => {
                            let step = plan.step(id);
                            p.insert(
                                id.clone(),
                                StepStatus {
                                    id: id.clone(),
                                    command: command.clone(),
                                    run_on: run_on.clone(),
                                    state: "Running".into(),
                                    reason: step.map(|s| s.reason.clone()).unwrap_or_default(),
                                    data_loss: step.is_some_and(|s| s.data_loss),
                                    started_at: Some(at.to_string()),
                                    ..Default::default()
                                },
                            );
                            metrics.in_progress.get_or_create(&labels).inc();
                            (Some(("StepStarted", format!("{id}: {command} (on {run_on})"))), false)
                        }
                        Event::StepFinished { id, at, result } => {
                            let (state, msg, bad) = match result {
                                StepResult::Succeeded => ("Succeeded", None, false),
                                StepResult::Skipped => ("Skipped", Some("its effect already held".to_string()), false),
                                StepResult::Stale(_) if paused_now.load(Ordering::SeqCst) => {
                                    ("Pending", Some("not run: reconciliation was paused (lyncdr.io/paused)".to_string()), false)
                                }
                                StepResult::Stale(m) => ("Pending", Some(format!("plan again: {m}")), false),
                                StepResult::Failed(m) => ("Failed", Some(m.clone()), true),
                                StepResult::Stalled(m) => ("Unknown", Some(m.clone()), true),
                            };
                            let entry = p.entry(id.clone()).or_insert_with(|| StepStatus { id: id.clone(), ..Default::default() });
                            if entry.state == "Running" {
                                metrics.in_progress.get_or_create(&labels).dec();
                            }
                            entry.state = state.into();
                            entry.finished_at = Some(at.to_string());
                            entry.message = msg.clone();
                            (
                                Some((
                                    if bad { "StepFailed" } else { "StepFinished" },
                                    format!("{id}: {state}{}", msg.map(|m| format!(": {m}")).unwrap_or_default()),
                                )),
                                bad,
                            )
                        }
                        Event::Observed { .. } => (None, false),
                    }
                };
                if let Some((reason, note)) = note {
                    let note: String = note.chars().take(1000).collect();
                    let ev = KubeEvent {
                        type_: if warn_ { EventType::Warning } else { EventType::Normal },
                        reason: reason.into(),
                        action: event_action(reason, &note),
                        note: Some(note),
                        secondary: None,
                    };
                    let _ = recorder.publish(&ev, &reference).await;
                    let steps: Vec<StepStatus> = {
                        let p = progress.lock().unwrap_or_else(|x| x.into_inner());
                        plan.steps.iter().filter_map(|s| p.get(&s.id).cloned()).collect()
                    };
                    let done = steps.iter().filter(|s| s.state == "Succeeded" || s.state == "Skipped").count();
                    let body = json!({ "status": { "plan": { "hash": plan.hash, "progress": format!("{done}/{}", plan.steps.len()) } } });
                    let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body)).await;
                }
            }
        })
    };
    info!(deployment = %key, plan = %plan.hash, steps = plan.steps.len(), "executing plan");
    // Watch for a pause while the plan runs.
    let pause_watch = {
        let api = api.clone();
        let name = name.clone();
        let paused_now = paused_now.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(d) = api.get(&name).await
                    && d.annotations().get(PAUSED_ANNOTATION).is_some_and(|v| v == "true")
                {
                    paused_now.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    };
    let outcome = engine.execute(&desired, &plan, &sink).await;
    pause_watch.abort();
    if paused_now.load(Ordering::SeqCst) && matches!(outcome, RunOutcome::Replan(_)) {
        event(ctx, dep, EventType::Normal, "Paused", "lyncdr.io/paused: the running steps finished, the rest of the plan waits".into())
            .await;
    }
    drop(sink);
    let _ = progress_task.await;
    ctx.metrics.in_progress.get_or_create(&labels).set(0);
    let snapshot = progress.lock().map(|p| p.clone()).unwrap_or_default();
    let action = match &outcome {
        RunOutcome::Completed | RunOutcome::Replan(_) => Action::requeue(Duration::from_secs(1)),
        RunOutcome::Failed { step, error } => {
            o.phase = Phase::stalled_at(step, Some(&plan), error.clone());
            event(ctx, dep, EventType::Warning, "Stalled", format!("{step}: {error}")).await;
            Action::requeue(poll.to_std())
        }
        RunOutcome::Stalled { step, reason } => {
            o.phase = Phase::stalled_at(step, Some(&plan), reason.clone());
            event(ctx, dep, EventType::Warning, "Stalled", format!("{step}: {reason}")).await;
            Action::requeue(poll.to_std())
        }
    };
    // Re-read the object so status is compared with what is stored now.
    let fresh = api.get(&name).await?;
    write_all(ctx, &fresh, &kids, &desired, &o, &snapshot, Some(&journal), Some(&engine.history())).await?;
    Ok(action)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_diff;

    #[test]
    fn merge_diff_clears_what_the_new_status_omits() {
        let old = json!({"plan": {"hash": "a", "steps": [{"id": "x"}], "blockers": [{"reason": "r"}]}, "journal": [1], "observed": {"cmsPool": "p"}});
        let new = json!({"plan": {"hash": "b", "progress": "0/0"}, "journal": [1], "observed": {"cmsPool": "p"}});
        assert_eq!(merge_diff(&old, &new), json!({"plan": {"hash": "b", "progress": "0/0", "steps": null, "blockers": null}}));
        assert_eq!(merge_diff(&new, &new), json!({}));
        assert_eq!(merge_diff(&json!({"a": 1}), &json!({"a": {"b": 2}})), json!({"a": {"b": 2}}));
    }
}
