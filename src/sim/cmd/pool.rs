//! `Invoke-CsPoolFailOver` and `Invoke-CsPoolFailBack` (domain document 4.7-4.9).

use serde_json::{Value, json};

use super::{Ctx, Effect, Started};
use crate::model::{FailoverState, Fqdn};
use crate::ps::Bound;
use crate::sim::errors::{self, CmdletError, err, rule_err};
use crate::sim::{Simulator, replication};

const FAILOVER: &str = "Invoke-CsPoolFailOver";
const FAILBACK: &str = "Invoke-CsPoolFailBack";

fn what_if(op: &str, pool: &Fqdn) -> Started {
    Started::output(crate::model::Span::ZERO, json!({ "WhatIf": format!("What if: Performing operation \"{op}\" on Target \"{pool}\".") }))
}

pub(crate) fn failover(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let pool = sim.pool_fqdn(FAILOVER, b, "PoolFqdn")?;
    let disaster = b.switch("DisasterMode");
    // Rule 12: a backup pool must be assigned.
    let Some(partner) = sim.topo.partner(&pool).cloned() else {
        return Err(rule_err(FAILOVER, 12, errors::no_backup_pool(&pool)));
    };
    let state = sim.w.pools[&pool].state;
    match state {
        FailoverState::FailedOver => return Err(err(FAILOVER, errors::already_failed_over(&pool))),
        s if s.in_progress() => return Err(err(FAILOVER, errors::in_progress(&pool))),
        _ => {}
    }
    let partner_state = sim.w.pools[&partner].state;
    // Rule 1: the partner's own users are failed over to this pool.
    if partner_state == FailoverState::FailedOver {
        return Err(rule_err(FAILOVER, 1, errors::cross_failover(&pool, &partner)));
    }
    if partner_state.in_progress() {
        return Err(err(FAILOVER, errors::in_progress(&partner)));
    }
    let net = sim.net_ref();
    if !replication::pool_serving_ok(&sim.w, &sim.topo, &net, &partner) || !net.reaches(Some(&ctx.server), &partner) {
        return Err(err(
            FAILOVER,
            errors::pool_unreachable(&partner, "The backup pool must be running to take over the users of the failed pool."),
        ));
    }
    // Issue 5: a backup pool whose Backup Service is not running holds no usable backup.
    if !replication::backup_running(&sim.w, &sim.topo, &partner) {
        return Err(rule_err(FAILOVER, 13, errors::backup_service_not_running(&partner)));
    }
    // Rules 3 and 4: the CMS must be functional, not hosted on the failed pool, and replicated.
    if sim.w.cms.master.as_ref() == Some(&pool) {
        return Err(rule_err(FAILOVER, 3, errors::cms_on_pool(&pool)));
    }
    if !sim.cms_available() || sim.cms_moving() {
        return Err(rule_err(FAILOVER, 3, errors::cms_unavailable()));
    }
    let partner_fes = sim.topo.pools[&partner].front_ends.clone();
    let net = sim.net_ref();
    if let Some(stale) = partner_fes.iter().find(|s| net.host_up(s) && !sim.replicas_current([*s])) {
        return Err(rule_err(FAILOVER, 4, errors::cms_not_replicated(stale)));
    }
    // Rule 11: a running Edge pool must not use the failed pool as its next hop (VERBATIM error).
    // [INFERRED] The cmdlet finds out whether the Edge pool runs from the server it runs on: an
    // Edge pool that server cannot reach counts as down, as in a whole-site failure, where
    // repointing it is not needed (T2); a site cut off from everyone looks the same.
    for (e, rt) in &sim.w.edges {
        let edge_up = net.reaches(Some(&ctx.server), e) && rt.services.values().any(|r| *r);
        if edge_up && rt.next_hop.as_ref() == Some(&pool) {
            return Err(rule_err(FAILOVER, 11, errors::next_hop(&pool)));
        }
    }
    if !disaster {
        // A planned failover needs the pool reachable from the backup pool and its Back End up (rule 17).
        if !net.host_up(&pool) || !net.reaches(Some(&ctx.server), &pool) {
            return Err(err(FAILOVER, errors::pool_unreachable(&pool, "To fail over a pool that cannot be reached, use -DisasterMode.")));
        }
        if !replication::back_end_available(&sim.w, &sim.topo, &net, &pool) {
            return Err(rule_err(FAILOVER, 17, errors::back_end_down(&pool)));
        }
    }
    // Rule 28: Call Park must be enabled in both pools before a disaster.
    if sim.topo.pools[&pool].call_park && !sim.topo.pools[&partner].call_park {
        sim.rule(
            FAILOVER,
            28,
            format!("Call Park is enabled on {pool} but not on its backup pool {partner}; parked calls of failed-over users would fail"),
        )?;
    }
    if b.what_if() {
        return Ok(what_if(FAILOVER, &pool));
    }
    let users = replication::homed_users(&sim.w, &sim.topo, &pool);
    let duration = sim.timings.pool_failover(ctx.product, users);
    let rt = sim.w.pools.get_mut(&pool).expect("pool exists");
    rt.state = FailoverState::FailingOver;
    if !disaster {
        // Planned failover: the pool becomes read-only so the Backup Service reaches final state (rule 29).
        rt.read_only = true;
    }
    Ok(Started::effect(duration, Effect::PoolFailover { pool, partner, disaster }))
}

pub(crate) fn failback(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let pool = sim.pool_fqdn(FAILBACK, b, "PoolFqdn")?;
    let disaster = b.switch("DisasterMode");
    let Some(partner) = sim.topo.partner(&pool).cloned() else {
        return Err(rule_err(FAILBACK, 12, errors::no_backup_pool(&pool)));
    };
    match sim.w.pools[&pool].state {
        FailoverState::FailedOver => {}
        s if s.in_progress() => return Err(err(FAILBACK, errors::in_progress(&pool))),
        // Rule 2: the same PoolFqdn as the failover, i.e. the pool whose users were failed over.
        _ => return Err(rule_err(FAILBACK, 2, errors::not_failed_over(&pool))),
    }
    let net = sim.net_ref();
    // Rule 15: only when the failed pool is back online.
    if !replication::pool_serving_ok(&sim.w, &sim.topo, &net, &pool) || !net.reaches(Some(&ctx.server), &pool) {
        return Err(rule_err(
            FAILBACK,
            15,
            errors::pool_unreachable(
                &pool,
                "Fail back a pool only when it is back online; while it is down its users stay on the backup pool.",
            ),
        ));
    }
    let partner_ok = replication::pool_serving_ok(&sim.w, &sim.topo, &net, &partner) && net.reaches(Some(&ctx.server), &partner);
    if !partner_ok && !disaster {
        return Err(rule_err(
            FAILBACK,
            15,
            errors::pool_unreachable(
                &partner,
                "To fail back while the backup pool is unavailable, use -DisasterMode; data its users created on the backup pool is lost.",
            ),
        ));
    }
    if !sim.cms_available() || sim.cms_moving() {
        return Err(err(FAILBACK, errors::cms_unavailable()));
    }
    // Rule 23: the Edge pool at the failed site is failed back before the Front End pool.
    let site = sim.topo.pools[&pool].site.clone();
    let local_edges: Vec<Fqdn> = sim.topo.edges.values().filter(|e| e.site == site).map(|e| e.fqdn.clone()).collect();
    let net = sim.net_ref();
    let up_local: Vec<&Fqdn> = local_edges.iter().filter(|e| net.host_up(e) && sim.w.edges[*e].services.values().any(|r| *r)).collect();
    if let Some(from) = &sim.w.federation_moved_from
        && up_local.contains(&from)
        && sim.w.sip_federation.as_ref() != Some(from)
    {
        let msg =
            format!("federation was moved away from {from}, which is running again; move federation back to it before failing back {pool}");
        sim.rule(FAILBACK, 23, msg)?;
    }
    let media = sim.w.pools[&pool].conferencing_edge.clone();
    let moved_from_local = sim.w.pools[&pool].media_moved_from.as_ref().is_some_and(|m| up_local.contains(&m));
    if moved_from_local && media.as_ref().is_some_and(|m| !local_edges.contains(m)) {
        let msg = format!(
            "{pool} is still associated with the remote Edge pool {} although its local Edge pool {} runs; re-associate it before failing back",
            media.as_ref().map(ToString::to_string).unwrap_or_default(),
            up_local[0]
        );
        sim.rule(FAILBACK, 23, msg)?;
    }
    if b.what_if() {
        return Ok(what_if(FAILBACK, &pool));
    }
    let users = replication::homed_users(&sim.w, &sim.topo, &pool);
    let duration = sim.timings.pool_failback(users);
    sim.w.pools.get_mut(&pool).expect("pool exists").state = FailoverState::FailingBack;
    Ok(Started::effect(duration, Effect::PoolFailback { pool, disaster }))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::PoolFailover { pool, partner, disaster } => {
            if *disaster {
                let lost = replication::lose_unreplicated_at_home(&mut sim.w, pool);
                sim.stats.lost_changes += lost;
            } else {
                let net = sim.net_ref();
                let link = net.host_up(pool) && net.host_up(partner);
                if !link {
                    revert(sim, e);
                    return Err(err(
                        FAILOVER,
                        errors::pool_unreachable(
                            pool,
                            "The data of the pool could not be synchronized to the backup pool; use -DisasterMode.",
                        ),
                    ));
                }
                replication::final_sync_to_backup(&mut sim.w, pool);
            }
            let rt = sim.w.pools.get_mut(pool).expect("pool exists");
            rt.state = FailoverState::FailedOver;
            rt.read_only = false;
            Ok(Value::Null)
        }
        Effect::PoolFailback { pool, disaster, .. } => {
            if *disaster {
                let lost = replication::lose_unreplicated_at_backup(&mut sim.w, pool);
                sim.stats.lost_changes += lost;
            } else {
                replication::failback_sync(&mut sim.w, pool);
            }
            sim.w.pools.get_mut(pool).expect("pool exists").state = FailoverState::Normal;
            Ok(Value::Null)
        }
        _ => Ok(Value::Null),
    }
}

pub(crate) fn revert(sim: &mut Simulator, e: &Effect) {
    match e {
        Effect::PoolFailover { pool, .. } => {
            if let Some(rt) = sim.w.pools.get_mut(pool) {
                rt.state = FailoverState::Normal;
                rt.read_only = false;
            }
        }
        Effect::PoolFailback { pool, .. } => {
            if let Some(rt) = sim.w.pools.get_mut(pool) {
                rt.state = FailoverState::FailedOver;
            }
        }
        _ => {}
    }
}
