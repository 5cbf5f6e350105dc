//! Back End mirror failover (domain document 4.10): when a pool's principal should move (the
//! spec, or the principal's server is down), fail over the User database, then the CentralMgmt
//! database if the pool holds one (rule 18). With synchronous mirroring this loses nothing.

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::Expect;
use crate::model::{DbType, Health};
use crate::ps::Invocation;

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    // Mirrors with a witness fail over on their own (S20): lyncdr does not race the witness.
    for (pool, left) in &c.targets.witness_pending {
        b.notice(format!(
            "{dep}: the principal SQL server of {pool} is down; its witness fails the databases over to the other server on its own (about 5 minutes, JJ205248); lyncdr fails them over itself if that has not happened in {left}"
        ));
    }
    for (pool, role) in &c.targets.principal {
        let Some(obs) = c.observed.pool(pool) else { continue };
        let be = &obs.back_end;
        if !be.server_up(*role) {
            let server = c.observed.topology.pools[pool].back_end.server(*role).map(|s| s.to_string()).unwrap_or_default();
            b.block(&dep, format!("spec.backEnds: the {role} SQL server {server} of {pool} should be principal but is down"));
            continue;
        }
        let run_on = if c.health(pool) == Health::Up { Some(pool.clone()) } else { c.admin_pool() };
        let Some(run_on) = run_on else { continue };
        let mut prev: Option<String> = None;
        // The Application databases (Response Groups, Call Park) follow the User database.
        for db in [DbType::User, DbType::Application, DbType::CentralMgmt] {
            let Some(current) = be.principal.get(&db).copied() else { continue };
            if current == *role {
                continue;
            }
            let mut inv = Invocation::new("Invoke-CsDatabaseFailover")
                .arg("PoolFqdn", pool.as_str())
                .arg("DatabaseType", db.as_str())
                .arg("NewPrincipal", role.to_string());
            let current_down = !be.server_up(current);
            if current_down {
                // -Force: the current principal is not accessible (C4).
                inv = inv.switch("Force");
            }
            let why = if current_down {
                format!(
                    "the principal SQL server of {pool} ({current}) is down; the {role} takes over the {} database (synchronous mirror: no data loss)",
                    db.as_str()
                )
            } else {
                format!("spec.backEnds: {pool} should run its {} database on the {role}", db.as_str())
            };
            let id = b
                .step(id::db(pool, db), inv, &run_on, dep.clone())
                .reason(why)
                .rules(if db == DbType::CentralMgmt { &[18] } else { &[] })
                .after(prev.clone())
                .expect(Expect::Principal { pool: pool.clone(), db, role: *role })
                .add();
            prev = Some(id);
        }
    }
}
