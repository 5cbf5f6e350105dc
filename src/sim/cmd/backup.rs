//! Backup Service cmdlets (domain document 4.2, 4.15): `Invoke-CsBackupServiceSync` and
//! `Set-CsBackupServiceConfiguration -SyncInterval`.

use serde_json::Value;

use super::{Ctx, Effect, Started};
use crate::model::{BackupModule, Span};
use crate::ps::Bound;
use crate::ps::timespan::{TICKS_PER_MS, TICKS_PER_SECOND, format_timespan};
use crate::sim::errors::{self, CmdletError, err};
use crate::sim::{Simulator, replication};

pub(crate) fn sync(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Invoke-CsBackupServiceSync";
    let pool = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    // Discrepancy 3: the IT-pro short names and the reference's fully-qualified names are both accepted.
    let module = match b.str("BackupModule") {
        None => None,
        Some(m) if m.eq_ignore_ascii_case("All") => None,
        Some(m) => match BackupModule::parse(m) {
            Some(x) => Some(x),
            None => {
                return Err(err(
                    CMD,
                    format!(
                        "\"{m}\" is not a Backup Service module. Valid values: UserServices.PresenceFocus, ConfServices.DataConf, CentralMgmt.CMSMaster."
                    ),
                ));
            }
        },
    };
    if sim.topo.partner(&pool).is_none() {
        return Err(err(CMD, errors::no_backup_pool(&pool)));
    }
    if !replication::backup_running(&sim.w, &sim.topo, &pool) {
        return Err(err(CMD, errors::backup_service_not_running(&pool)));
    }
    if !sim.net_ref().reaches(Some(&ctx.server), &pool) {
        return Err(err(CMD, errors::pool_unreachable(&pool, "The Backup Service of the pool cannot be contacted.")));
    }
    Ok(Started::effect(sim.timings.backup_sync, Effect::BackupSync { pool, module }))
}

pub(crate) fn set_config(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Set-CsBackupServiceConfiguration";
    let id = b.str("Identity").unwrap_or("Global");
    if !id.eq_ignore_ascii_case("global") {
        return Err(err(CMD, errors::unknown_identity(id)));
    }
    // PowerShell binds the value as a TimeSpan: an integer is ticks, "10" is ten days (the
    // catalogue's binding); the range is checked on that, inclusive (domain document section 9).
    let Some(ticks) = b.ticks("SyncInterval") else {
        return Ok(Started::output(sim.timings.topology_change, Value::Null));
    };
    if !(5 * TICKS_PER_SECOND..=3 * 3600 * TICKS_PER_SECOND).contains(&ticks) {
        return Err(err(
            CMD,
            format!("SyncInterval {} is out of range. Specify a value from 00:00:05 through 03:00:00.", format_timespan(ticks)),
        ));
    }
    let interval = Span((ticks / TICKS_PER_MS) as u64);
    sim.require_cms(CMD)?;
    if b.what_if() {
        return Ok(Started::output(Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.topology_change, Effect::SyncInterval(interval)))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::BackupSync { pool, module } => {
            let faults = sim.w.faults.clone();
            let net = crate::sim::world::Net { topo: &sim.topo, hosts: &sim.hosts, faults: &faults };
            if !replication::sync_now(&mut sim.w, &sim.topo, &net, pool, *module) {
                return Err(err(
                    "Invoke-CsBackupServiceSync",
                    format!("The Backup Service of pool \"{pool}\" could not reach its backup pool; the synchronization did not complete."),
                ));
            }
        }
        Effect::SyncInterval(d) => {
            sim.w.sync_interval = *d;
            sim.next_tick = sim.now.plus(*d);
            sim.config_changed();
        }
        _ => {}
    }
    Ok(Value::Null)
}
