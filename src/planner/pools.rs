//! Pool failover and failback (domain document 4.7-4.9), as decided (and checked for
//! feasibility and consent) in [`super::targets`]. A failover names the pool hit by the disaster
//! and runs on its partner; prerequisites come first: the CMS off the failed pool and
//! replicated (rules 3-4), Edge next hops repointed (rule 11), Back End databases failed over;
//! a cross-failover fails the other pool back first (rule 1). A failback comes after the Edge
//! failback of its site (rule 23) and the Response Group export (rule 25).

use std::collections::BTreeMap;

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::{Expect, Remember};
use super::targets::{PairState, PairTarget, Transition};
use crate::model::{DbType, FailoverState, Fqdn};
use crate::ps::Invocation;

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    lis_notices(c, b);
    let mut edge_failbacks: Option<BTreeMap<String, Vec<String>>> = None;
    for pt in &c.targets.pairs {
        if let PairState::InProgress(x) = &pt.current {
            wait_in_progress(c, b, pt, x);
            continue;
        }
        let mut prev: Option<String> = None;
        for tr in &pt.transitions {
            let after: Vec<String> = prev.iter().cloned().collect();
            prev = if tr.failback {
                let sites = edge_failbacks.get_or_insert_with(|| edge_failback_steps(c, b));
                failback(c, b, pt, tr, after, sites)
            } else {
                failover(c, b, pt, tr, after)
            };
            if prev.is_none() {
                break;
            }
        }
    }
}

fn wait_in_progress(c: &Ctx, b: &mut Builder, pt: &PairTarget, x: &Fqdn) {
    let y = pt.spec.partner(x);
    let by = if c.observed.failover(x) == FailoverState::FailingOver { y.clone() } else { x.clone() };
    let run_on = if c.up(y) { y.clone() } else { x.clone() };
    b.step(id::wait_pool(x), Invocation::new("Get-CsPoolBackupRelationship").arg("PoolFqdn", x.as_str()), &run_on, pt.spec.resource())
        .wait()
        .reason(format!("a failover or failback of {x} is running; wait for it to finish"))
        .expect(Expect::ServedBy { pool: x.clone(), by })
        .add();
}

pub(crate) fn db_deps(c: &Ctx, pool: &Fqdn) -> Vec<String> {
    if c.targets.principal.contains_key(pool) {
        [DbType::User, DbType::Application, DbType::CentralMgmt].iter().map(|d| id::db(pool, *d)).collect()
    } else {
        vec![]
    }
}

fn failover(c: &Ctx, b: &mut Builder, pt: &PairTarget, tr: &Transition, mut after: Vec<String>) -> Option<String> {
    let res = pt.spec.resource();
    let x = &tr.pool;
    let y = pt.spec.partner(x).clone();
    // Rules 3-4: the CMS leaves the failed pool (or comes back) and replicates first.
    let mut config_before: Vec<String> = Vec::new();
    if c.observed.cms.master_pool.as_ref() == Some(x) || !c.observed.cms.available() {
        match &c.targets.cms_move {
            Some(m) if !m.elective => {
                config_before.push(id::cms_failover(&m.to));
                after.push(id::cms_replication(m.to.as_str()));
            }
            _ => after.extend(c.cms_deps().unwrap_or_default()),
        }
    }
    // Rule 11: Edge pools that may still run and forward to the failed pool are repointed first.
    for (e, eobs) in &c.observed.edges {
        // An Edge pool confirmed down (from another site too) does not stop the failover.
        if eobs.next_hop.as_ref() == Some(x) && eobs.health() != crate::model::Health::Down {
            if !b.has(&id::next_hop(e)) {
                b.block(&res, format!("{e} forwards to {x} and cannot be repointed, so {x} cannot be failed over (rule 11)"));
                return None;
            }
            config_before.push(id::next_hop(e));
        }
    }
    after.extend(db_deps(c, x));
    after.extend(db_deps(c, &y));
    // Rule 25: the routine Response Group export the import after the failover uses comes first.
    after.push(super::ancillary::rgs_routine_export_id(x));
    // Rule 4: the replicas must hold every change made before the failover (the builder adds
    // the plan's other configuration changes to this wait; it is skipped when nothing changed).
    {
        let wait = b
            .step(id::cms_replication(&format!("failover/{x}")), Invocation::new("Get-CsManagementStoreReplicationStatus"), &y, res.clone())
            .wait()
            .reason(format!("CMS changes must reach every replica before {x} is failed over"))
            .rules(&[4])
            .after(config_before)
            .expect(Expect::CmsReplicated { servers: c.replica_servers() })
            .add();
        after.push(wait);
    }
    let mut inv = Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", x.as_str());
    if tr.disaster {
        inv = inv.switch("DisasterMode");
    }
    let reason = match (pt.automatic, tr.disaster) {
        (true, _) => format!("{x} has been confirmed down for the grace period: automatic failover of its users to {y}"),
        (false, true) => {
            format!("{res} wants {x}'s users served by {y}; {x} is unreachable (or its Back End is down), so -DisasterMode (consented)")
        }
        (false, false) => {
            format!("{res} wants {x}'s users served by {y} (planned failover: {x} becomes read-only until its data is at {y})")
        }
    };
    let rules: &[u8] = if tr.disaster { &[1, 2, 12, 17] } else { &[1, 2, 12, 29] };
    let mut step = b
        .step(id::failover(x), inv, &y, res)
        .reason(reason)
        .rules(rules)
        .data_loss(tr.disaster)
        .after(after)
        .expect(Expect::ServedBy { pool: x.clone(), by: y.clone() });
    if pt.automatic {
        step = step.remember(Remember::AutomaticFailover { pool: x.clone(), generation: pt.spec.generation });
    }
    Some(step.add())
}

/// Rule 27: the Location Information Service database is not replicated, so while a pool's users
/// are served by its partner (or are about to be) the partner needs the latest LIS backup. Lync
/// does not report whether it was restored: the notice stays as long as the users are away.
fn lis_notices(c: &Ctx, b: &mut Builder) {
    for pt in &c.targets.pairs {
        for x in &pt.spec.pools {
            let away = matches!(c.observed.failover(x), FailoverState::FailedOver | FailoverState::FailingOver) || c.failing_over(x);
            if away && !c.failing_back(x) {
                let y = pt.spec.partner(x);
                b.notice(format!(
                    "{}: while {x}'s users are served by {y}, restore the latest Location Information Service (E9-1-1) database backup of {x} into {y} if not done yet; the Backup Service does not replicate it (rule 27)",
                    pt.spec.resource()
                ));
            }
        }
    }
}

/// Rule 23: the Edge failback of each site, which the failbacks of the site's Front End pools
/// come after: the steps of this plan (all emitted by [`super::edge`], which runs before) that
/// move federation to, set up or start the site's Edge pools, or give its Front End pools an
/// Edge pool for media. Worked out once per plan, not once per failback.
fn edge_failback_steps(c: &Ctx, b: &Builder) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in c.observed.topology.edges.values() {
        let ids = out.entry(e.site.clone()).or_default();
        ids.push(id::sip(&Some(e.fqdn.clone())));
        ids.push(id::xmpp(&Some(e.fqdn.clone())));
        ids.push(id::xmpp_dns(&e.fqdn));
        for s in &e.servers {
            ids.push(id::bootstrap(s));
            ids.push(id::service(s, true));
        }
    }
    for p in c.observed.topology.pools.values() {
        let ids = out.entry(p.site.clone()).or_default();
        ids.push(id::media(&p.fqdn, false));
        ids.push(id::media(&p.fqdn, true));
    }
    // A dependency on a step not in the plan is dropped when the plan is finished.
    for ids in out.values_mut() {
        ids.retain(|x| b.has(x));
    }
    out
}

fn failback(
    c: &Ctx,
    b: &mut Builder,
    pt: &PairTarget,
    tr: &Transition,
    mut after: Vec<String>,
    edge_failbacks: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    let res = pt.spec.resource();
    let x = &tr.pool;
    let y = pt.spec.partner(x).clone();
    after.extend(c.cms_deps().unwrap_or_default());
    // Rule 23: the Edge pools of x's site are failed back first (federation, setup, services,
    // media of the site's Front End pools).
    let site = &c.observed.topology.pools[x].site;
    after.extend(edge_failbacks.get(site).into_iter().flatten().cloned());
    after.push(super::ancillary::rgs_export_before_failback_id(x));
    after.extend(db_deps(c, x));
    after.extend(db_deps(c, &y));
    let mut inv = Invocation::new("Invoke-CsPoolFailBack").arg("PoolFqdn", x.as_str());
    if tr.disaster {
        inv = inv.switch("DisasterMode");
    }
    let reason = if tr.disaster {
        format!("{x} is back but {y} is down: failback with -DisasterMode (consented)")
    } else if c.observed.history.automatic_failovers.contains_key(x) && pt.spec.failed_over.is_none() {
        format!("{x} is back and stable (or failback was approved): its users return from {y}")
    } else {
        format!("{res} wants {x}'s users served by {x} again")
    };
    let run_on = if c.up(x) { x.clone() } else { y.clone() };
    Some(
        b.step(id::failback(x), inv, &run_on, res)
            .reason(reason)
            .rules(&[2, 15, 23, 25])
            .data_loss(tr.disaster)
            .after(after)
            .expect(Expect::ServedBy { pool: x.clone(), by: x.clone() })
            .add(),
    )
}
