//! Scenario files: the simulator's starting deployment (topology, configuration and runtime
//! state) in the YAML contract of issue #2, parsed and validated into the domain model with
//! errors that name the offending field.

mod fault;
mod timing;
pub mod transport;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::text::{shown, shown_lines};
use crate::model::{Edition, Fqdn, Product, Role, Span, Topology, Virtualization};
pub use fault::{Fault, FaultAction, FaultTarget, OPERATOR, TimedFault};
pub use timing::Timings;

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    pub product: Product,
    pub sites: Vec<SiteFile>,
    #[serde(default)]
    pub pairs: Vec<[String; 2]>,
    #[serde(default)]
    pub cms: Option<CmsFile>,
    #[serde(default)]
    pub federation: FederationFile,
    #[serde(default)]
    pub media_edge: Vec<MediaEdgeFile>,
    #[serde(default)]
    pub backup_service: BackupServiceFile,
    #[serde(default)]
    pub state: StateFile,
    #[serde(default)]
    pub timings: Timings,
    /// Transport faults the simulator's endpoints inject ([`transport`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_faults: Option<transport::TransportFaultsFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteFile {
    pub name: String,
    #[serde(default)]
    pub front_end_pools: Vec<PoolFile>,
    #[serde(default)]
    pub edge_pools: Vec<EdgeFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolFile {
    pub fqdn: String,
    pub edition: Edition,
    /// Number of Front End servers (Standard Edition: 1).
    #[serde(default)]
    pub front_ends: Option<u32>,
    /// Explicit Front End server names (otherwise `<pool>-feNN.<domain>`).
    #[serde(default)]
    pub front_end_servers: Vec<String>,
    #[serde(default)]
    pub users: u32,
    #[serde(default)]
    pub named_users: Vec<String>,
    #[serde(default)]
    pub back_end: Option<BackEndFile>,
    /// Product of this pool if it differs from the deployment's (to model unsupported pairings).
    #[serde(default)]
    pub product: Option<Product>,
    #[serde(default)]
    pub virtualization: Virtualization,
    #[serde(default = "default_os")]
    pub os: String,
    #[serde(default = "default_true")]
    pub call_park: bool,
    #[serde(default)]
    pub response_groups: Vec<String>,
}

fn default_os() -> String {
    "Windows Server 2012 R2".to_string()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackEndFile {
    pub primary: String,
    #[serde(default)]
    pub mirror: Option<String>,
    #[serde(default)]
    pub witness: bool,
    #[serde(default)]
    pub clustered: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EdgeFile {
    pub fqdn: String,
    #[serde(default)]
    pub next_hop: Option<String>,
    #[serde(default)]
    pub servers: Option<u32>,
    #[serde(default)]
    pub server_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CmsFile {
    pub active_pool: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederationFile {
    #[serde(default)]
    pub sip_edge_pool: Option<String>,
    #[serde(default)]
    pub xmpp_edge_pool: Option<String>,
    /// Edge pools the external `_xmpp-server._tcp` SRV records resolve to, highest priority
    /// first (JJ688065 suggests pre-creating one per Edge pool). Default: the XMPP Edge pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp_dns: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaEdgeFile {
    pub pool: String,
    pub edge_pool: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupServiceFile {
    #[serde(default = "default_sync")]
    pub sync_interval: Span,
}

impl Default for BackupServiceFile {
    fn default() -> Self {
        BackupServiceFile { sync_interval: default_sync() }
    }
}

fn default_sync() -> Span {
    Span::mins(2)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateFile {
    #[serde(default)]
    pub failed_over: Vec<String>,
    #[serde(default)]
    pub down: Vec<String>,
    #[serde(default)]
    pub back_end_principal: Vec<PrincipalFile>,
    /// Paired pools whose Backup Service (LYNCBACKUP) is stopped.
    #[serde(default)]
    pub backup_service_stopped: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrincipalFile {
    pub pool: String,
    pub principal: Role,
}

/// A validated scenario: everything the simulator needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub topology: Topology,
    pub cms_pool: Option<Fqdn>,
    pub sip_federation: Option<Fqdn>,
    pub xmpp_federation: Option<Fqdn>,
    /// Edge pools the `_xmpp-server._tcp` SRV records resolve to, by priority.
    pub xmpp_dns: Vec<Fqdn>,
    pub next_hops: BTreeMap<Fqdn, Option<Fqdn>>,
    pub media_edge: BTreeMap<Fqdn, Option<Fqdn>>,
    pub sync_interval: Span,
    pub failed_over: BTreeSet<Fqdn>,
    pub down: Vec<FaultTarget>,
    pub principal: BTreeMap<Fqdn, Role>,
    pub backup_stopped: BTreeSet<Fqdn>,
    pub timings: Timings,
    /// The transport faults to inject (empty: none).
    pub transport_faults: transport::TransportSchedule,
}

/// An invalid scenario, naming the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {message}")]
    Io { path: String, message: String },
    #[error("scenario is not valid YAML for the scenario format: {0}")]
    Parse(String),
    #[error("scenario field {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<ScenarioError>,
    },
}

/// Largest scenario file read (a generated 100,000-server deployment is a few megabytes).
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid { field: field.into(), message: message.into() }
}

impl Scenario {
    /// Reads a scenario file: a regular file of at most [`MAX_SCENARIO_BYTES`]; errors name the
    /// file and the field.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = crate::api::manifests::read_text(path, MAX_SCENARIO_BYTES).map_err(|e| ScenarioError::Io {
            path: path.display().to_string(),
            message: match e {
                crate::api::manifests::ManifestError::Io { message, .. } => message,
                other => other.to_string(),
            },
        })?;
        Scenario::from_yaml(&text).map_err(|e| ScenarioError::File { path: path.display().to_string(), source: Box::new(e) })
    }

    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        match serde_saphyr::from_str::<ScenarioFile>(text) {
            Ok(file) => file.validate(),
            Err(located) => {
                // The YAML parser says where (line and column); serde_path_to_error says which
                // field: the error names both.
                let value: serde_json::Value =
                    serde_saphyr::from_str(text).map_err(|e| ScenarioError::Parse(shown_lines(&e.to_string())))?;
                match serde_path_to_error::deserialize::<_, ScenarioFile>(value) {
                    Err(e) => {
                        let field = shown(&e.path().to_string());
                        Err(invalid(if field == "." { "(document)".to_string() } else { field }, shown_lines(&located.to_string())))
                    }
                    Ok(_) => Err(ScenarioError::Parse(shown_lines(&located.to_string()))),
                }
            }
        }
    }
}

pub use crate::model::sip::{generated_user, normalize_sip, parse_generated_user};

/// The two-site scenario used by `lyncdr demo` and the examples.
pub const DEMO_SCENARIO: &str = include_str!("../../examples/two-site/scenario.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        r#"
name: t
product: Lync2013
sites:
  - name: Dallas
    frontEndPools:
      - fqdn: pool01.dal.contoso.com
        edition: Enterprise
        frontEnds: 3
        users: 100
        backEnd: {primary: sql01.dal.contoso.com, mirror: sql02.dal.contoso.com}
    edgePools:
      - {fqdn: edge01.dal.contoso.com, nextHop: pool01.dal.contoso.com}
  - name: Seattle
    frontEndPools:
      - fqdn: pool01.sea.contoso.com
        edition: Enterprise
        users: 50
        backEnd: {primary: sql01.sea.contoso.com, mirror: sql02.sea.contoso.com}
    edgePools:
      - {fqdn: edge01.sea.contoso.com, nextHop: pool01.sea.contoso.com}
pairs:
  - [pool01.dal.contoso.com, pool01.sea.contoso.com]
cms: {activePool: pool01.dal.contoso.com}
federation: {sipEdgePool: edge01.dal.contoso.com}
"#
        .to_string()
    }

    #[test]
    fn parses_the_contract_example() {
        let s = Scenario::from_yaml(&base()).unwrap();
        let dal = Fqdn::parse("pool01.dal.contoso.com").unwrap();
        let sea = Fqdn::parse("pool01.sea.contoso.com").unwrap();
        assert_eq!(s.topology.partner(&dal), Some(&sea));
        assert_eq!(s.topology.partner(&sea), Some(&dal));
        assert_eq!(s.topology.pools[&dal].front_ends.len(), 3);
        assert_eq!(s.topology.pools[&sea].front_ends.len(), 2);
        assert_eq!(s.sync_interval, Span::mins(2));
        assert_eq!(s.media_edge[&dal].as_ref().map(Fqdn::as_str), Some("edge01.dal.contoso.com"));
    }

    fn err(yaml: &str) -> String {
        Scenario::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn names_the_field_of_each_mistake() {
        let e = err(&base().replace("fqdn: pool01.sea.contoso.com", "fqdn: pool 01.sea"));
        assert!(e.contains("sites[1].frontEndPools[0].fqdn"), "{e}");
        let e = err(&base().replace(
            "pairs:\n  - [pool01.dal.contoso.com, pool01.sea.contoso.com]",
            "pairs:\n  - [pool01.dal.contoso.com, pool01.sea.contoso.com]\n  - [pool01.sea.contoso.com, pool01.dal.contoso.com]",
        ));
        assert!(e.contains("pairs[1][0]") && e.contains("1:1"), "{e}");
        let e = err(&base().replace("cms: {activePool: pool01.dal.contoso.com}", "cms: {activePool: pool09.dal.contoso.com}"));
        assert!(e.contains("cms.activePool"), "{e}");
        let e = err(&(base() + "backupService: {syncInterval: 4h}\n"));
        assert!(e.contains("backupService.syncInterval") && e.contains("3h"), "{e}");
        let e = err(&(base() + "state: {down: [planet/Mars]}\n"));
        assert!(e.contains("state.down[0]"), "{e}");
        let e = err(&(base() + "state: {failedOver: [pool01.dal.contoso.com, pool01.sea.contoso.com]}\n"));
        assert!(e.contains("state.failedOver[1]"), "{e}");
        let e = err(&base().replace("name: t", "name: t\nbogus: 1"));
        assert!(e.contains("bogus"), "{e}");
        let e = err(&base().replace("nextHop: pool01.sea.contoso.com", "nextHop: pool07.sea.contoso.com"));
        assert!(e.contains("sites[1].edgePools[0].nextHop"), "{e}");
    }

    #[test]
    fn sip_addresses() {
        assert_eq!(normalize_sip("Alice@Contoso.com").as_deref(), Some("sip:alice@contoso.com"));
        assert_eq!(normalize_sip("sip:bob@contoso.com").as_deref(), Some("sip:bob@contoso.com"));
        assert_eq!(normalize_sip("bob"), None);
        let pool = Fqdn::parse("pool01.dal.contoso.com").unwrap();
        let u = generated_user(&pool, 7);
        assert_eq!(u, "sip:u00007.pool01@dal.contoso.com");
        assert_eq!(parse_generated_user(&u), Some(("pool01.dal.contoso.com".to_string(), 7)));
    }
}
