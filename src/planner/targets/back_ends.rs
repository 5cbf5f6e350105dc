//! Which server of each mirrored Back End should be principal: the spec, automatic failover of
//! a server that is down, and the grace period a witness gets to do it on its own.

use std::collections::BTreeMap;

use crate::desired::Desired;
use crate::model::{DbType, Fqdn, Observed, Role, Span};
use crate::planner::Policy;

/// The principal each mirrored Back End should have: the spec's choice, or (when that server
/// is down and automatic failover is allowed) the other server; without a spec entry, the
/// current principal unless its server is down. A Back End whose witness will fail it over on
/// its own (principal's server down, the other up) is left to it for the grace period: those
/// come back separately, with the time left.
pub(super) fn principals(d: &Desired, o: &Observed, policy: &Policy) -> (BTreeMap<Fqdn, Role>, BTreeMap<Fqdn, Span>) {
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
