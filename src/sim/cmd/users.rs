//! User placement (domain document 4.17): `Move-CsUser`, and the `Get-CsUser` /
//! `Measure-Object` pipelines used to select and count users by home pool.

use serde_json::{Value, json};

use super::{Ctx, Effect, Started};
use crate::backend::records::MeasureObject;
use crate::model::sip::{generated_user, normalize_sip};
use crate::model::{FailoverState, Fqdn};
use crate::ps::{Bound, Input, Invocation};
use crate::sim::errors::{self, CmdletError, err};
use crate::sim::{Simulator, replication};

/// The users homed on a pool, in a stable order: named, generated, then rehomed in.
pub(crate) fn users_on(sim: &Simulator, pool: &Fqdn, limit: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let limit = limit.unwrap_or(usize::MAX);
    let home_of = |u: &str| sim.w.rehomed.get(u).cloned().or_else(|| replication::original_home(&sim.topo, u));
    if let Some(p) = sim.topo.pools.get(pool) {
        for u in &p.named_users {
            if out.len() >= limit {
                return out;
            }
            if home_of(u).as_ref() == Some(pool) {
                out.push(u.clone());
            }
        }
        for i in 1..=p.users {
            if out.len() >= limit {
                return out;
            }
            let u = generated_user(pool, i);
            if !sim.w.rehomed.contains_key(&u) || sim.w.rehomed.get(&u) == Some(pool) {
                out.push(u);
            }
        }
    }
    for (u, home) in &sim.w.rehomed {
        if out.len() >= limit {
            break;
        }
        if home == pool && replication::original_home(&sim.topo, u).as_ref() != Some(pool) {
            out.push(u.clone());
        }
    }
    out
}

/// The current home pool of a user, if the user exists.
pub(crate) fn home_of(sim: &Simulator, sip: &str) -> Option<Fqdn> {
    let s = normalize_sip(sip)?;
    sim.w.rehomed.get(&s).cloned().or_else(|| replication::original_home(&sim.topo, &s))
}

fn filter_pool(sim: &Simulator, cmd: &str, v: &Value) -> Result<Fqdn, CmdletError> {
    let text = v.get("ScriptBlock").and_then(Value::as_str).or(v.as_str()).unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() == 3 && parts[0].eq_ignore_ascii_case("RegistrarPool") && parts[1].eq_ignore_ascii_case("-eq") {
        let pool = parts[2].trim_matches(|c| c == '"' || c == '\'');
        let pool = super::strip_identity(pool, &["Registrar"]);
        if let Ok(f) = Fqdn::parse(&pool)
            && sim.topo.pools.contains_key(&f)
        {
            return Ok(f);
        }
        return Err(err(cmd, errors::unknown_pool(&pool)));
    }
    Err(err(cmd, format!("lyncdr simulator supports -Filter {{RegistrarPool -eq \"<pool fqdn>\"}} only, not {{{text}}}.")))
}

fn user_object(sip: &str, home: &Fqdn) -> Value {
    json!({ "Identity": sip, "SipAddress": sip, "RegistrarPool": home.to_string(), "Enabled": true })
}

/// Evaluates a `Get-CsUser` invocation to a list of SIP addresses.
fn get_users(sim: &Simulator, inv: &Invocation, product: crate::model::Product) -> Result<Vec<String>, CmdletError> {
    let b = crate::ps::bind(inv, product).map_err(|e| err(&inv.cmdlet, e.0))?;
    if b.spec.name != "Get-CsUser" {
        return Err(err(&inv.cmdlet, "lyncdr simulator: only Get-CsUser can feed users into this pipeline."));
    }
    let limit = b.int("ResultSize").map(|n| n.max(0) as usize);
    if let Some(id) = b.str("Identity") {
        return match home_of(sim, id) {
            Some(_) => Ok(vec![normalize_sip(id).unwrap_or_default()]),
            None => Err(err("Get-CsUser", errors::unknown_identity(id))),
        };
    }
    match b.get("Filter") {
        Some(f) => Ok(users_on(sim, &filter_pool(sim, "Get-CsUser", f)?, limit)),
        None => {
            let mut all = Vec::new();
            for p in sim.topo.pools.keys() {
                all.extend(users_on(sim, p, limit.map(|l| l.saturating_sub(all.len()))));
            }
            Ok(all)
        }
    }
}

pub(crate) fn query(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    if b.spec.name == "Measure-Object" {
        let count = match &b.input {
            Some(Input::Values(v)) => v.len(),
            Some(Input::Command(inv)) => get_users(sim, inv, ctx.product)?.len(),
            None => 0,
        };
        let measured = super::query::render(b.spec.name, &MeasureObject { count: count as u64 })?;
        return Ok(Started::output(sim.timings.query, measured));
    }
    let inv = rebuild(b);
    let users = get_users(sim, &inv, ctx.product)?;
    let objs: Vec<Value> = users.iter().filter_map(|u| home_of(sim, u).map(|h| user_object(u, &h))).collect();
    let out = if b.str("Identity").is_some() { objs.into_iter().next().unwrap_or(Value::Null) } else { Value::Array(objs) };
    Ok(Started::output(sim.timings.query, out))
}

fn rebuild(b: &Bound) -> Invocation {
    let mut inv = Invocation::new(b.spec.name);
    for (k, v) in &b.args {
        inv.args.insert((*k).to_string(), v.clone());
    }
    inv
}

pub(crate) fn move_user(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Move-CsUser";
    let users: Vec<String> = match (&b.input, b.get("Identity")) {
        (_, Some(Value::String(s))) => vec![s.clone()],
        (Some(Input::Values(v)), None) => v.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        (Some(Input::Command(inv)), None) => get_users(sim, inv, ctx.product)?,
        _ => return Err(err(CMD, "Cannot process command because of one or more missing mandatory parameters: Identity.")),
    };
    let target = sim.pool_fqdn(CMD, b, "Target")?;
    let force = b.switch("Force");
    let target_ok = {
        let net = sim.net_ref();
        replication::pool_serving_ok(&sim.w, &sim.topo, &net, &target) && sim.w.pools[&target].state == FailoverState::Normal
    };
    if !target_ok {
        return Err(err(CMD, format!("Cannot move users to \"{target}\": the pool is not available or its users are failed over.")));
    }
    let mut normalized = Vec::new();
    for u in &users {
        let Some(home) = home_of(sim, u) else {
            return Err(err(CMD, errors::unknown_identity(u)));
        };
        let sip = normalize_sip(u).unwrap_or_default();
        let source_ok = {
            let net = sim.net_ref();
            replication::pool_serving_ok(&sim.w, &sim.topo, &net, &home) && sim.w.pools[&home].state == FailoverState::Normal
        };
        if !source_ok && !force {
            return Err(err(
                CMD,
                format!(
                    "Cannot move user \"{sip}\": the source pool \"{home}\" is not available. Use -Force to move the user without contacts and meetings; that data cannot be recovered."
                ),
            ));
        }
        // Rule 30: no -MoveConferenceData in a disaster recovery move.
        if b.switch("MoveConferenceData") && !source_ok {
            sim.rule(
                CMD,
                30,
                format!("do not use -MoveConferenceData while {home} is failed over or down; the Backup Service carries conference data"),
            )?;
        }
        if home != target {
            normalized.push(sip);
        }
    }
    if b.what_if() {
        return Ok(Started::output(crate::model::Span::ZERO, Value::Null));
    }
    let duration = sim.timings.move_user.scale(users.len().max(1) as u64, 1);
    Ok(Started::effect(duration, Effect::MoveUsers { users: normalized, target, force }))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    if let Effect::MoveUsers { users, target, force } = e {
        for u in users {
            let original = replication::original_home(&sim.topo, u);
            if original.as_ref() == Some(target) {
                sim.w.rehomed.remove(u);
            } else {
                sim.w.rehomed.insert(u.clone(), target.clone());
            }
            if *force {
                sim.stats.users_data_dropped += 1;
            }
        }
    }
    Ok(Value::Null)
}
