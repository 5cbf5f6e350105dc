//! The cmdlet catalogue: every cmdlet lyncdr runs or simulates, with its parameters, types,
//! parameter sets and the product versions that have each parameter (domain document, section 4
//! and section 6), plus PowerShell's parameter binding: case-insensitive unique-prefix names,
//! positional arguments, pipeline input, type conversion and parameter-set resolution, failing
//! with the same messages PowerShell gives. The simulator binds every call through here, so it
//! rejects what Lync would reject; the planner and driver use it to send only parameters the
//! target version has.

use indexmap::IndexMap;
use serde_json::Value;

use super::{Input, Invocation, parse::POSITIONAL};
use crate::model::{Fqdn, Product, Span};

/// Which product versions have a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Avail {
    All,
    /// Skype for Business Server 2015 and 2019 (not Lync 2013).
    SfB,
    SfB2019,
}

impl Avail {
    fn includes(self, product: Product) -> bool {
        match self {
            Avail::All => true,
            Avail::SfB => product.is_skype(),
            Avail::SfB2019 => product == Product::SfB2019,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Switch,
    Str,
    Fqdn,
    TimeSpan,
    Int,
    Bool,
    /// An enumeration with its .NET type name and the accepted names.
    Enum(&'static str, &'static [&'static str]),
    /// One value or a list.
    List,
    /// A script block or a string (e.g. `-Filter`).
    Filter,
}

#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: Ty,
    pub mandatory: bool,
    pub position: Option<u8>,
    pub pipeline: bool,
    pub avail: Avail,
}

const fn p(name: &'static str, ty: Ty) -> ParamSpec {
    ParamSpec { name, ty, mandatory: false, position: None, pipeline: false, avail: Avail::All }
}

impl ParamSpec {
    const fn mand(self) -> Self {
        ParamSpec { mandatory: true, ..self }
    }
    const fn pos(self, n: u8) -> Self {
        ParamSpec { position: Some(n), ..self }
    }
    const fn pipe(self) -> Self {
        ParamSpec { pipeline: true, ..self }
    }
    const fn sfb(self) -> Self {
        ParamSpec { avail: Avail::SfB, ..self }
    }
    const fn sfb2019(self) -> Self {
        ParamSpec { avail: Avail::SfB2019, ..self }
    }
}

/// A parameter set: which parameters belong to it (beyond those common to all sets) and which
/// are mandatory in it.
#[derive(Debug, Clone, Copy)]
pub struct SetSpec {
    pub name: &'static str,
    pub params: &'static [&'static str],
    pub mandatory: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
pub struct CmdletSpec {
    pub name: &'static str,
    pub params: &'static [ParamSpec],
    /// Empty: one set holding every parameter, mandatory ones flagged on the parameter.
    pub sets: &'static [SetSpec],
    /// Supports `-WhatIf` / `-Confirm`.
    pub should_process: bool,
    /// Changes the deployment (as opposed to reading it).
    pub mutates: bool,
}

const SW: Ty = Ty::Switch;
const S: Ty = Ty::Str;
const F: Ty = Ty::Fqdn;
const TS: Ty = Ty::TimeSpan;
const I: Ty = Ty::Int;

const MIRROR_ROLE: Ty = Ty::Enum("Microsoft.Rtc.Management.Hadr.MirrorRole", &["Primary", "Mirror"]);
/// `-DatabaseType` of Invoke-CsDatabaseFailover: the union of the Lync 2013 and SfB lists (C4, C4-L13).
const DB_TYPE: Ty = Ty::Enum(
    "Microsoft.Rtc.Management.Hadr.DatabaseNameType",
    &[
        "ActiveMonitoring",
        "Application",
        "Archiving",
        "CentralAdmin",
        "CentralMgmt",
        "Cls",
        "Edge",
        "Lyss",
        "Monitoring",
        "PersistentChat",
        "PersistentChatCompliance",
        "Provision",
        "Registrar",
        "SigninTelemetry",
        "User",
    ],
);
/// `-DatabaseType` of Get-CsDatabaseMirrorState: the reference's Lync 2013 list plus the names the
/// procedures pass (`CentralMgmt`); discrepancy 7 of the domain document, so both are accepted.
const MIRROR_DB_TYPE: Ty = Ty::Enum(
    "Microsoft.Rtc.Management.Hadr.DatabaseType",
    &["App", "Application", "Archiving", "CMS", "CentralMgmt", "Monitoring", "Provision", "User"],
);
const BACKUP_CATEGORY: Ty = Ty::Enum("Microsoft.Rtc.Management.Hadr.BackupCategory", &["CMS", "UserData", "RGS"]);

const COMMON: &[&str] = &[
    "Verbose",
    "Debug",
    "ErrorAction",
    "WarningAction",
    "ErrorVariable",
    "WarningVariable",
    "OutVariable",
    "OutBuffer",
    "PipelineVariable",
];

pub static CATALOG: &[CmdletSpec] = &[
    CmdletSpec {
        name: "Invoke-CsPoolFailOver",
        params: &[
            p("PoolFqdn", F).mand(),
            p("DisasterMode", SW),
            p("FlushStorageService", SW),
            p("Force", SW),
            p("WaitTime", TS),
            // Lync 2013 surface per the 2014-06-04 TechNet page (C1-TN2014): the conservative choice.
            p("SkipDataVerification", SW).sfb(),
            p("DatabaseCommandTimeoutInSeconds", I).sfb(),
            p("ServicesStopDelayMins", I).sfb(),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Invoke-CsPoolFailBack",
        params: &[
            p("PoolFqdn", F).mand(),
            p("DisasterMode", SW),
            p("Force", SW),
            p("WaitTime", TS),
            p("SkipDataVerification", SW),
            p("DatabaseCommandTimeoutInSeconds", I).sfb(),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Invoke-CsManagementServerFailover",
        params: &[
            p("BackupSqlServerFqdn", F),
            p("BackupSqlInstanceName", S),
            p("BackupMirrorSqlServerFqdn", F),
            p("BackupMirrorSqlInstanceName", S),
            p("Force", SW),
            p("Restore", SW),
            p("Report", S),
        ],
        sets: &[
            SetSpec { name: "Normal", params: &["Restore"], mandatory: &[] },
            SetSpec {
                name: "DisasterRecovery",
                params: &[
                    "BackupSqlServerFqdn",
                    "BackupSqlInstanceName",
                    "BackupMirrorSqlServerFqdn",
                    "BackupMirrorSqlInstanceName",
                    "Force",
                ],
                mandatory: &["BackupSqlServerFqdn"],
            },
        ],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Invoke-CsDatabaseFailover",
        params: &[
            p("PoolFqdn", F).mand(),
            p("DatabaseType", DB_TYPE).mand(),
            p("NewPrincipal", MIRROR_ROLE).mand(),
            p("ExcludeDatabaseList", Ty::List),
            p("Force", SW),
            p("LocalStore", SW),
            p("Report", S),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Get-CsDatabaseMirrorState",
        params: &[p("PoolFqdn", F).mand(), p("DatabaseType", MIRROR_DB_TYPE), p("LocalStore", SW), p("Report", S)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Set-CsEdgeServer",
        params: &[
            p("Identity", S).pos(0),
            p("Registrar", S),
            p("AccessEdgeInternalSipPort", I),
            p("AccessEdgeExternalSipPort", I),
            p("AccessEdgeClientSipPort", I),
            p("DataPsomClientPort", I),
            p("DataPsomServerPort", I),
            p("MediaCommunicationPortCount", I),
            p("MediaCommunicationPortStart", I),
            p("MediaRelayAuthEdgePort", I),
            p("MediaRelayExternalTurnTcpPort", I),
            p("MediaRelayExternalTurnUdpPort", I),
            p("MediaRelayInternalTurnTcpPort", I),
            p("MediaRelayInternalTurnUdpPort", I),
            p("XmppInternalPort", I),
            p("XmppListeningPort", I),
            p("Force", SW),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Set-CsSite",
        params: &[
            p("Identity", S).pos(0),
            p("FederationRoute", S),
            p("XmppFederationRoute", S),
            p("Description", S),
            p("DisplayName", S),
            p("Force", SW),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Set-CsConferenceServer",
        params: &[
            p("Identity", S).pos(0),
            p("EdgeServer", S),
            p("AppSharingSipPort", I),
            p("AudioVideoSipPort", I),
            p("DataPsomPort", I),
            p("ImSipPort", I),
            p("MeetingPsomPort", I),
            p("PhoneSipPort", I),
            p("Force", SW),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Set-CsMediationServer",
        params: &[p("Identity", S).pos(0), p("EdgeServer", S), p("Registrar", S), p("SipServerTcpPort", I), p("Force", SW)],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Invoke-CsBackupServiceSync",
        params: &[p("PoolFqdn", F).mand(), p("BackupModule", S), p("Force", SW)],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Set-CsBackupServiceConfiguration",
        params: &[
            p("Identity", S).pos(0),
            p("Instance", S),
            p("SyncInterval", TS),
            p("AuthorizedLocalAccounts", Ty::List),
            p("AuthorizedUniversalGroups", Ty::List),
            p("MaxBatchesPerCmsSync", I),
            p("MaxBatchesPerUserStoreSync", I),
            p("MaxConcurrentCalls", I),
            p("MaxDataConfPackageSizeKB", I),
            p("MaxHighPriQueuePercentagePerUserStoreSync", I).sfb(),
            p("EnableRgsBackupService", Ty::Bool).sfb2019(),
            p("Force", SW),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Get-CsBackupServiceConfiguration",
        params: &[p("Identity", S).pos(0), p("Filter", S), p("LocalStore", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsBackupServiceStatus",
        params: &[p("PoolFqdn", F).mand(), p("Category", BACKUP_CATEGORY), p("Force", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsPoolBackupRelationship",
        params: &[p("PoolFqdn", F).mand(), p("LocalStore", SW), p("Force", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsManagementStoreReplicationStatus",
        params: &[p("ReplicaFqdn", S).pos(0), p("CentralManagementStoreStatus", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsPoolFabricState",
        params: &[
            p("PoolFqdn", S).mand(),
            p("Type", S),
            p("QueryTimeout", I),
            p("ServiceName", S),
            p("HealthState", S),
            p("ShowAll", SW),
            p("OutputCsvFile", S),
            p("RoutingGroup", S).sfb(),
            p("UserUri", S).sfb(),
        ],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsUserPoolInfo",
        params: &[p("Identity", S).pos(0).mand().pipe(), p("LocalStore", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsService",
        params: &[
            p("Identity", S).pos(0),
            p("Filter", S),
            p("PoolFqdn", S),
            p("Registrar", SW),
            p("EdgeServer", SW),
            p("CentralManagement", SW),
            p("CentralManagementDatabase", SW),
            p("UserServer", SW),
            p("UserDatabase", SW),
            p("BackupServer", SW),
            p("ConferencingServer", SW),
            p("MediationServer", SW),
        ],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec { name: "Get-CsSite", params: &[p("Identity", S).pos(0), p("Filter", S)], sets: &[], should_process: false, mutates: false },
    CmdletSpec {
        name: "Get-CsPool",
        params: &[p("Identity", S).pos(0), p("Filter", S), p("Site", S)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsUser",
        params: &[p("Identity", S).pos(0), p("Filter", Ty::Filter), p("ResultSize", I), p("OU", S), p("LdapFilter", S)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec { name: "Measure-Object", params: &[p("InputObject", S).pipe()], sets: &[], should_process: false, mutates: false },
    CmdletSpec {
        name: "Move-CsUser",
        params: &[
            p("Identity", S).pos(0).mand().pipe(),
            p("Target", F).pos(1).mand(),
            p("Force", SW),
            p("MoveConferenceData", SW),
            p("ProxyPool", F),
            p("DomainController", F),
            p("PassThru", SW),
            p("Report", S),
            p("IgnoreBackendStoreException", SW),
            p("Credential", S),
            p("ConcurrentMovesPerFE", I).sfb(),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Export-CsRgsConfiguration",
        params: &[
            p("Source", S).pos(0).mand(),
            p("FileName", S).mand(),
            p("Owner", S),
            p("RemoveExportedConfiguration", SW),
            p("Force", SW),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Import-CsRgsConfiguration",
        params: &[
            p("Destination", S).pos(0).mand(),
            p("FileName", S).mand(),
            p("OverwriteOwner", SW),
            p("ReplaceExistingSettings", SW),
            p("ResolveNameConflicts", SW),
            p("Force", SW),
        ],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Get-CsRgsWorkflow",
        params: &[p("Identity", S).pos(0), p("Owner", S), p("ShowAll", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Export-CsConfiguration",
        params: &[p("FileName", S), p("AsBytes", SW), p("LocalStore", SW), p("Force", SW)],
        sets: &[
            SetSpec { name: "FileName", params: &["FileName"], mandatory: &["FileName"] },
            SetSpec { name: "AsBytes", params: &["AsBytes"], mandatory: &["AsBytes"] },
        ],
        should_process: false,
        mutates: true,
    },
    CmdletSpec {
        name: "Export-CsLisConfiguration",
        params: &[p("FileName", S), p("AsBytes", SW), p("Force", SW)],
        sets: &[
            SetSpec { name: "FileName", params: &["FileName"], mandatory: &["FileName"] },
            SetSpec { name: "AsBytes", params: &["AsBytes"], mandatory: &["AsBytes"] },
        ],
        should_process: false,
        mutates: true,
    },
    CmdletSpec {
        name: "Start-CsWindowsService",
        params: &[p("Name", S).pos(0), p("ComputerName", S), p("Report", S), p("NoWait", SW)],
        sets: &[],
        should_process: false,
        mutates: true,
    },
    CmdletSpec {
        name: "Stop-CsWindowsService",
        params: &[p("Name", S).pos(0), p("ComputerName", S), p("Report", S), p("NoWait", SW), p("Graceful", SW)],
        sets: &[],
        should_process: false,
        mutates: true,
    },
    CmdletSpec {
        name: "Get-Command",
        params: &[p("Name", S).pos(0).mand(), p("Syntax", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CsWindowsService",
        params: &[p("Name", S).pos(0), p("ComputerName", S), p("ExcludeActivityLevel", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec { name: "Get-CsServerVersion", params: &[], sets: &[], should_process: false, mutates: false },
    // SfB 2015 (November 2015 CU) and later: the version of every component installed on the
    // local server.
    CmdletSpec { name: "Get-CsServerPatchVersion", params: &[p("Report", S)], sets: &[], should_process: false, mutates: false },
    CmdletSpec {
        name: "Get-CsSipDomain",
        params: &[p("Identity", S).pos(0), p("Filter", S), p("LocalStore", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    // Windows (DnsClient module): how lyncdr checks the XMPP federation DNS records.
    CmdletSpec {
        name: "Resolve-DnsName",
        params: &[p("Name", S).pos(0).mand(), p("Type", S).pos(1), p("Server", Ty::List), p("DnsOnly", SW), p("NoHostsFile", SW)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec {
        name: "Get-CimInstance",
        params: &[p("ClassName", S).pos(0).mand(), p("ComputerName", S), p("Filter", S)],
        sets: &[],
        should_process: false,
        mutates: false,
    },
    CmdletSpec { name: "Get-CsTopology", params: &[p("AsXml", SW), p("LocalStore", SW)], sets: &[], should_process: false, mutates: false },
    // Not a Lync cmdlet: lyncdr's own helper for the documented "edit the topology" step (domain
    // document 4.1, [INFERRED]). It reads `Get-CsTopology -AsXml`, makes the two pools each
    // other's backup pool (reciprocal, 1:1) and writes the document to FileName for publishing.
    CmdletSpec {
        name: "Set-LyncdrBackupPool",
        params: &[p("PoolFqdn", S).mand(), p("BackupPoolFqdn", S).mand(), p("FileName", S).mand()],
        sets: &[],
        should_process: false,
        mutates: true,
    },
    CmdletSpec {
        name: "Publish-CsTopology",
        params: &[p("FileName", S).mand(), p("Force", SW), p("Report", S)],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Enable-CsTopology",
        params: &[p("GlobalCatalog", S), p("GlobalSettingsDomainController", S), p("Force", SW), p("Report", S)],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec {
        name: "Remove-CsUserStoreBackupData",
        params: &[p("PoolFqdn", S).mand(), p("Force", SW)],
        sets: &[],
        should_process: true,
        mutates: true,
    },
    CmdletSpec { name: BOOTSTRAPPER, params: &[], sets: &[], should_process: false, mutates: true },
];

/// The name under which the local setup program (`Bootstrapper.exe`) is catalogued.
pub const BOOTSTRAPPER: &str = "Bootstrapper.exe";

/// Finds a cmdlet by name (case-insensitive). A path ending in `Bootstrapper.exe` is the setup
/// program.
pub fn lookup(name: &str) -> Option<&'static CmdletSpec> {
    let n = name.trim();
    if n.to_ascii_lowercase().ends_with("bootstrapper.exe") || n.eq_ignore_ascii_case("bootstrapper") {
        return CATALOG.iter().find(|c| c.name == BOOTSTRAPPER);
    }
    CATALOG.iter().find(|c| c.name.eq_ignore_ascii_case(n))
}

/// The full path of the local setup program on a server of `product` (deployment document 4.1).
pub fn bootstrapper_path(product: Product) -> String {
    format!(r"C:\Program Files\{}\Deployment\Bootstrapper.exe", product.install_folder())
}

/// A PowerShell binding failure, with PowerShell's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BindError(pub String);

/// A call bound to its cmdlet: canonical parameter names and converted values.
#[derive(Debug, Clone)]
pub struct Bound {
    pub spec: &'static CmdletSpec,
    pub set: &'static str,
    pub args: IndexMap<&'static str, Value>,
    pub input: Option<Input>,
}

impl Bound {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.args.get(name)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(Value::as_str)
    }
    pub fn switch(&self, name: &str) -> bool {
        matches!(self.args.get(name), Some(Value::Bool(true)))
    }
    pub fn fqdn(&self, name: &str) -> Option<Fqdn> {
        self.str(name).and_then(|s| Fqdn::parse(s).ok())
    }
    /// A bound `TimeSpan` parameter in ticks (100 ns), as .NET holds it (may be negative).
    pub fn ticks(&self, name: &str) -> Option<i64> {
        self.str(name).and_then(|s| parse_dotnet_timespan(s).ok())
    }
    /// A bound `TimeSpan` parameter as a [`Span`] (milliseconds; `None` if negative).
    pub fn span(&self, name: &str) -> Option<Span> {
        self.ticks(name).filter(|t| *t >= 0).map(|t| Span((t / TICKS_PER_MS) as u64))
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        self.args.get(name).and_then(Value::as_i64)
    }
    pub fn what_if(&self) -> bool {
        self.switch("WhatIf")
    }
}

impl CmdletSpec {
    pub fn available_params(&self, product: Product) -> impl Iterator<Item = &ParamSpec> {
        self.params.iter().filter(move |p| p.avail.includes(product))
    }

    /// Whether a parameter name (or unique prefix) names a switch of this cmdlet.
    pub fn is_switch(&self, name: &str) -> bool {
        match self.resolve(name, None) {
            Ok(Resolved::Param(p)) => p.ty == Ty::Switch,
            Ok(Resolved::Common(c)) => matches!(c, "Verbose" | "Debug" | "WhatIf" | "Confirm"),
            Err(_) => false,
        }
    }

    /// `Get-Command -Syntax` style text for this product.
    pub fn syntax(&self, product: Product) -> String {
        let mut out = String::new();
        let sets: Vec<SetSpec> =
            if self.sets.is_empty() { vec![SetSpec { name: "Default", params: &[], mandatory: &[] }] } else { self.sets.to_vec() };
        for set in sets {
            let mut line = self.name.to_string();
            for prm in self.available_params(product) {
                if !self.in_set(prm.name, &set) {
                    continue;
                }
                let mandatory = prm.mandatory || set.mandatory.contains(&prm.name);
                let ty = match prm.ty {
                    Ty::Switch => String::new(),
                    Ty::Fqdn => " <Fqdn>".into(),
                    Ty::TimeSpan => " <TimeSpan>".into(),
                    Ty::Int => " <Int32>".into(),
                    Ty::Bool => " <Boolean>".into(),
                    Ty::Enum(t, _) => format!(" <{}>", t.rsplit('.').next().unwrap_or(t)),
                    Ty::List => " <String[]>".into(),
                    Ty::Str | Ty::Filter => " <String>".into(),
                };
                let name = match prm.position {
                    Some(_) => format!("[-{}]", prm.name),
                    None => format!("-{}", prm.name),
                };
                let item = format!("{name}{ty}");
                line.push(' ');
                line.push_str(&if mandatory { item } else { format!("[{item}]") });
            }
            if self.should_process {
                line.push_str(" [-WhatIf] [-Confirm]");
            }
            line.push_str(" [<CommonParameters>]\n");
            out.push_str(&line);
        }
        out
    }

    fn in_set(&self, param: &str, set: &SetSpec) -> bool {
        let listed_anywhere = self.sets.iter().any(|s| s.params.contains(&param));
        !listed_anywhere || set.params.contains(&param)
    }

    fn resolve(&self, name: &str, product: Option<Product>) -> Result<Resolved, BindError> {
        let mut candidates: Vec<Resolved> = Vec::new();
        let avail = |p: &&ParamSpec| product.is_none_or(|pr| p.avail.includes(pr));
        let mut names: Vec<Resolved> = self.params.iter().filter(avail).map(Resolved::Param).collect();
        names.extend(COMMON.iter().map(|c| Resolved::Common(c)));
        if self.should_process {
            names.push(Resolved::Common("WhatIf"));
            names.push(Resolved::Common("Confirm"));
        }
        for r in &names {
            if r.name().eq_ignore_ascii_case(name) {
                return Ok(*r);
            }
        }
        for r in names {
            if r.name().to_ascii_lowercase().starts_with(&name.to_ascii_lowercase()) {
                candidates.push(r);
            }
        }
        match candidates.len() {
            0 => Err(BindError(format!("A parameter cannot be found that matches parameter name '{name}'."))),
            1 => Ok(candidates[0]),
            _ => Err(BindError(format!(
                "Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches include: {}.",
                candidates.iter().map(|c| format!("-{}", c.name())).collect::<Vec<_>>().join(" ")
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Resolved {
    Param(&'static ParamSpec),
    Common(&'static str),
}

impl Resolved {
    fn name(&self) -> &'static str {
        match self {
            Resolved::Param(p) => p.name,
            Resolved::Common(c) => c,
        }
    }
}

/// Whether `param` is a switch of `cmdlet`, for the line parser.
pub fn is_switch(cmdlet: &str, param: &str) -> bool {
    lookup(cmdlet).is_some_and(|c| c.is_switch(param))
}

/// The PowerShell error for a command name that does not exist.
pub fn not_recognized(name: &str) -> BindError {
    BindError(format!(
        "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
    ))
}

/// Binds an invocation as PowerShell would on a server running `product`.
pub fn bind(inv: &Invocation, product: Product) -> Result<Bound, BindError> {
    let spec = lookup(&inv.cmdlet).ok_or_else(|| not_recognized(&inv.cmdlet))?;
    let mut args: IndexMap<&'static str, Value> = IndexMap::new();
    let mut positional: Vec<(usize, &Value)> = Vec::new();
    for (name, value) in &inv.args {
        if let Some(n) = name.strip_prefix(POSITIONAL) {
            positional.push((n.parse().unwrap_or(usize::MAX), value));
            continue;
        }
        let r = spec.resolve(name, Some(product))?;
        if args.contains_key(r.name()) {
            return Err(BindError(format!("Cannot bind parameter because parameter '{}' is specified more than once.", r.name())));
        }
        let v = match r {
            Resolved::Param(prm) => convert(prm, value)?,
            Resolved::Common(c) if matches!(c, "Verbose" | "Debug" | "WhatIf" | "Confirm") => switch_value(c, value)?,
            Resolved::Common(_) => value.clone(),
        };
        args.insert(r.name(), v);
    }
    positional.sort_by_key(|(n, _)| *n);
    let mut slots: Vec<&'static ParamSpec> =
        spec.available_params(product).filter(|p| p.position.is_some() && !args.contains_key(p.name)).collect();
    slots.sort_by_key(|p| p.position);
    let mut slots = slots.into_iter();
    for (_, value) in positional {
        let Some(prm) = slots.next() else {
            return Err(BindError(format!("A positional parameter cannot be found that accepts argument '{}'.", display(value))));
        };
        args.insert(prm.name, convert(prm, value)?);
    }
    let pipeline_param = spec.available_params(product).find(|p| p.pipeline).map(|p| p.name);
    if inv.input.is_some() && pipeline_param.is_none() {
        return Err(BindError(
            "The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input."
                .into(),
        ));
    }
    // Parameter-set resolution.
    let sets: Vec<SetSpec> =
        if spec.sets.is_empty() { vec![SetSpec { name: "Default", params: &[], mandatory: &[] }] } else { spec.sets.to_vec() };
    let fits: Vec<&SetSpec> =
        sets.iter().filter(|s| args.keys().all(|a| !spec.params.iter().any(|p| p.name == *a) || spec.in_set(a, s))).collect();
    let set = match fits.len() {
        0 => return Err(BindError("Parameter set cannot be resolved using the specified named parameters.".into())),
        1 => fits[0],
        _ => {
            // Prefer a set whose own parameters were used, then the first (default) set.
            fits.iter().find(|s| s.params.iter().any(|p| args.contains_key(p))).copied().unwrap_or(fits[0])
        }
    };
    let mut missing: Vec<&str> = Vec::new();
    for prm in spec.available_params(product) {
        let mandatory = prm.mandatory || set.mandatory.contains(&prm.name);
        let supplied = args.contains_key(prm.name) || (Some(prm.name) == pipeline_param && inv.input.is_some());
        if mandatory && spec.in_set(prm.name, set) && !supplied {
            missing.push(prm.name);
        }
    }
    if !missing.is_empty() {
        return Err(BindError(format!(
            "Cannot process command because of one or more missing mandatory parameters: {}.",
            missing.join(" ")
        )));
    }
    Ok(Bound { spec, set: set.name, args, input: inv.input.clone() })
}

/// .NET ticks (100 ns) per millisecond and per second.
pub const TICKS_PER_MS: i64 = 10_000;
pub const TICKS_PER_SECOND: i64 = 10_000_000;

/// PowerShell's conversion of an argument to `System.TimeSpan`: an integer is a number of ticks
/// (`[TimeSpan]120` is 12 microseconds), a string is read by `TimeSpan.Parse` (`"10"` is ten
/// days, `"1:30"` ninety minutes, `"00:02:00"` two minutes). The error is .NET's message.
pub fn timespan_ticks(v: &Value) -> Result<i64, &'static str> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)).ok_or(NOT_A_TIMESPAN),
        Value::String(s) => parse_dotnet_timespan(s),
        _ => Err(NOT_A_TIMESPAN),
    }
}

const NOT_A_TIMESPAN: &str = "String was not recognized as a valid TimeSpan.";
const TIMESPAN_OVERFLOW: &str =
    "The TimeSpan could not be parsed because at least one of the numeric components is out of range or contains too many digits.";

/// `TimeSpan.Parse` (invariant culture): `[-]d`, or `[-][d.]hh:mm[:ss[.fffffff]]`, with hours
/// 0-23, minutes and seconds 0-59 and at most seven fraction digits.
pub fn parse_dotnet_timespan(input: &str) -> Result<i64, &'static str> {
    let s = input.trim();
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let number = |t: &str| -> Result<i64, &'static str> {
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
            return Err(NOT_A_TIMESPAN);
        }
        t.parse::<i64>().map_err(|_| TIMESPAN_OVERFLOW)
    };
    let ticks = if !body.contains(':') {
        // A bare number is a number of days.
        number(body)?.checked_mul(86_400 * TICKS_PER_SECOND).ok_or(TIMESPAN_OVERFLOW)?
    } else {
        let (days, clock) = match body.split_once(':') {
            Some((head, _)) if head.contains('.') => {
                let (d, _) = head.split_once('.').ok_or(NOT_A_TIMESPAN)?;
                (number(d)?, &body[d.len() + 1..])
            }
            _ => (0, body),
        };
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(NOT_A_TIMESPAN);
        }
        let (sec_text, fraction) = match parts.get(2) {
            Some(p) => match p.split_once('.') {
                Some((sec, frac)) => (sec, Some(frac)),
                None => (*p, None),
            },
            None => ("0", None),
        };
        let (h, m, sec) = (number(parts[0])?, number(parts[1])?, number(sec_text)?);
        if h > 23 || m > 59 || sec > 59 {
            return Err(TIMESPAN_OVERFLOW);
        }
        let frac = match fraction {
            None => 0,
            Some(f) if f.len() > 7 => return Err(TIMESPAN_OVERFLOW),
            Some(f) => number(f)? * 10i64.pow(7 - f.len() as u32),
        };
        days.checked_mul(86_400)
            .and_then(|d| d.checked_add(h * 3600 + m * 60 + sec))
            .and_then(|t| t.checked_mul(TICKS_PER_SECOND))
            .and_then(|t| t.checked_add(frac))
            .ok_or(TIMESPAN_OVERFLOW)?
    };
    Ok(if negative { -ticks } else { ticks })
}

/// A `TimeSpan` as .NET's constant ("c") format prints it: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_timespan(ticks: i64) -> String {
    let sign = if ticks < 0 { "-" } else { "" };
    let t = ticks.unsigned_abs();
    let per_sec = TICKS_PER_SECOND as u64;
    let (secs, frac) = (t / per_sec, t % per_sec);
    let (d, h, m, s) = (secs / 86_400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let mut out = if d > 0 { format!("{sign}{d}.{h:02}:{m:02}:{s:02}") } else { format!("{sign}{h:02}:{m:02}:{s:02}") };
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn switch_value(name: &str, v: &Value) -> Result<Value, BindError> {
    match v {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        other => Err(BindError(format!(
            "Cannot convert '{}' to the type 'System.Management.Automation.SwitchParameter' required by parameter '{name}'.",
            display(other)
        ))),
    }
}

fn cannot_convert(prm: &ParamSpec, v: &Value, ty: &str, err: &str) -> BindError {
    BindError(format!("Cannot bind parameter '{}'. Cannot convert value \"{}\" to type \"{ty}\". Error: \"{err}\"", prm.name, display(v)))
}

fn convert(prm: &ParamSpec, v: &Value) -> Result<Value, BindError> {
    match prm.ty {
        Ty::Switch => switch_value(prm.name, v),
        Ty::Str => match v {
            Value::String(_) | Value::Null => Ok(v.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(if *b { "True" } else { "False" }.into())),
            other => Err(cannot_convert(prm, other, "System.String", "Cannot convert a list to a single value.")),
        },
        Ty::Fqdn => {
            let s = display(v);
            Fqdn::parse(&s)
                .map(|f| Value::String(f.to_string()))
                .map_err(|_| cannot_convert(prm, v, "Microsoft.Rtc.Management.Deploy.Fqdn", "The FQDN is not valid."))
        }
        Ty::TimeSpan => {
            timespan_ticks(v).map(|t| Value::String(format_timespan(t))).map_err(|e| cannot_convert(prm, v, "System.TimeSpan", e))
        }
        Ty::Int => match v {
            Value::Number(n) if n.is_i64() => Ok(v.clone()),
            Value::String(s) => s
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| cannot_convert(prm, v, "System.Int32", "Input string was not in a correct format.")),
            other => Err(cannot_convert(prm, other, "System.Int32", "Input string was not in a correct format.")),
        },
        Ty::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            other => Err(BindError(format!(
                "Cannot process argument transformation on parameter '{}'. Cannot convert value \"{}\" to type \"System.Boolean\". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
                prm.name,
                display(other)
            ))),
        },
        Ty::Enum(ty, names) => {
            let s = display(v);
            names.iter().find(|n| n.eq_ignore_ascii_case(&s)).map(|n| Value::String((*n).to_string())).ok_or_else(|| {
                cannot_convert(
                    prm,
                    v,
                    ty,
                    &format!(
                        "Unable to match the identifier name {s} to a valid enumerator name.  Specify one of the following enumerator names and try again: {}",
                        names.join(", ")
                    ),
                )
            })
        }
        Ty::List => match v {
            Value::Array(_) => Ok(v.clone()),
            other => Ok(Value::Array(vec![other.clone()])),
        },
        Ty::Filter => Ok(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(inv: Invocation, product: Product) -> Result<Bound, String> {
        bind(&inv, product).map_err(|e| e.0)
    }

    #[test]
    fn prefixes_case_and_positions() {
        let inv = Invocation::new("invoke-cspoolfailover").arg("poolfq", "POOL01.dal.contoso.com").arg("Disaster", true);
        let bound = b(inv, Product::Lync2013).unwrap();
        assert_eq!(bound.spec.name, "Invoke-CsPoolFailOver");
        assert_eq!(bound.str("PoolFqdn"), Some("pool01.dal.contoso.com"));
        assert!(bound.switch("DisasterMode"));
        let inv = Invocation::new("Move-CsUser").arg("#0", "sip:a@contoso.com").arg("#1", "pool01.sea.contoso.com");
        let bound = b(inv, Product::SfB2015).unwrap();
        assert_eq!(bound.str("Identity"), Some("sip:a@contoso.com"));
        assert_eq!(bound.str("Target"), Some("pool01.sea.contoso.com"));
    }

    #[test]
    fn rejects_like_powershell() {
        let e = b(
            Invocation::new("Set-CsSite").arg("Identity", "Seattle").arg("XmppExternalFederationRoute", "e.contoso.com"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert_eq!(e, "A parameter cannot be found that matches parameter name 'XmppExternalFederationRoute'.");
        let e =
            b(Invocation::new("Invoke-CsManagementServerFailover").arg("MirrorSQLServerFqdn", "sql02.sea.contoso.com"), Product::Lync2013)
                .unwrap_err();
        assert!(e.contains("MirrorSQLServerFqdn"), "{e}");
        let e = b(Invocation::new("Invoke-CsPoolFailOver").switch("DisasterMode"), Product::Lync2013).unwrap_err();
        assert_eq!(e, "Cannot process command because of one or more missing mandatory parameters: PoolFqdn.");
        let e =
            b(Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "p.contoso.com").switch("SkipDataVerification"), Product::Lync2013)
                .unwrap_err();
        assert!(e.contains("SkipDataVerification"), "{e}");
        assert!(
            b(Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "p.contoso.com").switch("SkipDataVerification"), Product::SfB2019)
                .is_ok()
        );
        let e = b(
            Invocation::new("Invoke-CsDatabaseFailover")
                .arg("PoolFqdn", "p.contoso.com")
                .arg("DatabaseType", "User")
                .arg("NewPrincipal", "secondary"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert!(e.contains("Primary, Mirror"), "{e}");
        let e = b(
            Invocation::new("Get-CsBackupServiceStatus").arg("PoolFqdn", "p.contoso.com").arg("BackupModule", "ConfServices.DataConf"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert!(e.contains("'BackupModule'"), "{e}");
        let e = b(Invocation::new("Get-CsService").arg("C", true), Product::Lync2013).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
        let e = b(
            Invocation::new("Invoke-CsManagementServerFailover").switch("Restore").arg("BackupSqlServerFqdn", "s.contoso.com"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert!(e.contains("Parameter set cannot be resolved"), "{e}");
        let e = b(Invocation::new("Invoke-CsManagementServerFailover").switch("Force"), Product::Lync2013).unwrap_err();
        assert!(e.contains("missing mandatory parameters: BackupSqlServerFqdn"), "{e}");
        let e = b(Invocation::new("Get-CsPool").arg("#0", "a").arg("#1", "b"), Product::Lync2013).unwrap_err();
        assert!(e.contains("positional parameter"), "{e}");
        let e = b(Invocation::new("Invoke-CsPoolFail0ver"), Product::Lync2013).unwrap_err();
        assert!(e.contains("is not recognized"), "{e}");
        let e = b(Invocation::new("Set-CsBackupServiceConfiguration").arg("SyncInterval", "two minutes"), Product::Lync2013).unwrap_err();
        assert!(e.contains("System.TimeSpan"), "{e}");
    }

    #[test]
    fn parameter_sets() {
        let bound = b(
            Invocation::new("Invoke-CsManagementServerFailover").arg("BackupSqlServerFqdn", "sql01.sea.contoso.com").switch("Force"),
            Product::SfB2015,
        )
        .unwrap();
        assert_eq!(bound.set, "DisasterRecovery");
        let bound = b(Invocation::new("Invoke-CsManagementServerFailover"), Product::SfB2015).unwrap();
        assert_eq!(bound.set, "Normal");
        let bound = b(Invocation::new("Invoke-CsManagementServerFailover").switch("WhatIf"), Product::SfB2015).unwrap();
        assert!(bound.what_if());
    }

    #[test]
    fn syntax_lists_product_parameters() {
        let spec = lookup("Invoke-CsPoolFailOver").unwrap();
        assert!(!spec.syntax(Product::Lync2013).contains("SkipDataVerification"));
        assert!(spec.syntax(Product::SfB2019).contains("[-SkipDataVerification]"));
        assert!(spec.syntax(Product::Lync2013).starts_with("Invoke-CsPoolFailOver -PoolFqdn <Fqdn>"));
    }
}
