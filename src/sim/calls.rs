//! Cmdlet calls: where a call runs as seen from the operator, binding and checking it when it
//! begins, applying its effect when it completes, and the request ledger that settles an
//! ambiguous outcome.

use serde_json::Value;

use super::{Completion, Failure, LedgerEntry, Op, Outcome, Record, Simulator, Ticket, cmd, errors};
use crate::model::{EdgePool, Fqdn, FrontEndPool, Request, RequestState, RunOn};
use crate::ps::{Invocation, bind};

/// How often a caller waiting for a call looks whether it ended early (simulated time).
pub const CALL_POLL: crate::model::Span = crate::model::Span::secs(5);

impl Simulator {
    /// Resolves where a call runs, as seen from the operator.
    pub(super) fn resolve(&self, run_on: &RunOn) -> Result<Fqdn, Failure> {
        let net = self.net();
        let candidates: Vec<&Fqdn> = match run_on {
            // Any server with a management shell: Front Ends first, then Edge servers.
            RunOn::Any => self
                .topo
                .pools
                .values()
                .flat_map(|p| p.front_ends.iter())
                .chain(self.topo.edges.values().flat_map(|e| e.servers.iter()))
                .collect(),
            RunOn::Pool(p) => {
                if let Some(pool) = self.topo.pools.get(p) {
                    pool.front_ends.iter().collect()
                } else if let Some(e) = self.topo.edges.get(p) {
                    e.servers.iter().collect()
                } else {
                    return Err(Failure::Unreachable(format!("{p} does not resolve: no such pool")));
                }
            }
            RunOn::Server(s) => {
                if self.hosts.site_of(s).is_none() {
                    return Err(Failure::Unreachable(format!("{s} does not resolve: no such server")));
                }
                vec![s]
            }
        };
        candidates
            .into_iter()
            .find(|s| net.operator_reaches(s) && !self.pool_stopped(s))
            .cloned()
            .ok_or_else(|| Failure::Unreachable(format!("cannot connect to {run_on}: no server there answers")))
    }

    /// The Front End pool of a Front End server.
    pub(crate) fn pool_of(&self, server: &Fqdn) -> Option<&FrontEndPool> {
        self.hosts.pool_of_server(server).and_then(|p| self.topo.pools.get(p))
    }

    /// The Edge pool of an Edge server.
    pub(crate) fn edge_of(&self, server: &Fqdn) -> Option<&EdgePool> {
        self.hosts.edge_of_server(server).and_then(|e| self.topo.edges.get(e))
    }

    pub(super) fn pool_stopped(&self, server: &Fqdn) -> bool {
        match &self.topo.pools.get(server) {
            Some(_) => false,
            None => self.pool_of(server).is_some_and(|p| !self.net().host_up(&p.fqdn)),
        }
    }

    /// Starts a call. Errors found at binding or precondition time come back at once, as
    /// PowerShell reports them before doing anything.
    pub fn begin(&mut self, run_on: &RunOn, inv: &Invocation) -> Result<Ticket, Failure> {
        let id = self.next_id;
        self.next_id += 1;
        let mut rec = Record {
            id,
            run_on: run_on.to_string(),
            server: None,
            cmdlet: inv.cmdlet.clone(),
            args: inv.args.clone(),
            line: inv.to_powershell(),
            started: self.now,
            finished: None,
            outcome: Outcome::Running,
            error: None,
            mutating: false,
            what_if: false,
            request: None,
        };
        let server = match self.resolve(run_on) {
            Ok(s) => s,
            Err(f) => {
                rec.outcome = Outcome::Unreachable;
                rec.error = Some(f.to_string());
                rec.finished = Some(self.now);
                self.log.push(rec);
                return Err(f);
            }
        };
        rec.server = Some(server.clone());
        let product = self.pool_of(&server).map(|p| p.traits.product).unwrap_or(self.topo.product);
        let bound = match bind(inv, product) {
            Ok(b) => b,
            Err(e) => {
                let err = errors::err(&inv.cmdlet, e.0);
                rec.outcome = Outcome::Error;
                rec.error = Some(err.to_string());
                rec.finished = Some(self.now);
                self.log.push(rec);
                return Err(Failure::Cmdlet(err));
            }
        };
        rec.cmdlet = bound.spec.name.to_string();
        rec.mutating = bound.spec.mutates;
        rec.what_if = bound.what_if();
        let ctx = cmd::Ctx { server: server.clone(), product };
        match cmd::start(self, &ctx, &bound) {
            Ok(started) => {
                let done_at = self.now.plus(started.duration);
                let completion = match started.effect {
                    Some(e) => Completion::Effect(e),
                    None => Completion::Output(started.output),
                };
                self.ops.insert(id, Op { id, request: None, server, done_at, completion, aborted: None, result: None });
                self.log.push(rec);
                self.track_service();
                Ok(Ticket { id, done_at })
            }
            Err(e) => {
                rec.outcome = Outcome::Error;
                rec.error = Some(e.to_string());
                rec.finished = Some(self.now);
                self.log.push(rec);
                Err(Failure::Cmdlet(e))
            }
        }
    }

    pub(super) fn complete(&mut self, id: u64) {
        let Some(op) = self.ops.get_mut(&id) else { return };
        if op.result.is_some() {
            return;
        }
        let server = op.server.clone();
        let result = if let Some(reason) = op.aborted.clone() {
            Err(Failure::Interrupted(reason))
        } else {
            match std::mem::replace(&mut op.completion, Completion::Output(Value::Null)) {
                Completion::Output(v) => Ok(v),
                Completion::Effect(e) => cmd::apply(self, &e).map_err(Failure::Cmdlet),
            }
        };
        // The server's ledger knows what happened, whether or not the caller hears it.
        if let Some(req) = self.ops.get(&id).and_then(|o| o.request.clone())
            && let Some(entry) = self.ledger.get_mut(&req)
        {
            entry.state = match &result {
                Ok(_) => RequestState::Succeeded,
                Err(Failure::Cmdlet(e)) => RequestState::Failed(e.to_string()),
                Err(f) => RequestState::Interrupted(format!("interrupted on the server: {f}")),
            };
        }
        // The caller hears the result only if it still reaches the server.
        let result = match result {
            Ok(_) if !self.net().operator_reaches(&server) => Err(Failure::Interrupted(errors::interrupted(&server))),
            other => other,
        };
        if let Some(rec) = self.log.iter_mut().rev().find(|r| r.id == id) {
            rec.finished = Some(self.now);
            match &result {
                Ok(_) => rec.outcome = Outcome::Ok,
                Err(Failure::Interrupted(m)) => {
                    rec.outcome = Outcome::Interrupted;
                    rec.error = Some(m.clone());
                }
                Err(f) => {
                    rec.outcome = Outcome::Error;
                    rec.error = Some(f.to_string());
                }
            }
        }
        if let Some(op) = self.ops.get_mut(&id) {
            op.result = Some(result);
        }
        self.track_service();
    }

    /// A waiting caller's look at its call at `now`: its result once it ended, or when to look
    /// again: its planned completion, or sooner, every [`CALL_POLL`], because a call ends early
    /// once its server is lost (see `Timings::session_loss`).
    pub fn look_at_call(&mut self, id: u64, now: crate::model::Stamp) -> Result<Result<Value, Failure>, crate::model::Stamp> {
        if let Some(r) = self.finish(id) {
            return Ok(r);
        }
        let due = self.ops.get(&id).map_or(now, |o| o.done_at);
        Err(due.min(now.plus(CALL_POLL)).max(now.plus(crate::model::Span(1))))
    }

    /// The result of a call whose completion time has passed; `None` while it still runs.
    pub fn finish(&mut self, id: u64) -> Option<Result<Value, Failure>> {
        let done = self.ops.get(&id).is_some_and(|o| o.result.is_some());
        if !done {
            return None;
        }
        self.ops.remove(&id).and_then(|o| o.result)
    }

    /// Starts a state-changing call that carries a request: refused if it arrives after its
    /// deadline (nothing runs), never run twice (a request already received is answered as
    /// interrupted: ask [`Simulator::request_state`]), and recorded in the ledger.
    pub fn begin_request(&mut self, run_on: &RunOn, inv: &Invocation, req: &Request) -> Result<Ticket, Failure> {
        if self.ledger.contains_key(&req.id) {
            return Err(Failure::Interrupted(format!("request {} was already received; ask the ledger what became of it", req.id)));
        }
        if self.now > req.not_after {
            return Err(Failure::Unreachable(format!(
                "request {} arrived at {}, after its deadline {}; nothing ran",
                req.id, self.now, req.not_after
            )));
        }
        let result = self.begin(run_on, inv);
        let server = self.log.last().and_then(|r| r.server.clone());
        let state = match &result {
            Ok(t) => {
                if let Some(op) = self.ops.get_mut(&t.id) {
                    op.request = Some(req.id.clone());
                }
                RequestState::Running
            }
            Err(Failure::Cmdlet(e)) => RequestState::Failed(e.to_string()),
            Err(Failure::Unreachable(_)) => return result,
            Err(f) => RequestState::Unknown(f.to_string()),
        };
        if let Some(rec) = self.log.last_mut() {
            rec.request = Some(req.id.clone());
        }
        self.ledger.insert(req.id.clone(), LedgerEntry { server, state });
        result
    }

    /// What the ledger says about a request, as asked from the operator: the server that
    /// received it must answer; a request never received is known never to have run once its
    /// deadline has passed.
    pub fn request_state(&self, req: &Request) -> RequestState {
        match self.ledger.get(&req.id) {
            Some(e) => match &e.server {
                Some(s) if !self.net().operator_reaches(s) => {
                    RequestState::Unknown(format!("{s}, which received request {}, cannot be reached", req.id))
                }
                _ => e.state.clone(),
            },
            None if self.now > req.not_after => RequestState::NeverRan,
            None => RequestState::NotYet,
        }
    }

    /// Runs a call to completion in virtual time (advancing the clock as needed).
    pub fn run(&mut self, run_on: &RunOn, inv: &Invocation) -> Result<Value, Failure> {
        let ticket = self.begin(run_on, inv)?;
        self.advance_to(ticket.done_at);
        self.finish(ticket.id).unwrap_or_else(|| Err(Failure::Interrupted("the call did not complete".into())))
    }
}
