//! The objects Lync's read-only cmdlets return, as `ConvertTo-Json` renders them: PascalCase
//! property names, one object alone rather than in an array, `null` for nothing. One type per
//! cmdlet output the observer reads, shared by the simulator (which produces them: its query
//! output is these types serialized) and the observer (which reads them back through the same
//! types), so that both sides agree by construction instead of by spelling; the WinRM driver will
//! read real PowerShell output through the same types. A pool or server a record is about is an
//! [`Fqdn`] (a row without a valid one does not parse); other names are kept as the cmdlet renders
//! them (`Site:Dallas`, `EdgeServer:edge01.dal.contoso.com`), with methods that read them. Fields
//! a real server may omit default, and properties lyncdr does not read are ignored: the real
//! cmdlets return many more.

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{BackupModule, ExportStatus, FailoverState, Fqdn, ImportStatus, SrvRecord};

/// An object one of Lync's read-only cmdlets returns.
pub trait Record: Serialize + DeserializeOwned {
    /// The type's name, for errors.
    const NAME: &'static str;
}

/// Output that does not parse as the record expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record} does not parse: {message}")]
pub struct RecordError {
    /// The record type expected ([`Record::NAME`]).
    pub record: &'static str,
    /// What did not fit (serde's message, and which row).
    pub message: String,
}

/// All the objects of a cmdlet's output: `null` is none, an object alone is one row, an array
/// is its rows. Fails on the first row that does not parse.
pub fn rows<T: Record>(v: &Value) -> Result<Vec<T>, RecordError> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, r)| parse::<T>(r).map_err(|e| RecordError { message: format!("row {} of {}: {}", i + 1, a.len(), e.message), ..e }))
            .collect(),
        single => parse(single).map(|r| vec![r]),
    }
}

/// The rows of a cmdlet's output that parse, for the reads that tolerate a bad row: the others
/// are left out.
pub fn parsed<T: Record>(v: &Value) -> Vec<T> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.iter().filter_map(|r| parse(r).ok()).collect(),
        single => parse(single).ok().into_iter().collect(),
    }
}

/// The one object of a cmdlet's output (an array of one counts).
pub fn one<T: Record>(v: &Value) -> Result<T, RecordError> {
    match v {
        Value::Array(a) => match a.as_slice() {
            [r] => parse(r),
            _ => Err(RecordError { record: T::NAME, message: format!("{} objects where one was expected", a.len()) }),
        },
        Value::Null => Err(RecordError { record: T::NAME, message: "no object where one was expected".into() }),
        single => parse(single),
    }
}

fn parse<T: Record>(v: &Value) -> Result<T, RecordError> {
    T::deserialize(v).map_err(|e| RecordError { record: T::NAME, message: e.to_string() })
}

/// `<Role>:<pool>`, the way Lync names a service (`Registrar:pool01.dal.contoso.com`) and the way
/// a site's federation route or a media service's Edge association is rendered (`EdgeServer:...`).
pub fn service_id(role: &str, pool: &Fqdn) -> String {
    format!("{role}:{pool}")
}

/// The pool of a service identity written `<role>:<pool>` or as a bare FQDN.
pub fn service_pool(id: &str, role: &str) -> Option<Fqdn> {
    let pool = id.strip_prefix(role).and_then(|r| r.strip_prefix(':')).unwrap_or(id);
    Fqdn::parse(pool).ok()
}

/// A property PowerShell renders as a collection: `null` is empty and a lone value is one item,
/// as for a whole output.
fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(vec![]),
        Value::Array(a) => a.into_iter().map(|x| T::deserialize(x).map_err(de::Error::custom)).collect(),
        single => T::deserialize(single).map(|x| vec![x]).map_err(de::Error::custom),
    }
}

/// A Backup Service status whose value is missing or not one lyncdr knows reads as an error.
trait Status: DeserializeOwned {
    const UNKNOWN: Self;
}

impl Status for ExportStatus {
    const UNKNOWN: Self = ExportStatus::ErrorState;
}

impl Status for ImportStatus {
    const UNKNOWN: Self = ImportStatus::ErrorState;
}

fn status<'de, D: Deserializer<'de>, T: Status>(d: D) -> Result<T, D::Error> {
    Ok(T::deserialize(Value::deserialize(d)?).unwrap_or(T::UNKNOWN))
}

fn unknown_status<T: Status>() -> T {
    T::UNKNOWN
}

/// `Get-CsPool`: a pool of the topology (Front End and Edge pools alike; the services tell them
/// apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolRecord {
    #[serde(default)]
    pub identity: String,
    pub fqdn: Fqdn,
    /// `Site:<name>`.
    #[serde(default)]
    pub site: String,
    /// The pool's servers.
    #[serde(default, deserialize_with = "list")]
    pub computers: Vec<String>,
    /// The pool's services, `<Role>:<pool>`.
    #[serde(default, deserialize_with = "list")]
    pub services: Vec<String>,
}

impl PoolRecord {
    /// The site's name, without `Site:`.
    pub fn site_name(&self) -> &str {
        self.site.trim_start_matches("Site:")
    }
    /// The servers with a valid FQDN.
    pub fn computer_fqdns(&self) -> Vec<Fqdn> {
        self.computers.iter().filter_map(|c| Fqdn::parse(c).ok()).collect()
    }
    /// The pool runs a service of this role (`Registrar`, `EdgeServer`, ...).
    pub fn has_service(&self, role: &str) -> bool {
        self.services.iter().any(|s| s.strip_prefix(role).is_some_and(|r| r.starts_with(':')))
    }
}

/// `Get-CsSite`: a site and its federation routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SiteRecord {
    /// `Site:<name>`.
    #[serde(default)]
    pub identity: String,
    #[serde(default)]
    pub site_id: u64,
    #[serde(default)]
    pub display_name: String,
    /// `EdgeServer:<pool>` carrying SIP federation.
    #[serde(default)]
    pub federation_route: Option<String>,
    /// `EdgeServer:<pool>` carrying XMPP federation.
    #[serde(default)]
    pub xmpp_federation_route: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub pools: Vec<String>,
}

impl SiteRecord {
    /// The Edge pool carrying SIP federation.
    pub fn federation_edge(&self) -> Option<Fqdn> {
        self.federation_route.as_deref().and_then(|r| service_pool(r, "EdgeServer"))
    }
    /// The Edge pool carrying XMPP federation.
    pub fn xmpp_federation_edge(&self) -> Option<Fqdn> {
        self.xmpp_federation_route.as_deref().and_then(|r| service_pool(r, "EdgeServer"))
    }
}

/// `Get-CsService -UserDatabase`: a Back End (its SQL Server) and the pools it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserDatabaseService {
    #[serde(default)]
    pub identity: String,
    /// The principal SQL Server.
    pub pool_fqdn: Fqdn,
    #[serde(default)]
    pub sql_instance_name: Option<String>,
    #[serde(default)]
    pub mirror_sql_server: Option<String>,
    #[serde(default)]
    pub has_witness: bool,
    #[serde(default)]
    pub is_clustered: bool,
    /// `UserServer:<pool>` for each pool whose users it stores (and other services).
    #[serde(default, deserialize_with = "list")]
    pub dependent_service_list: Vec<String>,
}

impl UserDatabaseService {
    /// The mirror SQL Server, if there is one.
    pub fn mirror(&self) -> Option<Fqdn> {
        self.mirror_sql_server.as_deref().and_then(|m| Fqdn::parse(m).ok())
    }
    /// The pools whose User Services it stores.
    pub fn user_pools(&self) -> Vec<Fqdn> {
        self.dependent_service_list.iter().filter_map(|d| d.strip_prefix("UserServer:").and_then(|p| Fqdn::parse(p).ok())).collect()
    }
}

/// `Get-CsService -EdgeServer`: an Edge pool and its next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EdgeServerService {
    #[serde(default)]
    pub identity: String,
    pub pool_fqdn: Fqdn,
    /// `Registrar:<pool>`, the next hop.
    #[serde(default)]
    pub registrar: Option<String>,
}

impl EdgeServerService {
    /// The next hop Registrar pool.
    pub fn next_hop(&self) -> Option<Fqdn> {
        self.registrar.as_deref().and_then(|r| service_pool(r, "Registrar"))
    }
}

/// `Get-CsService -ConferencingServer` and `-MediationServer`: the Edge pool a pool's media use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MediaService {
    #[serde(default)]
    pub identity: String,
    pub pool_fqdn: Fqdn,
    /// `EdgeServer:<pool>`.
    #[serde(default)]
    pub edge_server: Option<String>,
}

impl MediaService {
    /// The Edge pool the media use.
    pub fn edge(&self) -> Option<Fqdn> {
        self.edge_server.as_deref().and_then(|e| service_pool(e, "EdgeServer"))
    }
}

/// `Get-CsService -CentralManagement`: a pool that hosts the CMS, active or standby.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CentralManagementService {
    /// `CentralManagement:<pool>`.
    pub identity: String,
    #[serde(default)]
    pub pool_fqdn: String,
    #[serde(default)]
    pub active: bool,
}

impl CentralManagementService {
    /// The pool, from the identity.
    pub fn pool(&self) -> Option<Fqdn> {
        service_pool(&self.identity, "CentralManagement")
    }
}

/// `Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus`: where the CMS master
/// runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CmsStoreStatus {
    /// The server running the master (none while the CMS is unavailable).
    #[serde(default)]
    pub active_master_fqdn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub active_file_transfer_agents: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    pub active_replicas: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    pub deleted_replicas: Vec<String>,
}

impl CmsStoreStatus {
    pub fn active_master(&self) -> Option<Fqdn> {
        self.active_master_fqdn.as_deref().and_then(|m| Fqdn::parse(m).ok())
    }
}

/// `Get-CsManagementStoreReplicationStatus`: one replica of the CMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CmsReplicaStatus {
    pub replica_fqdn: Fqdn,
    #[serde(default)]
    pub up_to_date: bool,
    /// The replica's last report to the master, in milliseconds on the backend's clock (the
    /// simulator's; the WinRM driver converts the real DateTime).
    #[serde(default)]
    pub last_status_report: Option<u64>,
}

/// `Get-CsBackupServiceConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackupServiceConfiguration {
    #[serde(default)]
    pub identity: String,
    /// A TimeSpan, `hh:mm:ss`.
    #[serde(default)]
    pub sync_interval: Option<String>,
    #[serde(default)]
    pub max_batches_per_cms_sync: u64,
    #[serde(default)]
    pub max_batches_per_user_store_sync: u64,
    #[serde(default)]
    pub max_concurrent_calls: u64,
    #[serde(default, rename = "MaxDataConfPackageSizeKB")]
    pub max_data_conf_package_size_kb: u64,
}

/// `Get-CsSipDomain`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SipDomain {
    #[serde(default)]
    pub identity: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
}

/// `Get-CsPoolBackupRelationship -PoolFqdn`: a pool's backup pool, and (the simulator reports it
/// here; Lync keeps it in the CMS) its failover state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolBackupRelationship {
    #[serde(default)]
    pub pool_fqdn: String,
    #[serde(default)]
    pub backup_pool_fqdn: Option<String>,
    #[serde(default)]
    pub failover_state: FailoverState,
}

impl PoolBackupRelationship {
    pub fn backup_pool(&self) -> Option<Fqdn> {
        self.backup_pool_fqdn.as_deref().and_then(|b| Fqdn::parse(b).ok())
    }
}

/// `Get-CsDatabaseMirrorState -PoolFqdn`: one database of a pool's Back End.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatabaseMirrorState {
    #[serde(default)]
    pub database_name: String,
    /// `User`, `CentralMgmt`, `Application`, ... (kept as text: real servers list more types).
    #[serde(default)]
    pub database_type: String,
    /// `Principal`, `Mirror`, `DatabaseUnavailable`, `DatabaseInaccessibleOrMirroringNotEnabled`.
    #[serde(default)]
    pub state_on_primary: String,
    #[serde(default)]
    pub state_on_mirror: String,
    #[serde(default)]
    pub mirroring_status_on_primary: String,
    #[serde(default)]
    pub mirroring_status_on_mirror: String,
}

/// `Get-CsBackupServiceStatus -PoolFqdn`: the Backup Service of a pool towards its partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackupServiceStatus {
    #[serde(default)]
    pub pool_fqdn: String,
    #[serde(default = "unknown_status", deserialize_with = "status")]
    pub overall_export_status: ExportStatus,
    #[serde(default = "unknown_status", deserialize_with = "status")]
    pub overall_import_status: ImportStatus,
    #[serde(default, deserialize_with = "list")]
    pub backup_modules: Vec<BackupModuleStatus>,
}

/// One module of [`BackupServiceStatus`]. A status that is missing or unknown reads as
/// `ErrorState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackupModuleStatus {
    /// The module's fully-qualified name (`UserServices.PresenceFocus`, ...).
    #[serde(default)]
    pub identity: String,
    #[serde(default = "unknown_status", deserialize_with = "status")]
    pub export_status: ExportStatus,
    #[serde(default = "unknown_status", deserialize_with = "status")]
    pub import_status: ImportStatus,
}

impl BackupModuleStatus {
    pub fn module(&self) -> Option<BackupModule> {
        BackupModule::parse(&self.identity)
    }
}

/// `Get-CsWindowsService`: one Lync service on a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WindowsService {
    #[serde(default)]
    pub name: String,
    /// `Running`, `Stopped`, ...
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub computer_name: String,
}

impl WindowsService {
    pub fn running(&self) -> bool {
        self.status == "Running"
    }
}

/// `Get-CsServerPatchVersion`: one installed component of the local server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerPatchVersion {
    #[serde(default)]
    pub component_name: String,
    /// `major.minor.build.revision`.
    #[serde(default)]
    pub version: String,
}

impl ServerPatchVersion {
    /// The version's numbers, in order (a part that is not a number counts as 0).
    pub fn version_parts(&self) -> Vec<u64> {
        self.version.split('.').map(|x| x.trim().parse().unwrap_or(0)).collect()
    }
}

/// `Get-CsUserPoolInfo -Identity`: where a user is homed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPoolInfo {
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub primary_pool_fqdn: Option<String>,
    #[serde(default)]
    pub backup_pool_fqdn: Option<String>,
    #[serde(default)]
    pub user_services_pool_fqdn: Option<String>,
    #[serde(default)]
    pub primary_pool_primary_registrar: Option<String>,
    #[serde(default)]
    pub backup_pool_primary_registrar: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub primary_pool_machines_in_preferred_order: Vec<String>,
}

impl UserPoolInfo {
    /// The user's home pool.
    pub fn primary_pool(&self) -> Option<Fqdn> {
        self.primary_pool_fqdn.as_deref().and_then(|p| Fqdn::parse(p).ok())
    }
}

/// `... | Measure-Object`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MeasureObject {
    pub count: u64,
}

/// `Get-CsRgsWorkflow`: one Response Group workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RgsWorkflow {
    #[serde(default)]
    pub name: String,
    /// The pool that owns the workflow.
    #[serde(default)]
    pub owner_pool: String,
    /// `service:ApplicationServer:<host pool>`.
    #[serde(default)]
    pub identity: String,
    /// The pool that hosts it.
    #[serde(default)]
    pub host_pool: String,
}

impl RgsWorkflow {
    pub fn owner(&self) -> Option<Fqdn> {
        Fqdn::parse(&self.owner_pool).ok()
    }
}

/// `Resolve-DnsName`: one DNS record. Only SRV records carry a target, priority and port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsRecord {
    #[serde(default)]
    pub name: String,
    /// `SRV`, `A`, `SOA`, ...
    #[serde(default, rename = "Type")]
    pub record_type: String,
    #[serde(default, rename = "TTL")]
    pub ttl: u32,
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub name_target: Option<String>,
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub port: Option<u32>,
}

impl DnsRecord {
    /// The SRV record, if this is a complete one.
    pub fn srv(&self) -> Option<SrvRecord> {
        if !self.record_type.eq_ignore_ascii_case("SRV") {
            return None;
        }
        Some(SrvRecord { priority: self.priority?, port: self.port?, target: Fqdn::parse(self.name_target.as_deref()?).ok()? })
    }
}

/// `Get-CimInstance -ClassName Win32_OperatingSystem`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OperatingSystem {
    /// `Microsoft Windows Server 2012 R2 Datacenter`.
    #[serde(default)]
    pub caption: String,
    #[serde(default, rename = "CSName")]
    pub cs_name: String,
}

/// `Get-CimInstance -ClassName Win32_ComputerSystem`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComputerSystem {
    #[serde(default)]
    pub manufacturer: String,
    /// `Virtual Machine` on Hyper-V.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub name: String,
}

/// `Get-CsServerVersion`: a line of text, e.g. `Skype for Business Server 2015 (6.0.9319.0):
/// Volume license key installed.`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerVersion(pub String);

macro_rules! records {
    ($($t:ident),* $(,)?) => {
        $(impl Record for $t {
            const NAME: &'static str = stringify!($t);
        })*
    };
}

records!(
    PoolRecord,
    SiteRecord,
    UserDatabaseService,
    EdgeServerService,
    MediaService,
    CentralManagementService,
    CmsStoreStatus,
    CmsReplicaStatus,
    BackupServiceConfiguration,
    SipDomain,
    PoolBackupRelationship,
    DatabaseMirrorState,
    BackupServiceStatus,
    WindowsService,
    ServerPatchVersion,
    UserPoolInfo,
    MeasureObject,
    RgsWorkflow,
    DnsRecord,
    OperatingSystem,
    ComputerSystem,
    ServerVersion,
);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use futures::FutureExt;
    use futures::future::BoxFuture;
    use serde_json::json;

    use super::*;
    use crate::backend::{Lync, LyncError};
    use crate::engine::observe::{ObserveError, Scope, observe};
    use crate::model::{History, Observed, RunOn, Span, Stamp};
    use crate::ps::Invocation;
    use crate::scenario::{DEMO_SCENARIO, Scenario};
    use crate::sim::{LocalSim, Simulator};

    fn f(s: &str) -> Fqdn {
        Fqdn::parse(s).unwrap()
    }

    #[test]
    fn an_object_alone_is_one_row_an_array_its_rows_and_null_none() {
        let dal = json!({ "Name": "LYNCBACKUP", "Status": "Running", "ComputerName": "fe01.dal.contoso.com" });
        let alone: Vec<WindowsService> = rows(&dal).unwrap();
        assert_eq!(alone.len(), 1);
        assert!(alone[0].running());
        let sea = json!({ "Name": "LYNCBACKUP", "Status": "Stopped", "ComputerName": "fe01.sea.contoso.com" });
        let both: Vec<WindowsService> = rows(&json!([dal, sea])).unwrap();
        assert_eq!(both.iter().map(|s| s.computer_name.as_str()).collect::<Vec<_>>(), ["fe01.dal.contoso.com", "fe01.sea.contoso.com"]);
        assert!(!both[1].running());
        assert!(rows::<WindowsService>(&Value::Null).unwrap().is_empty());
        assert!(rows::<WindowsService>(&json!([])).unwrap().is_empty());

        assert_eq!(one::<MeasureObject>(&json!({ "Count": 3 })).unwrap().count, 3);
        assert_eq!(one::<MeasureObject>(&json!([{ "Count": 4 }])).unwrap().count, 4);
        assert!(one::<MeasureObject>(&Value::Null).unwrap_err().message.contains("no object"));
        assert!(one::<MeasureObject>(&json!([{ "Count": 1 }, { "Count": 2 }])).unwrap_err().message.contains("2 objects"));
    }

    #[test]
    fn a_real_get_cspool_object_with_properties_lyncdr_does_not_read_parses() {
        // Shaped like `Get-CsPool pool01.dal.contoso.com | ConvertTo-Json` on a Front End: more
        // properties than lyncdr reads, a lone computer rendered without an array.
        let real = json!({
            "Identity": "pool01.dal.contoso.com",
            "Services": [
                "Registrar:pool01.dal.contoso.com",
                "UserServer:pool01.dal.contoso.com",
                "UserDatabase:sql01.dal.contoso.com",
                "WebServer:pool01.dal.contoso.com"
            ],
            "Computers": "pool01-fe01.dal.contoso.com",
            "Fqdn": "POOL01.dal.contoso.com",
            "Site": "Site:Dallas",
            "PsTypeName": "Microsoft.Rtc.Management.Xds.PoolInfo",
            "Element": { "Fqdn": "pool01.dal.contoso.com", "Sites": null },
            "SiteId": 1,
            "ComputerFqdns": null
        });
        let pools: Vec<PoolRecord> = rows(&real).unwrap();
        let p = &pools[0];
        assert_eq!(p.fqdn, f("pool01.dal.contoso.com"));
        assert_eq!(p.site_name(), "Dallas");
        assert_eq!(p.computer_fqdns(), [f("pool01-fe01.dal.contoso.com")]);
        assert!(p.has_service("Registrar"));
        assert!(!p.has_service("EdgeServer"));
        assert!(!p.has_service("User"), "a role is matched whole");
    }

    #[test]
    fn a_row_that_does_not_fit_names_the_record_and_the_field() {
        let e = rows::<PoolRecord>(&json!({ "Fqdn": 7, "Site": "Site:Dallas" })).unwrap_err();
        assert_eq!(e.record, "PoolRecord");
        assert!(e.to_string().starts_with("PoolRecord does not parse: invalid type: integer `7`"), "{e}");

        let e = rows::<PoolRecord>(&json!([{ "Fqdn": "pool01.dal.contoso.com" }, { "Site": "Site:Dallas" }])).unwrap_err();
        assert_eq!(e.to_string(), "PoolRecord does not parse: row 2 of 2: missing field `Fqdn`");

        let e = one::<UserDatabaseService>(&json!({ "PoolFqdn": "not a server" })).unwrap_err();
        assert_eq!(e.record, "UserDatabaseService");
        assert!(e.message.contains("not a fully qualified domain name"), "{e}");

        // Tolerant reads leave the row out instead.
        let services: Vec<WindowsService> = parsed(&json!([{ "Name": "RTCSRV", "Status": 4 }, { "Name": "RTCSRV", "Status": "Running" }]));
        assert_eq!(services.len(), 1);
    }

    #[test]
    fn collections_read_a_lone_value_or_null_like_a_whole_output() {
        let d: UserDatabaseService =
            one(&json!({ "PoolFqdn": "sql01.dal.contoso.com", "DependentServiceList": "UserServer:pool01.dal.contoso.com" })).unwrap();
        assert_eq!(d.user_pools(), [f("pool01.dal.contoso.com")]);
        let d: UserDatabaseService = one(&json!({ "PoolFqdn": "sql01.dal.contoso.com", "DependentServiceList": null })).unwrap();
        assert!(d.user_pools().is_empty());
        assert_eq!(d.mirror(), None);
        assert!(!d.has_witness);
    }

    #[test]
    fn a_backup_status_lyncdr_does_not_know_reads_as_an_error() {
        let s: BackupServiceStatus = one(&json!({
            "PoolFqdn": "pool01.dal.contoso.com",
            "BackupModules": [
                { "Identity": "UserServices.PresenceFocus", "ExportStatus": "SteadyState", "ImportStatus": "NormalState" },
                { "Identity": "ConfServices.DataConf", "ExportStatus": "SomethingNew" }
            ]
        }))
        .unwrap();
        assert_eq!(s.overall_export_status, ExportStatus::ErrorState);
        let m: Vec<_> = s.backup_modules.iter().map(|m| (m.module(), m.export_status, m.import_status)).collect();
        assert_eq!(
            m,
            [
                (Some(BackupModule::PresenceFocus), ExportStatus::SteadyState, ImportStatus::NormalState),
                (Some(BackupModule::DataConf), ExportStatus::ErrorState, ImportStatus::ErrorState),
            ]
        );
    }

    #[test]
    fn names_read_with_or_without_their_role() {
        assert_eq!(service_id("EdgeServer", &f("edge01.dal.contoso.com")), "EdgeServer:edge01.dal.contoso.com");
        assert_eq!(service_pool("EdgeServer:edge01.dal.contoso.com", "EdgeServer"), Some(f("edge01.dal.contoso.com")));
        assert_eq!(service_pool("edge01.dal.contoso.com", "EdgeServer"), Some(f("edge01.dal.contoso.com")));
        assert_eq!(service_pool("Registrar:", "Registrar"), None);
        let site = SiteRecord { federation_route: Some("EdgeServer:edge01.dal.contoso.com".into()), ..Default::default() };
        assert_eq!(site.federation_edge(), Some(f("edge01.dal.contoso.com")));
        assert_eq!(site.xmpp_federation_edge(), None);
        let dns: Vec<DnsRecord> = parsed(&json!([
            { "Name": "contoso.com", "Type": "SOA", "Section": "Authority", "PrimaryServer": "ns1.contoso.com" },
            { "Name": "_xmpp-server._tcp.contoso.com", "Type": "SRV", "NameTarget": "edge01.dal.contoso.com", "Priority": 10, "Port": 5269 }
        ]));
        let srv: Vec<SrvRecord> = dns.iter().filter_map(DnsRecord::srv).collect();
        assert_eq!(srv, [SrvRecord { priority: 10, port: 5269, target: f("edge01.dal.contoso.com") }]);
    }

    /// A backend that keeps every answer the simulator gives, or replaces the answers to one
    /// cmdlet.
    struct Recorder {
        sim: LocalSim,
        answers: Mutex<Vec<(Invocation, Value)>>,
        tampered: Option<(&'static str, Value)>,
    }

    impl Recorder {
        fn new(s: &Scenario) -> Recorder {
            Recorder { sim: LocalSim::new(Simulator::new(s)), answers: Mutex::new(vec![]), tampered: None }
        }
    }

    impl Lync for Recorder {
        fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>> {
            async move {
                let mut r = self.sim.invoke(run_on, inv).await;
                if let Some((cmdlet, answer)) = &self.tampered
                    && *cmdlet == inv.cmdlet
                {
                    r = Ok(answer.clone());
                }
                if let Ok(v) = &r {
                    self.answers.lock().unwrap().push((inv.clone(), v.clone()));
                }
                r
            }
            .boxed()
        }
        fn now(&self) -> Stamp {
            self.sim.now()
        }
        fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
            self.sim.sleep(d)
        }
        fn describe(&self) -> String {
            self.sim.describe()
        }
    }

    /// Parses an answer as the record type of the query, strictly (every row), and checks that
    /// the records render back to exactly the same JSON: the simulator emits nothing the record
    /// does not know. Returns the record's name.
    fn check(inv: &Invocation, v: &Value) -> Result<&'static str, String> {
        fn all<T: Record>(v: &Value) -> Result<&'static str, String> {
            let r: Vec<T> = rows(v).map_err(|e| e.to_string())?;
            let back = if v.is_array() { serde_json::to_value(&r) } else { serde_json::to_value(&r[0]) };
            (back.map_err(|e| e.to_string())? == *v).then_some(T::NAME).ok_or_else(|| format!("{} does not render back to {v}", T::NAME))
        }
        fn single<T: Record>(v: &Value) -> Result<&'static str, String> {
            let r: T = one(v).map_err(|e| e.to_string())?;
            (serde_json::to_value(&r).map_err(|e| e.to_string())? == *v)
                .then_some(T::NAME)
                .ok_or_else(|| format!("{} does not render back to {v}", T::NAME))
        }
        let switch = |s: &str| inv.has_switch(s);
        match inv.cmdlet.as_str() {
            "Get-CsPool" => all::<PoolRecord>(v),
            "Get-CsSite" => all::<SiteRecord>(v),
            "Get-CsService" if switch("UserDatabase") => all::<UserDatabaseService>(v),
            "Get-CsService" if switch("EdgeServer") => all::<EdgeServerService>(v),
            "Get-CsService" if switch("ConferencingServer") || switch("MediationServer") => all::<MediaService>(v),
            "Get-CsService" if switch("CentralManagement") => all::<CentralManagementService>(v),
            "Get-CsManagementStoreReplicationStatus" if switch("CentralManagementStoreStatus") => single::<CmsStoreStatus>(v),
            "Get-CsManagementStoreReplicationStatus" => all::<CmsReplicaStatus>(v),
            "Get-CsBackupServiceConfiguration" => single::<BackupServiceConfiguration>(v),
            "Get-CsSipDomain" => all::<SipDomain>(v),
            "Get-CsPoolBackupRelationship" => single::<PoolBackupRelationship>(v),
            "Get-CsDatabaseMirrorState" => all::<DatabaseMirrorState>(v),
            "Get-CsBackupServiceStatus" => single::<BackupServiceStatus>(v),
            "Get-CsWindowsService" => all::<WindowsService>(v),
            "Get-CsServerPatchVersion" => all::<ServerPatchVersion>(v),
            "Get-CsUserPoolInfo" => single::<UserPoolInfo>(v),
            "Measure-Object" => single::<MeasureObject>(v),
            "Get-CsRgsWorkflow" => all::<RgsWorkflow>(v),
            "Resolve-DnsName" => all::<DnsRecord>(v),
            "Get-CimInstance" if inv.get_str("ClassName") == Some("Win32_OperatingSystem") => single::<OperatingSystem>(v),
            "Get-CimInstance" => single::<ComputerSystem>(v),
            "Get-CsServerVersion" => single::<ServerVersion>(v),
            // The observer only asks whether the pool answers.
            "Get-CsPoolFabricState" => Ok("(fabric state)"),
            other => Err(format!("the observer issued {other}, which has no record type")),
        }
    }

    #[test]
    fn every_query_the_observer_issues_against_the_demo_parses_as_its_record() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let seen = rt.block_on(async {
            let scenario = Scenario::from_yaml(DEMO_SCENARIO).unwrap();
            let lync = Recorder::new(&scenario);
            let scope = Scope {
                users: BTreeSet::from(["sip:u00001.pool01@dal.contoso.com".to_string()]),
                count_pools: scenario.topology.pools.keys().cloned().collect(),
                response_groups: true,
            };
            let observed = observe(&lync, &scope, &History::default()).await.unwrap();
            assert_eq!(observed.topology.pools.len(), 2);
            assert_eq!(observed.federation.xmpp_srv.as_ref().map(Vec::len), Some(2));

            // Read only between the local setup of SfB 2019 and the start of its Backup Service.
            let sfb = Scenario::from_yaml(&DEMO_SCENARIO.replace("product: Lync2013", "product: SfB2019")).unwrap();
            let sfb_lync = Recorder::new(&sfb);
            let fe = RunOn::Server(f("pool01-fe01.dal.contoso.com"));
            sfb_lync.invoke(&fe, &Invocation::new("Get-CsServerPatchVersion")).await.unwrap();

            let mut answers = lync.answers.into_inner().unwrap();
            answers.extend(sfb_lync.answers.into_inner().unwrap());
            let mut seen = BTreeSet::new();
            for (inv, v) in &answers {
                match check(inv, v) {
                    Ok(name) => seen.insert(name),
                    Err(e) => panic!("{}: {e}", inv.to_powershell()),
                };
            }
            seen
        });
        let expected = BTreeSet::from([
            PoolRecord::NAME,
            SiteRecord::NAME,
            UserDatabaseService::NAME,
            EdgeServerService::NAME,
            MediaService::NAME,
            CentralManagementService::NAME,
            CmsStoreStatus::NAME,
            CmsReplicaStatus::NAME,
            BackupServiceConfiguration::NAME,
            SipDomain::NAME,
            PoolBackupRelationship::NAME,
            DatabaseMirrorState::NAME,
            BackupServiceStatus::NAME,
            WindowsService::NAME,
            ServerPatchVersion::NAME,
            UserPoolInfo::NAME,
            MeasureObject::NAME,
            RgsWorkflow::NAME,
            DnsRecord::NAME,
            OperatingSystem::NAME,
            ComputerSystem::NAME,
            ServerVersion::NAME,
            "(fabric state)",
        ]);
        assert_eq!(seen, expected);
    }

    // How the observer takes an answer that does not parse: a query it cannot do without fails
    // the observation, naming the query; another is left out.

    const USER: &str = "sip:u00001.pool01@dal.contoso.com";

    fn observe_with(cmdlet: &'static str, answer: Value) -> Result<Observed, ObserveError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        rt.block_on(async {
            let scenario = Scenario::from_yaml(DEMO_SCENARIO).unwrap();
            let lync = Recorder { tampered: Some((cmdlet, answer)), ..Recorder::new(&scenario) };
            let scope = Scope { users: BTreeSet::from([USER.to_string()]), ..Scope::default() };
            observe(&lync, &scope, &History::default()).await
        })
    }

    #[test]
    fn a_topology_row_that_does_not_parse_fails_the_observation_naming_the_query() {
        let e = observe_with("Get-CsPool", json!([{ "Identity": "pool01.dal.contoso.com", "Site": "Site:Dallas" }])).unwrap_err();
        assert_eq!(
            e,
            ObserveError::Unexpected {
                query: "Get-CsPool".into(),
                detail: "PoolRecord does not parse: row 1 of 1: missing field `Fqdn`".into()
            }
        );
        let e = observe_with("Get-CsPoolBackupRelationship", json!({ "FailoverState": "Sideways" })).unwrap_err();
        assert!(
            matches!(&e, ObserveError::Unexpected { query, detail } if query == "Get-CsPoolBackupRelationship" && detail.contains("PoolBackupRelationship") && detail.contains("Sideways")),
            "{e}"
        );
    }

    #[test]
    fn an_optional_answer_that_does_not_parse_is_left_out() {
        let o = observe_with("Get-CsUserPoolInfo", json!({ "PrimaryPoolFqdn": ["pool01.dal.contoso.com"] })).unwrap();
        assert_eq!(o.users.get(USER), Some(&None));
        let o = observe_with("Get-CsUserPoolInfo", json!({ "PrimaryPoolFqdn": "pool01.dal.contoso.com", "Unknown": 1 })).unwrap();
        assert_eq!(o.users.get(USER), Some(&Some(f("pool01.dal.contoso.com"))));
    }
}
