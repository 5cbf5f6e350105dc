//! User placement (domain document 4.17): `Move-CsUser` in batches, from a source pool that is
//! serving (lossless), or with `-Force` only with consent (contacts and meetings are dropped).
//! Never `-MoveConferenceData` (rule 30): the Backup Service carries conference data.

use super::builder::{Builder, piped};
use super::ctx::{Ctx, id};
use super::step::Expect;
use crate::desired::UserSelector;
use crate::model::{FailoverState, Fqdn};
use crate::ps::{Input, Invocation, script_block};

fn source_ok(c: &Ctx, p: &Fqdn) -> bool {
    c.up(p) && c.serves_itself(p) && c.o.failover(p) == FailoverState::Normal && c.o.pool(p).is_some_and(|o| o.back_end.available())
}

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    for pl in &c.d.placements {
        let res = format!("UserPlacement/{}", pl.name);
        let target = &pl.target;
        let target_ok = c.up(target)
            && c.serves_itself(target)
            && c.o.pool(target).is_some_and(|o| o.back_end.available() || c.t.principal.contains_key(target));
        let mut prev: Vec<String> = vec![];
        if c.failing_back(target) {
            prev.push(id::failback(target));
        }
        let mut batches: Vec<(Fqdn, Invocation, Expect, bool, usize)> = vec![];
        match &pl.selector {
            UserSelector::Users(users) => {
                let mut by_source: std::collections::BTreeMap<Fqdn, Vec<String>> = Default::default();
                let mut missing = vec![];
                for u in users {
                    match c.o.users.get(u) {
                        Some(Some(home)) if home == target => {}
                        Some(Some(home)) => by_source.entry(home.clone()).or_default().push(u.clone()),
                        _ => missing.push(u.clone()),
                    }
                }
                if !missing.is_empty() {
                    b.block(&res, format!("no such users: {}", missing.join(", ")));
                }
                for (source, list) in by_source {
                    let force = !source_ok(c, &source);
                    for chunk in list.chunks(pl.batch_size.max(1) as usize) {
                        let mut inv = Invocation::new("Move-CsUser").arg("Target", target.as_str());
                        if force {
                            inv = inv.switch("Force");
                        }
                        let expect = Expect::UsersHomed { users: chunk.to_vec(), pool: target.clone() };
                        batches.push((source.clone(), piped(inv, chunk.to_vec()), expect, force, chunk.len()));
                    }
                }
            }
            UserSelector::FromPool(source) => {
                let Some(n) = c.o.pool(source).and_then(|p| p.homed_users) else {
                    b.notice(format!("{res}: the users homed on {source} could not be counted"));
                    continue;
                };
                let force = !source_ok(c, source);
                let size = pl.batch_size.max(1) as u64;
                let mut left = n;
                while left > 0 {
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
                    batches.push((source.clone(), inv.piped_from(Input::Command(Box::new(query))), expect, force, take as usize));
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
        for (k, (source, inv, expect, force, count)) in batches.into_iter().enumerate() {
            if k >= c.policy.max_user_batches {
                b.notice(format!("{res}: {} more batches follow in later plans", total - k));
                break;
            }
            if force && !pl.allow_data_loss {
                b.block(
                    &res,
                    format!("{source} is not serving its users, so moving them needs Move-CsUser -Force, which drops their contacts and meetings for good; consent with spec.allowDataLoss: true on {res}"),
                );
                break;
            }
            let mut after = prev.clone();
            if c.failing_back(&source) {
                after.push(id::failback(&source));
            }
            let reason = if force {
                format!("home {count} users of {source} on {target} with -Force ({source} is not serving; consented)")
            } else {
                format!("home {count} users of {source} on {target}")
            };
            let step = b
                .step(format!("move-users/{}/{k}", pl.name), inv, target, res.clone())
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
