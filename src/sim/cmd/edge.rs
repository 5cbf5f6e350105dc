//! Edge and site changes (domain document 4.6, 4.11-4.14): the Edge next hop
//! (`Set-CsEdgeServer -Registrar`), the SIP and XMPP federation routes (`Set-CsSite`), the
//! media Edge association of a Front End pool (`Set-CsConferenceServer` /
//! `Set-CsMediationServer -EdgeServer`), local setup (`Bootstrapper.exe`) and Lync services.

use serde_json::Value;

use super::{Ctx, Effect, Started, strip_identity};
use crate::model::{Fqdn, Product};
use crate::ps::Bound;
use crate::sim::Simulator;
use crate::sim::errors::{CmdletError, err, unknown_identity};

fn edge_pool(sim: &Simulator, cmd: &str, value: &str) -> Result<Fqdn, CmdletError> {
    let name = strip_identity(value, &["EdgeServer"]);
    match Fqdn::parse(&name) {
        Ok(f) if sim.topo.edges.contains_key(&f) => Ok(f),
        Ok(f) => match sim.edge_of(&f) {
            Some(e) => Ok(e.fqdn.clone()),
            None => Err(err(cmd, unknown_identity(&format!("EdgeServer:{name}")))),
        },
        Err(_) => Err(err(cmd, unknown_identity(value))),
    }
}

pub(crate) fn set_edge_server(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Set-CsEdgeServer";
    let edge = edge_pool(sim, CMD, b.str("Identity").unwrap_or("global"))?;
    let Some(reg) = b.str("Registrar") else {
        return Ok(Started::output(sim.timings.topology_change, Value::Null));
    };
    let pool = strip_identity(reg, &["Registrar"]);
    let pool = match Fqdn::parse(&pool) {
        Ok(f) if sim.topo.pools.contains_key(&f) => f,
        _ => return Err(err(CMD, format!("\"{reg}\" is not a Registrar in the topology; use Registrar:<Front End pool FQDN>."))),
    };
    sim.require_cms(CMD)?;
    if b.what_if() {
        return Ok(Started::output(crate::model::Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.topology_change, Effect::NextHop { edge, pool }))
}

pub(crate) fn set_site(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    const CMD: &str = "Set-CsSite";
    let id = strip_identity(b.str("Identity").unwrap_or_default(), &["site"]);
    if !sim.topo.sites.iter().any(|s| s.eq_ignore_ascii_case(&id)) {
        return Err(err(CMD, unknown_identity(&format!("site:{id}"))));
    }
    let route = |name: &str| -> Result<Option<Option<Fqdn>>, CmdletError> {
        match b.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
            Some(Value::String(s)) => edge_pool(sim, CMD, s).map(|e| Some(Some(e))),
            Some(other) => Err(err(CMD, format!("\"{other}\" is not an Edge server identity."))),
        }
    };
    let sip = route("FederationRoute")?;
    let xmpp = route("XmppFederationRoute")?;
    if sip.is_none() && xmpp.is_none() {
        return Ok(Started::output(sim.timings.topology_change, Value::Null));
    }
    if sip.is_some() && xmpp.is_some() {
        return Err(err(CMD, "lyncdr simulator: change -FederationRoute and -XmppFederationRoute in separate calls."));
    }
    sim.require_cms(CMD)?;
    // Rule 21: the new XMPP Edge pool's services are stopped while the route is repointed
    // (JJ688065). Moving the route back to the Edge pool it left while that pool was down is the
    // failback of JJ721897, which starts the restored pool's services first and stops nothing.
    if let Some(Some(e)) = &xmpp {
        let running: Vec<String> = sim.w.edges[e].services.iter().filter(|(_, r)| **r).map(|(s, _)| s.to_string()).collect();
        let failback = sim.w.xmpp_moved_from.as_ref() == Some(e);
        if !running.is_empty() && sim.w.xmpp_federation.as_ref() != Some(e) && !failback {
            sim.rule(
                CMD,
                21,
                format!(
                    "stop the Lync services on the new XMPP Edge servers ({}) before repointing the XMPP federation route",
                    running.join(", ")
                ),
            )?;
        }
    }
    if b.what_if() {
        return Ok(Started::output(crate::model::Span::ZERO, Value::Null));
    }
    // Issue 14 finding (fidelity): an Edge pool the deployment cannot reach is lost to it, as
    // one that is down: the route that left it comes back by the failback procedure. Judged
    // from the server running the cmdlet, not from the ground truth no server can see.
    let lost = |old: Option<&Fqdn>| {
        old.is_some_and(|o| {
            let net = sim.net_ref();
            !edge_running(sim, o) || !sim.topo.edges.get(o).is_some_and(|e| e.servers.iter().any(|s| net.reaches(Some(&ctx.server), s)))
        })
    };
    let effect = match (sip, xmpp) {
        (Some(edge), _) => Effect::Federation { xmpp: false, from_lost: lost(sim.w.sip_federation.as_ref()), edge },
        (None, Some(edge)) => Effect::Federation { xmpp: true, from_lost: lost(sim.w.xmpp_federation.as_ref()), edge },
        (None, None) => unreachable!("checked above"),
    };
    Ok(Started::effect(sim.timings.topology_change, effect))
}

pub(crate) fn set_media_edge(sim: &mut Simulator, _ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let cmd = b.spec.name;
    let mediation = cmd == "Set-CsMediationServer";
    let prefix = if mediation { "MediationServer" } else { "ConferencingServer" };
    let raw = b.str("Identity").unwrap_or_default();
    let pool = match Fqdn::parse(&strip_identity(raw, &[prefix])) {
        Ok(f) if sim.topo.pools.contains_key(&f) => f,
        _ => return Err(err(cmd, unknown_identity(raw))),
    };
    let edge = match b.get("EdgeServer") {
        None => return Ok(Started::output(sim.timings.topology_change, Value::Null)),
        Some(Value::Null) => None,
        Some(v) => Some(edge_pool(sim, cmd, v.as_str().unwrap_or_default())?),
    };
    sim.require_cms(cmd)?;
    // Rule 22: associate a Front End pool with an Edge pool that runs.
    if let Some(e) = &edge {
        let up = sim.net_ref().host_up(e) && sim.w.edges[e].services.values().any(|r| *r);
        if !up {
            sim.rule(cmd, 22, format!("Edge pool {e} is not running; associate {pool} with a running Edge pool"))?;
        }
    }
    if b.what_if() {
        return Ok(Started::output(crate::model::Span::ZERO, Value::Null));
    }
    Ok(Started::effect(sim.timings.topology_change, Effect::MediaEdge { pool, mediation, edge }))
}

pub(crate) fn bootstrapper(sim: &mut Simulator, ctx: &Ctx, _b: &Bound) -> Result<Started, CmdletError> {
    // Setup reads the configuration the server's local replica holds when it starts; changes
    // that reach the replica while it runs are not applied.
    let epoch = sim.w.cms.replica_epoch.get(&ctx.server).copied().unwrap_or(0);
    let enabled = sim.w.enabled_epoch;
    Ok(Started::effect(sim.timings.bootstrapper, Effect::Bootstrap { server: ctx.server.clone(), epoch, enabled }))
}

pub(crate) fn service(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let cmd = b.spec.name;
    let running = cmd == "Start-CsWindowsService";
    let server = match b.str("ComputerName") {
        Some(c) => match Fqdn::parse(c) {
            Ok(f) if sim.hosts.site_of(&f).is_some() => f,
            _ => return Err(err(cmd, format!("Cannot find computer \"{c}\"."))),
        },
        None => ctx.server.clone(),
    };
    let name = b.str("Name").map(str::to_ascii_uppercase);
    let backup_only = name.as_deref() == Some("LYNCBACKUP");
    if backup_only && !sim.w.fe_backup.get(&server).is_some_and(|b| b.installed) {
        // The Backup Service is installed by local setup once the pool is paired (JJ204773).
        return Err(err(cmd, "Cannot find any service with service name 'LYNCBACKUP'."));
    }
    // Rule 13 (SfB 2019, JJ204773): the cumulative updates are re-applied after local setup
    // installed the pairing components, then the Backup Service starts.
    if backup_only && running && sim.w.behind_on_updates.contains(&server) {
        sim.rule(
            cmd,
            13,
            format!(
                "local setup installed the pairing components on {server} at the release version; re-apply the cumulative update installed on the server before starting the Backup Service"
            ),
        )?;
    }
    // Rule 21 (JJ688065): the new XMPP Edge pool's services start only once the XMPP DNS
    // records point at it and port 5269 is open (as far as the deployment can tell: an Edge pool
    // its server cannot reach counts as down, as the planner must assume).
    if running
        && !backup_only
        && let Some(e) = sim.edge_of(&server).map(|e| e.fqdn.clone())
        && sim.w.xmpp_awaiting_dns.as_ref() == Some(&e)
        && sim.xmpp_dns_target_seen_from(&server).as_ref() != Some(&e)
    {
        sim.rule(
            cmd,
            21,
            format!(
                "XMPP federation was moved to {e}: point the XMPP federation A record and the _xmpp-server._tcp SRV record (port 5269) at it before starting its services"
            ),
        )?;
    }
    if let Some(n) = &name
        && !backup_only
        && !KNOWN_SERVICES.contains(&n.as_str())
    {
        return Err(err(cmd, format!("Cannot find any service with service name '{n}'.")));
    }
    let d = if running { sim.timings.service_start } else { sim.timings.service_stop };
    Ok(Started::effect(d, Effect::Service { server, running, backup_only }))
}

/// Pairing the pool that hosts the CMS sets up a standby CMS in the partner pool (domain
/// document 2.4): the sim makes it exist once local setup has installed the pairing components
/// on every Front End of both pools. It starts empty; the Backup Service replicates into it.
fn standby_cms_after_setup(sim: &mut Simulator) {
    let Some(master) = sim.w.cms.master.clone() else { return };
    let Some(partner) = sim.topo.partner(&master).cloned() else { return };
    if sim.w.cms.standby.is_some() {
        return;
    }
    let installed = |p: &Fqdn| sim.topo.pools[p].front_ends.iter().all(|fe| sim.w.fe_backup.get(fe).is_some_and(|b| b.installed));
    if installed(&master) && installed(&partner) {
        sim.w.cms.standby = Some(partner);
        sim.w.cms.ver_standby = 0.0;
    }
}

/// An Edge pool whose host runs with Lync services started.
fn edge_running(sim: &Simulator, e: &Fqdn) -> bool {
    sim.net_ref().host_up(e) && sim.w.edges.get(e).is_some_and(|rt| rt.services.values().any(|r| *r))
}

const KNOWN_SERVICES: &[&str] =
    &["RTCSRV", "RTCMRAUTH", "RTCMEDIARELAY", "RTCDATAPROXY", "RTCXMPPTGWPX", "REPLICA", "RTCCLSAGT", "FABRICHOSTSVC"];

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::NextHop { edge, pool } => {
            if let Some(rt) = sim.w.edges.get_mut(edge) {
                rt.next_hop = Some(pool.clone());
            }
            sim.config_changed();
        }
        Effect::Federation { xmpp, edge, from_lost } => {
            if *xmpp {
                if sim.w.xmpp_federation != *edge {
                    let old = sim.w.xmpp_federation.clone();
                    let old_down = *from_lost || old.as_ref().is_some_and(|o| !edge_running(sim, o));
                    sim.w.xmpp_moved_from = if old_down { old } else { None };
                    // Moved to an Edge pool whose services are stopped (JJ688065): they wait for DNS.
                    let stopped = edge.as_ref().is_some_and(|e| sim.w.edges.get(e).is_some_and(|rt| rt.services.values().all(|r| !*r)));
                    sim.w.xmpp_awaiting_dns = if stopped { edge.clone() } else { None };
                }
                sim.w.xmpp_federation = edge.clone();
            } else {
                if sim.w.sip_federation != *edge {
                    let old = sim.w.sip_federation.clone();
                    let old_down = *from_lost || old.as_ref().is_some_and(|o| !edge_running(sim, o));
                    sim.w.federation_moved_from = if old_down { old } else { None };
                }
                sim.w.sip_federation = edge.clone();
            }
            sim.config_changed();
            if !*xmpp && let Some(e) = edge {
                // Rule 19: the Edge servers of the new federation pool need their setup re-run.
                let epoch = sim.w.cms.epoch;
                if let Some(rt) = sim.w.edges.get_mut(e) {
                    rt.setup_required = epoch;
                }
            }
        }
        Effect::MediaEdge { pool, mediation, edge } => {
            let old = sim.w.pools.get(pool).and_then(|rt| rt.conferencing_edge.clone());
            let old_down = old.as_ref().is_some_and(|o| !edge_running(sim, o));
            if let Some(rt) = sim.w.pools.get_mut(pool) {
                if *mediation {
                    rt.mediation_edge = edge.clone();
                } else {
                    if rt.conferencing_edge != *edge {
                        rt.media_moved_from = if old_down { old } else { None };
                    }
                    rt.conferencing_edge = edge.clone();
                }
            }
            sim.config_changed();
        }
        Effect::Bootstrap { server, epoch, enabled } => {
            let epoch = *epoch;
            if let Some(pool) = sim.pool_of(server).map(|p| p.fqdn.clone()) {
                // On a Front End: install the pairing components (and LYNCBACKUP) once the server
                // knows the enabled topology pairs its pool; remove them when it no longer does.
                let changed = sim.w.pairing_epoch.get(&pool).copied().unwrap_or(0);
                let knows = epoch >= changed && *enabled >= changed;
                let paired = sim.topo.partner(&pool).is_some();
                let sfb2019 = sim.topo.pools[&pool].traits.product == Product::SfB2019;
                if knows && let Some(b) = sim.w.fe_backup.get_mut(server) {
                    if paired {
                        if !b.installed && sfb2019 {
                            // New components at the release version: the server is behind its
                            // cumulative update until a person re-applies it (JJ204773).
                            sim.w.behind_on_updates.insert(server.clone());
                        }
                        b.installed = true;
                    } else {
                        *b = Default::default();
                    }
                }
                if knows && paired {
                    standby_cms_after_setup(sim);
                }
            }
            if let Some(edge) = sim.edge_of(server).map(|e| e.fqdn.clone())
                && let Some(rt) = sim.w.edges.get_mut(&edge)
            {
                rt.setup_epoch.insert(server.clone(), epoch);
            }
        }
        Effect::Service { server, running, backup_only } => {
            if *running && !*backup_only && sim.edge_of(server).map(|e| &e.fqdn) == sim.w.xmpp_awaiting_dns.as_ref() {
                sim.w.xmpp_awaiting_dns = None;
            }
            if *backup_only {
                if let Some(b) = sim.w.fe_backup.get_mut(server) {
                    b.running = *running && b.installed;
                }
            } else if let Some(edge) = sim.edge_of(server).map(|e| e.fqdn.clone())
                && let Some(rt) = sim.w.edges.get_mut(&edge)
            {
                rt.services.insert(server.clone(), *running);
            }
        }
        _ => {}
    }
    Ok(Value::Null)
}
