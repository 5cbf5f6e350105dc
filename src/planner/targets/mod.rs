//! First pass of the planner: the effective desired state. Applies consent and the
//! automatic-failover policies to the spec: which pool should serve each pair's users, whether
//! and how the CMS must move, which Back End server should be principal. Everything that cannot
//! be reached safely becomes a blocker here.
//!
//! One file per decision: [`pairs`] (who serves each pair's users, pairing completion and
//! re-pairing), [`cms`] (whether and how the CMS moves), [`back_ends`] (which mirrored Back End
//! server is principal), [`feasibility`] (whether a pool operation can run safely, and in which
//! mode). This file holds the targets they produce and the loop that settles pairs and CMS
//! together.

mod back_ends;
mod cms;
mod feasibility;
mod pairs;

use std::collections::BTreeMap;

use super::Policy;
use super::ancillary::RgsOwners;
use super::builder::Builder;
use crate::desired::{Desired, PairDesired};
use crate::model::{FailoverState, Fqdn, Observed, Role, Span};

use back_ends::principals;
use cms::cms_target;
pub(crate) use feasibility::back_end_ok_after;
use feasibility::transitions;
use pairs::pair_target;

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
    pub spec: PairDesired,
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
    /// Who owns the Response Group workflows of each name (read when lyncdr manages Response
    /// Groups), for rule 26.
    pub rgs_owners: RgsOwners,
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
    let rgs_owners = if d.rgs_export_path.is_some() { RgsOwners::of(o) } else { RgsOwners::default() };
    let mut t = Targets { principal, witness_pending, rgs_owners, ..Default::default() };
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
                && let Some(pool) = pt.spec.pools.iter().find(|x| t.witness_pending.contains_key(*x))
            {
                b.notice(format!(
                    "{}: the users of {} and {} stay where they are until the Back End of {pool} has failed over (its witness does that on its own within about 5 minutes)",
                    pt.spec.resource(),
                    pt.spec.pools[0],
                    pt.spec.pools[1]
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
                    pair_blocks.push((pt.spec.resource(), reason));
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
