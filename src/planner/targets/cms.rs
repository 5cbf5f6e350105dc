//! Whether and how the Central Management Store moves: a forced failover when its pool is lost
//! (with consent), ahead of a failover of its pool, or last when the spec asks for it.

use super::feasibility::cms_db_ok_after;
use super::{CmsMove, PairState, Targets};
use crate::desired::Desired;
use crate::model::{FailoverState, Fqdn, Health, Observed, Role, Span};
use crate::planner::Policy;
use crate::planner::builder::Builder;

pub(super) fn cms_target(d: &Desired, o: &Observed, policy: &Policy, t: &mut Targets, b: &mut Builder) {
    let dep = format!("LyncDeployment/{}", d.deployment);
    let home = o.cms.home_pool.clone().or_else(|| o.cms.master_pool.clone());
    let Some(home) = home else { return };
    let standby = o.cms.standby_pool.clone().or_else(|| o.topology.partner(&home).cloned());
    let fails_over = |p: &Fqdn| t.pairs.iter().any(|pt| pt.target == PairState::FailedOver(p.clone()) && pt.current != pt.target);
    let alive_ok = |p: &Fqdn| o.health(p).is_alive();
    let desired_pool = d.cms.as_ref().map(|c| c.active_pool.clone());

    match &o.cms.master_pool {
        Some(m) => {
            let Some(s) = standby.clone() else { return };
            let partitioned = o.pool(m).is_some_and(|p| p.from_partner.is_negative());
            if partitioned && (fails_over(m) || desired_pool.as_ref().is_some_and(|a| a != m)) {
                t.cms_blocked = Some(format!(
                    "the CMS pool {m} and its standby {s} cannot reach each other: a planned CMS failover needs both, and the CMS is alive, so a forced failover is not safe"
                ));
                b.block(&dep, t.cms_blocked.clone().unwrap_or_default());
                return;
            }
            if fails_over(m) && !cms_db_ok_after(o, t, &s) {
                t.cms_blocked =
                    Some(format!("the CMS must leave {m} before it fails over, but the standby CMS database in {s} is not available"));
                b.block(&dep, t.cms_blocked.clone().unwrap_or_default());
                return;
            }
            if fails_over(m) {
                t.cms_move = Some(CmsMove {
                    from: m.clone(),
                    to: s.clone(),
                    force: false,
                    reason: format!("{m} hosts the CMS and its users are to be failed over: the CMS moves to {s} first"),
                    rules: vec![3, 5, 8, 9, 10],
                    elective: false,
                });
            } else if let Some(a) = desired_pool.filter(|a| a != m) {
                if a != s {
                    b.block(&dep, format!("spec.centralManagementStore.activePool is {a}, but the CMS can only fail over to its standby in {s}, the pool paired with {m}"));
                } else if o.health(&a) != Health::Up
                    || !cms_db_ok_after(o, t, &a)
                    || fails_over(&a)
                    || t.pairs.iter().any(|pt| pt.target == PairState::FailedOver(a.clone()))
                    // A pool whose pair lyncdr does not manage keeps its users where they are.
                    || (!t.pairs.iter().any(|pt| pt.spec.pools.contains(&a)) && o.failover(&a) != FailoverState::Normal)
                {
                    // The failover runs on a Front End of the receiving pool (rule 10): lyncdr must reach it.
                    b.block(&dep, format!("spec.centralManagementStore.activePool is {a}, which is not serving its own users or cannot be reached; the CMS stays on {m}"));
                } else if let Some(left) = unstable_return(d, o, &a) {
                    // Issue 14 finding: after a forced failover the CMS went back as soon as its
                    // pool answered again, so a flapping pool pulled it back and forth (and a
                    // move interrupted by the next drop left the journal ambiguous).
                    b.recheck_after(left);
                    b.notice(format!(
                        "{dep}: the CMS returns to {a} (spec.centralManagementStore.activePool) once {a} has been up for {}, as it left {a} when {a} was lost: in {left}",
                        return_stability(d, &a)
                    ));
                } else {
                    t.cms_move = Some(CmsMove {
                        from: m.clone(),
                        to: a.clone(),
                        force: false,
                        reason: format!("spec.centralManagementStore.activePool is {a}"),
                        rules: vec![5, 8, 9, 10, 16],
                        elective: true,
                    });
                }
            }
        }
        None => {
            // The witness is failing the CMS database over: wait for it.
            if let Some(left) = t.witness_pending.get(&home) {
                t.cms_blocked = Some(format!(
                    "the CMS database on {home} is unavailable while its witness fails it over to the other SQL server (lyncdr does it itself in {left} if the witness has not)"
                ));
                b.notice(format!("{dep}: {}", t.cms_blocked.clone().unwrap_or_default()));
                return;
            }
            // A Back End failover (lossless) brings the CMS back if its database is the problem;
            // if its pool is to fail over, the CMS then leaves it for the standby (rule 3), in the
            // same plan.
            if alive_ok(&home) && t.principal.contains_key(&home) {
                if fails_over(&home)
                    && let Some(s) = standby.clone().filter(|s| o.health(s) == Health::Up && cms_db_ok_after(o, t, s))
                {
                    t.cms_move = Some(CmsMove {
                        from: home.clone(),
                        to: s.clone(),
                        force: false,
                        reason: format!(
                            "{home} hosts the CMS and its users are to be failed over: once its Back End failover has restored the CMS, the CMS moves to {s} first"
                        ),
                        rules: vec![3, 5, 8, 9, 10, 18],
                        elective: false,
                    });
                }
                return;
            }
            let Some(s) = standby else {
                t.cms_blocked = Some(format!("the CMS (on {home}) is unavailable and {home} has no backup pool to fail it over to"));
                b.block(&dep, t.cms_blocked.clone().unwrap_or_default());
                return;
            };
            let home_down = o.health(&home) == Health::Down
                || (alive_ok(&home)
                    && o.pool(&home).is_some_and(|p| !p.back_end.server_up(Role::Primary) && !p.back_end.server_up(Role::Mirror)));
            if !home_down {
                // Confirming the CMS pool down takes its partner, the standby: if that is not
                // reachable either, say so (there is nowhere to fail the CMS over to anyway).
                t.cms_blocked = Some(match o.health(&s) {
                    Health::Up => format!(
                        "the CMS on {home} is unavailable, and {home} cannot be confirmed down, so a forced CMS failover is not safe"
                    ),
                    hs => format!(
                        "the CMS on {home} is unavailable and its standby pool {s} {}: there is no pool to fail the CMS over to until {s} or {home} is back",
                        match hs {
                            Health::Down => "is down too",
                            Health::Isolated => "cannot be reached by lyncdr either",
                            _ => "cannot be reached either",
                        }
                    ),
                });
                b.block(&dep, t.cms_blocked.clone().unwrap_or_default());
                return;
            }
            let auto = d.cms.as_ref().is_some_and(|c| c.automatic_failover) && {
                let down_for = o.history.pool_health_for(&home, o.at).map(|(_, d)| d).unwrap_or_default();
                if down_for < policy.cms_grace {
                    b.recheck_after(crate::model::Span(policy.cms_grace.0 - down_for.0));
                }
                down_for >= policy.cms_grace
            };
            let needed = t.pairs.iter().any(|pt| pt.current != pt.target) || auto || d.cms.as_ref().is_some_and(|c| c.active_pool == s);
            if !needed {
                t.cms_blocked =
                    Some(format!("the CMS on {home} is unavailable; configuration changes wait until it returns or is failed over to {s}"));
                b.notice(format!("{dep}: {}", t.cms_blocked.clone().unwrap_or_default()));
                return;
            }
            let s_ok = o.health(&s) == Health::Up && cms_db_ok_after(o, t, &s);
            if !s_ok {
                t.cms_blocked = Some(format!("the CMS on {home} is unavailable and its standby pool {s} cannot take it over"));
                b.block(&dep, t.cms_blocked.clone().unwrap_or_default());
                return;
            }
            if !d.cms.as_ref().is_some_and(|c| c.allow_data_loss) {
                t.cms_blocked = Some(format!(
                    "the CMS on {home} is unreachable: failing it over to {s} needs Invoke-CsManagementServerFailover -Force, which may lose CMS changes not yet replicated; consent with spec.centralManagementStore.allowDataLoss: true"
                ));
                b.block(&dep, t.cms_blocked.clone().unwrap_or_default());
                return;
            }
            t.cms_move = Some(CmsMove {
                from: home.clone(),
                to: s.clone(),
                force: true,
                reason: format!(
                    "the CMS on {home} is unreachable and must be active before anything else can change; disaster recovery failover to {s}"
                ),
                rules: vec![3, 4, 5, 8, 10],
                elective: false,
            });
        }
    }
}

/// How long a pool the CMS was forced away from must stay up before the CMS returns to it: the
/// stability period of its pair's automatic failback, or ten minutes.
fn return_stability(d: &Desired, pool: &Fqdn) -> Span {
    d.pairs.iter().find(|p| p.pools.contains(pool)).and_then(|p| p.automatic_failback).unwrap_or(Span::mins(10))
}

/// Time left before the CMS may return to `pool`, if a forced failover moved it away from
/// there and `pool` has not yet been up for [`return_stability`].
fn unstable_return(d: &Desired, o: &Observed, pool: &Fqdn) -> Option<Span> {
    if o.history.cms_forced_from.as_ref() != Some(pool) {
        return None;
    }
    let stab = return_stability(d, pool);
    match o.history.pool_health_for(pool, o.at) {
        Some((Health::Up, up_for)) if up_for >= stab => None,
        Some((Health::Up, up_for)) => Some(Span(stab.0 - up_for.0)),
        _ => Some(stab),
    }
}
