//! Who should serve each pair's users (spec, consent, automatic failover and failback), and
//! what the pairing itself still needs: completion (local setup, LYNCBACKUP) or re-pairing.

use super::{PairState, PairTarget, Pairing, pair_state};
use crate::desired::PairDesired;
use crate::model::{FailoverState, Fqdn, Health, Observed, pairing_violations};
use crate::planner::builder::Builder;

pub(super) fn pair_target(p: &PairDesired, o: &Observed, b: &mut Builder) -> Option<PairTarget> {
    let [a, bb] = &p.pools;
    let res = p.resource();
    for x in [a, bb] {
        if !o.topology.pools.contains_key(x) {
            b.block(&res, format!("{x} is not a Front End pool of the deployment"));
            return None;
        }
    }
    let paired = o.topology.partner(a) == Some(bb) && o.topology.partner(bb) == Some(a);
    let (ta, tb) = (&o.topology.pools[a].traits, &o.topology.pools[bb].traits);
    // Host facts of a pool that could not be read are not compared.
    let facts_known = !o.unknown_traits.contains(a) && !o.unknown_traits.contains(bb);
    let violations: Vec<_> = pairing_violations((a, ta), (bb, tb))
        .into_iter()
        .filter(|v| facts_known || !matches!(v.rule, "SameOperatingSystem" | "LikeProduct" | "LikeVirtualization"))
        .collect();
    // Users of an unsupported pairing in place stay where they are without consent.
    let mut frozen = false;
    if !violations.is_empty() {
        let rules: Vec<String> = violations.iter().map(|v| format!("rule {}: {}", v.rule, v.detail)).collect();
        if !paired {
            // lyncdr never creates an unsupported pairing.
            for r in rules {
                b.block(&res, format!("unsupported pairing, {r}"));
            }
            return None;
        }
        // Already paired in Lync (issue 10, finding 13): Lync fails over and back between them
        // all the same; Microsoft does not support the result. Say so for as long as it holds,
        // and move users only with explicit consent.
        b.notice(format!(
            "{res}: unsupported pairing of {a} and {bb} in place ({}); Lync still fails over between them, but Microsoft does not support it: pair supported pools",
            rules.join("; ")
        ));
        if !p.allow_unsupported_pairing {
            let spec = p.failed_over.clone().map(PairState::FailedOver).unwrap_or(PairState::Normal);
            let current = pair_state(o, a, bb);
            if spec != current || o.health(a) == Health::Down || o.health(bb) == Health::Down {
                b.block(
                    &res,
                    format!(
                        "unsupported pairing, {}: lyncdr moves users between {a} and {bb} only with consent: set spec.allowUnsupportedPairing: true on {res}",
                        rules.join("; ")
                    ),
                );
            }
            // Completing the pairing (local setup, LYNCBACKUP) moves no user and keeps the
            // partner's copy current, so it goes ahead.
            frozen = true;
        }
    }

    let pairing = if paired {
        completion(o, a, bb)
    } else {
        match repairing(p, o) {
            Ok(p) => p,
            Err(why) => {
                b.block(&res, why);
                return None;
            }
        }
    };

    let current = pair_state(o, a, bb);
    if frozen {
        return Some(PairTarget { spec: p.clone(), target: current.clone(), current, automatic: false, transitions: vec![], pairing });
    }
    if pairing != Pairing::Established {
        // Failover and failback wait until the pair backs each other up with data in sync.
        let spec = p.failed_over.clone().map(PairState::FailedOver).unwrap_or(PairState::Normal);
        if spec != current {
            b.block(&res, format!("{a} and {bb} are not (fully) paired yet; their users move once the pairing is complete"));
        }
        return Some(PairTarget { spec: p.clone(), target: current.clone(), current, automatic: false, transitions: vec![], pairing });
    }
    let spec_target = match &p.failed_over {
        None => PairState::Normal,
        Some(x) => PairState::FailedOver(x.clone()),
    };
    let mut target = spec_target.clone();
    let mut automatic = false;
    let now = o.at;
    let health_for = |x: &Fqdn| o.history.pool_health_for(x, now);

    if spec_target == PairState::Normal {
        // After an automatic failover, the way back waits for a human unless policy allows it.
        if let PairState::FailedOver(x) = &current
            && let Some(rec) = o.history.automatic_failovers.get(x)
        {
            let acknowledged = p.failback_approved || p.generation > rec.generation;
            let stable = match (p.automatic_failback, health_for(x)) {
                (Some(stab), Some((Health::Up, up_for))) => {
                    if up_for < stab {
                        b.recheck_after(crate::model::Span(stab.0 - up_for.0));
                    }
                    up_for >= stab
                }
                _ => false,
            };
            if !(acknowledged || stable) {
                target = current.clone();
                automatic = true;
                if o.health(x) == Health::Up {
                    let how = match p.automatic_failback {
                        Some(stab) => format!("automatic failback after {stab} of stability, or"),
                        None => "".to_string(),
                    };
                    b.notice(format!(
                        "{res}: {x} is back online; its users stay on {} after the automatic failover until {how} annotate {res} with lyncdr.io/approve-failback=true (or change its spec)",
                        p.partner(x)
                    ));
                }
            }
        }
        // Automatic failover of a pool confirmed down for the grace period.
        if current == PairState::Normal
            && let Some(grace) = p.automatic_failover
        {
            let (ha, hb) = (o.health(a), o.health(bb));
            if !ha.is_alive() && !hb.is_alive() {
                b.block(
                    &res,
                    format!("both pools of the pair are down or unreachable ({a}: {ha}, {bb}: {hb}); there is no pool to fail over to"),
                );
            } else {
                // Issue 14 finding: a partition between the two sites changed nothing the
                // operator said, so nobody could tell why a pool its partner cannot reach is
                // left alone.
                let cut = |x: &Fqdn| o.pool(x).is_some_and(|p| p.from_partner.is_negative());
                if ha == Health::Up && hb == Health::Up && (cut(a) || cut(bb)) {
                    b.notice(format!(
                        "{res}: {a} and {bb} cannot reach each other (a network partition between their sites), but the operator reaches both: both are alive, so neither is failed over"
                    ));
                }
                for x in [a, bb] {
                    let y = p.partner(x);
                    match o.health(x) {
                        Health::Down if o.health(y) == Health::Up => {
                            let down_for = health_for(x).map(|(_, d)| d).unwrap_or_default();
                            if down_for >= grace {
                                target = PairState::FailedOver(x.clone());
                                automatic = true;
                                break;
                            }
                            let left = crate::model::Span(grace.0 - down_for.0);
                            b.recheck_after(left);
                            b.notice(format!("{res}: {x} is confirmed down (by the operator and by {y}); automatic failover to {y} in {left} unless it returns"));
                        }
                        Health::Isolated => {
                            b.notice(format!("{res}: the operator cannot reach {x}, but {y} can: {x} is alive, so it is not failed over"));
                        }
                        Health::Unknown => {
                            b.notice(format!("{res}: the state of {x} cannot be confirmed (neither the operator nor {y} can reach it)"));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    // Users left without service while nothing is asked to change it: say so.
    if target == current && !matches!(current, PairState::InProgress(_)) && p.automatic_failover.is_none() {
        for x in [a, bb] {
            let serving = o.serving(x);
            if !o.health(&serving).is_alive() {
                let y = p.partner(x);
                let hint = if serving == *x {
                    format!(
                        "set spec.failedOver: [{x}] (with spec.allowDataLoss: true if it is unreachable) or enable spec.automaticFailover to serve them from {y}"
                    )
                } else {
                    format!("set spec.failedOver: [] to fail them back to {x} once it runs")
                };
                b.block(&res, format!("the users of {x} are not served: {serving} is {}; {hint}", o.health(&serving)));
            }
        }
    }
    Some(PairTarget { spec: p.clone(), current, target, automatic, transitions: vec![], pairing })
}

/// Paired in the topology: what local setup and the Backup Service still need.
fn completion(o: &Observed, a: &Fqdn, b: &Fqdn) -> Pairing {
    let mut install = Vec::new();
    let mut start = Vec::new();
    for x in [a, b] {
        if o.health(x) != Health::Up {
            continue;
        }
        for (fe, state) in o.pool(x).map(|p| p.backup_service.clone()).unwrap_or_default() {
            match state {
                None => {
                    install.push(fe.clone());
                    start.push(fe);
                }
                Some(false) => start.push(fe),
                Some(true) => {}
            }
        }
    }
    if install.is_empty() && start.is_empty() { Pairing::Established } else { Pairing::Complete { install, start } }
}

/// Not paired with each other: establish the pairing, or re-pair with consent (rules 13-14, 31).
fn repairing(p: &PairDesired, o: &Observed) -> Result<Pairing, String> {
    let [a, b] = &p.pools;
    let res = p.resource();
    let former: Vec<(Fqdn, Fqdn)> =
        [a, b].iter().filter_map(|x| o.topology.partner(x).filter(|q| *q != a && *q != b).map(|q| ((*x).clone(), q.clone()))).collect();
    for x in [a, b] {
        if o.health(x) != Health::Up {
            return Err(format!(
                "{a} and {b} are not paired, and {x} cannot be reached to run local setup; pairing waits until both pools are up"
            ));
        }
    }
    if !former.is_empty() {
        let list = former.iter().map(|(x, q)| format!("{x} is paired with {q}")).collect::<Vec<_>>().join("; ");
        let orphans = former.iter().map(|(_, q)| q.to_string()).collect::<Vec<_>>().join(", ");
        if !p.allow_repair {
            return Err(format!(
                "{list}: pairing {a} with {b} would leave {orphans} without a backup pool; consent with spec.allowRepair: true on {res}"
            ));
        }
        let changed: Vec<&Fqdn> = [a, b].into_iter().chain(former.iter().map(|(_, q)| q)).collect();
        if let Some(x) = changed.iter().find(|x| o.failover(x) != FailoverState::Normal) {
            return Err(format!("{list}: re-pairing waits while the users of {x} are failed over (or its operation runs)"));
        }
        for x in &changed {
            if let Some(q) = o.topology.partner(x)
                && o.failover(q) != FailoverState::Normal
            {
                return Err(format!("{list}: re-pairing waits while {x}'s partner {q} has users failed over"));
            }
        }
        let cms = [o.cms.master_pool.as_ref().or(o.cms.home_pool.as_ref()), o.cms.standby_pool.as_ref()];
        if let Some(x) = changed.iter().find(|x| cms.contains(&Some(**x))) {
            return Err(format!("{list}: the CMS (master or standby) lives in {x}, whose pairing would change; move the CMS first"));
        }
    }
    Ok(Pairing::Publish { former })
}
