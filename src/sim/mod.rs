//! The simulator: a faithful, in-memory model of a Lync Server 2013 / Skype for Business
//! deployment that executes the DR cmdlets of the domain document with their real parameter
//! binding, preconditions and error texts, in simulated time. It is the embedded default
//! backend of lyncdr (`demo`, `plan`, tests) and, behind `lyncdr sim serve`, a process the
//! operator talks to over HTTP.
//!
//! Calls are split in two: [`Simulator::begin`] binds and checks a cmdlet at the current
//! simulated time and returns a [`Ticket`] with its completion time; after
//! [`Simulator::advance_to`] passes that time, [`Simulator::finish`] returns its result. Several
//! calls can be in flight at once, as on a real deployment. Time advances only when asked, so a
//! caller can run it virtually (as fast as possible) or scaled to wall-clock time.
//!
//! Every call is logged (for exactly-once checks), data loss is accounted, and faults (sites,
//! pools, Edge pools, SQL servers, links, Backup Service errors) can be injected at any time.
//! In strict mode (the default) the simulator also refuses sequences that break a safe-order
//! rule Lync itself would let through, with a message labelled as the simulator's.

mod cmd;
mod errors;
mod local;
mod replication;
pub mod script;
pub mod server;
mod world;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::scenario::Timings;
pub use crate::scenario::{Fault, FaultAction, FaultTarget, OPERATOR, TimedFault};
pub use errors::CmdletError;
pub use local::LocalSim;
pub use world::World;

use crate::model::{BackupModule, EdgePool, FailoverState, Fqdn, FrontEndPool, Hosts, Request, RequestState, RunOn, Span, Stamp, Topology};
use crate::ps::{Invocation, bind};
use crate::scenario::Scenario;
use world::Net;

/// Why a call produced no cmdlet result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase", tag = "kind", content = "detail")]
pub enum Failure {
    /// The server could not be reached; nothing ran.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The cmdlet ran (or was bound) and failed.
    #[error("{0}")]
    Cmdlet(CmdletError),
    /// The connection was lost while the cmdlet ran; whether it took effect is unknown.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// A call in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: u64,
    pub done_at: Stamp,
}

/// One logged call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: u64,
    pub run_on: String,
    pub server: Option<Fqdn>,
    pub cmdlet: String,
    pub args: indexmap::IndexMap<String, Value>,
    pub line: String,
    pub started: Stamp,
    pub finished: Option<Stamp>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub mutating: bool,
    pub what_if: bool,
    /// The request a state-changing call of lyncdr carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Running,
    Ok,
    Error,
    Unreachable,
    Interrupted,
}

/// Data lost and service outages, for reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// User-data and conference-content changes lost (`-DisasterMode`, content loss).
    pub lost_changes: f64,
    /// CMS configuration changes lost by a forced CMS failover.
    pub lost_cms_changes: f64,
    /// Users whose contacts and meetings were dropped by `Move-CsUser -Force`.
    pub users_data_dropped: u64,
    pub first_fault: Option<Stamp>,
    /// Intervals in which some pool's users were not served.
    pub outages: Vec<(Stamp, Option<Stamp>)>,
    pub hazards: Vec<String>,
}

impl Stats {
    /// Time from the first fault until every user was served again.
    pub fn rto(&self) -> Option<Span> {
        let first = self.first_fault?;
        let (start, end) = self.outages.iter().find(|(s, _)| *s >= first)?;
        end.map(|e| e.since(first.min(*start)))
    }
}

enum Completion {
    Output(Value),
    Effect(cmd::Effect),
}

struct Op {
    id: u64,
    /// The request it serves, for the ledger.
    request: Option<String>,
    server: Fqdn,
    done_at: Stamp,
    completion: Completion,
    aborted: Option<String>,
    result: Option<Result<Value, Failure>>,
}

/// The simulated deployment.
pub struct Simulator {
    topo: Topology,
    /// Index of `topo`'s hosts (its pools and servers never change; only pairings do).
    hosts: Hosts,
    w: World,
    timings: Timings,
    strict: bool,
    now: Stamp,
    next_tick: Stamp,
    ops: BTreeMap<u64, Op>,
    next_id: u64,
    scheduled: Vec<(Stamp, Fault)>,
    log: Vec<Record>,
    stats: Stats,
    served: bool,
    /// Requests received, by id: the server where each ran and what became of it.
    ledger: BTreeMap<String, LedgerEntry>,
}

/// A request as the deployment's ledger records it.
#[derive(Debug, Clone)]
struct LedgerEntry {
    server: Option<Fqdn>,
    state: RequestState,
}

impl Simulator {
    pub fn new(s: &Scenario) -> Simulator {
        let w = World::from_scenario(s);
        let mut sim = Simulator {
            topo: s.topology.clone(),
            hosts: Hosts::new(&s.topology),
            next_tick: Stamp(0).plus(w.sync_interval),
            w,
            timings: s.timings.clone(),
            strict: true,
            now: Stamp(0),
            ops: BTreeMap::new(),
            next_id: 1,
            scheduled: Vec::new(),
            log: Vec::new(),
            stats: Stats::default(),
            served: true,
            ledger: BTreeMap::new(),
        };
        if !s.down.is_empty() {
            sim.stats.first_fault = Some(Stamp(0));
        }
        sim.track_service();
        sim
    }

    /// Lenient mode: safe-order rules Lync does not enforce are recorded as hazards, not refused.
    pub fn set_strict(&mut self, strict: bool) {
        self.strict = strict;
    }

    pub fn now(&self) -> Stamp {
        self.now
    }
    pub fn topology(&self) -> &Topology {
        &self.topo
    }
    pub fn world(&self) -> &World {
        &self.w
    }
    pub fn log(&self) -> &[Record] {
        &self.log
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    fn net(&self) -> Net<'_> {
        Net { topo: &self.topo, hosts: &self.hosts, faults: &self.w.faults }
    }

    /// Schedules a fault at a simulated time (applied when time passes it).
    pub fn schedule(&mut self, at: Stamp, fault: Fault) {
        self.scheduled.push((at, fault));
        self.scheduled.sort_by_key(|(t, _)| *t);
    }

    pub fn next_scheduled(&self) -> Option<Stamp> {
        self.scheduled.first().map(|(t, _)| *t)
    }

    /// The earliest time something changes on its own (a call completes, a fault, a sync).
    pub fn next_event(&self) -> Stamp {
        let mut t = self.next_tick;
        for op in self.ops.values().filter(|o| o.result.is_none()) {
            t = t.min(op.done_at);
        }
        if let Some(s) = self.next_scheduled() {
            t = t.min(s);
        }
        if let Some(r) = self.w.cms.replication_due {
            t = t.min(r);
        }
        for p in self.w.pools.values() {
            if let Some(a) = p.witness_failover_at {
                t = t.min(a);
            }
        }
        t
    }

    /// Applies a fault now.
    pub fn inject(&mut self, fault: &Fault) {
        if self.stats.first_fault.is_none() {
            self.stats.first_fault = Some(self.now);
        }
        match fault.action {
            FaultAction::Down => {
                self.w.faults.insert(fault.target.clone());
            }
            FaultAction::Up => {
                self.w.faults.remove(&fault.target);
                // Servers that return catch up with the CMS after a replication delay.
                self.schedule_replication();
            }
            FaultAction::Lose => {
                if let FaultTarget::Content(p) = &fault.target {
                    let r = replication::replica(&self.w, p, BackupModule::DataConf);
                    self.stats.lost_changes += r.home_ahead;
                    replication::lose_content(&mut self.w, p);
                }
            }
            FaultAction::Point => {
                if let FaultTarget::XmppDns(e) = &fault.target {
                    // The top record (and its A record) now resolves to the Edge pool.
                    let mut records = vec![e.clone()];
                    records.extend(self.w.xmpp_dns.iter().skip(1).filter(|x| *x != e).cloned());
                    self.w.xmpp_dns = records;
                }
            }
            FaultAction::Update => {
                if let FaultTarget::Server(s) = &fault.target {
                    cmd::apply_cumulative_update(self, s);
                }
            }
        }
        self.abort_ops_on_down_servers();
        self.arm_witness();
        self.track_service();
    }

    /// Advances simulated time, applying everything that happens on the way.
    pub fn advance_to(&mut self, t: Stamp) {
        loop {
            let next = self.next_event();
            if next > t {
                break;
            }
            self.integrate_to(next);
            self.process_events();
        }
        self.integrate_to(t);
    }

    fn integrate_to(&mut self, t: Stamp) {
        if t > self.now {
            // The fault set is small; a copy lets the data model borrow the world mutably.
            let faults = self.w.faults.clone();
            let net = Net { topo: &self.topo, hosts: &self.hosts, faults: &faults };
            replication::integrate(&mut self.w, &self.topo, &net, &self.timings, self.now, t);
            self.now = t;
        }
    }

    fn process_events(&mut self) {
        let now = self.now;
        while self.scheduled.first().is_some_and(|(at, _)| *at <= now) {
            let (_, f) = self.scheduled.remove(0);
            self.inject(&f);
        }
        let due: Vec<u64> = self.ops.values().filter(|o| o.result.is_none() && o.done_at <= now).map(|o| o.id).collect();
        for id in due {
            self.complete(id);
        }
        let witness: Vec<Fqdn> =
            self.w.pools.iter().filter(|(_, p)| p.witness_failover_at.is_some_and(|a| a <= now)).map(|(f, _)| f.clone()).collect();
        for pool in witness {
            cmd::witness_failover(self, &pool);
        }
        if self.w.cms.replication_due.is_some_and(|r| r <= now) {
            self.replicate();
        }
        if self.next_tick <= now {
            let faults = self.w.faults.clone();
            let net = Net { topo: &self.topo, hosts: &self.hosts, faults: &faults };
            replication::sync_tick(&mut self.w, &self.topo, &net, self.timings.sync_capacity);
            self.next_tick = now.plus(self.w.sync_interval);
        }
        self.track_service();
    }

    /// Every pool's users are served by a running pool (not in Resiliency mode, not in flight).
    pub fn all_users_served(&self) -> bool {
        let net = self.net();
        self.topo.pools.keys().all(|p| {
            replication::homed_users(&self.w, &self.topo, p) == 0
                || replication::writer(&self.w, &self.topo, &net, p) != replication::Writer::Nowhere
        })
    }

    fn track_service(&mut self) {
        let served = self.all_users_served();
        if served != self.served {
            if served {
                if let Some(last) = self.stats.outages.last_mut() {
                    last.1 = Some(self.now);
                }
            } else {
                self.stats.outages.push((self.now, None));
            }
            self.served = served;
        }
    }

    fn schedule_replication(&mut self) {
        let due = self.now.plus(self.timings.cms_replication);
        self.w.cms.replication_due = Some(self.w.cms.replication_due.map_or(due, |d| d.min(due)).max(self.now));
        if self.w.cms.replication_due.is_some_and(|d| d < due) {
            // An earlier sweep is pending; make sure one also runs after this change.
            self.w.cms.replication_due = Some(due);
        }
    }

    /// A configuration change was written to the CMS: bump the epoch and replicate later.
    pub(crate) fn config_changed(&mut self) {
        self.w.cms.epoch += 1;
        self.schedule_replication();
    }

    /// Replication sweep: every replica the CMS master reaches catches up.
    fn replicate(&mut self) {
        self.w.cms.replication_due = None;
        if !self.cms_available() {
            return;
        }
        let master = self.w.cms.master.clone();
        let epoch = self.w.cms.epoch;
        let servers: Vec<Fqdn> = self.w.cms.replica_epoch.keys().cloned().collect();
        for s in servers {
            let ok = {
                let net = self.net();
                master.as_ref().is_some_and(|m| net.reaches(self.topo.pools.get(m).and_then(|p| p.front_ends.first()), &s))
            };
            if ok {
                self.w.cms.replica_epoch.insert(s.clone(), epoch);
                self.w.cms.last_contact.insert(s, self.now);
            }
        }
    }

    /// Whether the CMS master reaches a replica server now.
    pub(crate) fn master_reaches(&self, server: &Fqdn) -> bool {
        let net = self.net();
        self.cms_available()
            && self.w.cms.master.as_ref().is_some_and(|m| net.reaches(self.topo.pools.get(m).and_then(|p| p.front_ends.first()), server))
    }

    /// The CMS master's pool runs and its CMS database is available.
    pub fn cms_available(&self) -> bool {
        let net = self.net();
        self.w
            .cms
            .master
            .as_ref()
            .is_some_and(|m| net.host_up(m) && replication::principal_up(&self.w, &self.topo, &net, m, crate::model::DbType::CentralMgmt))
    }

    /// SIP federation works: the federation route's Edge pool runs, and every running server of
    /// it has re-run local setup with the configuration that moved federation there (rule 19).
    /// Lync reports no such state; this is ground truth, like [`Simulator::snapshot`].
    pub fn sip_federation_working(&self) -> bool {
        let Some(edge) = &self.w.sip_federation else { return false };
        let (Some(pool), Some(rt)) = (self.topo.edges.get(edge), self.w.edges.get(edge)) else { return false };
        let net = self.net();
        let running: Vec<&Fqdn> = pool.servers.iter().filter(|s| net.host_up(s) && rt.services.get(*s).copied().unwrap_or(false)).collect();
        !running.is_empty() && running.iter().all(|s| rt.setup_epoch.get(*s).copied().unwrap_or(0) >= rt.setup_required)
    }

    /// The Edge pool external XMPP federation traffic reaches: the highest-priority
    /// `_xmpp-server._tcp` record whose Edge pool runs (remote servers try the next record when
    /// one does not answer). Ground truth.
    pub fn xmpp_dns_target(&self) -> Option<Fqdn> {
        let net = self.net();
        self.w.xmpp_dns.iter().find(|e| net.host_up(e)).cloned()
    }

    /// The same, as far as one server of the deployment can tell: Edge pools it cannot reach
    /// count as down (the deployment cannot tell a site it is cut off from from a lost one).
    pub(crate) fn xmpp_dns_target_seen_from(&self, server: &Fqdn) -> Option<Fqdn> {
        let net = self.net();
        self.w.xmpp_dns.iter().find(|e| net.reaches(Some(server), e)).cloned()
    }

    /// Replicas on these servers hold the current configuration.
    pub(crate) fn replicas_current<'a>(&self, servers: impl IntoIterator<Item = &'a Fqdn>) -> bool {
        servers.into_iter().all(|s| self.w.cms.replica_epoch.get(s).copied().unwrap_or(0) >= self.w.cms.epoch)
    }

    fn arm_witness(&mut self) {
        let pools: Vec<Fqdn> = self.topo.pools.keys().cloned().collect();
        for p in pools {
            let due = cmd::witness_due(self, &p);
            if let Some(rt) = self.w.pools.get_mut(&p) {
                match (due, rt.witness_failover_at) {
                    (true, None) => rt.witness_failover_at = Some(self.now.plus(self.timings.witness_failover)),
                    (false, Some(_)) => rt.witness_failover_at = None,
                    _ => {}
                }
            }
        }
    }

    fn abort_ops_on_down_servers(&mut self) {
        let down: Vec<u64> = {
            let net = self.net();
            self.ops.values().filter(|o| o.result.is_none() && o.aborted.is_none() && !net.host_up(&o.server)).map(|o| o.id).collect()
        };
        for id in down {
            let Some(op) = self.ops.get_mut(&id) else { continue };
            op.aborted = Some(errors::interrupted(&op.server));
            let effect = match &op.completion {
                Completion::Effect(e) => Some(e.clone()),
                Completion::Output(_) => None,
            };
            if let Some(e) = effect {
                cmd::revert(self, &e);
            }
        }
    }

    /// Resolves where a call runs, as seen from the operator.
    fn resolve(&self, run_on: &RunOn) -> Result<Fqdn, Failure> {
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

    fn pool_stopped(&self, server: &Fqdn) -> bool {
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

    fn complete(&mut self, id: u64) {
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
                Err(f) => RequestState::Unknown(format!("interrupted on the server: {f}")),
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

    /// Ground truth, for reports and `sim serve`.
    pub fn snapshot(&self) -> Snapshot {
        let net = self.net();
        let pools = self
            .topo
            .pools
            .keys()
            .map(|p| {
                let rt = &self.w.pools[p];
                let served_by = match rt.state {
                    FailoverState::FailedOver | FailoverState::FailingOver => self.topo.partner(p).cloned().unwrap_or_else(|| p.clone()),
                    _ => p.clone(),
                };
                (
                    p.clone(),
                    PoolSnapshot {
                        up: net.host_up(p),
                        served_by,
                        state: rt.state,
                        users: replication::homed_users(&self.w, &self.topo, p),
                        backup_pool: self.topo.partner(p).cloned(),
                        backup_service_running: replication::backup_running(&self.w, &self.topo, p),
                    },
                )
            })
            .collect();
        let edges = self
            .topo
            .edges
            .keys()
            .map(|e| (e.clone(), EdgeSnapshot { up: net.host_up(e), next_hop: self.w.edges[e].next_hop.clone() }))
            .collect();
        Snapshot {
            now: self.now,
            pools,
            cms: CmsSnapshot { active_pool: self.w.cms.master.clone(), available: self.cms_available() },
            edges,
            federation: FederationSnapshot { sip_edge_pool: self.w.sip_federation.clone(), xmpp_edge_pool: self.w.xmpp_federation.clone() },
            all_users_served: self.all_users_served(),
            faults: self.w.faults.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The `final` object of `demo --format json`, and `GET /v1/state` of `sim serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub now: Stamp,
    pub pools: BTreeMap<Fqdn, PoolSnapshot>,
    pub cms: CmsSnapshot,
    pub edges: BTreeMap<Fqdn, EdgeSnapshot>,
    pub federation: FederationSnapshot,
    pub all_users_served: bool,
    pub faults: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSnapshot {
    pub up: bool,
    pub served_by: Fqdn,
    pub state: FailoverState,
    pub users: u64,
    pub backup_pool: Option<Fqdn>,
    /// LYNCBACKUP runs on some Front End of the pool (and the pool has a backup pool).
    pub backup_service_running: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmsSnapshot {
    pub active_pool: Option<Fqdn>,
    pub available: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeSnapshot {
    pub up: bool,
    pub next_hop: Option<Fqdn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederationSnapshot {
    pub sip_edge_pool: Option<Fqdn>,
    pub xmpp_edge_pool: Option<Fqdn>,
}
