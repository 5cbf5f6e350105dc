//! `Invoke-CsDatabaseFailover` (domain document 4.10) and the automatic mirror failover a
//! witness performs (JJ205248).

use serde_json::Value;

use super::{Ctx, Effect, Started};
use crate::model::{DbType, Fqdn, Role};
use crate::ps::Bound;
use crate::sim::Simulator;
use crate::sim::errors::{CmdletError, err};

const CMD: &str = "Invoke-CsDatabaseFailover";

pub(crate) fn failover(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let pool = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    let role = match b.str("NewPrincipal") {
        Some("Mirror") => Role::Mirror,
        _ => Role::Primary,
    };
    let name = b.str("DatabaseType").unwrap_or("User").to_string();
    let db = match name.as_str() {
        "User" => DbType::User,
        "CentralMgmt" => DbType::CentralMgmt,
        // Response Group, Call Park and Address Book data: failed over on their own, so the
        // User database stays where it is (rule 18 still wants it failed over first).
        "Application" => DbType::Application,
        other => {
            return Err(err(CMD, format!("There is no {other} database on the Back End of pool \"{pool}\".")));
        }
    };
    let backend = sim.topo.pools[&pool].back_end.clone();
    let Some(mirror) = backend.mirror.clone() else {
        return Err(err(
            CMD,
            format!("Database failover requires a mirror, and no mirror is configured for the Back End of pool \"{pool}\"."),
        ));
    };
    if !sim.w.pools[&pool].principal.contains_key(&db) {
        return Err(err(CMD, format!("There is no {name} database on the Back End of pool \"{pool}\".")));
    }
    let target_server = if role == Role::Mirror { mirror } else { backend.primary.clone() };
    let net = sim.net_ref();
    if !net.sql_up(&target_server) {
        return Err(err(CMD, format!("Cannot fail over to \"{target_server}\": the SQL Server is not available.")));
    }
    // [DISCREPANCY] C4 says -Force is "also used when the current database is not accessible";
    // the documented procedure (JJ204991, domain document 4.10 step 3) fails over a User database
    // whose primary failed without it. Both are accepted.
    // Rule 18: the User database is failed over before the CentralMgmt database.
    if db == DbType::CentralMgmt && sim.w.pools[&pool].principal.get(&DbType::User) != Some(&role) {
        sim.rule(CMD, 18, format!("fail over the User database of {pool} to {role} before its CentralMgmt database"))?;
    }
    if b.what_if() {
        return Ok(Started::output(crate::model::Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.database_failover, Effect::DbFailover { pool, db, role }))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    if let Effect::DbFailover { pool, db, role } = e {
        if let Some(rt) = sim.w.pools.get_mut(pool) {
            rt.principal.insert(*db, *role);
        }
        if *db == DbType::CentralMgmt {
            sim.config_changed();
        }
    }
    Ok(Value::Null)
}

/// A witness will switch this pool's principal: mirrored with a witness, the principal's server
/// down and the other server up.
pub(crate) fn witness_due(sim: &Simulator, pool: &Fqdn) -> bool {
    let p = &sim.topo.pools[pool];
    if !p.back_end.witness || p.back_end.mirror.is_none() {
        return false;
    }
    let net = sim.net_ref();
    sim.w.pools[pool].principal.values().any(|role| {
        let here = p.back_end.server(*role).is_some_and(|s| net.sql_up(s));
        let there = p.back_end.server(role.other()).is_some_and(|s| net.sql_up(s));
        !here && there
    })
}

pub(crate) fn witness_failover(sim: &mut Simulator, pool: &Fqdn) {
    let due = witness_due(sim, pool);
    let p = sim.topo.pools[pool].clone();
    let faults = sim.w.faults.clone();
    let net = crate::sim::world::Net { topo: &sim.topo, hosts: &sim.hosts, faults: &faults };
    if let Some(rt) = sim.w.pools.get_mut(pool) {
        rt.witness_failover_at = None;
        if !due {
            return;
        }
        for role in rt.principal.values_mut() {
            let here = p.back_end.server(*role).is_some_and(|s| net.sql_up(s));
            if !here {
                *role = role.other();
            }
        }
    }
}
