//! Scenario files: the simulator's starting deployment (topology, configuration and runtime
//! state) in the YAML contract of issue #2, parsed and validated into the domain model with
//! errors that name the offending field.

mod fault;
mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::text::{shown, shown_lines};
use crate::model::{BackEnd, EdgePool, Edition, Fqdn, FrontEndPool, PoolTraits, Product, Role, Span, Topology, Virtualization};
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

impl ScenarioFile {
    /// Checks every field and builds the model. Errors name the field (`sites[0].frontEndPools[1].fqdn`).
    pub fn validate(&self) -> Result<Scenario, ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        // The name is printed by `sim serve` and `demo`: no control characters.
        no_control("name", &self.name)?;
        if self.sites.is_empty() {
            return Err(invalid("sites", "a deployment needs at least one site"));
        }
        let mut sites = Vec::new();
        let mut pools = BTreeMap::new();
        let mut edges = BTreeMap::new();
        let mut next_hops = BTreeMap::new();
        let mut all_names: BTreeMap<Fqdn, String> = BTreeMap::new();
        let mut claim = |name: &Fqdn, field: &str| -> Result<(), ScenarioError> {
            if let Some(prev) = all_names.insert(name.clone(), field.to_string()) {
                return Err(invalid(field, format!("{name} is already used by {prev}; every pool and server needs a unique FQDN")));
            }
            Ok(())
        };
        for (si, site) in self.sites.iter().enumerate() {
            let sf = format!("sites[{si}]");
            if site.name.trim().is_empty() {
                return Err(invalid(format!("{sf}.name"), "must not be empty"));
            }
            if site.name.chars().any(char::is_control) {
                return Err(invalid(format!("{sf}.name"), "must not contain control characters"));
            }
            if sites.contains(&site.name) {
                return Err(invalid(format!("{sf}.name"), format!("site '{}' is defined twice", site.name)));
            }
            sites.push(site.name.clone());
            for (pi, p) in site.front_end_pools.iter().enumerate() {
                let pf = format!("{sf}.frontEndPools[{pi}]");
                let pool_fqdn = fqdn(&p.fqdn, &format!("{pf}.fqdn"))?;
                claim(&pool_fqdn, &format!("{pf}.fqdn"))?;
                let front_ends = front_end_names(p, &pool_fqdn, &pf)?;
                for (i, fe) in front_ends.iter().enumerate() {
                    claim(fe, &format!("{pf}.frontEndServers[{i}]"))?;
                }
                let back_end = match (&p.back_end, p.edition) {
                    (Some(b), _) => {
                        let primary = fqdn(&b.primary, &format!("{pf}.backEnd.primary"))?;
                        let mirror = b.mirror.as_deref().map(|m| fqdn(m, &format!("{pf}.backEnd.mirror"))).transpose()?;
                        if p.edition == Edition::Standard && mirror.is_some() {
                            return Err(invalid(
                                format!("{pf}.backEnd.mirror"),
                                "a Standard Edition pool has no Back End high availability; remove the mirror",
                            ));
                        }
                        if b.witness && mirror.is_none() {
                            return Err(invalid(
                                format!("{pf}.backEnd.witness"),
                                "a witness needs a mirror; add backEnd.mirror or set witness: false",
                            ));
                        }
                        if b.clustered && mirror.is_some() {
                            return Err(invalid(format!("{pf}.backEnd"), "choose SQL mirroring or clustering, not both"));
                        }
                        if mirror.as_ref() == Some(&primary) {
                            return Err(invalid(
                                format!("{pf}.backEnd.mirror"),
                                "the mirror must be a different SQL server than the primary",
                            ));
                        }
                        BackEnd { primary, mirror, witness: b.witness, clustered: b.clustered }
                    }
                    (None, Edition::Standard) => BackEnd { primary: front_ends[0].clone(), mirror: None, witness: false, clustered: false },
                    (None, Edition::Enterprise) => {
                        return Err(invalid(
                            format!("{pf}.backEnd"),
                            "an Enterprise Edition pool needs a Back End: backEnd: {primary: <sql fqdn>}",
                        ));
                    }
                };
                no_control(&format!("{pf}.os"), &p.os)?;
                for (i, g) in p.response_groups.iter().enumerate() {
                    no_control(&format!("{pf}.responseGroups[{i}]"), g)?;
                }
                let mut named = Vec::new();
                for (i, u) in p.named_users.iter().enumerate() {
                    named.push(normalize_sip(u).ok_or_else(|| {
                        invalid(
                            format!("{pf}.namedUsers[{i}]"),
                            format!("'{}' is not a SIP address such as sip:alice@contoso.com", shown(u)),
                        )
                    })?);
                }
                let traits = PoolTraits {
                    edition: p.edition,
                    product: p.product.unwrap_or(self.product),
                    virtualization: p.virtualization,
                    os: p.os.clone(),
                    back_end_ha: back_end.ha(),
                };
                pools.insert(
                    pool_fqdn.clone(),
                    FrontEndPool {
                        fqdn: pool_fqdn,
                        site: site.name.clone(),
                        traits,
                        front_ends,
                        users: p.users,
                        named_users: named,
                        back_end,
                        call_park: p.call_park,
                        response_groups: p.response_groups.clone(),
                    },
                );
            }
            for (ei, e) in site.edge_pools.iter().enumerate() {
                let ef = format!("{sf}.edgePools[{ei}]");
                let f = fqdn(&e.fqdn, &format!("{ef}.fqdn"))?;
                claim(&f, &format!("{ef}.fqdn"))?;
                let servers: Vec<Fqdn> = if e.server_names.is_empty() {
                    let n = e.servers.unwrap_or(1);
                    if n == 0 {
                        return Err(invalid(format!("{ef}.servers"), "an Edge pool needs at least one server"));
                    }
                    (1..=n).map(|i| f.member(&format!("es{i:02}"))).collect()
                } else {
                    e.server_names.iter().enumerate().map(|(i, s)| fqdn(s, &format!("{ef}.serverNames[{i}]"))).collect::<Result<_, _>>()?
                };
                for (i, s) in servers.iter().enumerate() {
                    claim(s, &format!("{ef}.serverNames[{i}]"))?;
                }
                next_hops.insert(f.clone(), e.next_hop.as_deref().map(|n| fqdn(n, &format!("{ef}.nextHop"))).transpose()?);
                edges.insert(f.clone(), EdgePool { fqdn: f, site: site.name.clone(), servers });
            }
        }
        // SQL servers are shared by name between pools only if they are the same server.
        for (field, nh) in next_hops.iter().filter_map(|(e, nh)| nh.as_ref().map(|n| (e, n))) {
            if !pools.contains_key(nh) {
                return Err(invalid(edge_field(self, field, "nextHop"), format!("{nh} is not a Front End pool of this scenario")));
            }
        }

        let mut backup = BTreeMap::new();
        for (i, [a, b]) in self.pairs.iter().enumerate() {
            let fa = fqdn(a, &format!("pairs[{i}][0]"))?;
            let fb = fqdn(b, &format!("pairs[{i}][1]"))?;
            for (j, f) in [(0, &fa), (1, &fb)] {
                if !pools.contains_key(f) {
                    return Err(invalid(format!("pairs[{i}][{j}]"), format!("{f} is not a Front End pool of this scenario")));
                }
                if backup.contains_key(f) {
                    return Err(invalid(
                        format!("pairs[{i}][{j}]"),
                        format!(
                            "{f} is already paired; Front End pool pairing is 1:1 and reciprocal (JJ205033), so a pool can have only one partner"
                        ),
                    ));
                }
            }
            if fa == fb {
                return Err(invalid(format!("pairs[{i}]"), "a pool cannot be paired with itself"));
            }
            backup.insert(fa.clone(), fb.clone());
            backup.insert(fb, fa);
        }

        let topology = Topology { product: self.product, sites, pools, edges, backup };

        let cms_pool = match &self.cms {
            Some(c) => {
                let f = fqdn(&c.active_pool, "cms.activePool")?;
                if !topology.pools.contains_key(&f) {
                    return Err(invalid("cms.activePool", format!("{f} is not a Front End pool of this scenario")));
                }
                Some(f)
            }
            None => None,
        };
        let edge_ref = |v: &Option<String>, field: &str| -> Result<Option<Fqdn>, ScenarioError> {
            match v {
                None => Ok(None),
                Some(s) => {
                    let f = fqdn(s, field)?;
                    if !topology.edges.contains_key(&f) {
                        return Err(invalid(field, format!("{f} is not an Edge pool of this scenario")));
                    }
                    Ok(Some(f))
                }
            }
        };
        let sip_federation = edge_ref(&self.federation.sip_edge_pool, "federation.sipEdgePool")?;
        let xmpp_federation = edge_ref(&self.federation.xmpp_edge_pool, "federation.xmppEdgePool")?;
        let xmpp_dns = match &self.federation.xmpp_dns {
            None => xmpp_federation.iter().cloned().collect(),
            Some(list) => {
                let mut out: Vec<Fqdn> = Vec::new();
                for (i, e) in list.iter().enumerate() {
                    let field = format!("federation.xmppDns[{i}]");
                    let Some(f) = edge_ref(&Some(e.clone()), &field)? else { continue };
                    if out.contains(&f) {
                        return Err(invalid(field, format!("{f} is listed twice; list each Edge pool once, highest priority first")));
                    }
                    out.push(f);
                }
                out
            }
        };

        // Media Edge: explicit entries, otherwise the first Edge pool of the pool's own site.
        let mut media_edge: BTreeMap<Fqdn, Option<Fqdn>> = topology
            .pools
            .values()
            .map(|p| (p.fqdn.clone(), topology.edges.values().find(|e| e.site == p.site).map(|e| e.fqdn.clone())))
            .collect();
        let mut seen = BTreeSet::new();
        for (i, m) in self.media_edge.iter().enumerate() {
            let p = fqdn(&m.pool, &format!("mediaEdge[{i}].pool"))?;
            if !topology.pools.contains_key(&p) {
                return Err(invalid(format!("mediaEdge[{i}].pool"), format!("{p} is not a Front End pool of this scenario")));
            }
            if !seen.insert(p.clone()) {
                return Err(invalid(format!("mediaEdge[{i}].pool"), format!("{p} has two media Edge entries; keep one")));
            }
            let e = edge_ref(&Some(m.edge_pool.clone()), &format!("mediaEdge[{i}].edgePool"))?;
            media_edge.insert(p, e);
        }

        let sync = self.backup_service.sync_interval;
        if sync < Span::secs(5) || sync > Span::hours(3) {
            return Err(invalid(
                "backupService.syncInterval",
                format!("{sync} is outside the allowed range 00:00:05 to 03:00:00 (5s to 3h)"),
            ));
        }

        let mut failed_over = BTreeSet::new();
        for (i, f) in self.state.failed_over.iter().enumerate() {
            let field = format!("state.failedOver[{i}]");
            let p = fqdn(f, &field)?;
            let Some(partner) = topology.partner(&p) else {
                return Err(invalid(field, format!("{p} has no backup pool, so its users cannot be failed over")));
            };
            if failed_over.contains(partner) {
                return Err(invalid(
                    field,
                    format!(
                        "{p} and its partner {partner} cannot both be failed over: a pool whose users are failed over cannot serve its partner's users"
                    ),
                ));
            }
            failed_over.insert(p);
        }
        if let Some(cms) = &cms_pool
            && failed_over.contains(cms)
        {
            return Err(invalid(
                "cms.activePool",
                format!("{cms} is failed over; the CMS must be active in a pool that serves its own users"),
            ));
        }

        let mut down = Vec::new();
        for (i, d) in self.state.down.iter().enumerate() {
            let field = format!("state.down[{i}]");
            let target = FaultTarget::parse(d).map_err(|m| invalid(&field, m))?;
            Fault { action: FaultAction::Down, target: target.clone() }.check(&topology).map_err(|m| invalid(&field, m))?;
            down.push(target);
        }

        let mut principal = BTreeMap::new();
        for (i, p) in self.state.back_end_principal.iter().enumerate() {
            let field = format!("state.backEndPrincipal[{i}].pool");
            let f = fqdn(&p.pool, &field)?;
            let Some(pool) = topology.pools.get(&f) else {
                return Err(invalid(field, format!("{f} is not a Front End pool of this scenario")));
            };
            if p.principal == Role::Mirror && pool.back_end.mirror.is_none() {
                return Err(invalid(
                    format!("state.backEndPrincipal[{i}].principal"),
                    format!("{f} has no mirror, so its principal can only be Primary"),
                ));
            }
            principal.insert(f, p.principal);
        }

        let mut backup_stopped = BTreeSet::new();
        for (i, p) in self.state.backup_service_stopped.iter().enumerate() {
            let field = format!("state.backupServiceStopped[{i}]");
            let f = fqdn(p, &field)?;
            if topology.partner(&f).is_none() {
                return Err(invalid(field, format!("{f} is not paired, so it has no Backup Service to stop")));
            }
            backup_stopped.insert(f);
        }

        self.timings.validate().map_err(|(field, msg)| invalid(format!("timings.{field}"), msg))?;

        Ok(Scenario {
            name: self.name.clone(),
            topology,
            cms_pool,
            sip_federation,
            xmpp_federation,
            xmpp_dns,
            next_hops,
            media_edge,
            sync_interval: sync,
            failed_over,
            down,
            principal,
            backup_stopped,
            timings: self.timings.clone(),
        })
    }
}

fn edge_field(file: &ScenarioFile, edge: &Fqdn, leaf: &str) -> String {
    for (si, s) in file.sites.iter().enumerate() {
        for (ei, e) in s.edge_pools.iter().enumerate() {
            if Fqdn::parse(&e.fqdn).ok().as_ref() == Some(edge) {
                return format!("sites[{si}].edgePools[{ei}].{leaf}");
            }
        }
    }
    format!("edge {edge}.{leaf}")
}

/// Free text that is shown and passed to cmdlets: no control characters.
fn no_control(field: &str, text: &str) -> Result<(), ScenarioError> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(invalid(field, format!("'{}' must not contain control characters (it has {c:?})", shown(text)))),
        None => Ok(()),
    }
}

fn fqdn(s: &str, field: &str) -> Result<Fqdn, ScenarioError> {
    Fqdn::parse(s).map_err(|e| invalid(field, e.to_string()))
}

fn front_end_names(p: &PoolFile, pool: &Fqdn, pf: &str) -> Result<Vec<Fqdn>, ScenarioError> {
    if !p.front_end_servers.is_empty() {
        if let Some(n) = p.front_ends
            && n as usize != p.front_end_servers.len()
        {
            return Err(invalid(
                format!("{pf}.frontEnds"),
                format!("says {n} but frontEndServers lists {}; keep them consistent", p.front_end_servers.len()),
            ));
        }
        return p.front_end_servers.iter().enumerate().map(|(i, s)| fqdn(s, &format!("{pf}.frontEndServers[{i}]"))).collect();
    }
    let n = p.front_ends.unwrap_or(if p.edition == Edition::Standard { 1 } else { 2 });
    match p.edition {
        Edition::Standard if n != 1 => {
            return Err(invalid(format!("{pf}.frontEnds"), "a Standard Edition pool has exactly one Front End server"));
        }
        Edition::Enterprise if n == 0 => {
            return Err(invalid(format!("{pf}.frontEnds"), "an Enterprise Edition pool needs at least one Front End server"));
        }
        _ => {}
    }
    Ok((1..=n).map(|i| pool.member(&format!("fe{i:02}"))).collect())
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
