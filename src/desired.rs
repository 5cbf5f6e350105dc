//! The desired state: the custom resources of one deployment compiled into what the planner
//! consumes, after the checks the apiserver's CEL rules make on each object (repeated here for
//! the standalone front ends) and the cross-object checks no single object can make (a pool in
//! two PoolPairs, resources referring to a missing deployment, pools unknown to the topology).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api::{ConferenceContentRestore, LyncDeployment, PoolPair, UserPlacement, manifests::Manifest};
use crate::model::sip::normalize_sip;
use crate::model::{Fqdn, Role, Span, Topology};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    /// Name of the LyncDeployment.
    pub deployment: String,
    /// Its namespace (empty in a manifest that names none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub generation: i64,
    pub cms: Option<CmsDesired>,
    pub sip_federation: Option<Fqdn>,
    pub xmpp_federation: Option<Fqdn>,
    pub edge_failover: bool,
    pub edge_fallbacks: Vec<Fqdn>,
    pub next_hops: BTreeMap<Fqdn, Fqdn>,
    pub media: BTreeMap<Fqdn, Fqdn>,
    pub back_ends: BTreeMap<Fqdn, BackEndDesired>,
    pub sync_interval: Option<Span>,
    /// Folder for Response Group exports when lyncdr manages them.
    pub rgs_export_path: Option<String>,
    /// Import Response Groups whose names exist elsewhere with `-ResolveNameConflicts` (rule 26).
    #[serde(default)]
    pub rgs_resolve_name_conflicts: bool,
    pub pairs: Vec<PairDesired>,
    pub placements: Vec<PlacementDesired>,
    pub restores: Vec<RestoreDesired>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmsDesired {
    pub active_pool: Fqdn,
    pub allow_data_loss: bool,
    pub automatic_failover: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackEndDesired {
    pub principal: Role,
    pub automatic_failover: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairDesired {
    pub name: String,
    pub generation: i64,
    pub pools: [Fqdn; 2],
    pub failed_over: Option<Fqdn>,
    pub allow_data_loss: bool,
    /// Consent to re-pair pools paired with others.
    #[serde(default)]
    pub allow_repair: bool,
    /// Consent to move users between pools whose pairing in place is unsupported.
    #[serde(default)]
    pub allow_unsupported_pairing: bool,
    pub automatic_failover: Option<Span>,
    pub automatic_failback: Option<Span>,
    /// A human allowed failback after an automatic failover (annotation).
    pub failback_approved: bool,
}

impl PairDesired {
    pub fn resource(&self) -> String {
        format!("PoolPair/{}", self.name)
    }
    pub fn partner(&self, p: &Fqdn) -> &Fqdn {
        if &self.pools[0] == p { &self.pools[1] } else { &self.pools[0] }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserSelector {
    Users(Vec<String>),
    FromPool(Fqdn),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementDesired {
    pub name: String,
    pub selector: UserSelector,
    pub target: Fqdn,
    pub batch_size: u32,
    pub allow_data_loss: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreDesired {
    pub name: String,
    pub generation: i64,
    pub pool: Fqdn,
}

/// An invalid desired state, naming the resource(s) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource}: {field}: {message}")]
pub struct DesiredError {
    pub resource: String,
    pub field: String,
    pub message: String,
}

fn bad(resource: impl Into<String>, field: &str, message: impl Into<String>) -> DesiredError {
    DesiredError { resource: resource.into(), field: field.into(), message: message.into() }
}

/// Per-object checks (the CRDs' CEL rules) on a PoolPair.
pub fn check_pair(p: &PoolPair) -> Result<(), DesiredError> {
    let id = format!("PoolPair/{}", p.metadata.name.clone().unwrap_or_default());
    let s = &p.spec;
    if s.pools.len() != 2 {
        return Err(bad(id, "spec.pools", "list exactly two pools"));
    }
    if s.pools[0] == s.pools[1] {
        return Err(bad(id, "spec.pools", "the two pools of a pair must differ"));
    }
    if s.failed_over.len() > 1 {
        return Err(bad(
            id,
            "spec.failedOver",
            "name at most one pool: a pool whose users are failed over cannot serve its partner's users",
        ));
    }
    if let Some(f) = s.failed_over.first()
        && !s.pools.contains(f)
    {
        return Err(bad(id, "spec.failedOver", format!("{f} is not one of the pair's pools ({}, {})", s.pools[0], s.pools[1])));
    }
    if s.automatic_failover.as_ref().is_some_and(|a| a.enabled) && !s.allow_data_loss {
        return Err(bad(
            id,
            "spec.automaticFailover",
            "requires spec.allowDataLoss: true (failing over an unreachable pool uses -DisasterMode)",
        ));
    }
    check_reference(&id, &s.deployment)?;
    Ok(())
}

/// `spec.deployment` names a LyncDeployment: a valid object name.
fn check_reference(id: &str, deployment: &str) -> Result<(), DesiredError> {
    if deployment.is_empty() {
        return Err(bad(id, "spec.deployment", "name the LyncDeployment"));
    }
    crate::api::names::check_subdomain(deployment).map_err(|m| bad(id, "spec.deployment", m))
}

/// Text that ends up in a cmdlet argument: no control characters (a line break would end the
/// command), and not empty.
fn check_text(id: &str, field: &str, text: &str) -> Result<(), DesiredError> {
    if text.trim().is_empty() {
        return Err(bad(id, field, "must not be empty"));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(bad(id, field, format!("contains the control character {:?}; remove it", c)));
    }
    Ok(())
}

pub fn check_deployment(d: &LyncDeployment) -> Result<(), DesiredError> {
    let id = format!("LyncDeployment/{}", d.metadata.name.clone().unwrap_or_default());
    let s = &d.spec;
    if let Some(c) = &s.central_management_store
        && c.automatic_failover
        && !c.allow_data_loss
    {
        return Err(bad(
            id,
            "spec.centralManagementStore.automaticFailover",
            "requires allowDataLoss: true (a CMS failover from an unreachable pool uses -Force)",
        ));
    }
    if let Some(b) = &s.backup_service
        && (b.sync_interval < Span::secs(5) || b.sync_interval > Span::hours(3))
    {
        return Err(bad(id, "spec.backupService.syncInterval", format!("{} is outside 5s..3h", b.sync_interval)));
    }
    let mut seen = BTreeSet::new();
    for (i, e) in s.edge.edge_pools.iter().enumerate() {
        if !seen.insert(&e.fqdn) {
            return Err(bad(id, &format!("spec.edge.edgePools[{i}].fqdn"), format!("{} is listed twice", e.fqdn)));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, m) in s.edge.media_associations.iter().enumerate() {
        if !seen.insert(&m.pool) {
            return Err(bad(id, &format!("spec.edge.mediaAssociations[{i}].pool"), format!("{} is listed twice", m.pool)));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, b) in s.back_ends.iter().enumerate() {
        if !seen.insert(&b.pool) {
            return Err(bad(id, &format!("spec.backEnds[{i}].pool"), format!("{} is listed twice", b.pool)));
        }
    }
    if !(1..=16).contains(&s.policy.concurrency) {
        return Err(bad(id, "spec.policy.concurrency", "must be between 1 and 16"));
    }
    if let Some(r) = &s.response_groups {
        check_text(&id, "spec.responseGroups.exportPath", &r.export_path)?;
    }
    Ok(())
}

pub fn check_placement(p: &UserPlacement) -> Result<(), DesiredError> {
    let id = format!("UserPlacement/{}", p.metadata.name.clone().unwrap_or_default());
    let s = &p.spec;
    match (&s.users, &s.from_pool) {
        (Some(_), Some(_)) | (None, None) => return Err(bad(id, "spec", "set exactly one of users and fromPool")),
        (Some(users), None) => {
            for (i, u) in users.iter().enumerate() {
                if normalize_sip(u).is_none() {
                    return Err(bad(
                        id,
                        &format!("spec.users[{i}]"),
                        format!("'{}' is not a SIP address such as sip:alice@contoso.com", crate::model::text::shown(u)),
                    ));
                }
            }
        }
        (None, Some(f)) if f == &s.target_pool => return Err(bad(id, "spec.fromPool", "fromPool and targetPool must differ")),
        _ => {}
    }
    check_reference(&id, &s.deployment)?;
    if !(1..=5000).contains(&s.batch_size) {
        return Err(bad(id, "spec.batchSize", "must be between 1 and 5000"));
    }
    Ok(())
}

/// Compiles the resources of every deployment found. Resources refer to the deployment of
/// their own namespace; a resource referring to a deployment that is not among them is an error.
pub fn compile(manifests: &[Manifest]) -> Result<Vec<Desired>, DesiredError> {
    let ns = |m: &Option<String>| m.clone().unwrap_or_default();
    let deployments: Vec<&LyncDeployment> =
        manifests.iter().filter_map(|m| if let Manifest::Deployment(d) = m { Some(d.as_ref()) } else { None }).collect();
    let pairs: Vec<&PoolPair> = manifests.iter().filter_map(|m| if let Manifest::PoolPair(d) = m { Some(d) } else { None }).collect();
    let placements: Vec<&UserPlacement> =
        manifests.iter().filter_map(|m| if let Manifest::UserPlacement(d) = m { Some(d) } else { None }).collect();
    let restores: Vec<&ConferenceContentRestore> =
        manifests.iter().filter_map(|m| if let Manifest::ContentRestore(d) = m { Some(d) } else { None }).collect();
    let names: BTreeSet<(String, String)> =
        deployments.iter().map(|d| (ns(&d.metadata.namespace), d.metadata.name.clone().unwrap_or_default())).collect();
    let missing = |kind: &str, meta: &kube::core::ObjectMeta, dep: &str| -> Result<(), DesiredError> {
        let namespace = ns(&meta.namespace);
        if names.contains(&(namespace.clone(), dep.to_string())) {
            Ok(())
        } else {
            let inside = if namespace.is_empty() { String::new() } else { format!(" in namespace {namespace}") };
            Err(bad(
                format!("{kind}/{}", meta.name.clone().unwrap_or_default()),
                "spec.deployment",
                format!("LyncDeployment '{dep}' does not exist{inside}"),
            ))
        }
    };
    for p in &pairs {
        check_pair(p)?;
        missing("PoolPair", &p.metadata, &p.spec.deployment)?;
    }
    for p in &placements {
        check_placement(p)?;
        missing("UserPlacement", &p.metadata, &p.spec.deployment)?;
    }
    for r in &restores {
        check_reference(&format!("ConferenceContentRestore/{}", r.metadata.name.clone().unwrap_or_default()), &r.spec.deployment)?;
        missing("ConferenceContentRestore", &r.metadata, &r.spec.deployment)?;
    }
    let mut out = Vec::new();
    for d in deployments {
        check_deployment(d)?;
        let name = d.metadata.name.clone().unwrap_or_default();
        let namespace = ns(&d.metadata.namespace);
        let mine = |meta: &kube::core::ObjectMeta, dep: &str| dep == name && ns(&meta.namespace) == namespace;
        let mut desired = build(
            d,
            pairs.iter().filter(|p| mine(&p.metadata, &p.spec.deployment)).copied().collect(),
            placements.iter().filter(|p| mine(&p.metadata, &p.spec.deployment)).copied().collect(),
            restores.iter().filter(|p| mine(&p.metadata, &p.spec.deployment)).copied().collect(),
        )?;
        desired.namespace = namespace;
        out.push(desired);
    }
    Ok(out)
}

/// Builds one deployment's desired state from its resources (already checked one by one).
pub fn build(
    d: &LyncDeployment,
    pairs: Vec<&PoolPair>,
    placements: Vec<&UserPlacement>,
    restores: Vec<&ConferenceContentRestore>,
) -> Result<Desired, DesiredError> {
    let s = &d.spec;
    let mut desired = Desired {
        deployment: d.metadata.name.clone().unwrap_or_default(),
        generation: d.metadata.generation.unwrap_or(0),
        cms: s.central_management_store.as_ref().map(|c| CmsDesired {
            active_pool: c.active_pool.clone(),
            allow_data_loss: c.allow_data_loss,
            automatic_failover: c.automatic_failover,
        }),
        sip_federation: s.edge.sip_federation_pool.clone(),
        xmpp_federation: s.edge.xmpp_federation_pool.clone(),
        edge_failover: s.edge.automatic_failover,
        edge_fallbacks: s.edge.fallback_pools.clone(),
        next_hops: s.edge.edge_pools.iter().map(|e| (e.fqdn.clone(), e.next_hop.clone())).collect(),
        media: s.edge.media_associations.iter().map(|m| (m.pool.clone(), m.edge_pool.clone())).collect(),
        back_ends: s
            .back_ends
            .iter()
            .map(|b| (b.pool.clone(), BackEndDesired { principal: b.principal, automatic_failover: b.automatic_failover }))
            .collect(),
        sync_interval: s.backup_service.as_ref().map(|b| b.sync_interval),
        rgs_export_path: s.response_groups.as_ref().map(|r| r.export_path.clone()),
        rgs_resolve_name_conflicts: s.response_groups.as_ref().is_some_and(|r| r.resolve_name_conflicts),
        ..Default::default()
    };
    // A pool may belong to one PoolPair only (pairing is 1:1).
    let mut owner: BTreeMap<Fqdn, String> = BTreeMap::new();
    let mut sorted = pairs;
    sorted.sort_by_key(|p| p.metadata.name.clone());
    for p in sorted {
        let name = p.metadata.name.clone().unwrap_or_default();
        for (i, pool) in p.spec.pools.iter().enumerate() {
            if let Some(other) = owner.insert(pool.clone(), name.clone()) {
                return Err(bad(
                    format!("PoolPair/{name}"),
                    &format!("spec.pools[{i}]"),
                    format!("{pool} is also in PoolPair/{other}; a pool has exactly one partner (pairing is 1:1)"),
                ));
            }
        }
        let ann = p.metadata.annotations.as_ref();
        desired.pairs.push(PairDesired {
            name,
            generation: p.metadata.generation.unwrap_or(0),
            pools: [p.spec.pools[0].clone(), p.spec.pools[1].clone()],
            failed_over: p.spec.failed_over.first().cloned(),
            allow_data_loss: p.spec.allow_data_loss,
            allow_repair: p.spec.allow_repair,
            allow_unsupported_pairing: p.spec.allow_unsupported_pairing,
            automatic_failover: p.spec.automatic_failover.as_ref().filter(|a| a.enabled).map(|a| a.grace_period),
            automatic_failback: p.spec.automatic_failback.as_ref().filter(|a| a.enabled).map(|a| a.stability_period),
            failback_approved: ann.and_then(|a| a.get(crate::api::APPROVE_FAILBACK_ANNOTATION)).is_some_and(|v| v == "true"),
        });
    }
    for p in placements {
        desired.placements.push(PlacementDesired {
            name: p.metadata.name.clone().unwrap_or_default(),
            selector: match (&p.spec.users, &p.spec.from_pool) {
                (Some(u), _) => UserSelector::Users(u.iter().filter_map(|x| normalize_sip(x)).collect()),
                (None, Some(f)) => UserSelector::FromPool(f.clone()),
                (None, None) => UserSelector::Users(vec![]),
            },
            target: p.spec.target_pool.clone(),
            batch_size: p.spec.batch_size.clamp(1, 5000) as u32,
            allow_data_loss: p.spec.allow_data_loss,
        });
    }
    for r in restores {
        desired.restores.push(RestoreDesired {
            name: r.metadata.name.clone().unwrap_or_default(),
            generation: r.metadata.generation.unwrap_or(0),
            pool: r.spec.pool.clone(),
        });
    }
    Ok(desired)
}

impl Desired {
    /// Checks references against a topology: every pool and Edge pool named must exist.
    pub fn check_against(&self, topo: &Topology) -> Result<(), DesiredError> {
        let dep = format!("LyncDeployment/{}", self.deployment);
        let pool = |r: &str, field: &str, f: &Fqdn| -> Result<(), DesiredError> {
            if topo.pools.contains_key(f) { Ok(()) } else { Err(bad(r, field, format!("{f} is not a Front End pool of the deployment"))) }
        };
        let edge = |r: &str, field: &str, f: &Fqdn| -> Result<(), DesiredError> {
            if topo.edges.contains_key(f) { Ok(()) } else { Err(bad(r, field, format!("{f} is not an Edge pool of the deployment"))) }
        };
        if let Some(c) = &self.cms {
            pool(&dep, "spec.centralManagementStore.activePool", &c.active_pool)?;
        }
        if let Some(e) = &self.sip_federation {
            edge(&dep, "spec.edge.sipFederationPool", e)?;
        }
        if let Some(e) = &self.xmpp_federation {
            edge(&dep, "spec.edge.xmppFederationPool", e)?;
        }
        for (i, e) in self.edge_fallbacks.iter().enumerate() {
            edge(&dep, &format!("spec.edge.fallbackPools[{i}]"), e)?;
        }
        for (e, p) in &self.next_hops {
            edge(&dep, "spec.edge.edgePools[].fqdn", e)?;
            pool(&dep, &format!("spec.edge.edgePools[{e}].nextHop"), p)?;
        }
        for (p, e) in &self.media {
            pool(&dep, "spec.edge.mediaAssociations[].pool", p)?;
            edge(&dep, &format!("spec.edge.mediaAssociations[{p}].edgePool"), e)?;
        }
        for (p, b) in &self.back_ends {
            pool(&dep, "spec.backEnds[].pool", p)?;
            if b.principal == Role::Mirror && topo.pools.get(p).is_some_and(|x| x.back_end.mirror.is_none()) {
                return Err(bad(
                    &dep,
                    &format!("spec.backEnds[{p}].principal"),
                    format!("{p} has no mirror; its principal can only be Primary"),
                ));
            }
        }
        for p in &self.pairs {
            for (i, f) in p.pools.iter().enumerate() {
                pool(&p.resource(), &format!("spec.pools[{i}]"), f)?;
            }
        }
        for p in &self.placements {
            let r = format!("UserPlacement/{}", p.name);
            pool(&r, "spec.targetPool", &p.target)?;
            if let UserSelector::FromPool(f) = &p.selector {
                pool(&r, "spec.fromPool", f)?;
            }
        }
        for r in &self.restores {
            pool(&format!("ConferenceContentRestore/{}", r.name), "spec.pool", &r.pool)?;
        }
        Ok(())
    }

    /// The desired state a scenario's starting point already satisfies (for `lyncdr demo` with
    /// no `--desired`): nothing to change.
    pub fn pool_pair(&self, pool: &Fqdn) -> Option<&PairDesired> {
        self.pairs.iter().find(|p| p.pools.contains(pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifests::parse;

    const BASE: &str = r#"
apiVersion: lyncdr.io/v1alpha1
kind: LyncDeployment
metadata: {name: contoso}
spec: {}
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {name: dal-sea}
spec:
  deployment: contoso
  pools: [pool01.dal.contoso.com, pool01.sea.contoso.com]
"#;

    fn compile_text(t: &str) -> Result<Vec<Desired>, String> {
        let m = parse(t, "t.yaml").map_err(|e| e.to_string())?;
        compile(&m).map_err(|e| e.to_string())
    }

    #[test]
    fn compiles_a_pair() {
        let d = compile_text(BASE).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pairs.len(), 1);
        assert_eq!(d[0].pairs[0].failed_over, None);
    }

    #[test]
    fn cross_object_conflicts_name_both() {
        let t = format!(
            "{BASE}---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: dal-chi}}\nspec:\n  deployment: contoso\n  pools: [pool01.dal.contoso.com, pool01.chi.contoso.com]\n"
        );
        let e = compile_text(&t).unwrap_err();
        assert!(e.contains("PoolPair/dal-sea") && e.contains("PoolPair/dal-chi") && e.contains("1:1"), "{e}");
        let t = BASE.replace("deployment: contoso", "deployment: fabrikam");
        let e = compile_text(&t).unwrap_err();
        assert!(e.contains("PoolPair/dal-sea") && e.contains("spec.deployment") && e.contains("fabrikam"), "{e}");
    }

    #[test]
    fn per_object_rules() {
        let e =
            compile_text(&BASE.replace(
                "pools: [pool01.dal.contoso.com, pool01.sea.contoso.com]",
                "pools: [pool01.dal.contoso.com, pool01.dal.contoso.com]",
            ))
            .unwrap_err();
        assert!(e.contains("spec.pools") && e.contains("differ"), "{e}");
        let e = compile_text(&(BASE.to_string() + "  failedOver: [pool09.dal.contoso.com]\n")).unwrap_err();
        assert!(e.contains("spec.failedOver"), "{e}");
        let e = compile_text(&(BASE.to_string() + "  automaticFailover: {enabled: true}\n")).unwrap_err();
        assert!(e.contains("spec.automaticFailover") && e.contains("allowDataLoss"), "{e}");
    }
}
