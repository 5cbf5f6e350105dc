//! The simulator's runtime state of a deployment (which pools serve whom, the CMS, Back End
//! principals, Edge next hops, federation routes, media associations, Backup Service data,
//! users, Response Groups) and the reachability rules faults imply.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{BackupModule, DbType, FailoverState, Fqdn, Hosts, Role, Span, Stamp, Topology};
use crate::scenario::Scenario;
use crate::scenario::{FaultTarget, OPERATOR};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRt {
    pub state: FailoverState,
    /// Set by a planned failover while the pool drains to its partner.
    pub read_only: bool,
    pub principal: BTreeMap<DbType, Role>,
    pub conferencing_edge: Option<Fqdn>,
    /// Edge pool the media association was moved away from while it was down (rule 23).
    #[serde(default)]
    pub media_moved_from: Option<Fqdn>,
    pub mediation_edge: Option<Fqdn>,
    /// When a witness will switch the principal automatically (primary or mirror lost).
    pub witness_failover_at: Option<Stamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeRt {
    pub next_hop: Option<Fqdn>,
    /// Lync services running, per Edge server.
    pub services: BTreeMap<Fqdn, bool>,
    /// Configuration epoch each Edge server's local setup last applied.
    pub setup_epoch: BTreeMap<Fqdn, u64>,
    /// Configuration epoch from which this pool's federation role requires setup to be re-run.
    pub setup_required: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmsRt {
    /// Pool hosting the active master.
    pub master: Option<Fqdn>,
    /// Pool holding the standby database.
    pub standby: Option<Fqdn>,
    /// Configuration changes made at the master / present at the standby.
    pub ver_master: f64,
    pub ver_standby: f64,
    /// Configuration epoch: bumped by every topology or configuration change.
    pub epoch: u64,
    /// Epoch each replica (every Front End and Edge server) holds.
    pub replica_epoch: BTreeMap<Fqdn, u64>,
    /// Last time each replica reported to the CMS master (`LastStatusReport`).
    #[serde(default)]
    pub last_contact: BTreeMap<Fqdn, Stamp>,
    /// When replication next catches up every reachable replica.
    pub replication_due: Option<Stamp>,
    /// Epoch of the last CMS move; exports taken at or after it count as a backup for rule 8.
    pub moved_epoch: u64,
}

/// Replicated data of one pool's users for one Backup Service module, as change counters.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replica {
    /// Changes made in total.
    pub total: f64,
    /// Changes only in the home pool's store (not yet imported by the partner).
    pub home_ahead: f64,
    /// Changes only in the backup pool's store (made while failed over, not yet copied home).
    pub backup_ahead: f64,
    /// Data the home store lacks but the backup holds, restored only by an explicit
    /// `Invoke-CsBackupServiceSync` from the partner (conference content after failback or loss).
    pub restore: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RgsFile {
    pub owner: Fqdn,
    pub workflows: Vec<String>,
    pub taken_at: Stamp,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigExport {
    pub file: String,
    pub lis: bool,
    pub epoch: u64,
    pub taken_at: Stamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct World {
    pub faults: BTreeSet<FaultTarget>,
    pub pools: BTreeMap<Fqdn, PoolRt>,
    pub edges: BTreeMap<Fqdn, EdgeRt>,
    pub cms: CmsRt,
    pub sip_federation: Option<Fqdn>,
    pub xmpp_federation: Option<Fqdn>,
    /// Edge pool the SIP federation route was moved away from while it was down (a disaster
    /// move, which rule 23 says to undo before failing back the site's Front End pools).
    pub federation_moved_from: Option<Fqdn>,
    /// Edge pool the XMPP route was moved away from while it was down: moving it back is the
    /// failback of JJ721897, which does not stop the restored pool's services.
    #[serde(default)]
    pub xmpp_moved_from: Option<Fqdn>,
    /// Edge pool the XMPP route was moved to with its services stopped (JJ688065): they are
    /// started only once the DNS records point at it (rule 21).
    #[serde(default)]
    pub xmpp_awaiting_dns: Option<Fqdn>,
    /// Edge pools the external `_xmpp-server._tcp.<SIP domain>` SRV records (port 5269) and
    /// their A records resolve to, highest priority first. People change them, not cmdlets.
    #[serde(default)]
    pub xmpp_dns: Vec<Fqdn>,
    pub sync_interval: Span,
    pub data: BTreeMap<(Fqdn, BackupModule), Replica>,
    /// Users rehomed by Move-CsUser: SIP address to new home pool.
    pub rehomed: BTreeMap<String, Fqdn>,
    /// Response Group workflows: hosting pool, owner pool, names.
    pub rgs: BTreeMap<Fqdn, BTreeMap<Fqdn, Vec<String>>>,
    pub rgs_files: BTreeMap<String, RgsFile>,
    pub config_exports: Vec<ConfigExport>,
    /// The Backup Service on each Front End server: installed by local setup once the server
    /// knows its pool is paired, and running or not.
    pub fe_backup: BTreeMap<Fqdn, FeBackup>,
    /// Topology documents written by `Set-LyncdrBackupPool`: each pool's backup pool (None: none).
    pub topology_drafts: BTreeMap<String, BTreeMap<Fqdn, Option<Fqdn>>>,
    /// Configuration epoch of the last published change of each pool's pairing, and of the last
    /// `Enable-CsTopology`.
    pub pairing_epoch: BTreeMap<Fqdn, u64>,
    pub enabled_epoch: u64,
    /// Pools still holding the user data of a former partner (rule 31).
    pub stale_backup_data: std::collections::BTreeSet<Fqdn>,
    /// Front End servers where local setup installed components older than the server's
    /// cumulative update (SfB 2019 pairing): the update must be re-applied (JJ204773).
    #[serde(default)]
    pub behind_on_updates: BTreeSet<Fqdn>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeBackup {
    pub installed: bool,
    pub running: bool,
}

impl World {
    pub fn from_scenario(s: &Scenario) -> World {
        let topo = &s.topology;
        let pools = topo
            .pools
            .values()
            .map(|p| {
                let mut principal = BTreeMap::new();
                let role = s.principal.get(&p.fqdn).copied().unwrap_or_default();
                principal.insert(DbType::User, role);
                // Response Group, Call Park and Address Book data, failed over on their own with
                // `-DatabaseType Application`.
                principal.insert(DbType::Application, role);
                let cms_db = s.cms_pool.as_ref().is_some_and(|c| c == &p.fqdn || topo.partner(c) == Some(&p.fqdn));
                if cms_db {
                    principal.insert(DbType::CentralMgmt, role);
                }
                let media = s.media_edge.get(&p.fqdn).cloned().flatten();
                let state = if s.failed_over.contains(&p.fqdn) { FailoverState::FailedOver } else { FailoverState::Normal };
                (
                    p.fqdn.clone(),
                    PoolRt {
                        state,
                        read_only: false,
                        principal,
                        conferencing_edge: media.clone(),
                        media_moved_from: None,
                        mediation_edge: media,
                        witness_failover_at: None,
                    },
                )
            })
            .collect();
        let edges = topo
            .edges
            .values()
            .map(|e| {
                (
                    e.fqdn.clone(),
                    EdgeRt {
                        next_hop: s.next_hops.get(&e.fqdn).cloned().flatten(),
                        services: e.servers.iter().map(|s| (s.clone(), true)).collect(),
                        setup_epoch: e.servers.iter().map(|s| (s.clone(), 0)).collect(),
                        setup_required: 0,
                    },
                )
            })
            .collect();
        let replica_epoch = topo
            .pools
            .values()
            .flat_map(|p| p.front_ends.iter())
            .chain(topo.edges.values().flat_map(|e| e.servers.iter()))
            .map(|s| (s.clone(), 0))
            .collect();
        let cms = CmsRt {
            master: s.cms_pool.clone(),
            standby: s.cms_pool.as_ref().and_then(|c| topo.partner(c).cloned()),
            ver_master: 0.0,
            ver_standby: 0.0,
            epoch: 0,
            replica_epoch,
            last_contact: BTreeMap::new(),
            replication_due: None,
            moved_epoch: 0,
        };
        let mut data = BTreeMap::new();
        for p in topo.pools.keys() {
            for m in [BackupModule::PresenceFocus, BackupModule::DataConf] {
                data.insert((p.clone(), m), Replica::default());
            }
        }
        let rgs = topo
            .pools
            .values()
            .filter(|p| !p.response_groups.is_empty())
            .map(|p| (p.fqdn.clone(), BTreeMap::from([(p.fqdn.clone(), p.response_groups.clone())])))
            .collect();
        let fe_backup = topo
            .pools
            .values()
            .flat_map(|p| {
                let paired = topo.partner(&p.fqdn).is_some();
                let running = paired && !s.backup_stopped.contains(&p.fqdn);
                p.front_ends.iter().map(move |fe| (fe.clone(), FeBackup { installed: paired, running }))
            })
            .collect();
        World {
            fe_backup,
            topology_drafts: BTreeMap::new(),
            pairing_epoch: BTreeMap::new(),
            enabled_epoch: 0,
            stale_backup_data: Default::default(),
            behind_on_updates: BTreeSet::new(),
            faults: s.down.iter().cloned().collect(),
            pools,
            edges,
            cms,
            sip_federation: s.sip_federation.clone(),
            xmpp_federation: s.xmpp_federation.clone(),
            federation_moved_from: None,
            xmpp_moved_from: None,
            xmpp_awaiting_dns: None,
            xmpp_dns: s.xmpp_dns.clone(),
            sync_interval: s.sync_interval,
            data,
            rehomed: BTreeMap::new(),
            rgs,
            rgs_files: BTreeMap::new(),
            config_exports: Vec::new(),
        }
    }
}

/// Reachability as the active faults define it.
pub struct Net<'a> {
    pub topo: &'a Topology,
    /// The topology's host index (sites and pools of servers, looked up on every check).
    pub hosts: &'a Hosts,
    pub faults: &'a BTreeSet<FaultTarget>,
}

impl Net<'_> {
    fn site_down(&self, site: &str) -> bool {
        self.faults.contains(&FaultTarget::Site(site.to_string()))
    }

    /// A server, pool, Edge pool or SQL server is powered and running.
    pub fn host_up(&self, fqdn: &Fqdn) -> bool {
        let Some(site) = self.hosts.site_of(fqdn) else { return false };
        if self.site_down(site) || self.faults.contains(&FaultTarget::Server(fqdn.clone())) {
            return false;
        }
        if self.faults.contains(&FaultTarget::Sql(fqdn.clone())) {
            return false;
        }
        if let Some(p) = self.topo.pools.get(fqdn) {
            return !self.faults.contains(&FaultTarget::Pool(p.fqdn.clone())) && p.front_ends.iter().any(|s| self.host_up(s));
        }
        if let Some(e) = self.topo.edges.get(fqdn) {
            return !self.faults.contains(&FaultTarget::Edge(e.fqdn.clone())) && e.servers.iter().any(|s| self.host_up(s));
        }
        if let Some(p) = self.hosts.pool_of_server(fqdn) {
            return !self.faults.contains(&FaultTarget::Pool(p.clone()));
        }
        if let Some(e) = self.hosts.edge_of_server(fqdn) {
            return !self.faults.contains(&FaultTarget::Edge(e.clone()));
        }
        true
    }

    /// Two ends (site names or `operator`) can talk.
    pub fn linked(&self, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        !self.faults.contains(&FaultTarget::Link(x.to_string(), y.to_string()))
    }

    /// `from` (a server, or `None` for the operator) can reach `to`.
    pub fn reaches(&self, from: Option<&Fqdn>, to: &Fqdn) -> bool {
        let from_site = match from {
            None => OPERATOR,
            Some(s) => match self.hosts.site_of(s) {
                Some(site) => site,
                None => return false,
            },
        };
        let Some(to_site) = self.hosts.site_of(to) else { return false };
        self.host_up(to) && self.linked(from_site, to_site)
    }

    /// The operator reaches the server and the server is up.
    pub fn operator_reaches(&self, server: &Fqdn) -> bool {
        self.reaches(None, server)
    }

    pub fn sql_up(&self, sql: &Fqdn) -> bool {
        let Some(site) = self.hosts.site_of(sql) else { return false };
        !self.site_down(site)
            && !self.faults.contains(&FaultTarget::Sql(sql.clone()))
            && !self.faults.contains(&FaultTarget::Server(sql.clone()))
    }
}
