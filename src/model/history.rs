//! What the operator remembers between observations: since when each pool, Edge pool and Backup
//! Service direction has been in its current condition, and which actions it took on its own.
//! Time-based policies (grace periods before automatic failover, stability periods before
//! automatic failback, the live RPO) are decided from this, so it travels with the observation
//! into the pure planner and is persisted in status by the controller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{BackupModule, Fqdn, Health, Observed, PoolTraits, RgsExportObs, Stamp};

/// One condition with the time it was first seen, continuously, until now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Since<T> {
    pub value: T,
    pub since: Stamp,
}

/// An action lyncdr took without a spec change (automatic failover of a pool, the CMS or
/// federation), remembered so that the way back waits for a human unless policy allows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticAction {
    pub at: Stamp,
    /// Generation of the resource that allowed it, so a later spec change counts as acknowledgement.
    pub generation: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Health of each Front End pool, and since when.
    #[serde(default)]
    pub pool_health: BTreeMap<Fqdn, Since<Health>>,
    /// Whether each Edge pool is up, and since when.
    #[serde(default)]
    pub edge_up: BTreeMap<Fqdn, Since<bool>>,
    /// Since when each pool's user-data export has not been observed in sync with its partner
    /// (the live RPO: changes since then may not be at the partner). Absent: in sync.
    #[serde(default)]
    pub unsynced_since: BTreeMap<Fqdn, Stamp>,
    /// Automatic pool failovers, by home pool.
    #[serde(default)]
    pub automatic_failovers: BTreeMap<Fqdn, AutomaticAction>,
    /// Conference content restores completed, by resource name, with the generation done.
    #[serde(default)]
    pub completed_restores: BTreeMap<String, i64>,
    /// Host facts of each pool (product, operating system, virtualization), kept from the last
    /// time the pool answered: they cannot be read while it is down.
    #[serde(default)]
    pub pool_traits: BTreeMap<Fqdn, PoolTraits>,
    /// Edge servers whose local setup must be re-run after a federation route change (Lync
    /// does not report it; lyncdr remembers what it changed), with when it became pending.
    #[serde(default)]
    pub pending_edge_setup: BTreeMap<Fqdn, Stamp>,
    /// Pools whose partner changed and which still hold the former partner's data (rule 31).
    #[serde(default)]
    pub pending_backup_cleanup: std::collections::BTreeSet<Fqdn>,
    /// Response Group exports lyncdr took, by file name.
    #[serde(default)]
    pub rgs_exports: BTreeMap<String, RgsExportObs>,
    /// The Edge pool lyncdr moved SIP federation away from while that pool was down (Lync does
    /// not report it): moving it back is the Edge failback of rule 23.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_moved_from: Option<Fqdn>,
    /// The same for XMPP federation: moving it back follows JJ721897 (no stop, rule 21 order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp_moved_from: Option<Fqdn>,
    /// Since when the SQL server holding each pool's User database principal has been down (a
    /// witness fails it over on its own within about 5 minutes, JJ205248).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principal_down_since: BTreeMap<Fqdn, Stamp>,
    /// The pool a forced CMS failover (disaster recovery) moved the CMS away from, until the CMS
    /// is moved back to it: the way back waits until that pool has been up for a stability
    /// period, so a flapping pool does not pull the CMS back and forth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cms_forced_from: Option<Fqdn>,
}

/// What one observation teaches the memory: the health of each pool and Edge pool, which
/// pools' exports are in sync, whose Back End principal is down, and host facts read from pools that answered. Detached from the
/// observation so a journal can apply it to the memory as stored when it writes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lesson {
    pub at: Stamp,
    pub pool_health: Vec<(Fqdn, Health)>,
    /// Pools with a partner, and whether their user-data export is in sync.
    pub synced: Vec<(Fqdn, bool)>,
    pub edge_up: Vec<(Fqdn, bool)>,
    pub pool_traits: BTreeMap<Fqdn, PoolTraits>,
    /// Pools with a mirrored Back End, and whether the server holding their User database
    /// principal is down (a witness then fails it over on its own).
    pub principal_down: Vec<(Fqdn, bool)>,
}

impl Lesson {
    pub fn of(obs: &Observed) -> Lesson {
        Lesson {
            at: obs.at,
            pool_health: obs.pools.iter().map(|(f, p)| (f.clone(), p.health())).collect(),
            synced: obs
                .pools
                .iter()
                .filter(|(f, _)| obs.topology.partner(f).is_some())
                .map(|(f, p)| (f.clone(), p.module(BackupModule::PresenceFocus).is_some_and(|m| m.export.is_synced())))
                .collect(),
            edge_up: obs.edges.iter().map(|(f, e)| (f.clone(), e.is_up())).collect(),
            pool_traits: obs.history.pool_traits.clone(),
            principal_down: obs
                .pools
                .iter()
                .map(|(f, p)| {
                    let be = &p.back_end;
                    (f.clone(), be.principal.get(&super::DbType::User).is_some_and(|r| !be.server_up(*r)))
                })
                .collect(),
        }
    }

    /// Folds the lesson into a memory. Only flips are recorded, so an unchanged deployment gives
    /// an unchanged memory.
    pub fn apply(&self, h: &mut History) {
        for (fqdn, health) in &self.pool_health {
            if h.pool_health.get(fqdn).is_none_or(|s| s.value != *health) {
                h.pool_health.insert(fqdn.clone(), Since { value: *health, since: self.at });
            }
        }
        for (fqdn, synced) in &self.synced {
            if *synced {
                h.unsynced_since.remove(fqdn);
            } else {
                h.unsynced_since.entry(fqdn.clone()).or_insert(self.at);
            }
        }
        for (fqdn, up) in &self.edge_up {
            if h.edge_up.get(fqdn).is_none_or(|s| s.value != *up) {
                h.edge_up.insert(fqdn.clone(), Since { value: *up, since: self.at });
            }
        }
        for (fqdn, down) in &self.principal_down {
            if *down {
                h.principal_down_since.entry(fqdn.clone()).or_insert(self.at);
            } else {
                h.principal_down_since.remove(fqdn);
            }
        }
        for (fqdn, t) in &self.pool_traits {
            if h.pool_traits.get(fqdn) != Some(t) {
                h.pool_traits.insert(fqdn.clone(), t.clone());
            }
        }
    }
}

impl History {
    /// Folds a new observation into the memory. Pure: the same inputs give the same memory.
    pub fn remember(&self, obs: &Observed) -> History {
        let mut next = self.clone();
        Lesson::of(obs).apply(&mut next);
        next
    }

    /// How long a pool has had its current health, if known.
    pub fn pool_health_for(&self, pool: &Fqdn, now: Stamp) -> Option<(Health, super::Span)> {
        self.pool_health.get(pool).map(|s| (s.value, now.since(s.since)))
    }
}
