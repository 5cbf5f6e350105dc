//! Validation of a scenario file into the domain model, one function per section of the file
//! (sites and their pools and Edge pools, pairs, CMS, federation, media Edge, Backup Service,
//! runtime state, timings). Every error names the field as written
//! (`sites[0].frontEndPools[1].fqdn`) and says how to fix it.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    BackupServiceFile, EdgeFile, Fault, FaultAction, FaultTarget, PoolFile, Scenario, ScenarioError, ScenarioFile, SiteFile, invalid,
};
use crate::model::sip::normalize_sip;
use crate::model::text::shown;
use crate::model::{BackEnd, EdgePool, Edition, Fqdn, FrontEndPool, PoolTraits, Product, Role, Span, Topology};

impl ScenarioFile {
    /// Checks every field and builds the model. Errors name the field (`sites[0].frontEndPools[1].fqdn`).
    pub fn validate(&self) -> Result<Scenario, ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        // The name is printed by `sim serve` and `demo`: no control characters.
        no_control("name", &self.name)?;
        let Sites { names, pools, edges, next_hops } = self.sites()?;
        let backup = pairs(&self.pairs, &pools)?;
        let topology = Topology { product: self.product, sites: names, pools, edges, backup };
        let cms_pool = self.cms_pool(&topology)?;
        let Federation { sip: sip_federation, xmpp: xmpp_federation, dns: xmpp_dns } = self.federation(&topology)?;
        let media_edge = self.media_edge(&topology)?;
        let sync_interval = sync_interval(&self.backup_service)?;
        let State { failed_over, down, principal, backup_stopped } = self.state(&topology, cms_pool.as_ref())?;
        self.timings.validate().map_err(|(field, msg)| invalid(format!("timings.{field}"), msg))?;
        let transport_faults = match &self.transport_faults {
            Some(t) => t.validate(&topology).map_err(|(field, msg)| invalid(format!("transportFaults.{field}"), msg))?,
            None => Default::default(),
        };
        Ok(Scenario {
            name: self.name.clone(),
            topology,
            cms_pool,
            sip_federation,
            xmpp_federation,
            xmpp_dns,
            next_hops,
            media_edge,
            sync_interval,
            failed_over,
            down,
            principal,
            backup_stopped,
            timings: self.timings.clone(),
            transport_faults,
        })
    }

    /// `sites`: names, Front End pools and Edge pools, every FQDN unique.
    fn sites(&self) -> Result<Sites, ScenarioError> {
        if self.sites.is_empty() {
            return Err(invalid("sites", "a deployment needs at least one site"));
        }
        let mut out = Sites::default();
        let mut names = Names::default();
        for (si, site) in self.sites.iter().enumerate() {
            let sf = format!("sites[{si}]");
            site_name(site, &sf, &out.names)?;
            out.names.push(site.name.clone());
            for (pi, p) in site.front_end_pools.iter().enumerate() {
                let pool = front_end_pool(p, site, self.product, &format!("{sf}.frontEndPools[{pi}]"), &mut names)?;
                out.pools.insert(pool.fqdn.clone(), pool);
            }
            for (ei, e) in site.edge_pools.iter().enumerate() {
                let (pool, next_hop) = edge_pool(e, site, &format!("{sf}.edgePools[{ei}]"), &mut names)?;
                out.next_hops.insert(pool.fqdn.clone(), next_hop);
                out.edges.insert(pool.fqdn.clone(), pool);
            }
        }
        for (edge, nh) in out.next_hops.iter().filter_map(|(e, nh)| nh.as_ref().map(|n| (e, n))) {
            if !out.pools.contains_key(nh) {
                return Err(invalid(edge_field(self, edge, "nextHop"), format!("{nh} is not a Front End pool of this scenario")));
            }
        }
        Ok(out)
    }

    /// `cms.activePool`: a Front End pool of the scenario.
    fn cms_pool(&self, topology: &Topology) -> Result<Option<Fqdn>, ScenarioError> {
        let Some(c) = &self.cms else { return Ok(None) };
        let f = fqdn(&c.active_pool, "cms.activePool")?;
        if !topology.pools.contains_key(&f) {
            return Err(invalid("cms.activePool", format!("{f} is not a Front End pool of this scenario")));
        }
        Ok(Some(f))
    }

    /// `federation`: the SIP and XMPP Edge pools and the XMPP SRV records, highest priority first.
    fn federation(&self, topology: &Topology) -> Result<Federation, ScenarioError> {
        let sip = edge_ref(topology, self.federation.sip_edge_pool.as_deref(), "federation.sipEdgePool")?;
        let xmpp = edge_ref(topology, self.federation.xmpp_edge_pool.as_deref(), "federation.xmppEdgePool")?;
        let dns = match &self.federation.xmpp_dns {
            None => xmpp.iter().cloned().collect(),
            Some(list) => {
                let mut out: Vec<Fqdn> = Vec::new();
                for (i, e) in list.iter().enumerate() {
                    let field = format!("federation.xmppDns[{i}]");
                    let Some(f) = edge_ref(topology, Some(e), &field)? else { continue };
                    if out.contains(&f) {
                        return Err(invalid(field, format!("{f} is listed twice; list each Edge pool once, highest priority first")));
                    }
                    out.push(f);
                }
                out
            }
        };
        Ok(Federation { sip, xmpp, dns })
    }

    /// `mediaEdge`: explicit entries, otherwise the first Edge pool of the pool's own site.
    fn media_edge(&self, topology: &Topology) -> Result<BTreeMap<Fqdn, Option<Fqdn>>, ScenarioError> {
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
            let e = edge_ref(topology, Some(&m.edge_pool), &format!("mediaEdge[{i}].edgePool"))?;
            media_edge.insert(p, e);
        }
        Ok(media_edge)
    }

    /// `state`: the runtime state the simulator starts in, consistent with the topology.
    fn state(&self, topology: &Topology, cms_pool: Option<&Fqdn>) -> Result<State, ScenarioError> {
        let mut out = State::default();
        for (i, f) in self.state.failed_over.iter().enumerate() {
            let field = format!("state.failedOver[{i}]");
            let p = fqdn(f, &field)?;
            let Some(partner) = topology.partner(&p) else {
                return Err(invalid(field, format!("{p} has no backup pool, so its users cannot be failed over")));
            };
            if out.failed_over.contains(partner) {
                return Err(invalid(
                    field,
                    format!(
                        "{p} and its partner {partner} cannot both be failed over: a pool whose users are failed over cannot serve its partner's users"
                    ),
                ));
            }
            out.failed_over.insert(p);
        }
        if let Some(cms) = cms_pool
            && out.failed_over.contains(cms)
        {
            return Err(invalid(
                "cms.activePool",
                format!("{cms} is failed over; the CMS must be active in a pool that serves its own users"),
            ));
        }
        for (i, d) in self.state.down.iter().enumerate() {
            let field = format!("state.down[{i}]");
            let target = FaultTarget::parse(d).map_err(|m| invalid(&field, m))?;
            Fault { action: FaultAction::Down, target: target.clone() }.check(topology).map_err(|m| invalid(&field, m))?;
            out.down.push(target);
        }
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
            out.principal.insert(f, p.principal);
        }
        for (i, p) in self.state.backup_service_stopped.iter().enumerate() {
            let field = format!("state.backupServiceStopped[{i}]");
            let f = fqdn(p, &field)?;
            if topology.partner(&f).is_none() {
                return Err(invalid(field, format!("{f} is not paired, so it has no Backup Service to stop")));
            }
            out.backup_stopped.insert(f);
        }
        Ok(out)
    }
}

/// What `sites` gives the model.
#[derive(Default)]
struct Sites {
    names: Vec<String>,
    pools: BTreeMap<Fqdn, FrontEndPool>,
    edges: BTreeMap<Fqdn, EdgePool>,
    next_hops: BTreeMap<Fqdn, Option<Fqdn>>,
}

/// What `federation` gives the model.
struct Federation {
    sip: Option<Fqdn>,
    xmpp: Option<Fqdn>,
    dns: Vec<Fqdn>,
}

/// What `state` gives the model.
#[derive(Default)]
struct State {
    failed_over: BTreeSet<Fqdn>,
    down: Vec<FaultTarget>,
    principal: BTreeMap<Fqdn, Role>,
    backup_stopped: BTreeSet<Fqdn>,
}

/// Every pool and server FQDN of the scenario, with the field that named it first.
#[derive(Default)]
struct Names(BTreeMap<Fqdn, String>);

impl Names {
    fn claim(&mut self, name: &Fqdn, field: &str) -> Result<(), ScenarioError> {
        if let Some(prev) = self.0.insert(name.clone(), field.to_string()) {
            return Err(invalid(field, format!("{name} is already used by {prev}; every pool and server needs a unique FQDN")));
        }
        Ok(())
    }
}

fn site_name(site: &SiteFile, sf: &str, seen: &[String]) -> Result<(), ScenarioError> {
    if site.name.trim().is_empty() {
        return Err(invalid(format!("{sf}.name"), "must not be empty"));
    }
    if site.name.chars().any(char::is_control) {
        return Err(invalid(format!("{sf}.name"), "must not contain control characters"));
    }
    if seen.contains(&site.name) {
        return Err(invalid(format!("{sf}.name"), format!("site '{}' is defined twice", site.name)));
    }
    Ok(())
}

/// `sites[i].frontEndPools[j]`.
fn front_end_pool(p: &PoolFile, site: &SiteFile, product: Product, pf: &str, names: &mut Names) -> Result<FrontEndPool, ScenarioError> {
    let pool_fqdn = fqdn(&p.fqdn, &format!("{pf}.fqdn"))?;
    names.claim(&pool_fqdn, &format!("{pf}.fqdn"))?;
    let front_ends = front_end_names(p, &pool_fqdn, pf)?;
    for (i, fe) in front_ends.iter().enumerate() {
        names.claim(fe, &format!("{pf}.frontEndServers[{i}]"))?;
    }
    let back_end = back_end(p, &front_ends, pf)?;
    no_control(&format!("{pf}.os"), &p.os)?;
    for (i, g) in p.response_groups.iter().enumerate() {
        no_control(&format!("{pf}.responseGroups[{i}]"), g)?;
    }
    let mut named = Vec::new();
    for (i, u) in p.named_users.iter().enumerate() {
        named.push(normalize_sip(u).ok_or_else(|| {
            invalid(format!("{pf}.namedUsers[{i}]"), format!("'{}' is not a SIP address such as sip:alice@contoso.com", shown(u)))
        })?);
    }
    let traits = PoolTraits {
        edition: p.edition,
        product: p.product.unwrap_or(product),
        virtualization: p.virtualization,
        os: p.os.clone(),
        back_end_ha: back_end.ha(),
    };
    Ok(FrontEndPool {
        fqdn: pool_fqdn,
        site: site.name.clone(),
        traits,
        front_ends,
        users: p.users,
        named_users: named,
        back_end,
        call_park: p.call_park,
        response_groups: p.response_groups.clone(),
    })
}

/// `sites[i].frontEndPools[j].backEnd`: a Standard Edition pool's own SQL Express when absent.
fn back_end(p: &PoolFile, front_ends: &[Fqdn], pf: &str) -> Result<BackEnd, ScenarioError> {
    let Some(b) = &p.back_end else {
        return match p.edition {
            Edition::Standard => Ok(BackEnd { primary: front_ends[0].clone(), mirror: None, witness: false, clustered: false }),
            Edition::Enterprise => {
                Err(invalid(format!("{pf}.backEnd"), "an Enterprise Edition pool needs a Back End: backEnd: {primary: <sql fqdn>}"))
            }
        };
    };
    let primary = fqdn(&b.primary, &format!("{pf}.backEnd.primary"))?;
    let mirror = b.mirror.as_deref().map(|m| fqdn(m, &format!("{pf}.backEnd.mirror"))).transpose()?;
    if p.edition == Edition::Standard && mirror.is_some() {
        return Err(invalid(
            format!("{pf}.backEnd.mirror"),
            "a Standard Edition pool has no Back End high availability; remove the mirror",
        ));
    }
    if b.witness && mirror.is_none() {
        return Err(invalid(format!("{pf}.backEnd.witness"), "a witness needs a mirror; add backEnd.mirror or set witness: false"));
    }
    if b.clustered && mirror.is_some() {
        return Err(invalid(format!("{pf}.backEnd"), "choose SQL mirroring or clustering, not both"));
    }
    if mirror.as_ref() == Some(&primary) {
        return Err(invalid(format!("{pf}.backEnd.mirror"), "the mirror must be a different SQL server than the primary"));
    }
    Ok(BackEnd { primary, mirror, witness: b.witness, clustered: b.clustered })
}

/// `sites[i].edgePools[j]`, with its next hop (checked once every pool is known).
fn edge_pool(e: &EdgeFile, site: &SiteFile, ef: &str, names: &mut Names) -> Result<(EdgePool, Option<Fqdn>), ScenarioError> {
    let f = fqdn(&e.fqdn, &format!("{ef}.fqdn"))?;
    names.claim(&f, &format!("{ef}.fqdn"))?;
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
        names.claim(s, &format!("{ef}.serverNames[{i}]"))?;
    }
    let next_hop = e.next_hop.as_deref().map(|n| fqdn(n, &format!("{ef}.nextHop"))).transpose()?;
    Ok((EdgePool { fqdn: f, site: site.name.clone(), servers }, next_hop))
}

/// `pairs`: 1:1 and reciprocal, between pools of the scenario.
fn pairs(pairs: &[[String; 2]], pools: &BTreeMap<Fqdn, FrontEndPool>) -> Result<BTreeMap<Fqdn, Fqdn>, ScenarioError> {
    let mut backup = BTreeMap::new();
    for (i, [a, b]) in pairs.iter().enumerate() {
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
    Ok(backup)
}

/// `backupService.syncInterval`: within what Set-CsBackupServiceConfiguration accepts.
fn sync_interval(b: &BackupServiceFile) -> Result<Span, ScenarioError> {
    let sync = b.sync_interval;
    if sync < Span::secs(5) || sync > Span::hours(3) {
        return Err(invalid("backupService.syncInterval", format!("{sync} is outside the allowed range 00:00:05 to 03:00:00 (5s to 3h)")));
    }
    Ok(sync)
}

/// A reference to an Edge pool of the scenario.
fn edge_ref(topology: &Topology, v: Option<&str>, field: &str) -> Result<Option<Fqdn>, ScenarioError> {
    let Some(s) = v else { return Ok(None) };
    let f = fqdn(s, field)?;
    if !topology.edges.contains_key(&f) {
        return Err(invalid(field, format!("{f} is not an Edge pool of this scenario")));
    }
    Ok(Some(f))
}

/// The field path of an Edge pool as written.
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
