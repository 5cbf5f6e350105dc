//! What a plan is made of: steps (one cmdlet each, with the condition that shows it took
//! effect and what lyncdr must remember once it did), blockers and notices.

use std::ops::Deref;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::model::{BackupModule, DbType, FailoverState, Fqdn, History, Observed, RgsExportObs, Role, Span, Stamp};
use crate::ps::{Input, Invocation};

/// A step changes the deployment, or waits for a condition by polling a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    Change,
    Wait,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Stable id, e.g. `pool-failover/pool01.dal.contoso.com`.
    pub id: String,
    pub cmdlet: String,
    /// Real PowerShell parameter names; switches are `true`.
    pub args: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// The pool (any of its servers) or server the cmdlet must run on.
    pub run_on: Fqdn,
    /// Steps that must complete first.
    pub after: Vec<String>,
    /// The step may lose data; it is in the plan only because the spec consents.
    pub data_loss: bool,
    pub reason: String,
    /// `Kind/name` of the resource the step serves.
    pub resource: String,
    pub kind: StepKind,
    /// The safe-order rules (domain document, section 8) that place this step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<u8>,
    /// What is true once the step has taken effect.
    pub expect: Expect,
    /// What lyncdr remembers once it has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remember: Vec<Remember>,
}

impl Step {
    pub fn invocation(&self) -> Invocation {
        Invocation { cmdlet: self.cmdlet.clone(), args: self.args.clone(), input: self.input.clone() }
    }
    pub fn command(&self) -> String {
        self.invocation().to_powershell()
    }
    /// The same call (cmdlet, arguments, input and place) as `other`.
    pub fn same_call(&self, other: &Step) -> bool {
        self.cmdlet == other.cmdlet && self.args == other.args && self.input == other.input && self.run_on == other.run_on
    }
}

/// A condition on the observed deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Expect {
    /// `pool`'s users are served by `by` (itself: not failed over).
    ServedBy {
        pool: Fqdn,
        by: Fqdn,
    },
    CmsActive {
        pool: Fqdn,
    },
    /// The CMS replicas on these servers are up to date.
    CmsReplicated {
        servers: Servers,
    },
    Principal {
        pool: Fqdn,
        db: DbType,
        role: Role,
    },
    NextHop {
        edge: Fqdn,
        pool: Fqdn,
    },
    SipFederation {
        edge: Option<Fqdn>,
    },
    XmppFederation {
        edge: Option<Fqdn>,
    },
    MediaEdge {
        pool: Fqdn,
        mediation: bool,
        edge: Fqdn,
    },
    EdgeServices {
        server: Fqdn,
        running: bool,
    },
    /// The pool's export of this module is in steady or final state.
    BackupSynced {
        pool: Fqdn,
        module: BackupModule,
    },
    SyncInterval {
        interval: Span,
    },
    UsersHomed {
        users: Vec<String>,
        pool: Fqdn,
    },
    /// At most `count` users remain homed on the pool.
    HomedAtMost {
        pool: Fqdn,
        count: u64,
    },
    /// `owner`'s Response Group workflows are hosted on `host`.
    RgsHosted {
        host: Fqdn,
        owner: Fqdn,
    },
    /// The two pools back each other up (`Get-CsPoolBackupRelationship`).
    PairedWith {
        pool: Fqdn,
        partner: Fqdn,
    },
    /// LYNCBACKUP on a Front End is installed (and, if `running`, runs).
    BackupService {
        server: Fqdn,
        running: bool,
    },
    /// The external XMPP federation DNS records (A, and `_xmpp-server._tcp` SRV on port 5269)
    /// send remote servers to this Edge pool: a person changes them (rule 21).
    XmppDns {
        edge: Fqdn,
    },
    /// Every component of this Front End is at its cumulative update level again (a person
    /// re-applied the update after local setup, SfB 2019 rule 13), or its Backup Service runs.
    UpdatesApplied {
        server: Fqdn,
    },
    /// Nothing observable: the cmdlet's success is the evidence (the step is safe to repeat).
    Succeeded,
}

impl Expect {
    /// Whether the condition holds in an observation.
    pub fn holds(&self, o: &Observed) -> bool {
        match self {
            Expect::ServedBy { pool, by } => {
                let st = o.failover(pool);
                if by == pool {
                    st == FailoverState::Normal
                } else {
                    st == FailoverState::FailedOver && o.topology.partner(pool) == Some(by)
                }
            }
            Expect::CmsActive { pool } => o.cms.master_pool.as_ref() == Some(pool),
            // Replicas the CMS cannot reach (no recent status report) cannot catch up; they are
            // not waited for.
            Expect::CmsReplicated { servers } => {
                o.cms.available() && o.cms.replicas_current(servers.iter().filter(|s| o.cms.in_contact.contains(*s)))
            }
            Expect::Principal { pool, db, role } => o.pool(pool).is_some_and(|p| p.back_end.principal.get(db) == Some(role)),
            Expect::NextHop { edge, pool } => o.edges.get(edge).is_some_and(|e| e.next_hop.as_ref() == Some(pool)),
            Expect::SipFederation { edge } => &o.federation.sip_edge == edge,
            Expect::XmppFederation { edge } => &o.federation.xmpp_edge == edge,
            Expect::MediaEdge { pool, mediation, edge } => o.pool(pool).is_some_and(|p| {
                let cur = if *mediation { &p.mediation_edge } else { &p.conferencing_edge };
                cur.as_ref() == Some(edge)
            }),
            Expect::EdgeServices { server, running } => o.edges.values().any(|e| e.services_running.get(server) == Some(running)),
            Expect::BackupSynced { pool, module } => o
                .pool(pool)
                .and_then(|p| p.module(*module))
                .is_some_and(|m| m.export.is_synced() && m.import == crate::model::ImportStatus::NormalState),
            Expect::SyncInterval { interval } => o.sync_interval == Some(*interval),
            Expect::UsersHomed { users, pool } => users.iter().all(|u| o.users.get(u).and_then(|h| h.as_ref()) == Some(pool)),
            Expect::HomedAtMost { pool, count } => o.pool(pool).and_then(|p| p.homed_users).is_some_and(|n| n <= *count),
            Expect::RgsHosted { host, owner } => o.rgs.hosts(host, owner),
            Expect::PairedWith { pool, partner } => o.topology.partner(pool) == Some(partner) && o.topology.partner(partner) == Some(pool),
            Expect::BackupService { server, running } => o.pools.values().any(|p| match p.backup_service.get(server) {
                Some(Some(r)) => *r || !*running,
                _ => false,
            }),
            Expect::XmppDns { edge } => o.xmpp_dns_points_at(edge),
            Expect::UpdatesApplied { server } => {
                o.pools.values().any(|p| p.patch_current.get(server) == Some(&true) || p.backup_service.get(server) == Some(&Some(true)))
            }
            Expect::Succeeded => false,
        }
    }

    /// Whether the condition can be observed (otherwise only the cmdlet's success counts).
    pub fn observable(&self) -> bool {
        !matches!(self, Expect::Succeeded)
    }
}

/// A list of servers a condition names, shared by the steps that name the same list: every
/// rule-4 wait of a plan names the deployment's reachable servers, and one copy serves them all.
/// Serialized as the plain list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Servers(Arc<[Fqdn]>);

impl Deref for Servers {
    type Target = [Fqdn];
    fn deref(&self) -> &[Fqdn] {
        &self.0
    }
}

impl From<Vec<Fqdn>> for Servers {
    fn from(v: Vec<Fqdn>) -> Self {
        Servers(v.into())
    }
}

impl Serialize for Servers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Servers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Fqdn>::deserialize(d).map(Servers::from)
    }
}

/// Facts lyncdr records once a step has taken effect, because Lync does not report them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Remember {
    /// This failover was automatic: failback waits for a human unless policy allows it.
    AutomaticFailover {
        pool: Fqdn,
        generation: i64,
    },
    /// These Edge servers must re-run local setup (a federation route moved to them).
    EdgeSetupPending {
        servers: Vec<Fqdn>,
    },
    EdgeSetupDone {
        server: Fqdn,
    },
    RgsExported {
        file: String,
        owner: Fqdn,
        workflows: Vec<String>,
    },
    /// A before-failback export was imported home; it is no longer pending.
    RgsImported {
        file: String,
    },
    RestoreDone {
        name: String,
        generation: i64,
    },
    /// A federation route moved; `from_down` is the Edge pool it left if that pool was down
    /// (moving back to it later is a failback).
    FederationMoved {
        xmpp: bool,
        from_down: Option<Fqdn>,
    },
    /// These pools' partner changed: their former partner's data is to be removed.
    BackupCleanupPending {
        pools: Vec<Fqdn>,
    },
    BackupCleanupDone {
        pool: Fqdn,
    },
    /// The CMS moved from one pool to another (`forced`: a disaster recovery failover).
    CmsMoved {
        from: Fqdn,
        to: Fqdn,
        forced: bool,
    },
}

impl Remember {
    pub fn apply(&self, h: &mut History, at: Stamp) {
        match self {
            Remember::AutomaticFailover { pool, generation } => {
                h.automatic_failovers.insert(pool.clone(), crate::model::AutomaticAction { at, generation: *generation });
            }
            Remember::EdgeSetupPending { servers } => {
                for s in servers {
                    h.pending_edge_setup.insert(s.clone(), at);
                }
            }
            Remember::EdgeSetupDone { server } => {
                h.pending_edge_setup.remove(server);
            }
            Remember::CmsMoved { from, to, forced } => {
                if *forced {
                    h.cms_forced_from = Some(from.clone());
                } else if h.cms_forced_from.as_ref() == Some(to) {
                    h.cms_forced_from = None;
                }
            }
            Remember::RgsExported { file, owner, workflows } => {
                h.rgs_exports.insert(file.clone(), RgsExportObs { owner: owner.clone(), workflows: workflows.clone(), taken_at: at });
            }
            Remember::RgsImported { file } => {
                h.rgs_exports.remove(file);
            }
            Remember::BackupCleanupPending { pools } => {
                h.pending_backup_cleanup.extend(pools.iter().cloned());
            }
            Remember::BackupCleanupDone { pool } => {
                h.pending_backup_cleanup.remove(pool);
            }
            Remember::FederationMoved { xmpp, from_down } => {
                if *xmpp {
                    h.xmpp_moved_from = from_down.clone();
                } else {
                    h.sip_moved_from = from_down.clone();
                }
            }
            Remember::RestoreDone { name, generation } => {
                h.completed_restores.insert(name.clone(), *generation);
            }
        }
    }
}

/// Why part of the desired state cannot be reached safely now.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    pub resource: String,
    pub reason: String,
}
