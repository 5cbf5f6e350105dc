//! Whether a pool failover or failback can run safely now, and in which mode (`-DisasterMode`
//! only with consent): the CMS, the Back Ends, federation and the partner must allow it.

use super::{PairState, PairTarget, Targets, Transition};
use crate::desired::Desired;
use crate::model::{DbType, Fqdn, Health, Observed};

/// The pool operations from the current to the target state, or why they cannot run safely.
pub(super) fn transitions(d: &Desired, o: &Observed, t: &Targets, pt: &PairTarget) -> Result<Vec<Transition>, String> {
    match (&pt.current, &pt.target) {
        (PairState::Normal, PairState::FailedOver(x)) => Ok(vec![check_failover(d, o, t, pt, x)?]),
        (PairState::FailedOver(x), PairState::Normal) => Ok(vec![check_failback(d, o, t, pt, x)?]),
        (PairState::FailedOver(x), PairState::FailedOver(y)) => {
            // Rule 1: fail the partner's users back before failing this pool over.
            let back = check_failback(d, o, t, pt, x)
                .map_err(|e| format!("{y} can be failed over only after {x} is failed back (rule 1), and {e}"))?;
            Ok(vec![back, check_failover(d, o, t, pt, y)?])
        }
        _ => Ok(vec![]),
    }
}

/// The pool's user database will be available once the planned Back End failovers ran.
pub(crate) fn back_end_ok_after(o: &Observed, t: &Targets, pool: &Fqdn) -> bool {
    let Some(p) = o.pool(pool) else { return false };
    match t.principal.get(pool) {
        Some(r) => p.back_end.server_up(*r),
        None => p.back_end.available(),
    }
}

/// The pool's CMS database will be available once the planned Back End failovers ran.
pub(super) fn cms_db_ok_after(o: &Observed, t: &Targets, pool: &Fqdn) -> bool {
    let Some(p) = o.pool(pool) else { return false };
    let role = t.principal.get(pool).copied().or_else(|| p.back_end.principal.get(&DbType::CentralMgmt).copied()).unwrap_or_default();
    p.back_end.server_up(role)
}

/// How much recent data a `-DisasterMode` operation puts at risk.
fn risk(o: &Observed, pool: &Fqdn) -> String {
    let interval = o.sync_interval.map(|i| i.to_string()).unwrap_or_else(|| "one sync interval".into());
    match o.history.unsynced_since.get(pool) {
        Some(at) => {
            format!("changes not replicated since it was last seen in sync ({} ago), and up to {interval} before that", o.at.since(*at))
        }
        None => format!("changes not yet replicated (up to the last {interval})"),
    }
}

/// The CMS will be usable for a pool operation: it is available and not on `pool` (a failover
/// needs it moved first), or a required move or a Back End failover brings it back.
fn cms_ready_for(o: &Observed, t: &Targets, pool: Option<&Fqdn>) -> Result<(), String> {
    let host = o.cms.master_pool.as_ref().or(o.cms.home_pool.as_ref());
    let on_pool = pool.is_some_and(|p| host == Some(p));
    if o.cms.available() && !on_pool {
        return Ok(());
    }
    let moving = t.cms_move.as_ref().is_some_and(|m| !m.elective && (pool.is_some_and(|p| &m.from == p) || !o.cms.available()));
    let recovering =
        !o.cms.available() && o.cms.home_pool.as_ref().is_some_and(|h| o.health(h).is_alive() && t.principal.contains_key(h)) && !on_pool;
    if moving || recovering {
        Ok(())
    } else {
        Err(t.cms_blocked.clone().unwrap_or_else(|| "the CMS cannot be failed over first".to_string()))
    }
}

fn check_failover(d: &Desired, o: &Observed, t: &Targets, pt: &PairTarget, x: &Fqdn) -> Result<Transition, String> {
    let res = pt.spec.resource();
    let y = pt.spec.partner(x);
    // Rule 26: names that would make the Response Group import fail block the failover itself.
    let clashes = crate::planner::ancillary::rgs_name_clashes(d, o, &t.rgs_owners, x);
    if !clashes.is_empty() && !d.rgs_resolve_name_conflicts {
        return Err(crate::planner::ancillary::rgs_clash_message(d, x, y, &clashes));
    }
    if o.health(y) != Health::Up || !back_end_ok_after(o, t, y) {
        return Err(format!("{x}'s users cannot be failed over: its backup pool {y} is not available"));
    }
    let xo = o.pool(x).cloned().unwrap_or_default();
    let disaster = match o.health(x) {
        Health::Down => true,
        Health::Unknown => {
            return Err(format!(
                "the state of {x} cannot be confirmed (neither the operator nor {y} reaches it); refusing to fail it over"
            ));
        }
        Health::Up if xo.from_partner.is_negative() => {
            return Err(format!(
                "{x} is up for the operator but {y} cannot reach it: a planned failover needs {y} to reach {x}, and -DisasterMode would leave {x} serving users (split brain)"
            ));
        }
        Health::Up | Health::Isolated => !back_end_ok_after(o, t, x),
    };
    if disaster && !pt.spec.allow_data_loss {
        let why = if o.health(x) == Health::Down { format!("{x} is unreachable") } else { format!("the Back End of {x} is down") };
        return Err(format!(
            "{why}: failing its users over to {y} needs Invoke-CsPoolFailOver -DisasterMode, which loses {}; consent with spec.allowDataLoss: true on {res}",
            risk(o, x)
        ));
    }
    cms_ready_for(o, t, Some(x)).map_err(|e| format!("{x}'s users cannot be failed over: {e}"))?;
    // Rule 4: the backup pool's replicas must be able to catch up with the CMS. (A CMS that
    // moves first, to let this pool fail over, reaches them from elsewhere: not known yet. An
    // elective move runs last, so the current CMS is the one that must reach them.)
    if o.cms.available() && t.cms_move.as_ref().is_none_or(|m| m.elective) {
        let cut_off: Vec<String> = o.topology.pools[y]
            .front_ends
            .iter()
            .filter(|s| o.cms.replicas.contains_key(*s) && !o.cms.in_contact.contains(*s))
            .map(|s| s.to_string())
            .collect();
        if !cut_off.is_empty() {
            return Err(format!(
                "{x}'s users cannot be failed over to {y}: its Front End servers ({}) are cut off from the CMS, so their replicas cannot be brought up to date (rule 4)",
                cut_off.join(", ")
            ));
        }
    }
    Ok(Transition { failback: false, pool: x.clone(), disaster })
}

/// Rule 23 (JJ721897): federation that left an Edge pool of `x`'s site while that pool was down
/// goes back to it, once it runs again, before `x` fails back. A spec that keeps the route
/// elsewhere makes the failback impossible in a supported order: this says which field to change.
fn federation_kept_away(d: &Desired, o: &Observed, x: &Fqdn) -> Option<String> {
    let site = &o.topology.pools.get(x)?.site;
    let routes = [
        ("SIP", o.history.sip_moved_from.as_ref(), d.sip_federation.as_ref().or(o.federation.sip_edge.as_ref()), "sipFederationPool"),
        ("XMPP", o.history.xmpp_moved_from.as_ref(), d.xmpp_federation.as_ref().or(o.federation.xmpp_edge.as_ref()), "xmppFederationPool"),
    ];
    for (kind, from, want, field) in routes {
        let Some(from) = from else { continue };
        let local = o.topology.edges.get(from).is_some_and(|e| &e.site == site);
        if !local || o.edge_health(from) == Health::Down || want == Some(from) {
            continue;
        }
        let kept = want.map(ToString::to_string).unwrap_or_else(|| "another Edge pool".into());
        return Some(format!(
            "{x} cannot be failed back while {kind} federation stays on {kept}: it left {from} while that Edge pool was down, {from} runs again, and rule 23 (JJ721897) moves federation back to the restored Edge pool before its site's pools fail back; set spec.edge.{field} on LyncDeployment/{} to {from} (it can move again after the failback), or keep {x} failed over with spec.failedOver",
            d.deployment
        ));
    }
    None
}

fn check_failback(d: &Desired, o: &Observed, t: &Targets, pt: &PairTarget, x: &Fqdn) -> Result<Transition, String> {
    let res = pt.spec.resource();
    let y = pt.spec.partner(x);
    if !o.health(x).is_alive() || !back_end_ok_after(o, t, x) {
        return Err(format!("{x} is not back online: its users stay on {y} until it is (rule 15)"));
    }
    if o.health(x) != Health::Up && o.health(y) != Health::Up {
        return Err(format!("lyncdr reaches neither {x} nor {y}, so it cannot run the failback"));
    }
    if o.health(y).is_alive() && o.pool(x).is_some_and(|p| p.from_partner.is_negative()) {
        return Err(format!(
            "{x} and {y} cannot reach each other (a network partition between their sites): failback needs both, and {y} is alive, so -DisasterMode is not an option"
        ));
    }
    let disaster = match o.health(y) {
        Health::Up | Health::Isolated => !back_end_ok_after(o, t, y),
        Health::Down => true,
        Health::Unknown => return Err(format!("the state of {y}, which serves {x}'s users, cannot be confirmed; refusing to fail back")),
    };
    if disaster && !pt.spec.allow_data_loss {
        return Err(format!(
            "{y} is down: failing {x}'s users back needs Invoke-CsPoolFailBack -DisasterMode, which loses what they changed on {y}; consent with spec.allowDataLoss: true on {res}"
        ));
    }
    cms_ready_for(o, t, None).map_err(|e| format!("{x} cannot be failed back: {e}"))?;
    if let Some(why) = federation_kept_away(d, o, x) {
        return Err(why);
    }
    Ok(Transition { failback: true, pool: x.clone(), disaster })
}
