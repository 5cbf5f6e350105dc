//! Pairing Front End pools (domain document 2.1-2.2, 4.1, rules 12-14 and 31): the topology
//! change that sets each pool's backup pool (a topology document, `Publish-CsTopology`,
//! `Enable-CsTopology`), and `Remove-CsUserStoreBackupData` after a pool's partner changed.
//! Local setup and LYNCBACKUP, the rest of the procedure, are in `edge.rs` (services, setup).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Ctx, Effect, Started};
use crate::model::{BackupModule, FailoverState, Fqdn, Span};
use crate::ps::Bound;
use crate::sim::Simulator;
use crate::sim::errors::{CmdletError, err};

pub(crate) fn set_backup_pool(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Set-LyncdrBackupPool";
    let a = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    let bb = sim.pool_fqdn(CMD, b, "BackupPoolFqdn")?;
    if a == bb {
        return Err(err(CMD, "A pool cannot be its own backup pool."));
    }
    let file = b.str("FileName").unwrap_or_default().to_string();
    // Start from the topology as published, then pair a and b; their former partners are left
    // without a backup pool (pairing is 1:1 and reciprocal, JJ205033).
    let mut backup: BTreeMap<Fqdn, Option<Fqdn>> = sim.topo.pools.keys().map(|p| (p.clone(), sim.topo.partner(p).cloned())).collect();
    for x in [&a, &bb] {
        if let Some(old) = sim.topo.partner(x).cloned() {
            backup.insert(old, None);
        }
    }
    backup.insert(a.clone(), Some(bb.clone()));
    backup.insert(bb.clone(), Some(a.clone()));
    if b.what_if() {
        return Ok(Started::output(Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.query.scale(4, 1), Effect::TopologyDraft { file, backup }))
}

pub(crate) fn publish(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Publish-CsTopology";
    let file = b.str("FileName").unwrap_or_default().to_string();
    let Some(draft) = sim.w.topology_drafts.get(&file).cloned() else {
        return Err(err(CMD, format!("Cannot find path '{file}' because it does not exist.")));
    };
    sim.require_cms(CMD)?;
    // Pools whose backup pool changes.
    let changed: Vec<Fqdn> = draft.iter().filter(|(p, b)| sim.topo.partner(p) != b.as_ref()).map(|(p, _)| p.clone()).collect();
    for p in &changed {
        let serving_other = sim.topo.partner(p).is_some_and(|q| sim.w.pools[q].state != FailoverState::Normal);
        if sim.w.pools[p].state != FailoverState::Normal || serving_other {
            sim.rule(CMD, 14, format!("{p} (or its partner) has users failed over; changing its pairing now would strand them"))?;
        }
        // Breaking the pairing the CMS master/standby relies on leaves the CMS without its standby.
        let cms_pair = [sim.w.cms.master.as_ref(), sim.w.cms.standby.as_ref()].contains(&Some(p));
        if cms_pair && sim.topo.partner(p).is_some() {
            sim.rule(CMD, 3, format!("the CMS master and standby live in {p} and its partner; move the CMS before changing this pairing"))?;
        }
    }
    if b.what_if() {
        return Ok(Started::output(Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.topology_publish, Effect::Publish { file }))
}

pub(crate) fn enable(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    sim.require_cms("Enable-CsTopology")?;
    if b.what_if() {
        return Ok(Started::output(Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.topology_publish, Effect::Enable))
}

pub(crate) fn remove_backup_data(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Remove-CsUserStoreBackupData";
    let pool = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    // Rule 31: only once the new pairing exists. Before that, the backup data in the pool is
    // its current partner's, and removing it throws away that partner's only off-site copy.
    if !sim.w.stale_backup_data.contains(&pool) {
        sim.rule(
            CMD,
            31,
            format!(
                "{pool} holds only its current partner's backup data; remove the former partner's data after the new pairing is published"
            ),
        )?;
    }
    if b.what_if() {
        return Ok(Started::output(Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.backup_sync, Effect::RemoveBackupData { pool }))
}

pub(crate) fn get(sim: &mut Simulator, _ctx: &Ctx, _b: &Bound) -> Result<Started, CmdletError> {
    let pools: Vec<Value> = sim
        .topo
        .pools
        .values()
        .map(|p| json!({ "Fqdn": p.fqdn.to_string(), "Site": p.site, "BackupPool": sim.topo.partner(&p.fqdn).map(ToString::to_string) }))
        .collect();
    Ok(Started::output(sim.timings.query, json!({ "Pools": pools })))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::TopologyDraft { file, backup } => {
            sim.w.topology_drafts.insert(file.clone(), backup.clone());
        }
        Effect::Publish { file } => {
            let Some(draft) = sim.w.topology_drafts.get(file).cloned() else { return Ok(Value::Null) };
            let mut changed = Vec::new();
            for (p, b) in draft {
                let old = sim.topo.partner(&p).cloned();
                if old == b {
                    continue;
                }
                changed.push(p.clone());
                if old.is_some() {
                    // The pool keeps its former partner's data until it is removed (rule 31).
                    sim.w.stale_backup_data.insert(p.clone());
                }
                // The new partner holds none of this pool's data: all of it is pending export,
                // and nothing the old partner held counts as a copy any more.
                for m in [BackupModule::PresenceFocus, BackupModule::DataConf] {
                    if let Some(r) = sim.w.data.get_mut(&(p.clone(), m)) {
                        r.home_ahead = r.total;
                        r.backup_ahead = 0.0;
                        r.restore = 0.0;
                    }
                }
                match b {
                    Some(q) => {
                        sim.topo.backup.insert(p, q);
                    }
                    None => {
                        sim.topo.backup.remove(&p);
                    }
                }
            }
            sim.config_changed();
            for p in changed {
                sim.w.pairing_epoch.insert(p, sim.w.cms.epoch);
            }
        }
        Effect::Enable => {
            sim.w.enabled_epoch = sim.w.cms.epoch;
        }
        Effect::RemoveBackupData { pool } => {
            if !sim.w.stale_backup_data.remove(pool)
                && let Some(q) = sim.topo.partner(pool).cloned()
            {
                // (Lenient mode only.) The current partner's copy is gone: all of its data is
                // pending export again.
                for m in [BackupModule::PresenceFocus, BackupModule::DataConf] {
                    if let Some(r) = sim.w.data.get_mut(&(q.clone(), m)) {
                        r.home_ahead = r.total;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(Value::Null)
}
