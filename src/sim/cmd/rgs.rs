//! Response Group disaster recovery (domain document 4.16, rules 25-26): Response Group
//! configuration is not replicated by the Backup Service, so it is exported and imported.

use serde_json::Value;

use super::{Ctx, Effect, Started, strip_identity};
use crate::backend::records::{RgsWorkflow, service_id};
use crate::model::Fqdn;
use crate::ps::Bound;
use crate::sim::errors::{CmdletError, err, rule_err, unknown_identity};
use crate::sim::world::RgsFile;
use crate::sim::{Simulator, replication};

/// The Response Group store (in the Back End) cannot be reached.
fn rgs_store_down(pool: &Fqdn) -> String {
    format!("Cannot connect to the Response Group configuration store of \"{pool}\": its Back End database is not available.")
}

fn app_server(sim: &Simulator, cmd: &str, value: &str) -> Result<Fqdn, CmdletError> {
    let name = strip_identity(value, &["ApplicationServer"]);
    match Fqdn::parse(&name) {
        Ok(f) if sim.topo.pools.contains_key(&f) => Ok(f),
        _ => Err(err(cmd, unknown_identity(value))),
    }
}

pub(crate) fn export(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Export-CsRgsConfiguration";
    let source = app_server(sim, CMD, b.str("Source").unwrap_or_default())?;
    let owner = match b.str("Owner") {
        Some(o) => app_server(sim, CMD, o)?,
        None => source.clone(),
    };
    if !sim.net_ref().host_up(&source) {
        return Err(err(CMD, format!("Cannot connect to the Response Group service on \"{source}\".")));
    }
    // Response Group configuration lives in the pool's Back End (the Application databases).
    if !replication::application_up(&sim.w, &sim.topo, &sim.net_ref(), &source) {
        return Err(err(CMD, rgs_store_down(&source)));
    }
    let workflows = sim.w.rgs.get(&source).and_then(|h| h.get(&owner)).cloned().unwrap_or_default();
    let file = b.str("FileName").unwrap_or_default().to_string();
    let remove_from = b.switch("RemoveExportedConfiguration").then(|| source.clone());
    Ok(Started::effect(sim.timings.rgs_transfer, Effect::RgsExport { file, owner, workflows, remove_from }))
}

pub(crate) fn import(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Import-CsRgsConfiguration";
    let dest = app_server(sim, CMD, b.str("Destination").unwrap_or_default())?;
    let file = b.str("FileName").unwrap_or_default().to_string();
    let Some(content) = sim.w.rgs_files.get(&file).cloned() else {
        return Err(err(CMD, format!("Could not find file '{file}'.")));
    };
    if !sim.net_ref().host_up(&dest) {
        return Err(err(CMD, format!("Cannot connect to the Response Group service on \"{dest}\".")));
    }
    if !replication::application_up(&sim.w, &sim.topo, &sim.net_ref(), &dest) {
        return Err(err(CMD, rgs_store_down(&dest)));
    }
    let overwrite = b.switch("OverwriteOwner");
    let rename = b.switch("ResolveNameConflicts");
    let new_owner = if overwrite { dest.clone() } else { content.owner.clone() };
    // Rule 26: workflow names are unique deployment-wide, or the import fails.
    if !rename {
        for (host, owners) in &sim.w.rgs {
            for (owner, names) in owners {
                // Copies of the same owner's workflows are the same workflows, not a clash.
                if owner == &new_owner {
                    continue;
                }
                if let Some(clash) = content.workflows.iter().find(|w| names.contains(w)) {
                    return Err(rule_err(
                        CMD,
                        26,
                        format!(
                            "A workflow named \"{clash}\" already exists (owner {owner}, hosted on {host}). Response Group names must be unique; rename it or use -ResolveNameConflicts."
                        ),
                    ));
                }
            }
        }
    }
    Ok(Started::effect(sim.timings.rgs_transfer, Effect::RgsImport { dest, file, overwrite_owner: overwrite, rename }))
}

pub(crate) fn get(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Get-CsRgsWorkflow";
    let host = b.str("Identity").map(|i| app_server(sim, CMD, i)).transpose()?;
    let owner = b.str("Owner").map(|o| app_server(sim, CMD, o)).transpose()?;
    let show_all = b.switch("ShowAll");
    if let Some(h) = &host
        && !replication::application_up(&sim.w, &sim.topo, &sim.net_ref(), h)
    {
        return Err(err(CMD, rgs_store_down(h)));
    }
    let mut out = Vec::new();
    for (h, owners) in &sim.w.rgs {
        if host.as_ref().is_some_and(|x| x != h) {
            continue;
        }
        for (o, names) in owners {
            // Without -Owner or -ShowAll only the host's own workflows are visible (S24).
            let visible = show_all || owner.as_ref() == Some(o) || (owner.is_none() && o == h);
            if !visible {
                continue;
            }
            for n in names {
                out.push(RgsWorkflow {
                    name: n.clone(),
                    owner_pool: o.to_string(),
                    identity: format!("service:{}", service_id("ApplicationServer", h)),
                    host_pool: h.to_string(),
                });
            }
        }
    }
    Ok(Started::output(sim.timings.query, super::query::render(CMD, &out)?))
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::RgsExport { file, owner, workflows, remove_from } => {
            sim.w.rgs_files.insert(file.clone(), RgsFile { owner: owner.clone(), workflows: workflows.clone(), taken_at: sim.now });
            if let Some(src) = remove_from
                && let Some(h) = sim.w.rgs.get_mut(src)
            {
                h.remove(owner);
            }
        }
        Effect::RgsImport { dest, file, overwrite_owner, rename } => {
            let Some(content) = sim.w.rgs_files.get(file).cloned() else {
                return Err(err("Import-CsRgsConfiguration", format!("Could not find file '{file}'.")));
            };
            let owner = if *overwrite_owner { dest.clone() } else { content.owner.clone() };
            let names: Vec<String> =
                if *rename { content.workflows.iter().map(|w| format!("{w} ({dest})")).collect() } else { content.workflows.clone() };
            sim.w.rgs.entry(dest.clone()).or_default().insert(owner, names);
        }
        _ => {}
    }
    Ok(Value::Null)
}
