//! What lyncdr knows about a deployment at one moment: the topology read back from Lync plus the
//! runtime state of every pool, Back End, Edge pool, the CMS, federation routes and the Backup
//! Service. Built by the engine's observer from `Get-*` cmdlets; consumed by the planner.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Fqdn, History, Role, Span, Stamp, Topology};

/// Result of trying to reach something.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result", content = "detail")]
pub enum Probe {
    /// Reached and answered.
    Ok,
    /// Could not be reached (transport or name resolution failure).
    Unreachable(String),
    /// Reached, but reported a failure.
    Failed(String),
    /// Not tried (e.g. there is no vantage point to probe from).
    #[default]
    NotProbed,
}

impl Probe {
    pub fn is_ok(&self) -> bool {
        matches!(self, Probe::Ok)
    }
    /// The probe positively showed the target is not working.
    pub fn is_negative(&self) -> bool {
        matches!(self, Probe::Unreachable(_) | Probe::Failed(_))
    }
}

/// A pool's health, combining the operator's view with its partner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// The operator reaches it.
    Up,
    /// The operator cannot reach it, and its partner confirms it is down.
    Down,
    /// The operator cannot reach it, but its partner can: alive, cut off from the operator.
    Isolated,
    /// Not enough evidence either way (e.g. operator and partner both unreachable).
    Unknown,
}

impl Health {
    pub fn from_probes(direct: &Probe, from_partner: &Probe) -> Health {
        match (direct, from_partner) {
            (Probe::Ok, _) => Health::Up,
            (d, p) if d.is_negative() && p.is_ok() => Health::Isolated,
            (d, p) if d.is_negative() && p.is_negative() => Health::Down,
            _ => Health::Unknown,
        }
    }
    /// Alive, whether or not the operator can reach it directly.
    pub fn is_alive(self) -> bool {
        matches!(self, Health::Up | Health::Isolated)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Who serves a pool's users (from the pool failover state kept in the CMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FailoverState {
    /// Served by their home pool.
    #[default]
    Normal,
    /// Failed over: served by the backup pool.
    FailedOver,
    /// `Invoke-CsPoolFailOver` is running.
    FailingOver,
    /// `Invoke-CsPoolFailBack` is running.
    FailingBack,
}

impl FailoverState {
    pub fn in_progress(self) -> bool {
        matches!(self, FailoverState::FailingOver | FailoverState::FailingBack)
    }
}

/// Back End databases whose mirror state lyncdr tracks (`-DatabaseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DbType {
    User,
    CentralMgmt,
    /// The Application databases: Response Group and Call Park configuration, Address Book.
    Application,
}

impl DbType {
    pub fn as_str(self) -> &'static str {
        match self {
            DbType::User => "User",
            DbType::CentralMgmt => "CentralMgmt",
            DbType::Application => "Application",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackEndObs {
    /// Principal per database, as `Get-CsDatabaseMirrorState` reports it.
    pub principal: BTreeMap<DbType, Role>,
    /// Whether each SQL server answered.
    pub primary_up: bool,
    pub mirror_up: Option<bool>,
}

impl BackEndObs {
    pub fn server_up(&self, role: Role) -> bool {
        match role {
            Role::Primary => self.primary_up,
            Role::Mirror => self.mirror_up.unwrap_or(false),
        }
    }
    /// The pool's user database is served by a running SQL server.
    pub fn available(&self) -> bool {
        self.principal.get(&DbType::User).is_some_and(|r| self.server_up(*r))
    }
}

/// Backup Service export state of one module (T1 semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportStatus {
    NotInitialized,
    SteadyState,
    NonSteadyState,
    FinalState,
    ErrorState,
}

impl ExportStatus {
    /// Everything exported is within one sync interval of the partner.
    pub fn is_synced(self) -> bool {
        matches!(self, ExportStatus::SteadyState | ExportStatus::FinalState)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportStatus {
    NormalState,
    ErrorState,
}

/// Backup Service modules (fully-qualified names, as the cmdlet reference spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BackupModule {
    #[serde(rename = "UserServices.PresenceFocus")]
    PresenceFocus,
    #[serde(rename = "ConfServices.DataConf")]
    DataConf,
    #[serde(rename = "CentralMgmt.CMSMaster")]
    CmsMaster,
}

impl BackupModule {
    pub const ALL: [BackupModule; 3] = [BackupModule::PresenceFocus, BackupModule::DataConf, BackupModule::CmsMaster];

    pub fn as_str(self) -> &'static str {
        match self {
            BackupModule::PresenceFocus => "UserServices.PresenceFocus",
            BackupModule::DataConf => "ConfServices.DataConf",
            BackupModule::CmsMaster => "CentralMgmt.CMSMaster",
        }
    }
    /// Accepts the fully-qualified names and the IT-pro document's short names.
    pub fn parse(s: &str) -> Option<BackupModule> {
        match s.to_ascii_lowercase().as_str() {
            "userservices.presencefocus" | "presencefocus" => Some(BackupModule::PresenceFocus),
            "confservices.dataconf" | "dataconf" => Some(BackupModule::DataConf),
            "centralmgmt.cmsmaster" | "cmsmaster" => Some(BackupModule::CmsMaster),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleStatus {
    pub export: ExportStatus,
    pub import: ImportStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolObs {
    pub direct: Probe,
    pub from_partner: Probe,
    pub failover: FailoverState,
    pub back_end: BackEndObs,
    /// Edge pool used for A/V conferencing media (`Get-CsService -ConferencingServer`).
    pub conferencing_edge: Option<Fqdn>,
    /// Edge pool used by the collocated Mediation service.
    pub mediation_edge: Option<Fqdn>,
    /// `Get-CsBackupServiceStatus -PoolFqdn` of this pool: export towards its partner.
    pub backup_modules: BTreeMap<BackupModule, ModuleStatus>,
    /// Users homed on the pool (counted when a placement needs it).
    pub homed_users: Option<u64>,
    /// The Backup Service (LYNCBACKUP) on each Front End that answered: `None` when local setup
    /// has not installed it, otherwise whether it runs.
    #[serde(default)]
    pub backup_service: BTreeMap<Fqdn, Option<bool>>,
    /// Front Ends whose Backup Service is installed but not running, and whether all their
    /// components are at the cumulative update level (`Get-CsServerPatchVersion`): SfB 2019
    /// local setup installs the pairing components at the release version (rule 13).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub patch_current: BTreeMap<Fqdn, bool>,
}

impl PoolObs {
    pub fn health(&self) -> Health {
        Health::from_probes(&self.direct, &self.from_partner)
    }
    pub fn module(&self, m: BackupModule) -> Option<ModuleStatus> {
        self.backup_modules.get(&m).copied()
    }
    /// LYNCBACKUP runs on some Front End that answered.
    pub fn backup_running(&self) -> bool {
        self.backup_service.values().any(|s| *s == Some(true))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeObs {
    pub direct: Probe,
    /// The Edge servers probed from a Front End pool of another site (only when the operator
    /// does not reach them): like a pool's partner, it tells a dead Edge pool from one that is
    /// only cut off from the operator.
    #[serde(default)]
    pub from_other_site: Probe,
    /// Next hop Registrar pool (`Get-CsService -EdgeServer`, property Registrar).
    pub next_hop: Option<Fqdn>,
    /// Edge servers whose Lync services run.
    pub services_running: BTreeMap<Fqdn, bool>,
}

impl EdgeObs {
    pub fn is_up(&self) -> bool {
        self.direct.is_ok() && self.services_running.values().any(|r| *r)
    }
    /// Up (the operator reaches it), Isolated (only another site does), Down (confirmed from
    /// both) or Unknown.
    pub fn health(&self) -> Health {
        Health::from_probes(&self.direct, &self.from_other_site)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmsObs {
    /// Pool hosting the active master (from `ActiveMasterFqdn`); `None` when the CMS is unavailable.
    pub master_pool: Option<Fqdn>,
    /// Pool holding the standby CMS database (`Get-CsService -CentralManagementDatabase`).
    pub standby_pool: Option<Fqdn>,
    /// Pool the topology says hosts the CMS, even while it is unavailable.
    pub home_pool: Option<Fqdn>,
    /// Replica servers and whether each is up to date.
    pub replicas: BTreeMap<Fqdn, bool>,
    /// Replicas that reported to the CMS recently: changes can reach them.
    #[serde(default)]
    pub in_contact: std::collections::BTreeSet<Fqdn>,
}

impl CmsObs {
    pub fn available(&self) -> bool {
        self.master_pool.is_some()
    }
    /// Every replica on the given servers is up to date.
    pub fn replicas_current<'a>(&self, servers: impl IntoIterator<Item = &'a Fqdn>) -> bool {
        servers.into_iter().all(|s| self.replicas.get(s).copied().unwrap_or(false))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederationObs {
    /// Edge pool carrying SIP federation (`Get-CsSite` FederationRoute).
    pub sip_edge: Option<Fqdn>,
    /// Edge pool carrying XMPP federation (`Get-CsSite` XmppFederationRoute).
    pub xmpp_edge: Option<Fqdn>,
    /// The deployment's default SIP domain (`Get-CsSipDomain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_domain: Option<String>,
    /// The external `_xmpp-server._tcp.<SIP domain>` SRV records (`Resolve-DnsName -Type SRV`),
    /// read while an XMPP route exists; `None` when they could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp_srv: Option<Vec<SrvRecord>>,
}

/// One SRV record: its priority (lower is preferred), port and the Edge pool it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SrvRecord {
    pub priority: u32,
    pub port: u32,
    pub target: Fqdn,
}

impl Observed {
    /// Whether the XMPP federation DNS records send remote servers to `edge`: the
    /// highest-priority `_xmpp-server._tcp` record on port 5269 whose Edge pool is not confirmed
    /// down (remote servers try the next record when one does not answer) resolves to it.
    pub fn xmpp_dns_points_at(&self, edge: &Fqdn) -> bool {
        let Some(records) = &self.federation.xmpp_srv else { return false };
        let mut sorted: Vec<&SrvRecord> = records.iter().filter(|r| r.port == 5269).collect();
        sorted.sort_by_key(|r| r.priority);
        sorted.into_iter().find(|r| self.edge_health(&r.target) != Health::Down).is_some_and(|r| r.target == *edge)
    }

    /// The name lyncdr resolves to check the XMPP federation DNS records.
    pub fn xmpp_srv_name(&self) -> String {
        format!("_xmpp-server._tcp.{}", self.federation.sip_domain.as_deref().unwrap_or("contoso.com"))
    }
}

/// Response Group workflows: hosting pool, then owner pool, then workflow names
/// (`Get-CsRgsWorkflow -ShowAll` on each reachable pool).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RgsObs {
    pub hosted: BTreeMap<Fqdn, BTreeMap<Fqdn, Vec<String>>>,
}

impl RgsObs {
    /// Whether `owner`'s workflows are hosted on `host`.
    pub fn hosts(&self, host: &Fqdn, owner: &Fqdn) -> bool {
        self.hosted.get(host).and_then(|o| o.get(owner)).is_some_and(|v| !v.is_empty())
    }
}

/// A Response Group export file lyncdr wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RgsExportObs {
    pub owner: Fqdn,
    pub workflows: Vec<String>,
    pub taken_at: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    pub at: Stamp,
    pub topology: Topology,
    pub pools: BTreeMap<Fqdn, PoolObs>,
    pub edges: BTreeMap<Fqdn, EdgeObs>,
    pub cms: CmsObs,
    pub federation: FederationObs,
    /// `Get-CsBackupServiceConfiguration` SyncInterval.
    pub sync_interval: Option<Span>,
    /// Home pool of users named by placements (`None`: no such user).
    pub users: BTreeMap<String, Option<Fqdn>>,
    pub rgs: RgsObs,
    /// Pools whose host facts (product, operating system, virtualization) could not be read and
    /// are not remembered: the pairing rules that need them are not checked.
    #[serde(default)]
    pub unknown_traits: std::collections::BTreeSet<Fqdn>,
    /// What the operator remembers from earlier observations.
    pub history: History,
}

impl Observed {
    pub fn pool(&self, f: &Fqdn) -> Option<&PoolObs> {
        self.pools.get(f)
    }
    pub fn health(&self, f: &Fqdn) -> Health {
        self.pools.get(f).map(PoolObs::health).unwrap_or(Health::Unknown)
    }
    pub fn edge_up(&self, f: &Fqdn) -> bool {
        self.edges.get(f).is_some_and(EdgeObs::is_up)
    }
    pub fn edge_health(&self, f: &Fqdn) -> Health {
        self.edges.get(f).map(EdgeObs::health).unwrap_or(Health::Unknown)
    }
    pub fn failover(&self, f: &Fqdn) -> FailoverState {
        self.pools.get(f).map(|p| p.failover).unwrap_or_default()
    }
    /// The pool currently serving `pool`'s users.
    pub fn serving(&self, pool: &Fqdn) -> Fqdn {
        match (self.failover(pool), self.topology.partner(pool)) {
            (FailoverState::FailedOver | FailoverState::FailingOver, Some(p)) => p.clone(),
            _ => pool.clone(),
        }
    }
}
