//! The executor: runs a plan against a [`Lync`] backend. Ready steps (dependencies done) start
//! up to the concurrency limit. Before each step the deployment is observed again: a step whose
//! effect already holds is skipped; a step the current plan no longer contains (or contains
//! differently, or whose prerequisites are needed again) stops the run as stale so the engine
//! plans anew. Each mutating step is journaled before its cmdlet runs and after, and its effect
//! is verified by observation. An outcome that cannot be established stalls the run with a
//! clear message instead of guessing.

use std::collections::BTreeSet;
use std::sync::Mutex;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};

use super::journal::{Entry, Journal, Outcome};
use super::observe::{Scope, observe};
use crate::desired::Desired;
use crate::lync::{Lync, LyncError};
use crate::model::{FailoverState, History, Observed, RunOn, Span, Stamp};
use crate::planner::{Expect, Plan, Policy, Step, StepKind, plan};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result", content = "detail")]
pub enum StepResult {
    Succeeded,
    /// Its effect already held; nothing ran.
    Skipped,
    /// The current plan no longer wants it as planned.
    Stale(String),
    /// The cmdlet failed; nothing else is known to have changed.
    Failed(String),
    /// The outcome cannot be established; a person must look.
    Stalled(String),
}

/// Progress, for front ends (timelines, status, events, metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum Event {
    Observed { at: Stamp },
    StepStarted { id: String, command: String, run_on: String, at: Stamp },
    StepFinished { id: String, at: Stamp, result: StepResult },
}

pub type EventSink<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// How a plan's execution ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "detail")]
pub enum RunOutcome {
    /// Every step succeeded or was skipped.
    Completed,
    /// The plan went stale: observe and plan again.
    Replan(String),
    /// A cmdlet failed.
    Failed { step: String, error: String },
    /// A person must look.
    Stalled { step: String, reason: String },
}

pub struct Executor<'a> {
    pub lync: &'a dyn Lync,
    pub journal: &'a dyn Journal,
    pub desired: &'a Desired,
    pub policy: &'a Policy,
    pub scope: &'a Scope,
    pub concurrency: usize,
    /// How long a wait step (or a verification) may take.
    pub wait_timeout: Span,
    /// Interval between observations while waiting.
    pub poll: Span,
    /// Identity of this writer, for the journal.
    pub by: String,
    pub events: EventSink<'a>,
    /// Operator memory, updated by observations and by steps that took effect.
    pub history: &'a Mutex<History>,
    /// Whether this writer may still act (leadership); checked before every mutating step.
    pub fence: Option<&'a (dyn Fn() -> bool + Send + Sync)>,
}

impl Executor<'_> {
    fn history(&self) -> History {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Folds an observation into the memory as it is now. Steps run concurrently: another
    /// step may have remembered something (a cleanup done, an automatic failover) while this
    /// observation was under way, so the memory the observation started from is not written
    /// back; only what the observation itself teaches (host facts, health and sync flips) is.
    fn fold(&self, o: &Observed) -> History {
        let Ok(mut g) = self.history.lock() else { return o.history.clone() };
        let mut next = History { pool_traits: o.history.pool_traits.clone(), ..g.clone() };
        next = next.remember(o);
        *g = next.clone();
        next
    }

    /// Observes, folding the observation into the operator memory.
    pub async fn observe(&self) -> Result<Observed, String> {
        let mut last = String::new();
        for attempt in 0..3 {
            match observe(self.lync, self.scope, &self.history()).await {
                Ok(mut o) => {
                    o.history = self.fold(&o);
                    (self.events)(Event::Observed { at: o.at });
                    return Ok(o);
                }
                Err(e) => {
                    last = e.to_string();
                    if attempt < 2 {
                        self.lync.sleep(self.poll).await;
                    }
                }
            }
        }
        Err(format!("observation failed: {last}"))
    }

    fn remember(&self, step: &Step) {
        if step.remember.is_empty() {
            return;
        }
        let now = self.lync.now();
        if let Ok(mut h) = self.history.lock() {
            for r in &step.remember {
                r.apply(&mut h, now);
            }
        }
    }

    fn run_on(&self, step: &Step, o: &Observed) -> RunOn {
        if o.topology.pools.contains_key(&step.run_on) || o.topology.edges.contains_key(&step.run_on) {
            RunOn::Pool(step.run_on.clone())
        } else {
            RunOn::Server(step.run_on.clone())
        }
    }

    /// Runs a plan to completion, or until it goes stale, fails or stalls.
    pub async fn run(&self, p: &Plan) -> RunOutcome {
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut pending: Vec<&Step> = p.steps.iter().collect();
        let mut running = FuturesUnordered::new();
        let mut stop: Option<RunOutcome> = None;
        loop {
            while stop.is_none() && running.len() < self.concurrency.max(1) {
                let Some(i) = pending.iter().position(|s| s.after.iter().all(|a| done.contains(a))) else { break };
                let step = pending.remove(i);
                running.push(async move { (step, self.step(p, step).await) });
            }
            let Some((step, result)) = running.next().await else { break };
            (self.events)(Event::StepFinished { id: step.id.clone(), at: self.lync.now(), result: result.clone() });
            match result {
                StepResult::Succeeded | StepResult::Skipped => {
                    done.insert(step.id.clone());
                }
                StepResult::Stale(why) => {
                    stop.get_or_insert(RunOutcome::Replan(format!("{}: {why}", step.id)));
                }
                StepResult::Failed(e) => {
                    // An unknown outcome matters more than a failure: keep reporting it.
                    if !matches!(stop, Some(RunOutcome::Stalled { .. })) {
                        stop = Some(RunOutcome::Failed { step: step.id.clone(), error: e });
                    }
                }
                StepResult::Stalled(r) => {
                    stop = Some(RunOutcome::Stalled { step: step.id.clone(), reason: r });
                }
            }
        }
        match stop {
            Some(s) => s,
            None if pending.is_empty() => RunOutcome::Completed,
            None => RunOutcome::Replan("some steps could not start".into()),
        }
    }

    async fn step(&self, p: &Plan, step: &Step) -> StepResult {
        let obs = match self.observe().await {
            Ok(o) => o,
            Err(e) => return StepResult::Stale(e),
        };
        if step.expect.observable() && step.expect.holds(&obs) {
            self.remember(step);
            return StepResult::Skipped;
        }
        // A wait changes nothing: it only needs its condition. A change must still be wanted,
        // exactly as planned, with its prerequisites still in effect.
        if step.kind == StepKind::Wait {
            (self.events)(Event::StepStarted {
                id: step.id.clone(),
                command: step.command(),
                run_on: step.run_on.to_string(),
                at: self.lync.now(),
            });
            return self.wait_for(step, &step.expect).await;
        }
        let fresh = plan(self.desired, &obs, self.policy);
        match fresh.step(&step.id) {
            None => return StepResult::Stale("the current plan no longer contains it".into()),
            Some(f) if !f.same_call(step) => return StepResult::Stale(format!("the current plan runs it differently: {}", f.command())),
            Some(f) => {
                // A prerequisite whose effect no longer holds is needed again (steps without an
                // observable effect, such as backups, are planned again harmlessly).
                if let Some(dep) = f.after.iter().find(|d| fresh.step(d).is_some_and(|s| s.expect.observable() && !s.expect.holds(&obs))) {
                    return StepResult::Stale(format!("its prerequisite {dep} is needed again"));
                }
            }
        }
        (self.events)(Event::StepStarted {
            id: step.id.clone(),
            command: step.command(),
            run_on: step.run_on.to_string(),
            at: self.lync.now(),
        });
        self.change(p, step, &obs).await
    }

    /// Polls until the step's condition holds, or times out.
    async fn wait_for(&self, step: &Step, expect: &Expect) -> StepResult {
        let start = self.lync.now();
        loop {
            match self.observe().await {
                Ok(o) if expect.holds(&o) => {
                    self.remember(step);
                    return StepResult::Succeeded;
                }
                Ok(_) | Err(_) => {}
            }
            if self.lync.now().since(start) >= self.wait_timeout {
                return StepResult::Stalled(format!("waited {} for: {}", self.wait_timeout, describe(expect)));
            }
            self.lync.sleep(self.poll).await;
        }
    }

    async fn change(&self, p: &Plan, step: &Step, obs: &Observed) -> StepResult {
        if self.fence.is_some_and(|may_write| !may_write()) {
            return StepResult::Stale("this writer no longer holds the lease; nothing was run".into());
        }
        let entry = Entry {
            step: step.clone(),
            plan_hash: p.hash.clone(),
            started_at: self.lync.now(),
            by: self.by.clone(),
            outcome: Outcome::Pending,
        };
        if let Err(e) = self.journal.begin(&entry).await {
            return StepResult::Stalled(format!("cannot journal the step, so it was not run: {e}"));
        }
        let result = self.lync.invoke(&self.run_on(step, obs), &step.invocation()).await;
        match result {
            Ok(_) => {
                // The entry stays pending until the effect is observed, so that what must be
                // remembered (e.g. that a failover was automatic) is never lost: if verification
                // does not complete, the next run resolves the entry by observation.
                if step.expect.observable() {
                    let verified = self.wait_for(step, &step.expect).await;
                    if let StepResult::Stalled(why) = verified {
                        return StepResult::Stalled(format!("{} reported success, but its effect is not observed ({why})", step.cmdlet));
                    }
                } else {
                    self.remember(step);
                }
                let _ = self.journal.finish(&step.id, &Outcome::Succeeded).await;
                StepResult::Succeeded
            }
            Err(e @ LyncError::Cmdlet { .. }) | Err(e @ LyncError::Unreachable { .. }) => {
                let _ = self.journal.finish(&step.id, &Outcome::Failed(e.to_string())).await;
                if e.nothing_ran() {
                    // Nothing ran: the deployment changed under us (a server went away). Plan again.
                    return StepResult::Stale(e.to_string());
                }
                StepResult::Failed(e.to_string())
            }
            Err(e) if !step.expect.observable() => {
                // A step with no observable effect is safe to repeat (backups, setup): plan again.
                let _ = self.journal.finish(&step.id, &Outcome::Failed(format!("outcome unknown ({e}); the step is repeatable"))).await;
                StepResult::Stale(format!("the outcome of {} is unknown; it will be planned again", step.id))
            }
            Err(e) => {
                // Ambiguous: find out from the deployment itself; the journal entry stays pending.
                match self.resolve(step).await {
                    Resolution::Done => {
                        let _ = self.journal.finish(&step.id, &Outcome::Succeeded).await;
                        self.remember(step);
                        StepResult::Succeeded
                    }
                    Resolution::NotDone => StepResult::Stalled(format!(
                        "the outcome of `{}` on {} is unknown ({e}) and its effect is not observed; check the deployment, then resolve the journal entry for step {}",
                        step.command(),
                        step.run_on,
                        step.id
                    )),
                }
            }
        }
    }

    /// Establishes whether a step whose outcome is unknown took effect: observes, waits while a
    /// pool operation it started is still running, and checks its effect.
    pub async fn resolve(&self, step: &Step) -> Resolution {
        if !step.expect.observable() {
            return Resolution::NotDone;
        }
        let start = self.lync.now();
        loop {
            let Ok(o) = self.observe().await else { return Resolution::NotDone };
            if step.expect.holds(&o) {
                return Resolution::Done;
            }
            let running = matches!(&step.expect, Expect::ServedBy { pool, .. } if o.failover(pool).in_progress());
            if !running || self.lync.now().since(start) >= self.wait_timeout {
                return Resolution::NotDone;
            }
            self.lync.sleep(self.poll).await;
        }
    }
}

/// What observation says about a step whose outcome was unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Done,
    NotDone,
}

pub fn describe(e: &Expect) -> String {
    match e {
        Expect::ServedBy { pool, by } if pool == by => format!("{pool} serves its own users"),
        Expect::ServedBy { pool, by } => format!("{pool}'s users are served by {by}"),
        Expect::CmsActive { pool } => format!("the CMS is active on {pool}"),
        Expect::CmsReplicated { servers } => format!("the CMS replicas on {} servers are up to date", servers.len()),
        Expect::Principal { pool, db, role } => format!("the {} database of {pool} runs on its {role}", db.as_str()),
        Expect::NextHop { edge, pool } => format!("{edge} forwards to {pool}"),
        Expect::SipFederation { edge } => {
            format!("SIP federation routes through {}", edge.as_ref().map(|e| e.to_string()).unwrap_or_else(|| "no Edge pool".into()))
        }
        Expect::XmppFederation { edge } => {
            format!("XMPP federation routes through {}", edge.as_ref().map(|e| e.to_string()).unwrap_or_else(|| "no Edge pool".into()))
        }
        Expect::MediaEdge { pool, mediation, edge } => {
            format!("{pool} uses {edge} for {}", if *mediation { "mediation" } else { "conferencing" })
        }
        Expect::EdgeServices { server, running } => {
            format!("the Lync services of {server} are {}", if *running { "running" } else { "stopped" })
        }
        Expect::BackupSynced { pool, module } => format!("{pool}'s {} export is in steady state", module.as_str()),
        Expect::SyncInterval { interval } => format!("the Backup Service sync interval is {interval}"),
        Expect::UsersHomed { users, pool } => format!("{} users are homed on {pool}", users.len()),
        Expect::HomedAtMost { pool, count } => format!("at most {count} users remain on {pool}"),
        Expect::RgsHosted { host, owner } => format!("{owner}'s Response Groups are hosted on {host}"),
        Expect::PairedWith { pool, partner } => format!("{pool} and {partner} back each other up"),
        Expect::BackupService { server, running } => {
            format!("the Backup Service is installed on {server}{}", if *running { " and runs" } else { "" })
        }
        Expect::XmppDns { edge } => format!("the XMPP federation DNS records point at {edge}"),
        Expect::Succeeded => "the cmdlet succeeded".into(),
    }
}

/// Whether a pool operation is running (used when resolving a pending journal entry).
pub fn pool_operation_running(o: &Observed) -> bool {
    o.pools.values().any(|p| matches!(p.failover, FailoverState::FailingOver | FailoverState::FailingBack))
}
