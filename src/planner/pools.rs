//! Pool failover and failback (domain document 4.7-4.9). A failover names the pool hit by the
//! disaster and runs on its partner; `-DisasterMode` only when that pool is unreachable (or its
//! Back End is down with no mirror to fail over to), and only with consent. Prerequisites come
//! first: the CMS off the failed pool and replicated (rules 3-4), Edge next hops repointed (rule
//! 11), Back End databases failed over; a cross-failover fails the other pool back first (rule
//! 1). A failback waits until the pool is back online (rule 15) and comes after the Edge
//! failback of its site (rule 23) and the Response Group export (rule 25).

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::{Expect, Remember};
use super::targets::{PairState, PairTarget};
use crate::model::{DbType, FailoverState, Fqdn, Health};
use crate::ps::Invocation;

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    for pt in &c.t.pairs {
        if pt.current == pt.target {
            continue;
        }
        match (&pt.current, &pt.target) {
            (PairState::InProgress(x), _) => wait_in_progress(c, b, pt, x),
            (PairState::Normal, PairState::FailedOver(x)) => {
                failover(c, b, pt, x, vec![]);
            }
            (PairState::FailedOver(x), PairState::Normal) => {
                failback(c, b, pt, x);
            }
            (PairState::FailedOver(x), PairState::FailedOver(y)) => {
                // Rule 1: fail the partner's users back before failing this pool over.
                if let Some(fb) = failback(c, b, pt, x) {
                    failover(c, b, pt, y, vec![fb]);
                } else {
                    b.block(pt.d.resource(), format!("{y} can be failed over only after {x} is failed back (rule 1)"));
                }
            }
            _ => {}
        }
    }
}

fn wait_in_progress(c: &Ctx, b: &mut Builder, pt: &PairTarget, x: &Fqdn) {
    let y = pt.d.partner(x);
    let by = if c.o.failover(x) == FailoverState::FailingOver { y.clone() } else { x.clone() };
    let run_on = if c.up(y) { y.clone() } else { x.clone() };
    b.step(id::wait_pool(x), Invocation::new("Get-CsPoolBackupRelationship").arg("PoolFqdn", x.as_str()), &run_on, pt.d.resource())
        .wait()
        .reason(format!("a failover or failback of {x} is running; wait for it to finish"))
        .expect(Expect::ServedBy { pool: x.clone(), by })
        .add();
}

/// How much recent data a `-DisasterMode` operation puts at risk.
fn risk(c: &Ctx, pool: &Fqdn) -> String {
    let interval = c.o.sync_interval.map(|i| i.to_string()).unwrap_or_else(|| "one sync interval".into());
    match c.o.history.last_synced.get(pool) {
        Some(t) => format!("changes made since the last observed sync ({} ago) and up to {interval} before it", c.o.at.since(*t)),
        None => format!("changes not yet replicated (at least the last {interval})"),
    }
}

fn db_deps(c: &Ctx, pool: &Fqdn) -> Vec<String> {
    if c.t.principal.contains_key(pool) { [DbType::User, DbType::CentralMgmt].iter().map(|d| id::db(pool, *d)).collect() } else { vec![] }
}

fn back_end_ok_after(c: &Ctx, pool: &Fqdn) -> bool {
    let Some(o) = c.o.pool(pool) else { return false };
    match c.t.principal.get(pool) {
        Some(r) => o.back_end.server_up(*r),
        None => o.back_end.available(),
    }
}

fn failover(c: &Ctx, b: &mut Builder, pt: &PairTarget, x: &Fqdn, mut after: Vec<String>) -> Option<String> {
    let res = pt.d.resource();
    let y = pt.d.partner(x).clone();
    if !c.up(&y) || !back_end_ok_after(c, &y) {
        b.block(&res, format!("{x}'s users cannot be failed over: its backup pool {y} is not available"));
        return None;
    }
    let xo = c.o.pool(x).cloned().unwrap_or_default();
    let disaster = match c.health(x) {
        Health::Down => true,
        Health::Unknown => {
            b.block(&res, format!("the state of {x} cannot be confirmed (neither the operator nor {y} reaches it); refusing to fail it over"));
            return None;
        }
        Health::Up if xo.from_partner.is_negative() => {
            b.block(
                &res,
                format!("{x} is up for the operator but {y} cannot reach it: a planned failover needs {y} to reach {x}, and -DisasterMode would leave {x} serving users (split brain)"),
            );
            return None;
        }
        Health::Up | Health::Isolated => !back_end_ok_after(c, x),
    };
    if disaster && !pt.d.allow_data_loss {
        let why = if c.health(x) == Health::Down { format!("{x} is unreachable") } else { format!("the Back End of {x} is down") };
        b.block(
            &res,
            format!("{why}: failing its users over to {y} needs Invoke-CsPoolFailOver -DisasterMode, which loses {}; consent with spec.allowDataLoss: true on {res}", risk(c, x)),
        );
        return None;
    }
    // The CMS must not be on the failed pool and must be available (rules 3-4).
    let mut config_before: Vec<String> = Vec::new();
    if c.o.cms.master_pool.as_ref() == Some(x) || !c.o.cms.available() {
        match &c.t.cms_move {
            Some(m) if !m.elective && (m.from == *x || !c.o.cms.available()) => {
                config_before.push(id::cms_failover(&m.to));
                after.push(id::cms_replication(m.to.as_str()));
            }
            _ => match c.cms_deps() {
                Ok(d) if !d.is_empty() => after.extend(d),
                Ok(_) | Err(_) => {
                    let why = c.t.cms_blocked.clone().unwrap_or_else(|| format!("the CMS on {x} cannot be failed over first"));
                    b.block(&res, format!("{x}'s users cannot be failed over: {why}"));
                    return None;
                }
            },
        }
    }
    // Rule 11: Edge pools that still run and forward to the failed pool are repointed first.
    for (e, eobs) in &c.o.edges {
        if eobs.direct.is_ok() && eobs.next_hop.as_ref() == Some(x) {
            if !b.has(&id::next_hop(e)) {
                b.block(&res, format!("{e} forwards to {x} and cannot be repointed, so {x} cannot be failed over (rule 11)"));
                return None;
            }
            config_before.push(id::next_hop(e));
        }
    }
    after.extend(db_deps(c, x));
    after.extend(db_deps(c, &y));
    // Rule 4: the replicas must hold every change made before the failover.
    let stale = c.o.cms.available() && !c.o.cms.replicas_current(c.o.topology.pools[&y].front_ends.iter().filter(|s| c.o.cms.replicas.contains_key(*s)));
    if !config_before.is_empty() || stale {
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
    if disaster {
        inv = inv.switch("DisasterMode");
    }
    let reason = match (pt.automatic, disaster) {
        (true, _) => format!("{x} has been confirmed down for the grace period: automatic failover of its users to {y}"),
        (false, true) => format!("{res} wants {x}'s users served by {y}; {x} is unreachable, so -DisasterMode (consented)"),
        (false, false) => format!("{res} wants {x}'s users served by {y} (planned failover: {x} becomes read-only until its data is at {y})"),
    };
    let mut rules: Vec<u8> = vec![2, 12];
    if disaster {
        rules.push(17);
    } else {
        rules.push(29);
    }
    let mut step = b
        .step(id::failover(x), inv, &y, res)
        .reason(reason)
        .rules(&rules)
        .data_loss(disaster)
        .after(after)
        .expect(Expect::ServedBy { pool: x.clone(), by: y.clone() });
    if pt.automatic {
        step = step.remember(Remember::AutomaticFailover { pool: x.clone(), generation: pt.d.generation });
    }
    let id = step.add();
    b.notice(format!(
        "{}: after {x} fails over, restore the latest Location Information Service (E9-1-1) database backup into {y}; the Backup Service does not replicate it (rule 27)",
        pt.d.resource()
    ));
    Some(id)
}

fn failback(c: &Ctx, b: &mut Builder, pt: &PairTarget, x: &Fqdn) -> Option<String> {
    let res = pt.d.resource();
    let y = pt.d.partner(x).clone();
    if !c.health(x).is_alive() || !back_end_ok_after(c, x) {
        b.block(&res, format!("{x} is not back online: its users stay on {y} until it is (rule 15)"));
        return None;
    }
    let disaster = match c.health(&y) {
        Health::Up | Health::Isolated => !back_end_ok_after(c, &y),
        Health::Down => true,
        Health::Unknown => {
            b.block(&res, format!("the state of {y}, which serves {x}'s users, cannot be confirmed; refusing to fail back"));
            return None;
        }
    };
    if disaster && !pt.d.allow_data_loss {
        b.block(
            &res,
            format!("{y} is down: failing {x}'s users back needs Invoke-CsPoolFailBack -DisasterMode, which loses what they changed on {y}; consent with spec.allowDataLoss: true on {res}"),
        );
        return None;
    }
    let mut after = match c.cms_deps() {
        Ok(d) => d,
        Err(why) => {
            b.block(&res, format!("{x} cannot be failed back: {why}"));
            return None;
        }
    };
    // Rule 23: the Edge pools of x's site are failed back first (federation, setup, services,
    // media of the site's Front End pools).
    let site = &c.o.topology.pools[x].site;
    for e in c.o.topology.edges.values().filter(|e| &e.site == site) {
        after.push(id::sip(&Some(e.fqdn.clone())));
        after.push(id::xmpp(&Some(e.fqdn.clone())));
        for s in &e.servers {
            after.push(id::bootstrap(s));
            after.push(id::service(s, true));
        }
    }
    for p in c.o.topology.pools.values().filter(|p| &p.site == site) {
        after.push(id::media(&p.fqdn, false));
        after.push(id::media(&p.fqdn, true));
    }
    after.push(super::ancillary::rgs_export_before_failback_id(x));
    after.extend(db_deps(c, x));
    let mut inv = Invocation::new("Invoke-CsPoolFailBack").arg("PoolFqdn", x.as_str());
    if disaster {
        inv = inv.switch("DisasterMode");
    }
    let reason = if disaster {
        format!("{x} is back but {y} is down: failback with -DisasterMode (consented)")
    } else if c.o.history.automatic_failovers.contains_key(x) && pt.d.failed_over.is_none() {
        format!("{x} is back and stable (or failback was approved): its users return from {y}")
    } else {
        format!("{res} wants {x}'s users served by {x} again")
    };
    let run_on = if c.up(x) { x.clone() } else { y.clone() };
    Some(
        b.step(id::failback(x), inv, &run_on, res)
            .reason(reason)
            .rules(&[2, 15, 23, 25])
            .data_loss(disaster)
            .after(after)
            .expect(Expect::ServedBy { pool: x.clone(), by: x.clone() })
            .add(),
    )
}
