//! `Invoke-CsManagementServerFailover` (domain document 4.3-4.4) and the configuration exports
//! that must precede a CMS move (`Export-CsConfiguration`, `Export-CsLisConfiguration`, rule 8).

use serde_json::{Value, json};

use super::{Ctx, Effect, Started};
use crate::model::{DbType, Role};
use crate::ps::Bound;
use crate::sim::errors::{CmdletError, err, rule_err};
use crate::sim::world::ConfigExport;
use crate::sim::{Simulator, replication};

const CMD: &str = "Invoke-CsManagementServerFailover";

pub(crate) fn failover(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let master = sim.w.cms.master.clone();
    if b.what_if() {
        // The -WhatIf run is how admins find the pool hosting the CMS (JJ204678, step 1).
        let pool = master.as_ref().map(ToString::to_string);
        return Ok(Started::output(
            sim.timings.query,
            json!({
                "WhatIf": format!("What if: Performing operation \"Invoke-CsManagementServerFailover\" on Target \"{}\".", pool.clone().unwrap_or_default()),
                "CentralManagementStorePool": pool,
                "BackupPool": sim.w.cms.standby.as_ref().map(ToString::to_string),
            }),
        ));
    }
    let Some(from) = master else {
        return Err(err(CMD, "No Central Management store is defined in the topology."));
    };
    let Some(to) = sim.w.cms.standby.clone() else {
        return Err(err(
            CMD,
            format!(
                "The pool \"{from}\" hosting the Central Management store has no backup pool, so there is no standby Central Management store to fail over to."
            ),
        ));
    };
    // Rule 10: run on a server of the pool that will receive the CMS.
    let exec_pool = sim.pool_of(&ctx.server).map(|p| p.fqdn.clone());
    if exec_pool.as_ref() != Some(&to) {
        return Err(rule_err(
            CMD,
            10,
            format!(
                "This cmdlet must be run on a Front End server of the pool that will host the Central Management store (\"{to}\"); it was run on \"{}\".",
                ctx.server
            ),
        ));
    }
    if sim.cms_moving() {
        return Err(err(CMD, "A Central Management Server failover is already in progress."));
    }
    let net = sim.net_ref();
    let master_ok = sim.cms_available() && net.reaches(Some(&ctx.server), &from);
    let dr = b.set == "DisasterRecovery";
    let force = b.switch("Force");
    if dr {
        // Rule 5: the backup SQL parameters must name where the standby's principal is.
        let backend = &sim.topo.pools[&to].back_end;
        let named = b.fqdn("BackupSqlServerFqdn");
        if named.as_ref() != Some(&backend.primary) {
            return Err(err(
                CMD,
                format!(
                    "\"{}\" is not the backup SQL server defined in the topology for the Central Management store; use -BackupSqlServerFqdn {}.",
                    named.map(|f| f.to_string()).unwrap_or_default(),
                    backend.primary
                ),
            ));
        }
        let role = sim.w.pools[&to].principal.get(&DbType::CentralMgmt).copied().unwrap_or_default();
        if role == Role::Mirror {
            let mirror = backend.mirror.clone();
            if b.fqdn("BackupMirrorSqlServerFqdn") != mirror {
                return Err(rule_err(
                    CMD,
                    5,
                    format!(
                        "Cannot open the Central Management database on \"{}\": it is the mirror copy. The principal is on \"{}\"; add -BackupMirrorSqlServerFqdn {} -BackupMirrorSqlInstanceName <instance>.",
                        backend.primary,
                        mirror.as_ref().map(ToString::to_string).unwrap_or_default(),
                        mirror.as_ref().map(ToString::to_string).unwrap_or_default()
                    ),
                ));
            }
        }
        if !replication::principal_up(&sim.w, &sim.topo, &net, &to, DbType::CentralMgmt) {
            return Err(err(
                CMD,
                format!("Cannot connect to the standby Central Management database of pool \"{to}\": its SQL Server is not available."),
            ));
        }
        if !master_ok && !force {
            return Err(err(
                CMD,
                "The active Central Management store cannot be reached. In disaster recovery -Force is required; it ignores replication, so changes not yet replicated are lost.",
            ));
        }
        if master_ok && force {
            sim.rule(CMD, 9, format!("the active Central Management store on {from} is reachable, so -Force (which ignores replication and can lose changes) is for disaster recovery only; fail over without it"))?;
        }
        // [DISCREPANCY] With the primary as principal, the IT-pro procedure (JJ204678) names only
        // the backup SQL server; the reference (C3) adds the mirror parameters when the database
        // is mirrored. Both are accepted (lyncdr sends the reference's form).
    } else if !master_ok {
        return Err(err(
            CMD,
            format!(
                "The active Central Management store on \"{from}\" cannot be reached. Use the disaster recovery parameters (-BackupSqlServerFqdn ... -Force)."
            ),
        ));
    } else if !replication::principal_up(&sim.w, &sim.topo, &net, &to, DbType::CentralMgmt) {
        return Err(err(
            CMD,
            format!("Cannot connect to the standby Central Management database of pool \"{to}\": its SQL Server is not available."),
        ));
    }
    // Rules 1 and 3: the CMS moves into a pool that serves its own users. A pool whose users are
    // failed over to the CMS pool is failed back first (JJ721939), then the CMS moves, then the
    // CMS pool fails over. (In disaster recovery there is no such choice: the CMS comes first.)
    if master_ok && sim.w.pools[&to].state != crate::model::FailoverState::Normal {
        sim.rule(
            CMD,
            1,
            format!(
                "the users of {to} are failed over to {from}: fail them back (Invoke-CsPoolFailBack -PoolFqdn {to}) before moving the CMS into {to}, then fail {from} over (rules 1 and 3)"
            ),
        )?;
    }
    // Rule 8: a configuration backup must exist since the last CMS move (and a LIS one for planned moves).
    let moved = sim.w.cms.moved_epoch;
    let has_config = sim.w.config_exports.iter().any(|e| !e.lis && e.epoch >= moved);
    let has_lis = sim.w.config_exports.iter().any(|e| e.lis && e.epoch >= moved);
    if !has_config || (master_ok && !has_lis) {
        sim.rule(
            CMD,
            8,
            "back up the configuration before moving the CMS: Export-CsConfiguration (and Export-CsLisConfiguration while the CMS is reachable)",
        )?;
    }
    let force_loss = dr && force;
    Ok(Started::effect(sim.timings.cms_failover, Effect::CmsFailover { from, to, force: force_loss }))
}

pub(crate) fn export(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let cmd = b.spec.name;
    let lis = cmd == "Export-CsLisConfiguration";
    let local = b.switch("LocalStore");
    if !local {
        sim.require_cms(cmd)?;
    } else if !sim.w.cms.replica_epoch.contains_key(&ctx.server) {
        return Err(err(cmd, format!("There is no local configuration store replica on \"{}\".", ctx.server)));
    }
    if b.switch("AsBytes") {
        return Ok(Started::output(sim.timings.config_export, json!({ "Length": 1_048_576 })));
    }
    let file = b.str("FileName").unwrap_or_default().to_string();
    Ok(Started::effect(sim.timings.config_export, Effect::ConfigExport { file, lis }))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::CmsFailover { from, to, force } => {
            if *force {
                sim.stats.lost_cms_changes += (sim.w.cms.ver_master - sim.w.cms.ver_standby).max(0.0);
            }
            let v = if *force { sim.w.cms.ver_standby } else { sim.w.cms.ver_master };
            sim.w.cms.master = Some(to.clone());
            sim.w.cms.standby = Some(from.clone());
            sim.w.cms.ver_master = v;
            sim.w.cms.ver_standby = v;
            sim.config_changed();
            sim.w.cms.moved_epoch = sim.w.cms.epoch;
            Ok(Value::Null)
        }
        Effect::ConfigExport { file, lis } => {
            let epoch = sim.w.cms.epoch;
            sim.w.config_exports.push(ConfigExport { file: file.clone(), lis: *lis, epoch, taken_at: sim.now });
            Ok(Value::Null)
        }
        _ => Ok(Value::Null),
    }
}

pub(crate) fn revert(_sim: &mut Simulator) {}
