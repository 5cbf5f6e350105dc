//! The executor: runs a plan against a [`Lync`] backend. Ready steps (dependencies done) start
//! up to the concurrency limit. Before each step the desired state is read again (from the
//! front end's [`DesiredSource`]) and the deployment is observed again: a step whose effect
//! already holds is skipped; a step the current plan no longer contains (or contains
//! differently, or whose prerequisites are needed again) stops the run as stale so the engine
//! plans anew. Each mutating step is journaled before its cmdlet runs and after, and its effect
//! is verified by observation. An outcome that cannot be established stalls the run with a
//! clear message instead of guessing.

use std::collections::BTreeSet;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};

use super::journal::{Entry, Journal, Outcome, new_request_id};
use super::observe::{ObserveError, Scope, observe};
use super::scope_for;
use super::{DesiredSource, ObservationError};
use crate::backend::{Lync, LyncError};
use crate::desired::Desired;
use crate::model::{FailoverState, Health, Lesson, Observed, Request, RequestState, RunOn, Span, Stamp};
use crate::planner::{Expect, Plan, Policy, Step, StepKind, plan};

/// How long a repeatable step's success counts as still valid (see `done_recently`).
const RECENT: Span = Span::mins(30);

/// Longest wait for a call the backend's ledger reports as still running.
const RUNNING_CAP: Span = Span::hours(12);

/// How long the effect of a call whose answer was just lost is watched for when no ledger
/// tells whether it ran (longer only while a pool operation is seen running).
const UNKNOWN_WATCH: Span = Span::mins(15);

/// Attempts of a state-changing call that certainly did not run (the connection was refused,
/// the credentials were refused before the request was taken), before its step fails. Between
/// attempts the executor backs off (the poll interval, then twice as long, ...) and checks the
/// step is still wanted as planned. A call whose fate is unknown is never sent again: the
/// backend's ledger and observation tell what became of it.
pub const MAX_ATTEMPTS: u32 = 3;

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
    Observed {
        at: Stamp,
    },
    StepStarted {
        id: String,
        command: String,
        run_on: String,
        at: Stamp,
    },
    /// What a running step met on the way to the deployment and what was done about it: a call
    /// that did not run and is retried, an outcome that is unknown, how it was resolved.
    StepNote {
        id: String,
        at: Stamp,
        note: String,
    },
    /// Every step a run picks up finishes once, skipped and stale ones too.
    StepFinished {
        id: String,
        at: Stamp,
        result: StepResult,
        kind: StepKind,
        /// The steps of its plan it ran after (the plan's dependency edges, for timelines).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        after: Vec<String>,
    },
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
    /// Whether this writer may still act (leadership); checked before every mutating step.
    pub fence: Option<&'a (dyn Fn() -> bool + Send + Sync)>,
    /// The desired state as it is now; `None`: `desired` holds for the whole run.
    pub live: Option<&'a dyn DesiredSource>,
}

impl Executor<'_> {
    /// Observes, folding what the observation teaches (health and sync flips, host facts) into
    /// the operator memory, durably. Steps run concurrently: the journal applies the lesson to
    /// the memory as stored, so what a finished step remembered meanwhile is kept.
    pub async fn observe(&self) -> Result<Observed, ObservationError> {
        let mut last = None;
        for attempt in 0..3 {
            match observe(self.lync, self.scope, &self.journal.memory()).await {
                Ok(mut o) => {
                    let lesson = Lesson::of(&o);
                    o.history = self.journal.remember(Box::new(move |h| lesson.apply(h))).await.map_err(ObservationError::Memory)?;
                    (self.events)(Event::Observed { at: o.at });
                    return Ok(o);
                }
                Err(e) => {
                    last = Some(e);
                    if attempt < 2 {
                        self.lync.sleep(self.poll).await;
                    }
                }
            }
        }
        Err(match last {
            Some(e) => ObservationError::Observe(e),
            None => ObservationError::Observe(ObserveError::NoVantage("no attempt was made".into())),
        })
    }

    /// Remembers what a step that leaves no journal entry (a wait, a skipped change) teaches.
    async fn remember(&self, step: &Step) -> Result<(), String> {
        if step.remember.is_empty() {
            return Ok(());
        }
        let (items, now) = (step.remember.clone(), self.lync.now());
        self.journal
            .remember(Box::new(move |h| {
                for r in &items {
                    r.apply(h, now);
                }
            }))
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot record what {} teaches in the operator memory: {e}", step.id))
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
            (self.events)(Event::StepFinished {
                id: step.id.clone(),
                at: self.lync.now(),
                result: result.clone(),
                kind: step.kind,
                after: step.after.clone(),
            });
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
        let mut obs = match self.ready(p, step).await {
            Ready::Change(o) => o,
            Ready::Stop(r) => return r,
            Ready::Wait => {
                (self.events)(Event::StepStarted {
                    id: step.id.clone(),
                    command: step.command(),
                    run_on: step.run_on.to_string(),
                    at: self.lync.now(),
                });
                return match self.wait_for(&step.expect).await {
                    Ok(()) => match self.remember(step).await {
                        Ok(()) => StepResult::Succeeded,
                        Err(e) => StepResult::Stalled(e),
                    },
                    Err(why) => StepResult::Stalled(why),
                };
            }
        };
        (self.events)(Event::StepStarted {
            id: step.id.clone(),
            command: step.command(),
            run_on: step.run_on.to_string(),
            at: self.lync.now(),
        });
        let mut attempt = 1;
        loop {
            let e = match self.change(p, step, &obs, attempt).await {
                Attempt::Finished(r) => return r,
                Attempt::NothingRan(e) => e,
            };
            if attempt >= MAX_ATTEMPTS {
                return StepResult::Failed(format!(
                    "step {}: `{}` on {} did not run in {attempt} attempts (backing off {}); last: {e}",
                    step.id,
                    step.command(),
                    step.run_on,
                    backoffs(self.poll, attempt - 1)
                ));
            }
            let wait = backoff(self.poll, attempt);
            self.note(step, format!("attempt {attempt} of {MAX_ATTEMPTS} did not run ({e}); trying again in {wait}"));
            self.lync.sleep(wait).await;
            attempt += 1;
            // Meanwhile the deployment or the desired state may have changed.
            obs = match self.ready(p, step).await {
                Ready::Change(o) => o,
                Ready::Stop(r) => return r,
                Ready::Wait => return StepResult::Stale("the step became a wait".into()),
            };
        }
    }

    fn note(&self, step: &Step, note: String) {
        tracing::warn!(step = %step.id, "{note}");
        (self.events)(Event::StepNote { id: step.id.clone(), at: self.lync.now(), note });
    }

    /// Whether a step is still to run, as planned: the desired state read again, the
    /// deployment observed again, its effect not already there, the current plan still
    /// containing it unchanged with its prerequisites in effect.
    async fn ready(&self, p: &Plan, step: &Step) -> Ready {
        // The desired state as it is now: a spec changed while the plan ran stops the steps it
        // no longer wants, before anything is observed or run.
        let current;
        let desired: &Desired = match self.live {
            None => self.desired,
            Some(live) => match live.current(&p.hash) {
                Ok(d) => {
                    current = d;
                    &current
                }
                Err(why) => return Ready::Stop(StepResult::Stale(why)),
            },
        };
        if self.live.is_some() && scope_for(desired) != *self.scope {
            return Ready::Stop(StepResult::Stale("the desired state now names other users or pools to observe".into()));
        }
        let obs = match self.observe().await {
            Ok(o) => o,
            Err(e) => return Ready::Stop(StepResult::Stale(e.to_string())),
        };
        if step.expect.observable() && step.expect.holds(&obs) {
            return Ready::Stop(match self.remember(step).await {
                Ok(()) => StepResult::Skipped,
                Err(e) => StepResult::Stalled(e),
            });
        }
        // A wait changes nothing: it only needs its condition (and, when the spec changed
        // meanwhile, to be still wanted). A change must still be wanted, exactly as planned,
        // with its prerequisites still in effect.
        if step.kind == StepKind::Wait {
            if desired != self.desired && plan(desired, &obs, self.policy).step(&step.id).is_none() {
                return Ready::Stop(StepResult::Stale("the desired state changed and no longer needs this wait".into()));
            }
            return Ready::Wait;
        }
        if !step.expect.observable() && self.done_recently(step).await {
            return Ready::Stop(StepResult::Skipped);
        }
        let fresh = plan(desired, &obs, self.policy);
        match fresh.step(&step.id) {
            None => return Ready::Stop(StepResult::Stale("the current plan no longer contains it".into())),
            Some(f) if !f.same_call(step) => {
                return Ready::Stop(StepResult::Stale(format!("the current plan runs it differently: {}", f.command())));
            }
            Some(f) => {
                // A prerequisite whose effect no longer holds is needed again (steps without an
                // observable effect, such as backups, are planned again harmlessly).
                if let Some(dep) = f.after.iter().find(|d| fresh.step(d).is_some_and(|s| s.expect.observable() && !s.expect.holds(&obs))) {
                    return Ready::Stop(StepResult::Stale(format!("its prerequisite {dep} is needed again")));
                }
            }
        }
        Ready::Change(Box::new(obs))
    }

    /// A step without an observable effect (a backup, local setup, a sync) is planned again
    /// whenever its purpose is still ahead, e.g. after a restart. It is not run again when the
    /// journal shows the same call succeeded recently and no change with an observable effect
    /// succeeded since (anything that could make it needed again).
    async fn done_recently(&self, step: &Step) -> bool {
        let Ok(entries) = self.journal.entries().await else { return false };
        let now = self.lync.now();
        let Some(i) = entries.iter().rposition(|e| e.step.id == step.id && e.step.same_call(step) && e.outcome == Outcome::Succeeded)
        else {
            return false;
        };
        now.since(entries[i].started_at) <= RECENT
            && entries[i + 1..].iter().all(|e| !e.step.expect.observable() || e.outcome != Outcome::Succeeded)
    }

    /// Polls until a condition holds; after the wait timeout, says what it waited for.
    async fn wait_for(&self, expect: &Expect) -> Result<(), String> {
        let start = self.lync.now();
        loop {
            if let Ok(o) = self.observe().await
                && expect.holds(&o)
            {
                return Ok(());
            }
            if self.lync.now().since(start) >= self.wait_timeout {
                return Err(format!("waited {} for: {}", self.wait_timeout, describe(expect)));
            }
            self.lync.sleep(self.poll).await;
        }
    }

    /// Records a step's outcome. A success also records what the step teaches the memory, in
    /// the same write; if that write fails the step's effect is real but unrecorded, which a
    /// person must know (the next run settles the pending entry by observation).
    async fn finish(&self, step: &Step, outcome: Outcome) -> Result<(), String> {
        self.journal.finish(&step.id, &outcome, self.lync.now()).await.map_err(|e| {
            format!("{} ran, but its outcome could not be journaled ({e}); the entry stays pending and is settled by observation", step.id)
        })
    }

    /// One attempt of a mutating step: journaled, run, verified. `NothingRan`: the call
    /// certainly did not run (refused, or the ledger says it never arrived; its journal entry
    /// says so); the caller may try again.
    async fn change(&self, p: &Plan, step: &Step, obs: &Observed, attempt: u32) -> Attempt {
        Attempt::Finished(match self.change_once(p, step, obs, attempt).await {
            Ok(r) => r,
            Err(e) => return Attempt::NothingRan(e),
        })
    }

    async fn change_once(&self, p: &Plan, step: &Step, obs: &Observed, attempt: u32) -> Result<StepResult, String> {
        if self.fence.is_some_and(|may_write| !may_write()) {
            return Ok(StepResult::Stale("this writer no longer holds the lease; nothing was run".into()));
        }
        if let Err(why) = step.invocation().check() {
            return Ok(StepResult::Failed(format!("{why}; nothing was run")));
        }
        let now = self.lync.now();
        let request = Request { id: new_request_id(&self.by, &step.id, now), not_after: now.plus(self.lync.request_window()) };
        let entry = Entry {
            step: step.clone(),
            plan_hash: p.hash.clone(),
            started_at: now,
            by: self.by.clone(),
            outcome: Outcome::Pending,
            request: Some(request.clone()),
        };
        if let Err(e) = self.journal.begin(&entry).await {
            return Ok(StepResult::Stalled(format!("cannot journal the step, so it was not run: {e}")));
        }
        let result = self.lync.invoke_request(&self.run_on(step, obs), &step.invocation(), &request).await;
        Ok(match result {
            Ok(_) => {
                // The entry stays pending until the effect is observed, so that what must be
                // remembered (e.g. that a failover was automatic) is never lost: if verification
                // does not complete, the next run resolves the entry by observation.
                if step.expect.observable()
                    && let Err(why) = self.wait_for(&step.expect).await
                {
                    return Ok(StepResult::Stalled(format!("{} reported success, but its effect is not observed ({why})", step.cmdlet)));
                }
                match self.finish(step, Outcome::Succeeded).await {
                    Ok(()) => StepResult::Succeeded,
                    Err(e) => StepResult::Stalled(e),
                }
            }
            Err(e @ LyncError::Unreachable { .. }) => {
                // Nothing ran: the entry says so, and the caller backs off and tries again
                // (with a new entry and request) or gives up.
                let why = format!("attempt {attempt} of {MAX_ATTEMPTS}: {e}; nothing ran");
                if let Err(j) = self.finish(step, Outcome::Failed(why)).await {
                    return Ok(StepResult::Stalled(j));
                }
                return Err(e.to_string());
            }
            Err(e @ LyncError::Cmdlet { .. }) => {
                if let Err(j) = self.finish(step, Outcome::Failed(e.to_string())).await {
                    return Ok(StepResult::Stalled(j));
                }
                StepResult::Failed(e.to_string())
            }
            Err(e) => {
                // Ambiguous: ask the deployment what became of the request, then look at its
                // effect; the journal entry stays pending until one of them tells. It is never
                // sent again blindly.
                self.note(step, format!("the outcome of attempt {attempt} is unknown ({e}); asking the deployment's request ledger"));
                let resolution = self.resolve_watching(step, Some(&request), UNKNOWN_WATCH).await;
                let told = match &resolution {
                    Resolution::Done => "it took effect".to_string(),
                    Resolution::NeverRan(why) => format!("it never ran: {why}"),
                    Resolution::Failed(why) => format!("it ran and failed: {why}"),
                    Resolution::NotDone => "neither the ledger nor an observation shows it took effect".to_string(),
                };
                self.note(step, format!("outcome of attempt {attempt} resolved: {told}"));
                match resolution {
                    Resolution::Done => match self.finish(step, Outcome::Succeeded).await {
                        Ok(()) => StepResult::Succeeded,
                        Err(j) => StepResult::Stalled(j),
                    },
                    // The ledger is sure nothing ran: like a refused call, tried again in place.
                    Resolution::NeverRan(why) => {
                        match self.finish(step, Outcome::Failed(format!("attempt {attempt} of {MAX_ATTEMPTS}: {why}"))).await {
                            Ok(()) => return Err(why),
                            Err(j) => StepResult::Stalled(j),
                        }
                    }
                    Resolution::Failed(why) => match self.finish(step, Outcome::Failed(why.clone())).await {
                        Ok(()) => StepResult::Failed(why),
                        Err(j) => StepResult::Stalled(j),
                    },
                    Resolution::NotDone if !step.expect.observable() => {
                        // A step with no observable effect is safe to repeat (backups, setup).
                        if let Err(j) = self.finish(step, Outcome::Failed(format!("outcome unknown ({e}); the step is repeatable"))).await {
                            return Ok(StepResult::Stalled(j));
                        }
                        StepResult::Stale(format!("the outcome of {} is unknown; it will be planned again", step.id))
                    }
                    Resolution::NotDone => StepResult::Stalled(format!(
                        "the outcome of `{}` on {} is unknown ({e}) and its effect is not observed; check the deployment, then resolve the journal entry for step {}",
                        step.command(),
                        step.run_on,
                        step.id
                    )),
                }
            }
        })
    }

    /// Establishes what became of a step whose outcome is unknown: first from the backend's
    /// request ledger (it ran, failed, never ran, or still runs: then wait), then from the
    /// deployment itself (waiting while a pool operation it started is seen running).
    pub async fn resolve(&self, step: &Step, request: Option<&Request>) -> Resolution {
        self.resolve_watching(step, request, Span(0)).await
    }

    /// [`Executor::resolve`], watching the deployment up to `watch` for the effect when the
    /// ledger cannot tell (up to the wait timeout while a pool operation is seen running). A
    /// call this run just lost the answer of may still be taking effect (a CMS failover takes
    /// minutes); after a restart the engine stalls at once instead, as before.
    pub async fn resolve_watching(&self, step: &Step, request: Option<&Request>, watch: Span) -> Resolution {
        let start = self.lync.now();
        // Set when the server says the call was cut off there: it no longer runs, so what is
        // observed is final.
        let mut interrupted = None;
        if let Some(req) = request {
            loop {
                match self.lync.request_state(req).await {
                    RequestState::NeverRan => {
                        return Resolution::NeverRan(format!(
                            "request {} never reached the deployment before its deadline; nothing ran",
                            req.id
                        ));
                    }
                    RequestState::Failed(e) => return Resolution::Failed(e),
                    RequestState::Succeeded if !step.expect.observable() => return Resolution::Done,
                    RequestState::Succeeded => {
                        return match self.wait_for(&step.expect).await {
                            Ok(()) => Resolution::Done,
                            Err(_) => Resolution::NotDone,
                        };
                    }
                    // Still on its way, or still running: it is known not to be lost, so wait
                    // (a pool failback of 20,000 users takes an hour).
                    RequestState::NotYet | RequestState::Running => {
                        if self.lync.now().since(start) >= RUNNING_CAP {
                            return Resolution::NotDone;
                        }
                        self.lync.sleep(self.poll).await;
                    }
                    RequestState::Interrupted(why) => {
                        interrupted = Some(why);
                        break;
                    }
                    RequestState::Unknown(_) => break,
                }
            }
        }
        loop {
            let Ok(o) = self.observe().await else { return Resolution::NotDone };
            if step.expect.observable() && step.expect.holds(&o) {
                return Resolution::Done;
            }
            // A pool operation seen running is waited for; any other effect for `watch`.
            let running = matches!(&step.expect, Expect::ServedBy { pool, .. } if o.failover(pool).in_progress());
            if !running && let Some(why) = no_longer_runs(step, &o, interrupted.as_deref()) {
                // The call cannot be running any more and nothing is seen running: the
                // deployment is as observed, and the plan decides again from it (a pool failover
                // or failback is run again to finish, as Microsoft's procedure says).
                return Resolution::Failed(if step.expect.observable() {
                    format!(
                        "{why}; its effect ({}) is not observed and no operation is running, so the plan decides again from what is observed",
                        describe(&step.expect)
                    )
                } else {
                    format!("{why}; the step is repeatable, so the plan decides again")
                });
            }
            if !step.expect.observable() {
                return Resolution::NotDone;
            }
            let waited = self.lync.now().since(start);
            if waited >= self.wait_timeout || (!running && waited >= self.wait_timeout.min(watch)) {
                return Resolution::NotDone;
            }
            self.lync.sleep(self.poll).await;
        }
    }
}

/// Why a started call whose outcome is unknown can no longer be running, if it cannot: the
/// server's ledger says it was cut off there, or the pool it runs on is confirmed down (by the
/// operator and by its partner, the evidence automatic failover acts on; a server that is down
/// runs nothing). Whatever it changed before it stopped is in the observation.
fn no_longer_runs(step: &Step, o: &Observed, interrupted: Option<&str>) -> Option<String> {
    if let Some(why) = interrupted {
        return Some(why.to_string());
    }
    let host = &step.run_on;
    (o.pool(host).is_some_and(|p| p.health() == Health::Down))
        .then(|| format!("{host}, which ran it, is confirmed down (by the operator and by its partner), so the call no longer runs"))
}

/// Where a step stands before (another attempt of) its call.
enum Ready {
    /// Run it: the deployment as just observed.
    Change(Box<Observed>),
    /// A wait still wanted.
    Wait,
    /// Do not run it: how the step ends.
    Stop(StepResult),
}

/// How one attempt of a mutating step ended.
enum Attempt {
    Finished(StepResult),
    /// The call certainly did not run.
    NothingRan(String),
}

/// The wait after the n-th attempt (from 1): the poll interval, doubled each time.
fn backoff(poll: Span, attempt: u32) -> Span {
    Span(poll.0.max(1).saturating_mul(1 << (attempt - 1).min(16)))
}

/// The waits after the first `n` attempts, for messages (`15s, 30s`).
fn backoffs(poll: Span, n: u32) -> String {
    (1..=n).map(|a| backoff(poll, a).to_string()).collect::<Vec<_>>().join(", ")
}

/// What the ledger or an observation says about a step whose outcome was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It took effect.
    Done,
    /// Neither the ledger nor an observation shows it took effect.
    NotDone,
    /// It never ran (the ledger is sure): plan again.
    NeverRan(String),
    /// It ran and failed (the cmdlet's error).
    Failed(String),
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
        Expect::UpdatesApplied { server } => format!("every component of {server} is at its cumulative update level"),
        Expect::Succeeded => "the cmdlet succeeded".into(),
    }
}

/// Whether a pool operation is running (used when resolving a pending journal entry).
pub fn pool_operation_running(o: &Observed) -> bool {
    o.pools.values().any(|p| matches!(p.failover, FailoverState::FailingOver | FailoverState::FailingBack))
}
