//! Status for people and tools, computed from one round of the engine: conditions for kstatus,
//! Flux and Argo CD (`Ready`, `Reconciling`, `Stalled`) and the domain conditions
//! (`AwaitingApproval`, `DriftDetected`, `Paused`, `DataAtRisk`, `Conflict`, `SupportedPairing`), the plan with
//! per-step progress, and a summary of what was observed. Pure: the operator writes the result
//! to the resources, the standalone front end to a file.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{
    APPROVE_ANNOTATION, Approval, BlockerStatus, ConferenceContentRestoreStatus, DriftPolicy, JournalStatus, LyncDeployment,
    LyncDeploymentStatus, ManagementPolicy, ObservedSummary, PAUSED_ANNOTATION, PlanStatus, PoolPairStatus, StepState, StepStatus,
    UserPlacementStatus, set_condition,
};
use crate::desired::{Desired, PairDesired, PlacementDesired, RestoreDesired, UserSelector};
use crate::engine::executor::{Event, StepResult};
use crate::engine::journal::{Entry, Outcome};
use crate::model::{BackupModule, ExportStatus, FailoverState, Fqdn, Health, Observed};
use crate::planner::{Plan, StepKind};

/// What the front end did with the deployment this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to do.
    Converged,
    /// Nothing can be done now (the plan lists blockers).
    Blocked,
    /// The plan is running.
    Executing,
    /// Manual approval: the plan waits for `lyncdr.io/approve: <hash>`.
    AwaitingApproval,
    Paused,
    /// `managementPolicy: ObserveOnly`.
    ObserveOnly,
    /// `drift: Report`: the deployment drifted and is not corrected.
    DriftReported,
    /// A person must look. `resource` (`Kind/name`) is the resource whose step stalled; empty
    /// when the whole deployment is concerned (no connection, an unreadable journal or memory).
    Stalled {
        step: String,
        resource: String,
        reason: String,
    },
    /// Resources contradict each other or the topology; nothing is executed.
    Conflict(String),
    /// The deployment cannot be observed.
    Unobservable(String),
}

/// What policy allows this round, given the plan (shared by the operator and the standalone
/// front end).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gate<'a> {
    pub paused: bool,
    pub observe_only: bool,
    pub drift_report_only: bool,
    pub manual_approval: bool,
    /// The plan hash approved by annotation, if any.
    pub approved_hash: Option<&'a str>,
    pub generation: i64,
    /// The generation last fully reached.
    pub applied_generation: Option<i64>,
}

impl Phase {
    /// A stall of the whole deployment (not of one step).
    pub fn stalled(reason: impl Into<String>) -> Phase {
        Phase::Stalled { step: String::new(), resource: String::new(), reason: reason.into() }
    }

    /// A stall at a step of a plan (the resource is taken from the plan when it has the step).
    pub fn stalled_at(step: &str, plan: Option<&Plan>, reason: impl Into<String>) -> Phase {
        let resource = plan.and_then(|p| p.step(step)).map(|s| s.resource.clone()).unwrap_or_default();
        Phase::Stalled { step: step.to_string(), resource, reason: reason.into() }
    }
}

impl<'a> Gate<'a> {
    /// The gate a LyncDeployment's spec and annotations set (`generation` stands in for
    /// `metadata.generation` where manifests in files have none).
    pub fn of(dep: &'a LyncDeployment, generation: i64, applied_generation: Option<i64>) -> Gate<'a> {
        let policy = &dep.spec.policy;
        let ann = dep.metadata.annotations.as_ref();
        let get = |k: &str| ann.and_then(|a| a.get(k)).map(String::as_str);
        Gate {
            paused: get(PAUSED_ANNOTATION) == Some("true"),
            observe_only: policy.management_policy == ManagementPolicy::ObserveOnly,
            drift_report_only: policy.drift == DriftPolicy::Report,
            manual_approval: policy.approval == Approval::Manual,
            approved_hash: get(APPROVE_ANNOTATION),
            generation,
            applied_generation,
        }
    }

    /// Whether a plan already running may go on to its next step: a pause, ObserveOnly or a
    /// manual approval that does not name this plan stop it (the running steps finish).
    pub fn allows_running(&self, plan_hash: &str) -> Result<(), String> {
        if self.paused {
            Err("reconciliation was paused (lyncdr.io/paused)".into())
        } else if self.observe_only {
            Err("spec.policy.managementPolicy is now ObserveOnly".into())
        } else if self.manual_approval && self.approved_hash != Some(plan_hash) {
            Err(format!("spec.policy.approval is Manual and plan {plan_hash} is not approved (lyncdr.io/approve)"))
        } else {
            Ok(())
        }
    }

    /// The plan corrects drift (the spec did not change since it was last reached).
    pub fn drift(&self, plan: &Plan) -> bool {
        !plan.is_empty() && self.applied_generation == Some(self.generation)
    }

    pub fn decide(&self, plan: &Plan) -> Phase {
        let automatic =
            plan.steps.iter().any(|s| s.remember.iter().any(|r| matches!(r, crate::planner::Remember::AutomaticFailover { .. })));
        if plan.is_empty() {
            if plan.blockers.is_empty() { Phase::Converged } else { Phase::Blocked }
        } else if self.paused {
            Phase::Paused
        } else if self.observe_only {
            Phase::ObserveOnly
        } else if self.drift(plan) && self.drift_report_only && !automatic {
            // Automatic failover is declared policy, not drift correction.
            Phase::DriftReported
        } else if self.manual_approval && self.approved_hash != Some(plan.hash.as_str()) {
            Phase::AwaitingApproval
        } else {
            Phase::Executing
        }
    }
}

/// What a progress event tells people: the reason of a Kubernetes Event (or a log line), its
/// text, and whether it is a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub reason: &'static str,
    pub message: String,
    pub warning: bool,
}

/// Folds one executor event into the progress of a running plan, step by step. Shared by the
/// operator (status and Events) and the standalone front end (status file and output), so
/// both show a step's reason, its data-loss mark and why a step did not run.
pub fn record_progress(progress: &mut BTreeMap<String, StepStatus>, plan: &Plan, e: &Event) -> Option<Note> {
    match e {
        Event::StepStarted { id, command, run_on, at } => {
            let step = plan.step(id);
            progress.insert(
                id.clone(),
                StepStatus {
                    id: id.clone(),
                    command: command.clone(),
                    run_on: run_on.clone(),
                    state: StepState::Running,
                    reason: step.map(|s| s.reason.clone()).unwrap_or_default(),
                    data_loss: step.is_some_and(|s| s.data_loss),
                    started_at: Some(at.to_string()),
                    ..Default::default()
                },
            );
            Some(Note { reason: "StepStarted", message: format!("{id}: {command} (on {run_on})"), warning: false })
        }
        Event::StepFinished { id, at, result, .. } => {
            let (state, message) = match result {
                StepResult::Succeeded => (StepState::Succeeded, None),
                StepResult::Skipped => (StepState::Skipped, Some("its effect already held".to_string())),
                StepResult::Stale(m) => (StepState::Pending, Some(format!("not run: {m}"))),
                StepResult::Failed(m) => (StepState::Failed, Some(m.clone())),
                StepResult::Stalled(m) => (StepState::Unknown, Some(m.clone())),
            };
            let entry = progress.entry(id.clone()).or_insert_with(|| StepStatus { id: id.clone(), ..Default::default() });
            if let Some(s) = plan.step(id) {
                entry.command = s.command();
                entry.run_on = s.run_on.to_string();
                entry.reason = s.reason.clone();
                entry.data_loss = s.data_loss;
            }
            entry.state = state;
            entry.finished_at = Some(at.to_string());
            entry.message = message.clone();
            let bad = matches!(state, StepState::Failed | StepState::Unknown);
            Some(Note {
                reason: if bad { "StepFailed" } else { "StepFinished" },
                message: format!("{id}: {state}{}", message.map(|m| format!(": {m}")).unwrap_or_default()),
                warning: bad,
            })
        }
        Event::StepNote { id, note, .. } => Some(Note { reason: "StepTransport", message: format!("{id}: {note}"), warning: true }),
        Event::Observed { .. } => None,
    }
}

/// `done/total` for a plan's progress.
pub fn progress_text(plan: &Plan, progress: &BTreeMap<String, StepStatus>) -> String {
    let done = plan.steps.iter().filter(|s| progress.get(&s.id).is_some_and(|x| x.state.is_done())).count();
    format!("{done}/{}", plan.steps.len())
}

/// One round's facts.
pub struct Round<'a> {
    pub desired: &'a Desired,
    pub observed: Option<&'a Observed>,
    pub plan: Option<&'a Plan>,
    pub phase: Phase,
    pub generation: i64,
    pub drift: bool,
    /// Progress of the plan's steps so far.
    pub progress: &'a BTreeMap<String, StepStatus>,
    pub now: Time,
}

impl<'a> Round<'a> {
    /// The same round, seen from a child resource with its own generation.
    fn for_child(&self, generation: i64) -> Round<'a> {
        Round {
            desired: self.desired,
            observed: self.observed,
            plan: self.plan,
            phase: self.phase.clone(),
            generation,
            drift: self.drift,
            progress: self.progress,
            now: self.now.clone(),
        }
    }
}

fn cond(r: &Round, type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: Some(r.generation),
        last_transition_time: r.now.clone(),
    }
}

/// Ready, Reconciling and Stalled for a phase.
fn lifecycle(r: &Round, conditions: &mut Vec<Condition>, scope_steps: usize, scope_blocked: Option<String>) {
    let (ready, reconciling, stalled, reason, message): (bool, bool, bool, &str, String) = match &r.phase {
        Phase::Stalled { step, reason, .. } if step.is_empty() => (false, false, true, "Stalled", reason.clone()),
        Phase::Stalled { step, reason, .. } => (false, false, true, "Stalled", format!("step {step}: {reason}")),
        Phase::Conflict(m) => (false, false, true, "Conflict", m.clone()),
        Phase::Unobservable(m) => (false, false, true, "ObservationFailed", m.clone()),
        _ if scope_steps == 0 && scope_blocked.is_none() => {
            (true, false, false, "Converged", "the deployment matches the desired state".to_string())
        }
        _ if scope_steps == 0 => (false, false, false, "Blocked", scope_blocked.unwrap_or_default()),
        Phase::Executing => (false, true, false, "Executing", format!("{scope_steps} steps to run")),
        Phase::AwaitingApproval => (false, false, false, "AwaitingApproval", "the plan waits for approval".to_string()),
        Phase::Paused => (false, false, false, "Paused", "reconciliation is paused".to_string()),
        Phase::ObserveOnly => {
            (false, false, false, "ObserveOnly", "managementPolicy is ObserveOnly: the plan is reported, not run".to_string())
        }
        Phase::DriftReported => (false, false, false, "DriftDetected", "the deployment drifted; drift: Report leaves it".to_string()),
        _ => (false, true, false, "Planned", format!("{scope_steps} steps to run")),
    };
    set_condition(conditions, cond(r, "Ready", ready, reason, message.clone()));
    set_condition(
        conditions,
        cond(
            r,
            "Reconciling",
            reconciling,
            if reconciling { reason } else { "Idle" },
            if reconciling { message.clone() } else { String::new() },
        ),
    );
    set_condition(
        conditions,
        cond(r, "Stalled", stalled, if stalled { reason } else { "Progressing" }, if stalled { message } else { String::new() }),
    );
}

fn step_status(r: &Round, s: &crate::planner::Step) -> StepStatus {
    let mut st = r.progress.get(&s.id).cloned().unwrap_or_else(|| StepStatus { state: StepState::Pending, ..Default::default() });
    st.id = s.id.clone();
    st.command = s.command();
    st.run_on = s.run_on.to_string();
    st.reason = s.reason.clone();
    st.data_loss = s.data_loss;
    st
}

/// Whether any pool's user data is not in sync with its partner.
fn data_at_risk(o: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    for (p, po) in &o.pools {
        if o.topology.partner(p).is_none() {
            continue;
        }
        match po.module(BackupModule::PresenceFocus) {
            Some(m) if m.export.is_synced() => {}
            Some(m) => out.push(format!("{p}: Backup Service {:?}", m.export)),
            None if po.health() != Health::Up => out.push(format!("{p}: unreachable, Backup Service state unknown")),
            None => {}
        }
    }
    out
}

pub fn deployment_status(prev: Option<&LyncDeploymentStatus>, r: &Round) -> LyncDeploymentStatus {
    let mut st = prev.cloned().unwrap_or_default();
    st.observed_generation = Some(r.generation);
    let steps = r.plan.map(|p| p.steps.len()).unwrap_or(0);
    let blocked = r.plan.and_then(|p| p.blockers.first()).map(|b| format!("{}: {}", b.resource, b.reason));
    lifecycle(r, &mut st.conditions, steps, blocked);
    let awaiting = r.phase == Phase::AwaitingApproval;
    let hash = r.plan.map(|p| p.hash.clone()).unwrap_or_default();
    set_condition(
        &mut st.conditions,
        cond(
            r,
            "AwaitingApproval",
            awaiting,
            if awaiting { "ApprovalRequired" } else { "NotRequired" },
            if awaiting { format!("annotate lyncdr.io/approve={hash} to run the plan") } else { String::new() },
        ),
    );
    set_condition(
        &mut st.conditions,
        cond(
            r,
            "DriftDetected",
            r.drift,
            if r.drift { "Drifted" } else { "InSync" },
            if r.drift { format!("{steps} steps would correct it") } else { String::new() },
        ),
    );
    let paused = r.phase == Phase::Paused;
    set_condition(&mut st.conditions, cond(r, "Paused", paused, if paused { "PausedByAnnotation" } else { "Active" }, ""));
    let risk = r.observed.map(data_at_risk).unwrap_or_default();
    set_condition(
        &mut st.conditions,
        cond(r, "DataAtRisk", !risk.is_empty(), if risk.is_empty() { "InSync" } else { "NotReplicated" }, risk.join("; ")),
    );
    let conflict = matches!(r.phase, Phase::Conflict(_));
    let cmsg = if let Phase::Conflict(m) = &r.phase { m.clone() } else { String::new() };
    set_condition(&mut st.conditions, cond(r, "Conflict", conflict, if conflict { "ConflictingResources" } else { "NoConflict" }, cmsg));
    if let Some(o) = r.observed {
        st.observed = Some(summary(o));
    }
    // Notices follow the deployment's state, not the plan's steps: kept from the last plan
    // when this round has none (the deployment could not be observed).
    if let Some(p) = r.plan {
        st.notices = p.notices.clone();
    }
    st.plan = r.plan.map(|p| PlanStatus {
        hash: p.hash.clone(),
        progress: progress_text(p, r.progress),
        steps: p.steps.iter().map(|s| step_status(r, s)).collect(),
        blockers: p.blockers.iter().map(|b| BlockerStatus { resource: b.resource.clone(), reason: b.reason.clone() }).collect(),
        notices: p.notices.clone(),
    });
    st
}

fn summary(o: &Observed) -> ObservedSummary {
    let pools = o
        .pools
        .iter()
        .map(|(p, po)| {
            let export = po.module(BackupModule::PresenceFocus).map(|m| format!("{:?}", m.export)).unwrap_or_else(|| "unknown".into());
            let serving = match po.failover {
                FailoverState::Normal => "serves its own users".to_string(),
                FailoverState::FailedOver => format!("users served by {}", o.serving(p)),
                s => format!("{s:?}"),
            };
            format!("{p}: {}, {serving}, Backup Service {export}", po.health())
        })
        .collect();
    let edges = o
        .edges
        .iter()
        .map(|(e, eo)| {
            format!(
                "{e}: {}, next hop {}",
                if eo.is_up() { "up" } else { "down" },
                eo.next_hop.as_ref().map(ToString::to_string).unwrap_or_else(|| "none".into())
            )
        })
        .collect();
    ObservedSummary {
        cms_pool: o.cms.master_pool.as_ref().map(ToString::to_string),
        sip_federation_pool: o.federation.sip_edge.as_ref().map(ToString::to_string),
        xmpp_federation_pool: o.federation.xmpp_edge.as_ref().map(ToString::to_string),
        pools,
        edges,
    }
}

fn scoped_steps(r: &Round, resource: &str) -> Vec<StepStatus> {
    r.plan
        .map(|p| p.steps.iter().filter(|s| s.resource == resource && s.kind == StepKind::Change).map(|s| step_status(r, s)).collect())
        .unwrap_or_default()
}

fn scoped_blocker(r: &Round, resource: &str) -> Option<String> {
    r.plan.and_then(|p| p.blockers.iter().find(|b| b.resource == resource)).map(|b| b.reason.clone())
}

/// A child's lifecycle: the phase applies to it only if it is concerned.
fn child_lifecycle(r: &Round, conditions: &mut Vec<Condition>, resource: &str) -> usize {
    let steps = r.plan.map(|p| p.steps.iter().filter(|s| s.resource == resource).count()).unwrap_or(0);
    let blocked = scoped_blocker(r, resource);
    let phase = match &r.phase {
        // A stall at another resource's step holds this resource's steps too; a resource with
        // nothing to do is not concerned.
        Phase::Stalled { step, resource: owner, reason } if !owner.is_empty() && owner != resource => {
            if steps == 0 {
                Phase::Executing
            } else {
                Phase::Stalled {
                    step: step.clone(),
                    resource: owner.clone(),
                    reason: format!("nothing runs until the stall of {owner} is dealt with: {reason}"),
                }
            }
        }
        Phase::Conflict(m) if !m.contains(resource) => Phase::Blocked,
        other => other.clone(),
    };
    let scoped = Round { phase, ..r.for_child(r.generation) };
    lifecycle(&scoped, conditions, steps, blocked);
    steps
}

pub fn pair_status(prev: Option<&PoolPairStatus>, r: &Round, p: &PairDesired, generation: i64) -> PoolPairStatus {
    let mut st = prev.cloned().unwrap_or_default();
    let res = p.resource();
    let r = r.for_child(generation);
    st.observed_generation = Some(generation);
    child_lifecycle(&r, &mut st.conditions, &res);
    st.steps = scoped_steps(&r, &res);
    if let Some(o) = r.observed {
        let [a, b] = &p.pools;
        st.serving = Some(format!("{a}→{}, {b}→{}", o.serving(a), o.serving(b)));
        let export = |x: &Fqdn| {
            o.pool(x)
                .and_then(|po| po.module(BackupModule::PresenceFocus))
                .map(|m| format!("{:?}", m.export))
                .unwrap_or_else(|| "Unknown".into())
        };
        st.backup_sync = Some(format!("{}/{}", export(a), export(b)));
        let synced = |x: &Fqdn| o.pool(x).and_then(|po| po.module(BackupModule::PresenceFocus)).is_some_and(|m| m.export.is_synced());
        let interval = o.sync_interval.map(|i| i.to_string()).unwrap_or_else(|| "?".into());
        st.data_at_risk = Some(if synced(a) && synced(b) {
            format!("<= {interval}")
        } else {
            // A point in time rather than an age, so the status does not change every poll.
            let oldest = [a, b].iter().filter_map(|x| o.history.unsynced_since.get(*x).copied()).min();
            match oldest {
                Some(t) => format!("changes since {t}"),
                None => "unknown".to_string(),
            }
        });
        let (paired, reason, message) = pairing_condition(o, a, b);
        st.pairing = Some(if paired { "Paired".into() } else { reason.to_string() });
        set_condition(&mut st.conditions, cond(&r, "Paired", paired, reason, message));
        if let Some((ok, reason, message)) = supported_pairing_condition(o, p) {
            set_condition(&mut st.conditions, cond(&r, "SupportedPairing", ok, reason, message));
        }
        let risk = [a, b].iter().any(|x| {
            o.pool(x)
                .and_then(|po| po.module(BackupModule::PresenceFocus))
                .is_some_and(|m| !m.export.is_synced() || m.export == ExportStatus::ErrorState)
        });
        set_condition(
            &mut st.conditions,
            cond(&r, "DataAtRisk", risk, if risk { "NotReplicated" } else { "InSync" }, st.backup_sync.clone().unwrap_or_default()),
        );
        // After an automatic failover, failback waits for a person (unless automatic failback).
        let waiting = p.pools.iter().find(|x| {
            o.history.automatic_failovers.contains_key(*x)
                && o.failover(x) == FailoverState::FailedOver
                && o.health(x) == Health::Up
                && p.failed_over.is_none()
        });
        let msg = waiting
            .map(|x| format!("{x} is back; annotate {res} with lyncdr.io/approve-failback=true to fail its users back"))
            .unwrap_or_default();
        let approval = waiting.is_some() && p.automatic_failback.is_none() && !p.failback_approved;
        set_condition(
            &mut st.conditions,
            cond(
                &r,
                "AwaitingApproval",
                approval,
                if approval { "FailbackApprovalRequired" } else { "NotRequired" },
                if approval { msg } else { String::new() },
            ),
        );
    }
    st
}

/// Whether the pair breaks a supported-pairing rule (JJ204697, JJ205248): the reason names the
/// first rule broken, the message all of them and the consent field. Unknown while the host
/// facts of a pool have never been read.
fn supported_pairing_condition(o: &Observed, p: &PairDesired) -> Option<(bool, &'static str, String)> {
    let [a, b] = &p.pools;
    let (ta, tb) = (&o.topology.pools.get(a)?.traits, &o.topology.pools.get(b)?.traits);
    let known = !o.unknown_traits.contains(a) && !o.unknown_traits.contains(b);
    let violations: Vec<_> = crate::model::pairing_violations((a, ta), (b, tb))
        .into_iter()
        .filter(|v| known || !matches!(v.rule, "SameOperatingSystem" | "LikeProduct" | "LikeVirtualization"))
        .collect();
    let Some(first) = violations.first() else {
        return Some((true, "Supported", format!("{a} and {b} meet the supported-pairing rules")));
    };
    let all: Vec<String> = violations.iter().map(ToString::to_string).collect();
    let consent = if p.allow_unsupported_pairing {
        "failover allowed by spec.allowUnsupportedPairing".to_string()
    } else {
        format!("users move between them only with spec.allowUnsupportedPairing: true on {}", p.resource())
    };
    Some((false, first.rule, format!("unsupported pairing: {}; {consent}", all.join("; "))))
}

/// Whether the two pools back each other up in Lync (domain document 4.1): paired in the
/// topology, the Backup Service installed and running on every Front End, both directions in
/// steady state. The reason names the first thing that differs.
fn pairing_condition(o: &Observed, a: &Fqdn, b: &Fqdn) -> (bool, &'static str, String) {
    let partner = |x: &Fqdn| o.topology.partner(x).map(ToString::to_string).unwrap_or_else(|| "none".into());
    if o.topology.partner(a) != Some(b) || o.topology.partner(b) != Some(a) {
        return (false, "NotPaired", format!("backup pool of {a}: {}; of {b}: {}", partner(a), partner(b)));
    }
    for x in [a, b] {
        if o.health(x) != Health::Up {
            return (false, "NotObserved", format!("{x} cannot be reached, so its Backup Service is not verified"));
        }
    }
    let fes = |want: fn(&Option<bool>) -> bool| -> Vec<String> {
        [a, b]
            .iter()
            .filter_map(|x| o.pool(x))
            .flat_map(|p| p.backup_service.iter().filter(|(_, s)| want(s)).map(|(fe, _)| fe.to_string()))
            .collect()
    };
    let missing = fes(|s| s.is_none());
    if !missing.is_empty() {
        return (false, "BackupServiceNotInstalled", format!("local setup has not installed the Backup Service on {}", missing.join(", ")));
    }
    let stopped = fes(|s| *s == Some(false));
    if !stopped.is_empty() {
        return (false, "BackupServiceNotRunning", format!("LYNCBACKUP is not running on {}", stopped.join(", ")));
    }
    let state = |x: &Fqdn| o.pool(x).and_then(|p| p.module(BackupModule::PresenceFocus)).map(|m| m.export);
    let (sa, sb) = (state(a), state(b));
    if !sa.is_some_and(|s| s.is_synced()) || !sb.is_some_and(|s| s.is_synced()) {
        let show = |s: Option<ExportStatus>| s.map(|s| format!("{s:?}")).unwrap_or_else(|| "Unknown".into());
        return (false, "NotInSync", format!("{a} to {b}: {}; {b} to {a}: {}", show(sa), show(sb)));
    }
    (true, "Paired", format!("{a} and {b} back each other up; the Backup Service is in steady state both ways"))
}

pub fn placement_status(prev: Option<&UserPlacementStatus>, r: &Round, p: &PlacementDesired, generation: i64) -> UserPlacementStatus {
    let mut st = prev.cloned().unwrap_or_default();
    let res = format!("UserPlacement/{}", p.name);
    let r = r.for_child(generation);
    st.observed_generation = Some(generation);
    child_lifecycle(&r, &mut st.conditions, &res);
    st.steps = scoped_steps(&r, &res);
    if let Some(o) = r.observed {
        st.remaining = Some(match &p.selector {
            UserSelector::Users(users) => {
                users.iter().filter(|u| o.users.get(*u).and_then(|h| h.as_ref()) != Some(&p.target)).count() as i64
            }
            UserSelector::FromPool(f) => o.pool(f).and_then(|po| po.homed_users).map(|n| n as i64).unwrap_or(-1),
        });
    }
    st
}

pub fn restore_status(
    prev: Option<&ConferenceContentRestoreStatus>,
    r: &Round,
    x: &RestoreDesired,
    generation: i64,
) -> ConferenceContentRestoreStatus {
    let mut st = prev.cloned().unwrap_or_default();
    let res = format!("ConferenceContentRestore/{}", x.name);
    let r = r.for_child(generation);
    st.observed_generation = Some(generation);
    child_lifecycle(&r, &mut st.conditions, &res);
    st.steps = scoped_steps(&r, &res);
    if let Some(o) = r.observed {
        st.completed_generation = o.history.completed_restores.get(&x.name).copied();
    }
    st
}

/// The journal as status shows it (each entry with its full record, for resolving it later).
pub fn journal_status(entries: &[Entry]) -> Vec<JournalStatus> {
    entries
        .iter()
        .map(|e| JournalStatus {
            step: e.step.id.clone(),
            plan_hash: e.plan_hash.clone(),
            command: e.step.command(),
            run_on: e.step.run_on.to_string(),
            started_at: e.started_at.to_string(),
            by: e.by.clone(),
            outcome: match &e.outcome {
                Outcome::Pending => "Pending".into(),
                Outcome::Succeeded => "Succeeded".into(),
                Outcome::Failed(_) => "Failed".into(),
            },
            message: match &e.outcome {
                Outcome::Failed(m) => Some(m.clone()),
                _ => None,
            },
            record: serde_json::to_value(e).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn round<'a>(d: &'a Desired, plan: Option<&'a Plan>, progress: &'a BTreeMap<String, StepStatus>) -> Round<'a> {
        Round {
            desired: d,
            observed: None,
            plan,
            phase: Phase::Converged,
            generation: 1,
            drift: false,
            progress,
            now: Time(Timestamp::UNIX_EPOCH),
        }
    }

    /// Notices live in `status.notices` while the plan that reports them is empty, and are kept
    /// when a round has no plan (issue 10, finding 5); they go once a plan no longer has them.
    #[test]
    fn notices_outlast_the_plan_steps() {
        let d = Desired::default();
        let progress = BTreeMap::new();
        let notice = "PoolPair/dal-sea: while pool01.dal's users are served by pool01.sea, restore the LIS database".to_string();
        let empty = Plan { hash: String::new(), steps: vec![], blockers: vec![], notices: vec![notice.clone()], recheck_after: None };
        let st = deployment_status(None, &round(&d, Some(&empty), &progress));
        assert_eq!(st.notices, std::slice::from_ref(&notice));
        let st = deployment_status(Some(&st), &round(&d, None, &progress));
        assert_eq!(st.notices, [notice], "a round without a plan keeps them");
        let gone = Plan { notices: vec![], ..empty };
        assert!(deployment_status(Some(&st), &round(&d, Some(&gone), &progress)).notices.is_empty());
    }
}
