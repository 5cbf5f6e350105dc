//! The engine: observe, plan, execute, until the deployment matches the desired state or
//! something blocks. One core behind every front end: `lyncdr demo`, `lyncdr plan`,
//! `lyncdr run --manifests` and the Kubernetes controller differ only in where the desired
//! state comes from, where the journal lives and how progress is shown.

pub mod executor;
pub mod journal;
pub mod observe;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::Lync;
use crate::desired::{Desired, UserSelector};
use crate::model::{History, Observed, Span};
use crate::planner::{Plan, Policy, plan};
use executor::{EventSink, Executor, Resolution, RunOutcome};
use journal::{Journal, Outcome};
use observe::{ObserveError, Scope};

/// What to observe for a desired state.
pub fn scope_for(d: &Desired) -> Scope {
    let mut s = Scope { response_groups: d.rgs_export_path.is_some(), ..Default::default() };
    for p in &d.placements {
        match &p.selector {
            UserSelector::Users(u) => s.users.extend(u.iter().cloned()),
            UserSelector::FromPool(f) => {
                s.count_pools.insert(f.clone());
            }
        }
    }
    s
}

/// Where a running plan reads the desired state before each step. A plan can run for an hour
/// (a failback of 20,000 users); a spec changed meanwhile (consent withdrawn, a pair set back,
/// approval switched to Manual, a pause) must stop the steps it no longer wants. The controller
/// answers from its reflector stores and the standalone front end from its manifests, so
/// reading costs no API call. The plan's own hash is given so a source can check that policy
/// still lets this very plan run (e.g. a manual approval names it).
pub trait DesiredSource: Send + Sync {
    /// The desired state now, or why the rest of the plan must not run (the message is shown
    /// on the steps that did not start).
    fn current(&self, plan_hash: &str) -> Result<Arc<Desired>, String>;
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub concurrency: usize,
    pub wait_timeout: Span,
    pub poll: Span,
    /// Plans run per `converge` call before giving up (protects against a plan that never
    /// converges).
    pub max_rounds: usize,
    pub by: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { concurrency: 4, wait_timeout: Span::mins(30), poll: Span::secs(15), max_rounds: 20, by: "lyncdr".into() }
    }
}

/// How a `converge` call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Converged {
    /// The deployment matches the desired state (notices may still ask people for something).
    Done { observed: Box<Observed>, notices: Vec<String> },
    /// Nothing can be done now; the plan lists why (and when to look again).
    Blocked { plan: Plan, observed: Box<Observed> },
    /// A step failed or its outcome is unknown; a person must look.
    Stalled { step: String, reason: String, plan: Plan },
    /// The deployment cannot be observed.
    Unobservable { reason: String },
}

pub struct Engine<'a> {
    pub lync: &'a dyn Lync,
    pub journal: &'a dyn Journal,
    pub policy: Policy,
    pub settings: Settings,
    /// Whether this writer may still act (the operator's leadership); `None`: always.
    pub fence: Option<Box<dyn Fn() -> bool + Send + Sync + 'a>>,
    /// The desired state as it is now, read before each step; `None`: the desired state a plan
    /// was made for holds for the whole run (demos, tests).
    pub live: Option<&'a dyn DesiredSource>,
}

impl<'a> Engine<'a> {
    /// An engine on a backend; the journal holds the step records and the operator memory.
    pub fn new(lync: &'a dyn Lync, journal: &'a dyn Journal) -> Engine<'a> {
        Engine { lync, journal, policy: Policy::default(), settings: Settings::default(), fence: None, live: None }
    }

    /// The operator memory, as the journal holds it.
    pub fn history(&self) -> History {
        self.journal.memory()
    }

    fn executor<'b>(&'b self, desired: &'b Desired, scope: &'b Scope, events: EventSink<'b>) -> Executor<'b> {
        Executor {
            lync: self.lync,
            journal: self.journal,
            desired,
            policy: &self.policy,
            scope,
            concurrency: self.settings.concurrency,
            wait_timeout: self.settings.wait_timeout,
            poll: self.settings.poll,
            by: self.settings.by.clone(),
            events,
            fence: self.fence.as_deref().map(|f| f as &(dyn Fn() -> bool + Send + Sync)),
            live: self.live,
        }
    }

    /// Observes and plans, without acting.
    pub async fn preview(&self, desired: &Desired, events: EventSink<'_>) -> Result<(Observed, Plan), ObservationError> {
        let scope = scope_for(desired);
        let ex = self.executor(desired, &scope, events);
        let o = ex.observe().await?;
        let p = plan(desired, &o, &self.policy);
        Ok((o, p))
    }

    /// Settles journal entries left pending by an earlier run: each is checked against the
    /// deployment; if its effect is not observed the engine stalls rather than repeat it.
    pub async fn resolve_journal(&self, desired: &Desired, events: EventSink<'_>) -> Result<(), Stall> {
        let pending = self.journal.pending().await.map_err(|e| Stall::journal(e.to_string()))?;
        let scope = scope_for(desired);
        let ex = self.executor(desired, &scope, events);
        for e in pending {
            let journal_err =
                |err: journal::JournalError| Stall { step: e.step.id.clone(), resource: e.step.resource.clone(), reason: err.to_string() };
            let now = || self.lync.now();
            match ex.resolve(&e.step, e.request.as_ref()).await {
                Resolution::Done => {
                    // What the step teaches the memory is recorded with its success.
                    self.journal.finish(&e.step.id, &Outcome::Succeeded, now()).await.map_err(journal_err)?;
                }
                Resolution::NeverRan(why) | Resolution::Failed(why) => {
                    // It did not take effect: the plan decides again.
                    self.journal.finish(&e.step.id, &Outcome::Failed(why), now()).await.map_err(journal_err)?;
                }
                Resolution::NotDone if !e.step.expect.observable() => {
                    // Repeatable steps without an observable effect (backups, setup) are planned again.
                    let outcome = Outcome::Failed("outcome unknown after a restart; the step is repeatable".into());
                    self.journal.finish(&e.step.id, &outcome, now()).await.map_err(journal_err)?;
                }
                Resolution::NotDone => {
                    return Err(Stall {
                        step: e.step.id.clone(),
                        resource: e.step.resource.clone(),
                        reason: format!(
                            "step {} (`{}` on {}) was started at {} by {} and its outcome is unknown; its effect ({}) is not observed. Check the deployment, then resolve the journal entry (lyncdr resolve, or the annotation lyncdr.io/resolve: {})",
                            e.step.id,
                            e.step.command(),
                            e.step.run_on,
                            e.started_at,
                            e.by,
                            executor::describe(&e.step.expect),
                            e.step.id
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Everything before acting: settle the journal, observe, plan, and check the desired state
    /// against the observed topology. The front ends decide from the plan whether to execute it.
    /// A stall still comes with the observation and the plan when they can be had, so a person
    /// sees the deployment as it is now, not as it was before the stall.
    pub async fn prepare(&self, desired: &Desired, events: EventSink<'_>) -> Result<(Observed, Plan), Unready> {
        let stall = self.resolve_journal(desired, events).await.err();
        let seen = self.preview(desired, events).await;
        match (stall, seen) {
            (Some(stall), seen) => {
                let (observed, plan) = match seen {
                    Ok((o, p)) => (Some(Box::new(o)), Some(p)),
                    Err(_) => (None, None),
                };
                Err(Unready::Stalled { stall, observed, plan })
            }
            (None, Err(e)) => Err(Unready::Unobservable(e)),
            (None, Ok((o, p))) => {
                desired.check_against(&o.topology).map_err(Unready::Conflict)?;
                Ok((o, p))
            }
        }
    }

    /// Runs one plan (already observed and approved) to its end.
    pub async fn execute(&self, desired: &Desired, p: &Plan, events: EventSink<'_>) -> RunOutcome {
        let scope = scope_for(desired);
        self.executor(desired, &scope, events).run(p).await
    }

    /// Observe, plan and execute until converged, blocked or stalled.
    pub async fn converge(&self, desired: &Desired, events: EventSink<'_>) -> Converged {
        if let Err(stall) = self.resolve_journal(desired, events).await {
            return Converged::Stalled { step: stall.step, reason: stall.reason, plan: empty_plan() };
        }
        let scope = scope_for(desired);
        let ex = self.executor(desired, &scope, events);
        let mut last_replan = String::new();
        for _ in 0..self.settings.max_rounds {
            let o = match ex.observe().await {
                Ok(o) => o,
                Err(e) => return Converged::Unobservable { reason: e.to_string() },
            };
            let p = plan(desired, &o, &self.policy);
            if p.is_empty() {
                return if p.blockers.is_empty() && p.recheck_after.is_none() {
                    Converged::Done { observed: Box::new(o), notices: p.notices }
                } else {
                    Converged::Blocked { plan: p, observed: Box::new(o) }
                };
            }
            match ex.run(&p).await {
                RunOutcome::Completed => {}
                RunOutcome::Replan(why) => {
                    if why == last_replan {
                        // Give the deployment a moment before trying the same thing again.
                        self.lync.sleep(self.settings.poll).await;
                    }
                    last_replan = why;
                }
                RunOutcome::Failed { step, error } => return Converged::Stalled { step, reason: error, plan: p },
                RunOutcome::Stalled { step, reason } => return Converged::Stalled { step, reason, plan: p },
            }
        }
        Converged::Stalled {
            step: String::new(),
            reason: format!("no convergence after {} plans", self.settings.max_rounds),
            plan: empty_plan(),
        }
    }
}

/// A journal entry whose outcome cannot be settled: nothing runs until a person looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// The step id of the entry (empty when the journal itself cannot be read).
    pub step: String,
    /// `Kind/name` of the resource the step served.
    pub resource: String,
    pub reason: String,
}

impl Stall {
    /// The journal cannot be read or written.
    pub fn journal(reason: String) -> Stall {
        Stall { step: String::new(), resource: String::new(), reason }
    }
}

/// Why a round could not observe the deployment; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum ObservationError {
    #[error("observation failed: {0}")]
    Observe(#[source] ObserveError),
    /// What the observation teaches could not be made durable, so it is not acted on.
    #[error("cannot record the operator memory: {0}")]
    Memory(#[source] journal::JournalError),
}

/// Why a round cannot go as far as a plan.
#[derive(Debug, thiserror::Error)]
pub enum Unready {
    /// A journal entry has no known outcome and its effect is not observed. The observation and
    /// the plan of this round, if they could be had, are shown but not executed.
    #[error("{}", stall.reason)]
    Stalled { stall: Stall, observed: Option<Box<Observed>>, plan: Option<Plan> },
    #[error(transparent)]
    Unobservable(ObservationError),
    /// The desired state names pools or Edge pools the deployment does not have.
    #[error(transparent)]
    Conflict(crate::desired::DesiredError),
}

fn empty_plan() -> Plan {
    Plan { hash: String::new(), steps: vec![], blockers: vec![], notices: vec![], recheck_after: None }
}
