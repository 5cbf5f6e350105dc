//! The Backup Service model: users' changes accumulate where their data is written (the home
//! pool, or the backup pool while failed over), each sync interval moves them to the partner,
//! and the module states of `Get-CsBackupServiceStatus` follow from what is still pending (T1
//! semantics). Also the CMS master-to-standby replication, and the loss accounting of
//! `-DisasterMode` (changes not yet imported by the partner are lost).

use super::world::{Net, Replica, World};
use crate::model::{BackupModule, DbType, ExportStatus, FailoverState, Fqdn, ImportStatus, ModuleStatus, Stamp, Topology};
use crate::scenario::FaultTarget;
use crate::sim::Timings;

const USER_MODULES: [BackupModule; 2] = [BackupModule::PresenceFocus, BackupModule::DataConf];

/// Where a pool's users' changes are written right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Home,
    Backup,
    Nowhere,
}

/// A pool's user database is served by a running SQL server.
pub fn back_end_available(w: &World, topo: &Topology, net: &Net, pool: &Fqdn) -> bool {
    principal_up(w, topo, net, pool, DbType::User)
}

/// The principal of a database of `pool` runs.
pub fn principal_up(w: &World, topo: &Topology, net: &Net, pool: &Fqdn, db: DbType) -> bool {
    let Some(p) = topo.pools.get(pool) else { return false };
    let rt = w.pools.get(pool);
    let role = rt.and_then(|r| r.principal.get(&db).or(r.principal.get(&DbType::User)).copied()).unwrap_or_default();
    p.back_end.server(role).is_some_and(|s| net.sql_up(s))
}

/// The Application databases of `pool` (Response Groups, Call Park) are served by a running
/// SQL server.
pub fn application_up(w: &World, topo: &Topology, net: &Net, pool: &Fqdn) -> bool {
    principal_up(w, topo, net, pool, DbType::Application)
}

/// A pool can serve users: a Front End runs and its user database is available.
pub fn pool_serving_ok(w: &World, topo: &Topology, net: &Net, pool: &Fqdn) -> bool {
    net.host_up(pool) && back_end_available(w, topo, net, pool)
}

pub fn writer(w: &World, topo: &Topology, net: &Net, pool: &Fqdn) -> Writer {
    let Some(rt) = w.pools.get(pool) else { return Writer::Nowhere };
    match rt.state {
        FailoverState::Normal if !rt.read_only && pool_serving_ok(w, topo, net, pool) => Writer::Home,
        FailoverState::FailedOver => match topo.partner(pool) {
            Some(q) if pool_serving_ok(w, topo, net, q) => Writer::Backup,
            _ => Writer::Nowhere,
        },
        _ => Writer::Nowhere,
    }
}

/// Users currently homed on a pool (generated + named, less rehomed away, plus rehomed in).
pub fn homed_users(w: &World, topo: &Topology, pool: &Fqdn) -> u64 {
    let Some(p) = topo.pools.get(pool) else { return 0 };
    let base = p.users as u64 + p.named_users.len() as u64;
    let mut out = 0u64;
    let mut inn = 0u64;
    for (sip, home) in &w.rehomed {
        let orig = original_home(topo, sip);
        if orig.as_ref() == Some(pool) && home != pool {
            out += 1;
        }
        if home == pool && orig.as_ref() != Some(pool) {
            inn += 1;
        }
    }
    (base + inn).saturating_sub(out)
}

/// The pool a user was homed on in the scenario.
pub fn original_home(topo: &Topology, sip: &str) -> Option<Fqdn> {
    if let Some((pool, idx)) = crate::model::sip::parse_generated_user(sip) {
        let f = Fqdn::parse(&pool).ok()?;
        let p = topo.pools.get(&f)?;
        return (idx >= 1 && idx <= p.users).then_some(f);
    }
    topo.pools.values().find(|p| p.named_users.iter().any(|u| u == sip)).map(|p| p.fqdn.clone())
}

/// The Backup Service (LYNCBACKUP) runs on some Front End of a paired pool.
pub fn backup_running(w: &World, topo: &Topology, pool: &Fqdn) -> bool {
    topo.partner(pool).is_some()
        && topo.pools.get(pool).is_some_and(|p| p.front_ends.iter().any(|fe| w.fe_backup.get(fe).is_some_and(|b| b.installed && b.running)))
}

/// The Backup Service link from `a` to its partner `b` works.
pub fn backup_link_ok(w: &World, topo: &Topology, net: &Net, a: &Fqdn, b: &Fqdn) -> bool {
    let running = |p: &Fqdn| backup_running(w, topo, p);
    let healthy = |p: &Fqdn| !net.faults.contains(&FaultTarget::Backup(p.clone()));
    let (Some(sa), Some(sb)) = (topo.site_of(a), topo.site_of(b)) else { return false };
    topo.partner(a) == Some(b)
        && running(a)
        && running(b)
        && healthy(a)
        && healthy(b)
        && net.host_up(a)
        && net.host_up(b)
        && net.linked(sa, sb)
}

/// Accumulates changes made between `from` and `to`.
pub fn integrate(w: &mut World, topo: &Topology, net: &Net, t: &Timings, from: Stamp, to: Stamp) {
    if to <= from {
        return;
    }
    let hours = (to.0 - from.0) as f64 / 3_600_000.0;
    let pools: Vec<Fqdn> = topo.pools.keys().cloned().collect();
    for pool in &pools {
        let wr = writer(w, topo, net, pool);
        if wr == Writer::Nowhere {
            continue;
        }
        let users = homed_users(w, topo, pool) as f64;
        for (m, rate) in [(BackupModule::PresenceFocus, t.user_changes_per_hour), (BackupModule::DataConf, t.conference_changes_per_hour)] {
            let d = users * rate * hours;
            if let Some(r) = w.data.get_mut(&(pool.clone(), m)) {
                r.total += d;
                match wr {
                    Writer::Home => r.home_ahead += d,
                    Writer::Backup => r.backup_ahead += d,
                    Writer::Nowhere => {}
                }
            }
        }
    }
    if let Some(m) = w.cms.master.clone()
        && net.host_up(&m)
        && principal_up(w, topo, net, &m, DbType::CentralMgmt)
    {
        w.cms.ver_master += t.cms_changes_per_hour * hours;
    }
}

/// A planned failover has made the pool read-only: it takes no changes, but the Backup Service
/// still exports those it took before, and only then reaches final state (JJ205252, rule 29).
fn draining(w: &World, pool: &Fqdn) -> bool {
    w.pools.get(pool).is_some_and(|r| r.read_only)
}

/// Changes held by `exporter` that its partner lacks, for one module.
pub fn pending(w: &World, topo: &Topology, net: &Net, exporter: &Fqdn, m: BackupModule) -> f64 {
    if m == BackupModule::CmsMaster {
        return if w.cms.master.as_ref() == Some(exporter) { (w.cms.ver_master - w.cms.ver_standby).max(0.0) } else { 0.0 };
    }
    let Some(partner) = topo.partner(exporter) else { return 0.0 };
    let own = replica(w, exporter, m);
    let theirs = replica(w, partner, m);
    let own_pending = if writer(w, topo, net, exporter) == Writer::Home || draining(w, exporter) { own.home_ahead } else { 0.0 };
    own_pending + theirs.backup_ahead + theirs.restore
}

/// One Backup Service cycle: each exporter sends its partner what it wrote, up to the capacity.
pub fn sync_tick(w: &mut World, topo: &Topology, net: &Net, capacity: u64) {
    let pools: Vec<Fqdn> = topo.pools.keys().cloned().collect();
    for p in &pools {
        let Some(q) = topo.partner(p).cloned() else { continue };
        let wr = writer(w, topo, net, p);
        // Home writer: p exports to q. Failed over: q (the writer) exports p's data back to p.
        let (from, to) = match wr {
            Writer::Home => (p, &q),
            Writer::Backup => (&q, p),
            // A planned failover made p read-only: p still exports what it wrote before (rule 29).
            Writer::Nowhere if draining(w, p) => (p, &q),
            Writer::Nowhere => continue,
        };
        if !backup_link_ok(w, topo, net, from, to) {
            continue;
        }
        for m in USER_MODULES {
            if let Some(r) = w.data.get_mut(&(p.clone(), m)) {
                let ahead = if wr == Writer::Backup { &mut r.backup_ahead } else { &mut r.home_ahead };
                *ahead = (*ahead - capacity as f64).max(0.0);
            }
        }
    }
    if let (Some(m), Some(s)) = (w.cms.master.clone(), w.cms.standby.clone())
        && backup_link_ok(w, topo, net, &m, &s)
    {
        w.cms.ver_standby = w.cms.ver_master;
    }
}

/// `Invoke-CsBackupServiceSync -PoolFqdn exporter [-BackupModule m]`: sends everything the
/// exporter holds that its partner lacks, including backup copies it keeps for the partner (the
/// conference-content restore of JJ688030). False if the Backup Service cannot reach the partner.
pub fn sync_now(w: &mut World, topo: &Topology, net: &Net, exporter: &Fqdn, module: Option<BackupModule>) -> bool {
    let Some(partner) = topo.partner(exporter).cloned() else { return false };
    if !backup_link_ok(w, topo, net, exporter, &partner) {
        return false;
    }
    let exporter_writes = writer(w, topo, net, exporter) == Writer::Home || draining(w, exporter);
    let partner_failed_over = writer(w, topo, net, &partner) == Writer::Backup;
    for m in USER_MODULES {
        if module.is_some_and(|x| x != m) {
            continue;
        }
        if exporter_writes && let Some(r) = w.data.get_mut(&(exporter.clone(), m)) {
            r.home_ahead = 0.0;
        }
        if let Some(r) = w.data.get_mut(&(partner.clone(), m)) {
            if partner_failed_over {
                r.backup_ahead = 0.0;
            }
            r.restore = 0.0;
        }
    }
    if module.is_none_or(|m| m == BackupModule::CmsMaster) && w.cms.master.as_ref() == Some(exporter) {
        w.cms.ver_standby = w.cms.ver_master;
    }
    true
}

/// What `Get-CsBackupServiceStatus -PoolFqdn exporter` reports for one module.
pub fn module_status(w: &World, topo: &Topology, net: &Net, exporter: &Fqdn, m: BackupModule, capacity: u64) -> ModuleStatus {
    let import =
        if net.faults.contains(&FaultTarget::Backup(exporter.clone())) { ImportStatus::ErrorState } else { ImportStatus::NormalState };
    let Some(partner) = topo.partner(exporter) else {
        return ModuleStatus { export: ExportStatus::NotInitialized, import };
    };
    let running = backup_running(w, topo, exporter);
    if !running || (m == BackupModule::CmsMaster && w.cms.master.as_ref() != Some(exporter)) {
        return ModuleStatus { export: ExportStatus::NotInitialized, import };
    }
    if !backup_link_ok(w, topo, net, exporter, partner) {
        return ModuleStatus { export: ExportStatus::ErrorState, import };
    }
    let p = pending(w, topo, net, exporter, m);
    let producing = match m {
        BackupModule::CmsMaster => true,
        _ => writer(w, topo, net, exporter) == Writer::Home || writer(w, topo, net, partner) == Writer::Backup,
    };
    let restore_backlog = m != BackupModule::CmsMaster && replica(w, partner, m).restore >= 0.5;
    let export = if p > capacity as f64 || restore_backlog {
        ExportStatus::NonSteadyState
    } else if !producing && p < 0.5 {
        ExportStatus::FinalState
    } else {
        ExportStatus::SteadyState
    };
    ModuleStatus { export, import }
}

/// Loss of a `-DisasterMode` failover of `pool`: changes its partner never imported.
pub fn lose_unreplicated_at_home(w: &mut World, pool: &Fqdn) -> f64 {
    let mut lost = 0.0;
    for m in USER_MODULES {
        if let Some(r) = w.data.get_mut(&(pool.clone(), m)) {
            lost += r.home_ahead;
            r.total -= r.home_ahead;
            r.home_ahead = 0.0;
        }
    }
    lost
}

/// Loss of a `-DisasterMode` failback: changes made on the backup pool not yet copied home.
pub fn lose_unreplicated_at_backup(w: &mut World, pool: &Fqdn) -> f64 {
    let mut lost = 0.0;
    for m in USER_MODULES {
        if let Some(r) = w.data.get_mut(&(pool.clone(), m)) {
            lost += r.backup_ahead + r.restore;
            r.total -= r.backup_ahead + r.restore;
            r.backup_ahead = 0.0;
            r.restore = 0.0;
        }
    }
    lost
}

/// A planned failover's final synchronisation (the home pool is read-only, rule 29).
pub fn final_sync_to_backup(w: &mut World, pool: &Fqdn) {
    for m in USER_MODULES {
        if let Some(r) = w.data.get_mut(&(pool.clone(), m)) {
            r.home_ahead = 0.0;
        }
    }
}

/// A planned failback brings user data home; conference content made on the backup pool
/// follows only with the explicit sync of rule 24.
pub fn failback_sync(w: &mut World, pool: &Fqdn) {
    if let Some(r) = w.data.get_mut(&(pool.clone(), BackupModule::PresenceFocus)) {
        r.backup_ahead = 0.0;
    }
    if let Some(r) = w.data.get_mut(&(pool.clone(), BackupModule::DataConf)) {
        r.restore += r.backup_ahead;
        r.backup_ahead = 0.0;
    }
}

/// A pool's conference content is lost from its file store; the partner's backup still has it.
pub fn lose_content(w: &mut World, pool: &Fqdn) {
    if let Some(r) = w.data.get_mut(&(pool.clone(), BackupModule::DataConf)) {
        r.restore = r.total - r.home_ahead;
    }
}

pub fn replica(w: &World, pool: &Fqdn, m: BackupModule) -> Replica {
    w.data.get(&(pool.clone(), m)).copied().unwrap_or_default()
}
