//! One reconcile of a LyncDeployment, as a pipeline of stages:
//!
//! 1. **dereference**: the deployment as stored now (its status holds the journal and the
//!    memory), its resources from the reflector stores, its connection;
//! 2. **validate**: the desired state built and checked from them;
//! 3. **prepare**: settle the journal, observe, plan (the engine);
//! 4. **gate**: what policy allows (pause, observe-only, drift, manual approval), shared with
//!    `run --manifests` ([`Gate`]);
//! 5. **execute**: the engine runs the plan, reading the desired state from the stores before
//!    each step, with progress streamed to status and Events;
//! 6. **report**: the status of every resource.
//!
//! Each stage that cannot go on returns a [`Stop`]; [`Stop::outcome`] is the one place where a
//! stop becomes conditions, an Event and the time to look again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use tracing::{info, warn};

use super::inputs::{StoreSource, desired_of};
use super::journal::{RecordError, StatusJournal};
use super::metrics::{DeploymentLabels, ErrorLabels, Metered, ReconcileLabels};
use super::report::{Outcome, Progress, Report, event};
use super::{Ctx, FINALIZER};
use crate::api::{LyncDeployment, RESOLVE_ANNOTATION, resolve_target};
use crate::backend::Lync;
use crate::desired::{Desired, DesiredError};
use crate::engine::executor::RunOutcome;
use crate::engine::journal::resolve_by_person;
use crate::engine::{DesiredSource, Engine, Settings, Unready};
use crate::model::Span;
use crate::planner::{Plan, Remember};
use crate::status::{Gate, Phase};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer {FINALIZER}: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Finalizer(_) => "finalizer",
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

async fn reconcile_deployment(dep: &LyncDeployment, ctx: &Ctx) -> Result<Action, Error> {
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(15)));
    }
    let ns = dep.namespace().unwrap_or_default();
    let api: Api<LyncDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    // Status holds the journal and the operator's memory, so it must be the latest one. The
    // store lags behind our own status writes: a reconcile triggered by one of them (or
    // requeued right after a plan) can start before the watch delivers it, and would plan
    // from an older memory and write back an older journal. Read the object itself, once.
    let Some(fresh) = api.get_opt(&dep.name_any()).await? else {
        // Deleted meanwhile: the watch brings the deletion.
        return Ok(Action::await_change());
    };
    finalizer(&api, FINALIZER, Arc::new(fresh), |e| async move {
        match e {
            finalizer::Event::Apply(d) => apply(&d, ctx).await,
            finalizer::Event::Cleanup(d) => Ok(cleanup(&d, ctx)),
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Deleting a resource never changes Lync: only operator state goes.
fn cleanup(dep: &LyncDeployment, ctx: &Ctx) -> Action {
    let key = format!("{}/{}", dep.namespace().unwrap_or_default(), dep.name_any());
    ctx.metrics.forget(&dep.name_any());
    ctx.connector.forget(&key);
    info!(deployment = %key, "deleted; Lync left as it is");
    Action::await_change()
}

/// Why a round stops before (or instead of) executing a plan.
#[derive(Debug, thiserror::Error)]
enum Stop {
    /// validate: the resources contradict each other or are invalid.
    #[error("{0}")]
    Invalid(#[source] DesiredError),
    /// dereference: no `spec.connection`.
    #[error("spec.connection is required: set transport and simulatorUrl (or the WinRM endpoints)")]
    NoConnection,
    /// dereference: the backend cannot be reached.
    #[error(transparent)]
    Connect(super::ConnectError),
    /// dereference: the memory or the journal in status cannot be read.
    #[error(
        "{0}; lyncdr will not act on a deployment whose memory or journal it lost. Check the deployment (which failovers were automatic, which steps ran), then remove the field"
    )]
    Memory(#[source] RecordError),
    /// prepare: a pending journal entry, no observation, or a topology conflict.
    #[error(transparent)]
    Unready(Unready),
}

impl Stop {
    /// The one mapping from a stop to what status, Events and the requeue say.
    fn outcome(self, poll: Span) -> (Outcome, Option<&'static str>, Duration) {
        let text = self.to_string();
        let retry = Duration::from_secs(30);
        match self {
            Stop::Invalid(_) => (Outcome::only(Phase::Conflict(text)), Some("Conflict"), poll.to_std()),
            Stop::NoConnection => (Outcome::only(Phase::stalled(text)), None, poll.to_std()),
            Stop::Connect(_) => (Outcome::only(Phase::Unobservable(text)), Some("ObservationFailed"), retry),
            Stop::Memory(_) => (Outcome::only(Phase::stalled(text)), Some("Stalled"), poll.to_std()),
            Stop::Unready(Unready::Stalled { stall, observed, plan }) => {
                // Shown as it is now, but nothing runs.
                let mut o = Outcome::only(Phase::Stalled { step: stall.step, resource: stall.resource, reason: stall.reason });
                o.observed = observed.map(|o| *o);
                o.plan = plan;
                (o, Some("Stalled"), poll.to_std())
            }
            Stop::Unready(Unready::Unobservable(_)) => (Outcome::only(Phase::Unobservable(text)), Some("ObservationFailed"), retry),
            Stop::Unready(Unready::Conflict(_)) => (Outcome::only(Phase::Conflict(text)), Some("Conflict"), poll.to_std()),
        }
    }
}

/// One round on a deployment that exists and carries the finalizer.
async fn apply(dep: &LyncDeployment, ctx: &Ctx) -> Result<Action, Error> {
    let ns = dep.namespace().unwrap_or_default();
    let name = dep.name_any();
    let key = format!("{ns}/{name}");
    let poll = dep.spec.policy.poll_interval.max(Span::secs(5));
    let prev = dep.status.clone().unwrap_or_default();
    // A resolve annotation is acted upon once (the status echoes the value handled).
    let resolve = dep.annotations().get(RESOLVE_ANNOTATION).filter(|v| prev.last_handled_resolve.as_ref() != Some(*v)).cloned();

    // 1. dereference, 2. validate
    let kids = ctx.stores.children(&ns, &name);
    for m in &kids.malformed {
        warn!(deployment = %key, resource = %m, "resource does not match the schema; ignored");
    }
    let unchecked = Desired { deployment: name.clone(), namespace: ns.clone(), ..Default::default() };
    let desired = match desired_of(dep, &kids) {
        Ok(d) => d,
        Err(e) => return stop(ctx, dep, &Report { ctx, kids: &kids, desired: &unchecked }, Stop::Invalid(e), poll).await,
    };
    let report = Report { ctx, kids: &kids, desired: &desired };
    let lync = match connect(ctx, dep, &key).await {
        Ok(l) => l,
        Err(s) => return stop(ctx, dep, &report, s, poll).await,
    };
    let journal = match StatusJournal::new(Api::namespaced(ctx.client.clone(), &ns), dep) {
        Ok(j) => j,
        Err(e) => return stop(ctx, dep, &report, Stop::Memory(e), poll).await,
    };
    let metered = Metered { inner: lync, metrics: ctx.metrics.clone() };
    if let Some(value) = &resolve {
        let step = resolve_target(value);
        match resolve_by_person(&journal, step, "annotation lyncdr.io/resolve", metered.now()).await {
            Ok(true) => event(ctx, dep, EventType::Normal, "JournalResolved", format!("step {step} marked resolved by annotation")).await,
            Ok(false) => {}
            Err(e) => warn!(deployment = %key, error = %e, "cannot resolve the journal entry"),
        }
    }

    // 3. prepare
    let live =
        StoreSource { stores: ctx.stores.clone(), namespace: ns.clone(), name: name.clone(), applied_generation: prev.applied_generation };
    let mut engine = Engine::new(&metered, &journal);
    engine.settings =
        Settings { concurrency: dep.spec.policy.concurrency.clamp(1, 16) as usize, by: ctx.instance.clone(), ..Settings::default() };
    let leader = ctx.leader.clone();
    engine.fence = Some(Box::new(move || *leader.borrow()));
    engine.live = Some(&live);
    let (observed, plan) = match engine.prepare(&desired, &|_| {}).await {
        Ok(x) => x,
        Err(u) => {
            let mut r = Stop::Unready(u).outcome(poll);
            r.0.handled_resolve = resolve.clone();
            return finish_stop(ctx, dep, &report, r).await;
        }
    };
    ctx.metrics
        .last_observation
        .get_or_create(&DeploymentLabels { deployment: name.clone() })
        .set(Timestamp::now().as_millisecond() as f64 / 1000.0);

    // 4. gate
    let gate = Gate::of(dep, dep.metadata.generation.unwrap_or(0), prev.applied_generation);
    let phase = gate.decide(&plan);
    let mut o = Outcome {
        handled_resolve: resolve,
        phase: phase.clone(),
        drift: gate.drift(&plan),
        applied: (plan.is_empty() && plan.blockers.is_empty()).then_some(dep.metadata.generation.unwrap_or(0)),
        observed: Some(observed),
        plan: Some(plan.clone()),
    };
    if prev.plan.as_ref().map(|p| p.hash.as_str()) != Some(plan.hash.as_str()) && !plan.is_empty() {
        announce(ctx, dep, &plan, &phase, o.drift).await;
    }
    // A notice asks a person to act outside Lync (DNS, LIS, cumulative updates, an unsupported
    // pairing): an Event when it appears; it stays in status.notices while it holds.
    for n in plan.notices.iter().filter(|n| !prev.notices.contains(n)) {
        event(ctx, dep, EventType::Warning, "ActionRequired", n).await;
    }
    report.write(dep, &o, &Default::default()).await?;
    if phase != Phase::Executing {
        let wait = plan.recheck_after.map_or(poll, |r| r.min(poll));
        return Ok(Action::requeue(wait.max(Span::secs(1)).to_std()));
    }

    // 5. execute
    info!(deployment = %key, plan = %plan.hash, steps = plan.steps.len(), "executing plan");
    let progress = Progress::start(ctx, dep, &plan);
    let sink = progress.sink();
    let outcome = engine.execute(&desired, &plan, &sink).await;
    drop(sink);
    let steps = progress.finish().await;
    let action = match &outcome {
        RunOutcome::Completed => Action::requeue(Duration::from_secs(1)),
        RunOutcome::Replan(why) => {
            if let Err(reason) = live.current(&plan.hash).map(|_| ()) {
                event(
                    ctx,
                    dep,
                    EventType::Normal,
                    "PlanStopped",
                    format!("the running steps finished, the rest of the plan does not run: {reason}"),
                )
                .await;
            } else {
                info!(deployment = %key, reason = %why, "plan again");
            }
            Action::requeue(Duration::from_secs(1))
        }
        RunOutcome::Failed { step, error: reason } | RunOutcome::Stalled { step, reason } => {
            o.phase = Phase::stalled_at(step, Some(&plan), reason.clone());
            event(ctx, dep, EventType::Warning, "Stalled", format!("{step}: {reason}")).await;
            Action::requeue(poll.to_std())
        }
    };

    // 6. report, compared with what is stored now.
    let fresh = Api::<LyncDeployment>::namespaced(ctx.client.clone(), &ns).get(&name).await?;
    report.write(&fresh, &o, &steps).await?;
    Ok(action)
}

async fn connect(ctx: &Ctx, dep: &LyncDeployment, key: &str) -> Result<Arc<dyn Lync>, Stop> {
    let conn = dep.spec.connection.as_ref().ok_or(Stop::NoConnection)?;
    ctx.connector.connect(key, conn).await.map_err(Stop::Connect)
}

async fn stop(ctx: &Ctx, dep: &LyncDeployment, report: &Report<'_>, s: Stop, poll: Span) -> Result<Action, Error> {
    finish_stop(ctx, dep, report, s.outcome(poll)).await
}

async fn finish_stop(
    ctx: &Ctx,
    dep: &LyncDeployment,
    report: &Report<'_>,
    (o, reason, wait): (Outcome, Option<&'static str>, Duration),
) -> Result<Action, Error> {
    report.write(dep, &o, &Default::default()).await?;
    if let Some(reason) = reason {
        let text = match &o.phase {
            Phase::Stalled { reason, .. } => reason.clone(),
            Phase::Conflict(m) | Phase::Unobservable(m) => m.clone(),
            _ => String::new(),
        };
        event(ctx, dep, EventType::Warning, reason, text).await;
    }
    Ok(Action::requeue(wait))
}

/// Events for a newly published plan.
async fn announce(ctx: &Ctx, dep: &LyncDeployment, plan: &Plan, phase: &Phase, drift: bool) {
    let reason = if *phase == Phase::AwaitingApproval { "AwaitingApproval" } else { "PlanReady" };
    let ids = plan.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ");
    event(ctx, dep, EventType::Normal, reason, format!("plan {} with {} steps: {ids}", plan.hash, plan.steps.len())).await;
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
    if plan.steps.iter().any(|s| s.remember.iter().any(|r| matches!(r, Remember::AutomaticFailover { .. }))) {
        event(ctx, dep, EventType::Warning, "AutomaticFailover", "a pool confirmed down for its grace period is failed over automatically")
            .await;
    }
}
