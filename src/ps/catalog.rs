//! The cmdlet catalogue: every cmdlet lyncdr runs or simulates, with its parameters, types,
//! parameter sets and the product versions that have each parameter (domain document, section 4
//! and section 6). [`super::binder`] binds calls against it as PowerShell does; the planner and
//! driver use it to send only parameters the target version has.

use crate::model::Product;

/// Which product versions have a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Avail {
    All,
    /// Skype for Business Server 2015 and 2019 (not Lync 2013).
    SfB,
    SfB2019,
}

impl Avail {
    pub fn includes(self, product: Product) -> bool {
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

pub(super) const COMMON: &[&str] = &[
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
