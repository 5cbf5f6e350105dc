//! User placement (domain document 4.17): `Move-CsUser` in batches, from a source pool that
//! serves its users (lossless; after its failback when this plan fails it back), or with
//! `-Force` only from a pool confirmed down and only with consent (contacts and meetings are
//! dropped for good). A running pool whose users stay failed over is a blocker naming the
//! PoolPair field. Never `-MoveConferenceData` (rule 30): the Backup Service carries conference
//! data.

use super::builder::{Builder, piped};
use super::ctx::{Ctx, id};
use super::step::Expect;
use super::targets::back_end_ok_after;
use crate::desired::UserSelector;
use crate::model::{Fqdn, Health};
use crate::ps::{Input, Invocation, script_block};

/// How the users of a source pool can be moved.
enum Source {
    /// The source serves them (now, or after a failback of this plan): no `-Force`.
    Lossless,
    /// The source is confirmed down (by lyncdr and its partner): only `-Force`, which drops
    /// contacts and meetings, with consent.
    Lost,
    /// Not now, and not with `-Force` either.
    Blocked(String),
}

/// Decided from the targets, not the current state: a pool failed back in this plan serves its
/// users once the failback ran (the moves wait for it). `-Force` is only for a pool confirmed
/// down: a running pool's users move losslessly once it serves them again.
fn source(c: &Ctx, p: &Fqdn, res: &str) -> Source {
    match c.health(p) {
        Health::Down => return Source::Lost,
        Health::Unknown => {
            return Source::Blocked(format!(
                "the state of {p} cannot be confirmed (neither lyncdr nor its partner reaches it); Move-CsUser -Force, which drops contacts and meetings for good, is only for a pool confirmed down"
            ));
        }
        Health::Isolated => {
            return Source::Blocked(format!("lyncdr cannot reach {p}, which is alive; its users move once it is reachable"));
        }
        Health::Up => {}
    }
    if c.observed.failover(p).in_progress() {
        return Source::Blocked(format!("a failover or failback of {p} is running; its users move once it has finished"));
    }
    if !c.serves_itself(p) {
        let partner = c.observed.topology.partner(p).map(ToString::to_string).unwrap_or_default();
        let pair = c.pair_of(p).map(|pt| pt.spec.resource()).unwrap_or_default();
        let how = if c.pair_of(p).is_some_and(|pt| pt.automatic) {
            format!("approve the failback with the annotation lyncdr.io/approve-failback=true on {pair}")
        } else {
            format!("set spec.failedOver: [] on {pair}")
        };
        return Source::Blocked(format!(
            "{p} runs, but its users are (to be) served by {partner}: moving them now needs Move-CsUser -Force, which drops their contacts and meetings for good. Fail them back first ({how}); {res} then moves them without -Force"
        ));
    }
    if !back_end_ok_after(c.observed, &c.targets, p) {
        return Source::Blocked(format!("the Back End of {p} is not available; its users move once it is"));
    }
    Source::Lossless
}

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    for pl in &c.desired.placements {
        let res = format!("UserPlacement/{}", pl.name);
        let target = &pl.target;
        let target_ok = c.up(target)
            && c.serves_itself(target)
            && c.observed.pool(target).is_some_and(|o| o.back_end.available() || c.targets.principal.contains_key(target));
        let mut prev: Vec<String> = vec![];
        if c.failing_back(target) {
            prev.push(id::failback(target));
        }
        // (source, invocation, expectation, -Force, users, name): a batch is named by what it moves,
        // so the batches a running plan has not reached keep their ids in the next plan.
        let mut batches: Vec<(Fqdn, Invocation, Expect, bool, usize, String)> = vec![];
        match &pl.selector {
            UserSelector::Users(users) => {
                let mut by_source: std::collections::BTreeMap<Fqdn, Vec<String>> = Default::default();
                let mut missing = vec![];
                for u in users {
                    match c.observed.users.get(u) {
                        Some(Some(home)) if home == target => {}
                        Some(Some(home)) => by_source.entry(home.clone()).or_default().push(u.clone()),
                        _ => missing.push(u.clone()),
                    }
                }
                if !missing.is_empty() {
                    b.block(&res, format!("no such users: {}", missing.join(", ")));
                }
                for (source, list) in by_source {
                    let force = match self::source(c, &source, &res) {
                        Source::Lossless => false,
                        Source::Lost => true,
                        Source::Blocked(why) => {
                            b.block(&res, why);
                            continue;
                        }
                    };
                    for chunk in list.chunks(pl.batch_size.max(1) as usize) {
                        let mut inv = Invocation::new("Move-CsUser").arg("Target", target.as_str());
                        if force {
                            inv = inv.switch("Force");
                        }
                        let expect = Expect::UsersHomed { users: chunk.to_vec(), pool: target.clone() };
                        let name = chunk.first().map(|u| u.trim_start_matches("sip:").to_string()).unwrap_or_default();
                        batches.push((source.clone(), piped(inv, chunk.to_vec()), expect, force, chunk.len(), name));
                    }
                }
            }
            UserSelector::FromPool(source) => {
                let Some(n) = c.observed.pool(source).and_then(|p| p.homed_users) else {
                    b.notice(format!("{res}: the users homed on {source} could not be counted"));
                    continue;
                };
                let force = match self::source(c, source, &res) {
                    Source::Lossless => false,
                    Source::Lost => true,
                    Source::Blocked(why) => {
                        b.block(&res, why);
                        continue;
                    }
                };
                let size = pl.batch_size.max(1) as u64;
                let mut left = n;
                while left > 0 {
                    let name = format!("{source}/{left}");
                    let take = left.min(size);
                    left -= take;
                    let query = Invocation::new("Get-CsUser")
                        .arg("Filter", script_block(format!("RegistrarPool -eq \"{source}\"")))
                        .arg("ResultSize", take);
                    let mut inv = Invocation::new("Move-CsUser").arg("Target", target.as_str());
                    if force {
                        inv = inv.switch("Force");
                    }
                    let expect = Expect::HomedAtMost { pool: source.clone(), count: left };
                    batches.push((source.clone(), inv.piped_from(Input::Command(Box::new(query))), expect, force, take as usize, name));
                }
            }
        }
        if batches.is_empty() {
            continue;
        }
        if !target_ok {
            b.block(&res, format!("{target} is not serving its own users, so users cannot be homed on it now"));
            continue;
        }
        let total = batches.len();
        for (k, (source, inv, expect, force, count, name)) in batches.into_iter().enumerate() {
            if k >= c.policy.max_user_batches {
                b.notice(format!("{res}: {} more batches follow in later plans", total - k));
                break;
            }
            if force && !pl.allow_data_loss {
                b.block(
                    &res,
                    format!("{source} is confirmed down, so moving its users needs Move-CsUser -Force, which drops their contacts and meetings for good; consent with spec.allowDataLoss: true on {res}"),
                );
                break;
            }
            let mut after = prev.clone();
            if c.failing_back(&source) {
                after.push(id::failback(&source));
            }
            let reason = if force {
                format!("home {count} users of {source} on {target} with -Force ({source} is lost; consented)")
            } else {
                format!("home {count} users of {source} on {target}")
            };
            let step = b
                .step(format!("move-users/{}/{name}", pl.name), inv, target, res.clone())
                .reason(reason)
                .rules(&[30])
                .data_loss(force)
                .after(after)
                .expect(expect)
                .add();
            prev = vec![step];
        }
    }
}
