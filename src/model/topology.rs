//! The static shape of a Lync deployment: sites, Front End pools, Back Ends, Edge pools and the
//! supported-pairing rules between Front End pools.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Fqdn;

/// Lync / Skype for Business Server major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Product {
    Lync2013,
    SfB2015,
    SfB2019,
}

impl Product {
    /// Folder name of the product under `Program Files` (Bootstrapper path).
    pub fn install_folder(self) -> &'static str {
        match self {
            Product::Lync2013 => "Microsoft Lync Server 2013",
            Product::SfB2015 => "Skype for Business Server 2015",
            Product::SfB2019 => "Skype for Business Server 2019",
        }
    }
    pub fn is_skype(self) -> bool {
        !matches!(self, Product::Lync2013)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Edition {
    Enterprise,
    Standard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Virtualization {
    #[default]
    Physical,
    Virtual,
}

/// The Back End high-availability technique of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum BackEndHa {
    None,
    Mirroring,
    Clustering,
}

/// Which SQL server of a mirrored Back End holds a database's principal copy (Lync's `MirrorRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Role {
    #[default]
    Primary,
    Mirror,
}

impl Role {
    pub fn other(self) -> Role {
        match self {
            Role::Primary => Role::Mirror,
            Role::Mirror => Role::Primary,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The attributes the supported-pairing rules compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolTraits {
    pub edition: Edition,
    pub product: Product,
    pub virtualization: Virtualization,
    pub os: String,
    pub back_end_ha: BackEndHa,
}

/// A Back End SQL deployment: the topology-defined primary, an optional synchronous mirror and
/// whether a witness makes mirror failover automatic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackEnd {
    pub primary: Fqdn,
    pub mirror: Option<Fqdn>,
    pub witness: bool,
    pub clustered: bool,
}

impl BackEnd {
    pub fn server(&self, role: Role) -> Option<&Fqdn> {
        match role {
            Role::Primary => Some(&self.primary),
            Role::Mirror => self.mirror.as_ref(),
        }
    }
    pub fn ha(&self) -> BackEndHa {
        if self.clustered {
            BackEndHa::Clustering
        } else if self.mirror.is_some() {
            BackEndHa::Mirroring
        } else {
            BackEndHa::None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontEndPool {
    pub fqdn: Fqdn,
    pub site: String,
    pub traits: PoolTraits,
    pub front_ends: Vec<Fqdn>,
    pub users: u32,
    /// Users given by SIP address in the scenario, in addition to `users` generated ones.
    pub named_users: Vec<String>,
    pub back_end: BackEnd,
    pub call_park: bool,
    /// Response Group workflows owned by this pool.
    pub response_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgePool {
    pub fqdn: Fqdn,
    pub site: String,
    pub servers: Vec<Fqdn>,
}

/// The inventory of a deployment. Pairings (`backup`) are topology too: Lync sets them only by
/// publishing a topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    pub product: Product,
    pub sites: Vec<String>,
    pub pools: BTreeMap<Fqdn, FrontEndPool>,
    pub edges: BTreeMap<Fqdn, EdgePool>,
    /// Each pool's backup pool; reciprocal when valid.
    pub backup: BTreeMap<Fqdn, Fqdn>,
}

impl Topology {
    pub fn partner(&self, pool: &Fqdn) -> Option<&Fqdn> {
        self.backup.get(pool)
    }

    pub fn site_of(&self, fqdn: &Fqdn) -> Option<&str> {
        if let Some(p) = self.pools.get(fqdn) {
            return Some(&p.site);
        }
        if let Some(e) = self.edges.get(fqdn) {
            return Some(&e.site);
        }
        self.pools
            .values()
            .find(|p| p.front_ends.contains(fqdn) || p.back_end.primary == *fqdn || p.back_end.mirror.as_ref() == Some(fqdn))
            .map(|p| p.site.as_str())
            .or_else(|| self.edges.values().find(|e| e.servers.contains(fqdn)).map(|e| e.site.as_str()))
    }

    /// The Front End pool a server belongs to, if it is a Front End.
    pub fn pool_of_server(&self, server: &Fqdn) -> Option<&FrontEndPool> {
        self.pools.values().find(|p| p.front_ends.contains(server))
    }

    /// The Edge pool a server belongs to, if it is an Edge server.
    pub fn edge_of_server(&self, server: &Fqdn) -> Option<&EdgePool> {
        self.edges.values().find(|e| e.servers.contains(server))
    }
}

/// Where each host of a topology lives, for lookups in constant time: the site of every pool,
/// Edge pool, server and SQL server, and the pool or Edge pool of every server. Built once from a
/// topology whose pools and Edge pools do not change afterwards (the simulator's); the lookups of
/// [`Topology`] scan and stay correct for topologies that are edited.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    site: BTreeMap<Fqdn, String>,
    pool_of: BTreeMap<Fqdn, Fqdn>,
    edge_of: BTreeMap<Fqdn, Fqdn>,
}

impl Hosts {
    pub fn new(t: &Topology) -> Hosts {
        let mut h = Hosts::default();
        for p in t.pools.values() {
            for s in p.front_ends.iter() {
                h.site.entry(s.clone()).or_insert_with(|| p.site.clone());
                h.pool_of.entry(s.clone()).or_insert_with(|| p.fqdn.clone());
            }
            for sql in std::iter::once(&p.back_end.primary).chain(p.back_end.mirror.iter()) {
                h.site.entry(sql.clone()).or_insert_with(|| p.site.clone());
            }
        }
        for e in t.edges.values() {
            for s in &e.servers {
                h.site.entry(s.clone()).or_insert_with(|| e.site.clone());
                h.edge_of.entry(s.clone()).or_insert_with(|| e.fqdn.clone());
            }
        }
        // Pools and Edge pools by their own name win, as in `Topology::site_of`.
        for p in t.pools.values() {
            h.site.insert(p.fqdn.clone(), p.site.clone());
        }
        for e in t.edges.values() {
            h.site.insert(e.fqdn.clone(), e.site.clone());
        }
        h
    }

    pub fn site_of(&self, fqdn: &Fqdn) -> Option<&str> {
        self.site.get(fqdn).map(String::as_str)
    }

    /// The Front End pool of a Front End server.
    pub fn pool_of_server(&self, server: &Fqdn) -> Option<&Fqdn> {
        self.pool_of.get(server)
    }

    /// The Edge pool of an Edge server.
    pub fn edge_of_server(&self, server: &Fqdn) -> Option<&Fqdn> {
        self.edge_of.get(server)
    }
}

/// A supported-pairing rule that two pools break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingViolation {
    /// Short rule name, e.g. `LikeEdition`.
    pub rule: &'static str,
    pub detail: String,
}

impl fmt::Display for PairingViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// Checks the supported-pairing rules of JJ204697 / the SfB disaster-recovery topic and the Back
/// End rule of JJ205248. Topology Builder does not enforce them, so lyncdr must.
pub fn pairing_violations(a: (&Fqdn, &PoolTraits), b: (&Fqdn, &PoolTraits)) -> Vec<PairingViolation> {
    let (an, at) = a;
    let (bn, bt) = b;
    let mut out = Vec::new();
    if an == bn {
        out.push(PairingViolation { rule: "DistinctPools", detail: format!("{an} cannot back itself up") });
        return out;
    }
    if at.edition != bt.edition {
        out.push(PairingViolation {
            rule: "LikeEdition",
            detail: format!(
                "{an} is {:?} Edition and {bn} is {:?} Edition; only Enterprise with Enterprise or Standard with Standard is supported",
                at.edition, bt.edition
            ),
        });
    }
    if at.product != bt.product {
        out.push(PairingViolation {
            rule: "LikeProduct",
            detail: format!("{an} runs {} and {bn} runs {}; pair pools of the same product version", at.product, bt.product),
        });
    }
    if at.virtualization != bt.virtualization {
        out.push(PairingViolation {
            rule: "LikeVirtualization",
            detail: format!(
                "{an} is {:?} and {bn} is {:?}; pair physical with physical and virtual with virtual",
                at.virtualization, bt.virtualization
            ),
        });
    }
    if !at.os.eq_ignore_ascii_case(&bt.os) {
        out.push(PairingViolation {
            rule: "SameOperatingSystem",
            detail: format!("{an} runs '{}' and {bn} runs '{}'; paired pools need the same operating system", at.os, bt.os),
        });
    }
    if at.edition == Edition::Enterprise && bt.edition == Edition::Enterprise && at.back_end_ha != bt.back_end_ha {
        out.push(PairingViolation {
            rule: "LikeBackEndHighAvailability",
            detail: format!(
                "{an} uses {:?} and {bn} uses {:?} for its Back End; both pools must use the same Back End high-availability solution",
                at.back_end_ha, bt.back_end_ha
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(edition: Edition, product: Product) -> PoolTraits {
        PoolTraits {
            edition,
            product,
            virtualization: Virtualization::Physical,
            os: "Windows Server 2012 R2".into(),
            back_end_ha: BackEndHa::Mirroring,
        }
    }

    #[test]
    fn like_pools_pair() {
        let a = Fqdn::parse("a.contoso.com").unwrap();
        let b = Fqdn::parse("b.contoso.com").unwrap();
        let t = traits(Edition::Enterprise, Product::Lync2013);
        assert!(pairing_violations((&a, &t), (&b, &t)).is_empty());
    }

    #[test]
    fn each_rule_is_named() {
        let a = Fqdn::parse("a.contoso.com").unwrap();
        let b = Fqdn::parse("b.contoso.com").unwrap();
        let ta = traits(Edition::Enterprise, Product::Lync2013);
        let mut tb = traits(Edition::Standard, Product::SfB2015);
        tb.virtualization = Virtualization::Virtual;
        tb.os = "Windows Server 2016".into();
        let rules: Vec<_> = pairing_violations((&a, &ta), (&b, &tb)).into_iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec!["LikeEdition", "LikeProduct", "LikeVirtualization", "SameOperatingSystem"]);
        let mut tc = ta.clone();
        tc.back_end_ha = BackEndHa::Clustering;
        let rules: Vec<_> = pairing_violations((&a, &ta), (&b, &tc)).into_iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec!["LikeBackEndHighAvailability"]);
        assert_eq!(pairing_violations((&a, &ta), (&a, &ta))[0].rule, "DistinctPools");
    }
}

#[cfg(test)]
mod hosts_tests {
    use super::Hosts;
    use crate::scenario::{DEMO_SCENARIO, Scenario};

    #[test]
    fn the_index_agrees_with_the_scanning_lookups() {
        let t = Scenario::from_yaml(DEMO_SCENARIO).expect("demo scenario").topology;
        let h = Hosts::new(&t);
        let mut names: Vec<_> = t.pools.keys().chain(t.edges.keys()).cloned().collect();
        for p in t.pools.values() {
            names.extend(p.front_ends.iter().cloned());
            names.push(p.back_end.primary.clone());
            names.extend(p.back_end.mirror.iter().cloned());
        }
        for e in t.edges.values() {
            names.extend(e.servers.iter().cloned());
        }
        names.push("unknown.contoso.com".parse().expect("fqdn"));
        assert!(names.len() > 10, "{names:?}");
        for n in &names {
            assert_eq!(h.site_of(n), t.site_of(n), "site of {n}");
            assert_eq!(h.pool_of_server(n), t.pool_of_server(n).map(|p| &p.fqdn), "pool of {n}");
            assert_eq!(h.edge_of_server(n), t.edge_of_server(n).map(|e| &e.fqdn), "Edge pool of {n}");
        }
    }
}
