//! First pass of the planner: the effective desired state. Applies consent and the
//! automatic-failover policies to the spec: which pool should serve each pair's users, whether
//! and how the CMS must move, which Back End server should be principal. Everything that cannot
//! be reached safely becomes a blocker here.

use std::collections::BTreeMap;

use super::Policy;
use super::builder::Builder;
use crate::desired::{Desired, PairDesired};
use crate::model::{DbType, FailoverState, Fqdn, Health, Observed, Role, Span, pairing_violations};

/// Who serves a pair's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PairState {
    Normal,
    /// This pool's users are served by its partner.
    FailedOver(Fqdn),
    /// A failover or failback of this pool is running.
    InProgress(Fqdn),
}

#[derive(Debug, Clone)]
pub(crate) struct PairTarget {
    pub d: PairDesired,
    pub current: PairState,
    pub target: PairState,
    /// The target comes from automatic-failover policy, not from the spec.
    pub automatic: bool,
    /// The pool operations that reach the target, in order (feasible, checked).
    pub transitions: Vec<Transition>,
    /// What the pairing itself still needs.
    pub pairing: Pairing,
}

/// The state of a pair's pairing and what makes it true (domain document 4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pairing {
    Established,
    /// Paired in the topology; local setup (install) or LYNCBACKUP (start) still missing on
    /// these Front End servers.
    Complete {
        install: Vec<Fqdn>,
        start: Vec<Fqdn>,
    },
    /// The topology must be changed to pair them; `former` lists (pool, former partner) for
    /// pools that were paired with another pool (a re-pair).
    Publish {
        former: Vec<(Fqdn, Fqdn)>,
    },
}

/// One pool failover or failback, with its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transition {
    pub failback: bool,
    pub pool: Fqdn,
    /// `-DisasterMode` (consented).
    pub disaster: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CmsMove {
    pub from: Fqdn,
    pub to: Fqdn,
    /// Disaster recovery: `-Force` with the backup SQL parameters (may lose CMS changes).
    pub force: bool,
    pub reason: String,
    pub rules: Vec<u8>,
    /// The spec asks for the move while the CMS is available and nothing needs it: it runs
    /// last, after every other change (rule 16: the CMS need not follow a failback).
    pub elective: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    pub pairs: Vec<PairTarget>,
    pub cms_move: Option<CmsMove>,
    /// Why steps that need the CMS cannot run (it is unavailable and will not be moved).
    pub cms_blocked: Option<String>,
    /// Pools whose databases should change principal, and to which role.
    pub principal: BTreeMap<Fqdn, Role>,
    /// Mirrored Back Ends with a witness whose principal's server is down: the witness fails
    /// them over on its own, so lyncdr waits (for at most this long) before doing it itself.
    pub witness_pending: BTreeMap<Fqdn, Span>,
}

pub(crate) fn pair_state(o: &Observed, a: &Fqdn, b: &Fqdn) -> PairState {
    for p in [a, b] {
        if o.failover(p).in_progress() {
            return PairState::InProgress(p.clone());
        }
    }
    for p in [a, b] {
        if o.failover(p) == FailoverState::FailedOver {
            return PairState::FailedOver(p.clone());
        }
    }
    PairState::Normal
}

pub(crate) fn compute(d: &Desired, o: &Observed, policy: &Policy, b: &mut Builder) -> Targets {
    let (principal, witness_pending) = principals(d, o, policy);
    let mut t = Targets { principal, witness_pending, ..Default::default() };
    for left in t.witness_pending.values() {
        b.recheck_after(*left);
    }
    let mut pairs: Vec<&PairDesired> = d.pairs.iter().collect();
    pairs.sort_by(|x, y| x.name.cmp(&y.name));
    for p in pairs {
        if let Some(mut pt) = pair_target(p, o, b) {
            // A pool operation needs the pair's Back Ends: it waits for a witness that is about to
            // fail one over (S20) rather than race it.
            if pt.current != pt.target
                && let Some(pool) = pt.d.pools.iter().find(|x| t.witness_pending.contains_key(*x))
            {
                b.notice(format!(
                    "{}: the users of {} and {} stay where they are until the Back End of {pool} has failed over (its witness does that on its own within about 5 minutes)",
                    pt.d.resource(),
                    pt.d.pools[0],
                    pt.d.pools[1]
                ));
                pt.target = pt.current.clone();
            }
            t.pairs.push(pt);
        }
    }
    // The CMS target depends on which pools fail over, and a failover may be infeasible
    // because of the CMS: settle both together. Each round only turns transitions off, so this
    // ends after at most one round per pair.
    let mut pair_blocks: Vec<(String, String)> = Vec::new();
    let mut cms_blocks: Vec<super::step::Blocker> = Vec::new();
    loop {
        let mut cms_builder = Builder::default();
        t.cms_move = None;
        t.cms_blocked = None;
        cms_target(d, o, policy, &mut t, &mut cms_builder);
        // A CMS blocker that made a failover infeasible stays reported after the failover is
        // dropped (it explains the pair's blocker).
        cms_blocks.extend(cms_builder.blockers().iter().cloned());
        let mut changed = false;
        for i in 0..t.pairs.len() {
            let pt = t.pairs[i].clone();
            if pt.current == pt.target || matches!(pt.current, PairState::InProgress(_)) {
                continue;
            }
            match transitions(d, o, &t, &pt) {
                Ok(tr) => t.pairs[i].transitions = tr,
                Err(reason) => {
                    pair_blocks.push((pt.d.resource(), reason));
                    t.pairs[i].target = pt.current.clone();
                    t.pairs[i].transitions.clear();
                    changed = true;
                }
            }
        }
        if !changed {
            b.merge(cms_builder);
            break;
        }
    }
    for x in cms_blocks {
        b.block(x.resource, x.reason);
    }
    for (r, m) in pair_blocks {
        b.block(r, m);
    }
    t
}

/// The pool operations from the current to the target state, or why they cannot run safely.
fn transitions(d: &Desired, o: &Observed, t: &Targets, pt: &PairTarget) -> Result<Vec<Transition>, String> {
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
fn cms_db_ok_after(o: &Observed, t: &Targets, pool: &Fqdn) -> bool {
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
    let res = pt.d.resource();
    let y = pt.d.partner(x);
    // Rule 26: names that would make the Response Group import fail block the failover itself.
    let clashes = super::ancillary::rgs_name_clashes(d, o, x);
    if !clashes.is_empty() && !d.rgs_resolve_name_conflicts {
        return Err(super::ancillary::rgs_clash_message(d, x, y, &clashes));
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
    if disaster && !pt.d.allow_data_loss {
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
    let res = pt.d.resource();
    let y = pt.d.partner(x);
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
    if disaster && !pt.d.allow_data_loss {
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

/// The principal each mirrored Back End should have: the spec's choice, or (when that server
/// is down and automatic failover is allowed) the other server; without a spec entry, the
/// current principal unless its server is down. A Back End whose witness will fail it over on
/// its own (principal's server down, the other up) is left to it for the grace period: those
/// come back separately, with the time left.
fn principals(d: &Desired, o: &Observed, policy: &Policy) -> (BTreeMap<Fqdn, Role>, BTreeMap<Fqdn, Span>) {
    let mut out = BTreeMap::new();
    let mut pending = BTreeMap::new();
    for (f, pool) in &o.topology.pools {
        if pool.back_end.mirror.is_none() {
            continue;
        }
        let Some(obs) = o.pool(f) else { continue };
        let be = &obs.back_end;
        if !be.primary_up && !be.mirror_up.unwrap_or(false) {
            continue;
        }
        let current = be.principal.get(&DbType::User).copied().unwrap_or_default();
        let (wanted, auto) = match d.back_ends.get(f) {
            Some(s) => (s.principal, s.automatic_failover),
            None => (current, true),
        };
        let effective = if be.server_up(wanted) || !auto || !be.server_up(wanted.other()) { wanted } else { wanted.other() };
        if be.principal.values().any(|r| *r != effective) {
            if pool.back_end.witness && !be.server_up(current) && be.server_up(current.other()) && effective == current.other() {
                let down_for = o.history.principal_down_since.get(f).map(|at| o.at.since(*at)).unwrap_or_default();
                if down_for < policy.witness_grace {
                    pending.insert(f.clone(), Span(policy.witness_grace.0 - down_for.0));
                    continue;
                }
            }
            out.insert(f.clone(), effective);
        }
    }
    (out, pending)
}

fn pair_target(p: &PairDesired, o: &Observed, b: &mut Builder) -> Option<PairTarget> {
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
        return Some(PairTarget { d: p.clone(), target: current.clone(), current, automatic: false, transitions: vec![], pairing });
    }
    if pairing != Pairing::Established {
        // Failover and failback wait until the pair backs each other up with data in sync.
        let spec = p.failed_over.clone().map(PairState::FailedOver).unwrap_or(PairState::Normal);
        if spec != current {
            b.block(&res, format!("{a} and {bb} are not (fully) paired yet; their users move once the pairing is complete"));
        }
        return Some(PairTarget { d: p.clone(), target: current.clone(), current, automatic: false, transitions: vec![], pairing });
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
    Some(PairTarget { d: p.clone(), current, target, automatic, transitions: vec![], pairing })
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

fn cms_target(d: &Desired, o: &Observed, policy: &Policy, t: &mut Targets, b: &mut Builder) {
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
                    || (!t.pairs.iter().any(|pt| pt.d.pools.contains(&a)) && o.failover(&a) != FailoverState::Normal)
                {
                    // The failover runs on a Front End of the receiving pool (rule 10): lyncdr must reach it.
                    b.block(&dep, format!("spec.centralManagementStore.activePool is {a}, which is not serving its own users or cannot be reached; the CMS stays on {m}"));
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
