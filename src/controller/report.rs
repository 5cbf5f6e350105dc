//! What a reconcile tells people: the status of the LyncDeployment and of each of its resources
//! (written only when it changed), Kubernetes Events, the progress of a running plan streamed
//! into status and Events as it happens, and the metrics a round updates.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use super::Ctx;
use super::inputs::Children;
use super::metrics::{DeploymentLabels, Metrics, PoolLabels};
use crate::api::{
    ConferenceContentRestore, LyncDeployment, LyncDeploymentStatus, PoolPair, RECONCILE_REQUESTED_ANNOTATION, StepStatus, UserPlacement,
};
use crate::desired::Desired;
use crate::engine::executor::Event;
use crate::model::{BackupModule, Observed};
use crate::planner::Plan;
use crate::status::{self, Phase, Round};

/// Everything one round found, to be written to status.
pub struct Outcome {
    /// The `lyncdr.io/resolve` value acted upon this round.
    pub handled_resolve: Option<String>,
    pub phase: Phase,
    pub observed: Option<Observed>,
    pub plan: Option<Plan>,
    pub drift: bool,
    /// The generation reached this round, if it was.
    pub applied: Option<i64>,
}

impl Outcome {
    /// A round that ended before it had an observation.
    pub fn only(phase: Phase) -> Outcome {
        Outcome { handled_resolve: None, phase, observed: None, plan: None, drift: false, applied: None }
    }
}

/// Where a round's status goes and with what it is written.
pub struct Report<'a> {
    pub ctx: &'a Ctx,
    pub kids: &'a Children,
    pub desired: &'a Desired,
}

impl Report<'_> {
    /// Writes the status of the deployment and of every resource it owns, and the metrics.
    pub async fn write(&self, dep: &LyncDeployment, o: &Outcome, progress: &BTreeMap<String, StepStatus>) -> Result<(), kube::Error> {
        let ctx = self.ctx;
        let ns = dep.namespace().unwrap_or_default();
        let name = dep.name_any();
        let generation = dep.metadata.generation.unwrap_or(0);
        let round = Round {
            desired: self.desired,
            observed: o.observed.as_ref(),
            plan: o.plan.as_ref(),
            phase: o.phase.clone(),
            generation,
            drift: o.drift,
            progress,
            now: Time(Timestamp::now()),
        };
        let prev = dep.status.clone();
        let mut st: LyncDeploymentStatus = status::deployment_status(prev.as_ref(), &round);
        st.applied_generation = o.applied.or(prev.as_ref().and_then(|p| p.applied_generation));
        // The journal and the memory are written by the journal itself (StatusJournal), on the
        // resourceVersion it last saw; kept as they were here, they are not part of this patch.
        if o.handled_resolve.is_some() {
            st.last_handled_resolve = o.handled_resolve.clone();
        }
        st.last_handled_reconcile_at = dep.annotations().get(RECONCILE_REQUESTED_ANNOTATION).cloned().or(st.last_handled_reconcile_at);
        let api: Api<LyncDeployment> = Api::namespaced(ctx.client.clone(), &ns);
        write_status(&api, &name, prev.as_ref(), &st).await?;
        round_metrics(&ctx.metrics, &name, o);

        let kids = self.kids;
        let desired = self.desired;
        let pp_api: Api<PoolPair> = Api::namespaced(ctx.client.clone(), &ns);
        for (obj, d) in kids.pairs.iter().filter_map(|obj| desired.pairs.iter().find(|d| d.name == obj.name_any()).map(|d| (obj, d))) {
            let s = status::pair_status(obj.status.as_ref(), &round, d, obj.metadata.generation.unwrap_or(0));
            write_status(&pp_api, &obj.name_any(), obj.status.as_ref(), &s).await?;
        }
        let up_api: Api<UserPlacement> = Api::namespaced(ctx.client.clone(), &ns);
        for (obj, d) in
            kids.placements.iter().filter_map(|obj| desired.placements.iter().find(|d| d.name == obj.name_any()).map(|d| (obj, d)))
        {
            let s = status::placement_status(obj.status.as_ref(), &round, d, obj.metadata.generation.unwrap_or(0));
            write_status(&up_api, &obj.name_any(), obj.status.as_ref(), &s).await?;
        }
        let cr_api: Api<ConferenceContentRestore> = Api::namespaced(ctx.client.clone(), &ns);
        for (obj, d) in kids.restores.iter().filter_map(|obj| desired.restores.iter().find(|d| d.name == obj.name_any()).map(|d| (obj, d)))
        {
            let s = status::restore_status(obj.status.as_ref(), &round, d, obj.metadata.generation.unwrap_or(0));
            write_status(&cr_api, &obj.name_any(), obj.status.as_ref(), &s).await?;
        }
        Ok(())
    }
}

fn round_metrics(metrics: &Metrics, name: &str, o: &Outcome) {
    let labels = DeploymentLabels { deployment: name.to_string() };
    metrics.drift.get_or_create(&labels).set(i64::from(o.drift));
    metrics.awaiting_approval.get_or_create(&labels).set(i64::from(o.phase == Phase::AwaitingApproval));
    if let Some(obs) = &o.observed {
        for (p, po) in &obs.pools {
            let risk = po.module(BackupModule::PresenceFocus).is_some_and(|m| !m.export.is_synced());
            metrics.data_at_risk.get_or_create(&PoolLabels { deployment: name.to_string(), pool: p.to_string() }).set(i64::from(risk));
        }
    }
}

/// The field manager of the status lyncdr reports with server-side apply. The journal and the
/// memory (`status.journal`, `status.history`) have their own writer, the status journal, which
/// guards them with the resourceVersion.
pub const STATUS_MANAGER: &str = "lyncdr-status";

/// Status fields written by the status journal, never by the report.
const JOURNAL_FIELDS: [&str; 2] = ["journal", "history"];

/// Applies a status (server-side apply, field manager [`STATUS_MANAGER`]) when it changed.
/// What this manager applied before and omits now is removed by the apiserver; a field it does
/// not own (the plan's progress, merge-patched while a plan runs, or a field an earlier lyncdr
/// version wrote) is not, so what the new status omits is first cleared with a merge patch.
async fn write_status<K, S>(api: &Api<K>, name: &str, prev: Option<&S>, new: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let reported = |v: serde_json::Value| match v {
        serde_json::Value::Object(mut m) => {
            for f in JOURNAL_FIELDS {
                m.remove(f);
            }
            serde_json::Value::Object(m)
        }
        other => other,
    };
    let a = prev.map(|p| reported(serde_json::to_value(p).unwrap_or_default()));
    let b = reported(serde_json::to_value(new).unwrap_or_default());
    if a.as_ref() == Some(&b) {
        return Ok(());
    }
    if let Some(gone) = a.as_ref().and_then(|a| removals(a, &b)) {
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({ "status": gone }))).await?;
    }
    let body = json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": b });
    api.patch_status(name, &PatchParams::apply(STATUS_MANAGER).force(), &Patch::Apply(&body)).await?;
    Ok(())
}

/// A merge patch of `null`s for the fields of `old` that `new` omits (objects present in both
/// are compared field by field), or `None` when nothing is removed.
fn removals(old: &serde_json::Value, new: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    let (Value::Object(o), Value::Object(n)) = (old, new) else { return None };
    let mut out = serde_json::Map::new();
    for (k, ov) in o {
        match n.get(k) {
            None => {
                out.insert(k.clone(), Value::Null);
            }
            Some(nv) => {
                if let Some(r) = removals(ov, nv) {
                    out.insert(k.clone(), r);
                }
            }
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
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

async fn publish(recorder: &Recorder, reference: &k8s_openapi::api::core::v1::ObjectReference, type_: EventType, reason: &str, note: &str) {
    let note: String = note.chars().take(1000).collect();
    let ev = KubeEvent { type_, reason: reason.into(), action: event_action(reason, &note), note: Some(note), secondary: None };
    if let Err(e) = recorder.publish(&ev, reference).await {
        warn!(error = %e, "cannot publish event");
    }
}

/// Publishes an Event about a deployment.
pub async fn event(ctx: &Ctx, dep: &LyncDeployment, type_: EventType, reason: &str, note: impl AsRef<str>) {
    publish(&ctx.recorder, &dep.object_ref(&()), type_, reason, note.as_ref()).await;
}

/// The progress of a running plan: the executor's events folded into per-step status
/// ([`status::record_progress`], the same as the standalone front end), published as Events and
/// as `status.plan.progress` while the plan runs.
pub struct Progress {
    steps: Arc<Mutex<BTreeMap<String, StepStatus>>>,
    task: tokio::task::JoinHandle<()>,
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
}

impl Progress {
    pub fn start(ctx: &Ctx, dep: &LyncDeployment, plan: &Plan) -> Progress {
        let steps: Arc<Mutex<BTreeMap<String, StepStatus>>> = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let api: Api<LyncDeployment> = Api::namespaced(ctx.client.clone(), &dep.namespace().unwrap_or_default());
        let name = dep.name_any();
        let plan = plan.clone();
        let recorder = ctx.recorder.clone();
        let reference = dep.object_ref(&());
        let metrics = ctx.metrics.clone();
        let labels = DeploymentLabels { deployment: name.clone() };
        let shared = steps.clone();
        let task = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let (note, text) = {
                    let mut p = shared.lock().unwrap_or_else(|x| x.into_inner());
                    let was_running = matches!(&e, Event::StepFinished { id, .. } if p.get(id).is_some_and(|s| s.state == crate::api::StepState::Running));
                    let note = status::record_progress(&mut p, &plan, &e);
                    match &e {
                        Event::StepStarted { .. } => metrics.in_progress.get_or_create(&labels).inc(),
                        Event::StepFinished { .. } if was_running => metrics.in_progress.get_or_create(&labels).dec(),
                        _ => 0,
                    };
                    (note, status::progress_text(&plan, &p))
                };
                if let Some(note) = note {
                    let t = if note.warning { EventType::Warning } else { EventType::Normal };
                    publish(&recorder, &reference, t, note.reason, &note.message).await;
                    let body = json!({ "status": { "plan": { "hash": plan.hash, "progress": text } } });
                    let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body)).await;
                }
            }
            metrics.in_progress.get_or_create(&labels).set(0);
        });
        Progress { steps, task, tx }
    }

    /// Where the executor sends its events.
    pub fn sink(&self) -> impl Fn(Event) + Send + Sync + use<> {
        let tx = self.tx.clone();
        move |e| {
            let _ = tx.send(e);
        }
    }

    /// Waits for every event to be published and returns the steps' progress.
    pub async fn finish(self) -> BTreeMap<String, StepStatus> {
        drop(self.tx);
        let _ = self.task.await;
        self.steps.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::removals;

    #[test]
    fn removals_null_exactly_what_the_new_status_omits() {
        let old = json!({"plan": {"hash": "a", "progress": "1/2", "steps": [{"id": "x"}]}, "stalled": {"step": "s"}, "observed": {"cmsPool": "p"}});
        let new = json!({"plan": {"hash": "b", "progress": "2/2"}, "observed": {"cmsPool": "q"}});
        assert_eq!(removals(&old, &new), Some(json!({"plan": {"steps": null}, "stalled": null})));
        assert_eq!(removals(&new, &new), None);
        assert_eq!(removals(&json!({"a": {"b": 1}}), &json!({"a": 2})), None, "a replaced value is applied, not removed");
    }
}
