//! The domain model of a Lync deployment, shared by the simulator, the observer and the planner:
//! names ([`Fqdn`]), time ([`Span`], [`Stamp`]), the static [`Topology`] with the supported-pairing
//! rules, the runtime snapshot the engine observes ([`Observed`]) and the operator's memory of
//! earlier observations ([`History`]). No I/O happens here.

mod fqdn;
mod history;
mod observed;
mod request;
pub mod sip;
pub mod text;
mod time;
mod topology;

pub use fqdn::{FQDN_PATTERN, Fqdn, FqdnError};
pub use history::{AutomaticAction, History, Lesson, Since};
pub use observed::{
    BackEndObs, BackupModule, CmsObs, DbType, EdgeObs, ExportStatus, FailoverState, FederationObs, Health, ImportStatus, ModuleStatus,
    Observed, PoolObs, Probe, RgsExportObs, RgsObs, SrvRecord,
};
pub use request::{Request, RequestState};
pub use time::{Span, SpanError, Stamp};
pub use topology::{
    BackEnd, BackEndHa, EdgePool, Edition, FrontEndPool, Hosts, PairingViolation, PoolTraits, Product, Role, Topology, Virtualization,
    pairing_violations,
};

/// Where a cmdlet runs: any reachable server, a server of a pool (Front End or Edge), or one
/// named server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunOn {
    Any,
    Pool(Fqdn),
    Server(Fqdn),
}

impl std::fmt::Display for RunOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunOn::Any => f.write_str("any"),
            RunOn::Pool(p) | RunOn::Server(p) => write!(f, "{p}"),
        }
    }
}
