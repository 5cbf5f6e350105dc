//! What every emitter of the planner reads: the inputs, the effective targets, and the step
//! ids the emitters use to depend on one another. What the emitters ask of every pool (its pair)
//! is indexed, and what does not depend on the pool (where deployment-wide cmdlets run, the
//! replicas a failover waits for, the failovers of the plan) is worked out once.

use std::cell::OnceCell;
use std::collections::HashMap;

use super::Policy;
use super::step::Servers;
use super::targets::{PairState, PairTarget, Targets};
use crate::desired::Desired;
use crate::model::{DbType, Fqdn, Health, Observed};

pub(crate) struct Ctx<'a> {
    pub desired: &'a Desired,
    pub observed: &'a Observed,
    pub policy: &'a Policy,
    pub targets: Targets,
    /// The first pair of `targets.pairs` holding each pool (its position there).
    pair_index: HashMap<Fqdn, usize>,
    /// [`Ctx::admin_pool`], once asked.
    admin: OnceCell<Option<Fqdn>>,
    /// [`Ctx::replica_servers`], once asked.
    replicas: OnceCell<Servers>,
    /// [`Ctx::after_failovers`], once asked.
    failovers: OnceCell<Vec<String>>,
}

/// Step ids: stable, readable, unique per plan.
pub(crate) mod id {
    use crate::model::{DbType, Fqdn};

    pub fn failover(p: &Fqdn) -> String {
        format!("pool-failover/{p}")
    }
    pub fn failback(p: &Fqdn) -> String {
        format!("pool-failback/{p}")
    }
    pub fn wait_pool(p: &Fqdn) -> String {
        format!("wait-pool-operation/{p}")
    }
    pub fn cms_failover(to: &Fqdn) -> String {
        format!("cms-failover/{to}")
    }
    pub fn cms_export(to: &Fqdn) -> String {
        format!("cms-export-configuration/{to}")
    }
    pub fn cms_export_lis(to: &Fqdn) -> String {
        format!("cms-export-lis-configuration/{to}")
    }
    pub fn cms_replication(scope: &str) -> String {
        format!("wait-cms-replication/{scope}")
    }
    pub fn db(p: &Fqdn, db: DbType) -> String {
        format!("database-failover/{p}/{}", db.as_str())
    }
    pub fn next_hop(e: &Fqdn) -> String {
        format!("edge-next-hop/{e}")
    }
    pub fn sip(e: &Option<Fqdn>) -> String {
        format!("sip-federation-route/{}", e.as_ref().map(|x| x.to_string()).unwrap_or_else(|| "none".into()))
    }
    pub fn xmpp_dns(e: &Fqdn) -> String {
        format!("wait-xmpp-dns/{e}")
    }
    pub fn xmpp(e: &Option<Fqdn>) -> String {
        format!("xmpp-federation-route/{}", e.as_ref().map(|x| x.to_string()).unwrap_or_else(|| "none".into()))
    }
    pub fn bootstrap(server: &Fqdn) -> String {
        format!("edge-setup/{server}")
    }
    pub fn service(server: &Fqdn, running: bool) -> String {
        format!("edge-services-{}/{server}", if running { "start" } else { "stop" })
    }
    pub fn media(p: &Fqdn, mediation: bool) -> String {
        format!("media-edge-{}/{p}", if mediation { "mediation" } else { "conferencing" })
    }
}

impl<'a> Ctx<'a> {
    pub fn new(d: &'a Desired, o: &'a Observed, policy: &'a Policy, t: Targets) -> Ctx<'a> {
        let mut pair_index = HashMap::new();
        for (i, pt) in t.pairs.iter().enumerate() {
            for p in &pt.spec.pools {
                pair_index.entry(p.clone()).or_insert(i);
            }
        }
        Ctx {
            desired: d,
            observed: o,
            policy,
            targets: t,
            pair_index,
            admin: OnceCell::new(),
            replicas: OnceCell::new(),
            failovers: OnceCell::new(),
        }
    }

    pub fn deployment(&self) -> String {
        format!("LyncDeployment/{}", self.desired.deployment)
    }

    pub fn health(&self, p: &Fqdn) -> Health {
        self.observed.health(p)
    }

    /// The operator reaches the pool.
    pub fn up(&self, p: &Fqdn) -> bool {
        self.observed.health(p) == Health::Up
    }

    pub fn pair_of(&self, p: &Fqdn) -> Option<&PairTarget> {
        self.pair_index.get(p).map(|&i| &self.targets.pairs[i])
    }

    /// The pool that will serve `p`'s users once the plan has run.
    pub fn target_serving(&self, p: &Fqdn) -> Fqdn {
        match self.pair_of(p) {
            Some(pt) => match &pt.target {
                PairState::FailedOver(x) if x == p => pt.spec.partner(p).clone(),
                PairState::InProgress(_) => self.observed.serving(p),
                _ => p.clone(),
            },
            None => self.observed.serving(p),
        }
    }

    /// Whether `p`'s users will be served by `p` itself once the plan has run.
    pub fn serves_itself(&self, p: &Fqdn) -> bool {
        self.target_serving(p) == *p
    }

    /// Whether a failback of `p` is in the plan.
    pub fn failing_back(&self, p: &Fqdn) -> bool {
        self.pair_of(p).is_some_and(|pt| pt.transitions.iter().any(|t| t.failback && &t.pool == p))
    }

    /// Whether a failover of `p` is in the plan.
    pub fn failing_over(&self, p: &Fqdn) -> bool {
        self.pair_of(p).is_some_and(|pt| pt.transitions.iter().any(|t| !t.failback && &t.pool == p))
    }

    /// The pool failovers of this plan that a federation or media change comes after: no
    /// failover needs them (rule 11 is only the next hop; 4.20 fails federation over as a
    /// follow-up), and their CMS replication must not delay one (rule 4). None when the plan also
    /// fails a pool back: rule 23 puts Edge changes before a failback, and a cross-failover puts
    /// the failback before the failover (rule 1).
    pub fn after_failovers(&self) -> Vec<String> {
        self.failovers
            .get_or_init(|| {
                let transitions = || self.targets.pairs.iter().flat_map(|pt| pt.transitions.iter());
                if transitions().any(|t| t.failback) {
                    return vec![];
                }
                transitions().map(|t| id::failover(&t.pool)).collect()
            })
            .clone()
    }

    /// Where deployment-wide configuration cmdlets run: the pool that will host the CMS if it
    /// is reachable, else the first reachable pool serving its own users.
    pub fn admin_pool(&self) -> Option<Fqdn> {
        self.admin.get_or_init(|| self.find_admin_pool()).clone()
    }

    fn find_admin_pool(&self) -> Option<Fqdn> {
        let cms = self.targets.cms_move.as_ref().map(|m| m.to.clone()).or_else(|| self.observed.cms.master_pool.clone());
        if let Some(c) = cms.filter(|c| self.up(c)) {
            return Some(c);
        }
        self.observed
            .topology
            .pools
            .keys()
            .find(|p| self.up(p) && self.serves_itself(p))
            .cloned()
            .or_else(|| self.observed.topology.pools.keys().find(|p| self.up(p)).cloned())
    }

    /// A required CMS move into a pool whose users this plan fails back (the CMS pool's
    /// cross-failover): it waits for that failback (rules 1 and 3), and the CMS, still available
    /// where it is, takes the changes made before it.
    pub fn cms_deferred(&self) -> bool {
        self.targets.cms_move.as_ref().is_some_and(|m| !m.elective && !m.force && self.observed.cms.available() && self.failing_back(&m.to))
    }

    /// Dependencies of any step that writes to the CMS (topology and configuration changes):
    /// the CMS failover if one is planned, or the Back End failover that brings it back. An
    /// error explains why such steps cannot run.
    pub fn cms_deps(&self) -> Result<Vec<String>, String> {
        if let Some(m) = &self.targets.cms_move {
            // An elective or deferred move runs last; until then the CMS takes changes where it is.
            return Ok(if m.elective || self.cms_deferred() { vec![] } else { vec![id::cms_failover(&m.to)] });
        }
        if let Some(reason) = &self.targets.cms_blocked {
            return Err(reason.clone());
        }
        if !self.observed.cms.available()
            && let Some(home) = &self.observed.cms.home_pool
            && self.targets.principal.contains_key(home)
        {
            return Ok(vec![id::db(home, DbType::CentralMgmt), id::db(home, DbType::User)]);
        }
        Ok(vec![])
    }

    /// Servers whose CMS replicas must be current before a pool failover (rule 4): the reachable
    /// servers of the deployment. One list, shared by every step that waits for them.
    pub fn replica_servers(&self) -> Servers {
        self.replicas.get_or_init(|| self.find_replica_servers().into()).clone()
    }

    fn find_replica_servers(&self) -> Vec<Fqdn> {
        let mut out: Vec<Fqdn> = Vec::new();
        for (p, pool) in &self.observed.topology.pools {
            if self.up(p) {
                out.extend(pool.front_ends.iter().cloned());
            }
        }
        for (e, edge) in &self.observed.topology.edges {
            if self.observed.edges.get(e).is_some_and(|x| x.direct.is_ok()) {
                out.extend(edge.servers.iter().cloned());
            }
        }
        // Only replicas the CMS can reach can catch up; when the CMS is down, assume all can.
        out.retain(|s| self.observed.cms.in_contact.contains(s) || !self.observed.cms.available());
        out
    }
}
