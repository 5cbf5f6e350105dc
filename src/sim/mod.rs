//! The simulator: a faithful, in-memory model of a Lync Server 2013 / Skype for Business
//! deployment that executes the DR cmdlets of the domain document with their real parameter
//! binding, preconditions and error texts, in simulated time. It is the embedded default
//! backend of lyncdr (`demo`, `plan`, tests) and, behind `lyncdr sim serve`, a process the
//! operator talks to over HTTP, and with `--winrm` over WS-Man as if it were the deployment's
//! servers ([`winrm_host`]).
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
//!
//! Layout: this file holds the simulator's state and what can be read from it; `calls` runs
//! cmdlets (resolve, begin, complete, the request ledger), `clock` moves simulated time and
//! applies faults, `snapshot` reports ground truth; `cmd` holds each cmdlet's preconditions
//! and effects, `errors` Lync's error texts, `world` the runtime state and network.

mod calls;
mod clock;
mod cmd;
mod errors;
mod local;
mod replication;
pub mod script;
pub mod server;
mod snapshot;
pub mod transport_faults;
pub mod winrm_host;
mod world;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::scenario::Timings;
pub use crate::scenario::{Fault, FaultAction, FaultTarget, OPERATOR, TimedFault};
pub use errors::CmdletError;
pub use local::LocalSim;
pub use snapshot::{CmsSnapshot, EdgeSnapshot, FederationSnapshot, PoolSnapshot, Snapshot};
pub use world::World;

use crate::model::{Fqdn, Hosts, RequestState, Span, Stamp, Topology};
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
}

/// Ground truth for the split-brain and simulated-week tests: what is really alive and who
/// really serves whom, whatever the operator can see.
impl Simulator {
    /// The pool runs and its user database is served by a running SQL server: it can serve
    /// users (whether or not the operator or its partner can reach it).
    pub fn pool_alive(&self, pool: &Fqdn) -> bool {
        replication::pool_serving_ok(&self.w, &self.topo, &self.net(), pool)
    }

    /// Whether the users homed on `pool` are served right now (their data is written somewhere).
    pub fn users_served(&self, pool: &Fqdn) -> bool {
        replication::homed_users(&self.w, &self.topo, pool) == 0
            || replication::writer(&self.w, &self.topo, &self.net(), pool) != replication::Writer::Nowhere
    }

    /// The CMS master is available and a Front End of `pool` reaches it (a pool failover run
    /// on `pool` can write its state there).
    pub fn cms_master_reachable_from(&self, pool: &Fqdn) -> bool {
        let net = self.net();
        let from = self.topo.pools.get(pool).and_then(|p| p.front_ends.iter().find(|s| net.host_up(s)));
        self.cms_available() && from.is_some() && self.w.cms.master.as_ref().is_some_and(|m| net.reaches(from, m))
    }
}
