//! Ground truth for reports, `demo --format json` and `GET /v1/state` of `sim serve`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Simulator, replication};
use crate::model::{FailoverState, Fqdn, Stamp};

impl Simulator {
    /// Ground truth, for reports and `sim serve`.
    pub fn snapshot(&self) -> Snapshot {
        let net = self.net();
        let pools = self
            .topo
            .pools
            .keys()
            .map(|p| {
                let rt = &self.w.pools[p];
                let served_by = match rt.state {
                    FailoverState::FailedOver | FailoverState::FailingOver => self.topo.partner(p).cloned().unwrap_or_else(|| p.clone()),
                    _ => p.clone(),
                };
                (
                    p.clone(),
                    PoolSnapshot {
                        up: net.host_up(p),
                        served_by,
                        state: rt.state,
                        users: replication::homed_users(&self.w, &self.topo, p),
                        backup_pool: self.topo.partner(p).cloned(),
                        backup_service_running: replication::backup_running(&self.w, &self.topo, p),
                    },
                )
            })
            .collect();
        let edges = self
            .topo
            .edges
            .keys()
            .map(|e| (e.clone(), EdgeSnapshot { up: net.host_up(e), next_hop: self.w.edges[e].next_hop.clone() }))
            .collect();
        Snapshot {
            now: self.now,
            pools,
            cms: CmsSnapshot { active_pool: self.w.cms.master.clone(), available: self.cms_available() },
            edges,
            federation: FederationSnapshot { sip_edge_pool: self.w.sip_federation.clone(), xmpp_edge_pool: self.w.xmpp_federation.clone() },
            all_users_served: self.all_users_served(),
            faults: self.w.faults.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The `final` object of `demo --format json`, and `GET /v1/state` of `sim serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub now: Stamp,
    pub pools: BTreeMap<Fqdn, PoolSnapshot>,
    pub cms: CmsSnapshot,
    pub edges: BTreeMap<Fqdn, EdgeSnapshot>,
    pub federation: FederationSnapshot,
    pub all_users_served: bool,
    pub faults: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSnapshot {
    pub up: bool,
    pub served_by: Fqdn,
    pub state: FailoverState,
    pub users: u64,
    pub backup_pool: Option<Fqdn>,
    /// LYNCBACKUP runs on some Front End of the pool (and the pool has a backup pool).
    pub backup_service_running: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmsSnapshot {
    pub active_pool: Option<Fqdn>,
    pub available: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeSnapshot {
    pub up: bool,
    pub next_hop: Option<Fqdn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederationSnapshot {
    pub sip_edge_pool: Option<Fqdn>,
    pub xmpp_edge_pool: Option<Fqdn>,
}
