//! Edge routing (domain document 4.6, 4.11-4.14): each Edge pool's next hop follows the pool
//! serving its users (repointed before a failover, rule 11, and back after failback); the SIP
//! federation route moves with a topology change and a re-run of local setup on the new Edge
//! servers (rules 19-20); the XMPP route moves between stopping and starting the new Edge
//! servers' services (rule 21); Front End pools use a running Edge pool for media (rule 22).
//! With `edge.automaticFailover`, routes leave a down Edge pool for the first running fallback
//! and return when it is back.

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::{Expect, Remember};
use crate::model::{Fqdn, Health};
use crate::ps::Invocation;
use crate::ps::catalog::bootstrapper_path;

fn reachable(c: &Ctx, e: &Fqdn) -> bool {
    c.observed.edges.get(e).is_some_and(|x| x.direct.is_ok())
}

/// The Edge pool a route should use: `base` unless it is confirmed down (by the operator and
/// from another site: an Edge pool only the operator cannot reach still carries federation and
/// media), otherwise (with automatic Edge failover) the first reachable fallback, then any
/// other reachable Edge pool.
fn choose(c: &Ctx, base: &Fqdn) -> Fqdn {
    if c.observed.edge_health(base) != Health::Down || !c.desired.edge_failover {
        return base.clone();
    }
    let others = c.observed.topology.edges.keys().filter(|e| !c.desired.edge_fallbacks.contains(e));
    c.desired.edge_fallbacks.iter().chain(others).find(|e| *e != base && reachable(c, e)).cloned().unwrap_or_else(|| base.clone())
}

fn servers(c: &Ctx, e: &Fqdn) -> Vec<Fqdn> {
    c.observed.topology.edges.get(e).map(|x| x.servers.clone()).unwrap_or_default()
}

/// The servers of an Edge pool that answered the last observation (steps can run there).
fn answering(c: &Ctx, e: &Fqdn) -> Vec<Fqdn> {
    c.observed.edges.get(e).map(|x| x.services_running.keys().cloned().collect()).unwrap_or_default()
}

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    route_notices(c, b);
    xmpp_dns_notice(c, b);
    next_hops(c, b);
    sip_federation(c, b);
    xmpp_federation(c, b);
    edge_services(c, b);
    pending_setup(c, b);
    media(c, b);
}

/// What people should know about the Edge pools carrying federation, for as long as it holds:
/// a route on an Edge pool that is down with nowhere to move it, or on one lyncdr cannot reach
/// (it stays there while another site reaches it, or while that cannot be confirmed).
fn route_notices(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    let routes = [
        ("SIP", c.observed.federation.sip_edge.as_ref(), c.desired.sip_federation.as_ref(), "sipFederationPool"),
        ("XMPP", c.observed.federation.xmpp_edge.as_ref(), c.desired.xmpp_federation.as_ref(), "xmppFederationPool"),
    ];
    for (kind, current, desired, field) in routes {
        let Some(cur) = current else { continue };
        let want = choose(c, desired.unwrap_or(cur));
        match c.observed.edge_health(cur) {
            Health::Down if want == *cur => b.notice(format!(
                "{dep}: {kind} federation uses {cur}, which is down; enable spec.edge.automaticFailover with fallbackPools, or set spec.edge.{field} to a running Edge pool"
            )),
            Health::Isolated => b.notice(format!(
                "{dep}: {kind} federation stays on {cur}: lyncdr cannot reach it, but a Front End pool of another site does, so it is alive"
            )),
            Health::Unknown => b.notice(format!(
                "{dep}: {kind} federation stays on {cur}: neither lyncdr nor another site can reach it, so it cannot be confirmed down"
            )),
            _ => {}
        }
    }
}

fn next_hops(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    for (e, eobs) in &c.observed.edges {
        // An Edge that forwards to a pool about to fail over is repointed even if lyncdr cannot
        // reach it: unless it is confirmed down (from another site too), it may still run (rule
        // 11), and the change is only a topology write. An Edge pool that is down does not
        // matter to the failover (the whole-site case, 4.20); other unreachable Edge pools are
        // left until they return.
        let forwards_to_failing = eobs.next_hop.as_ref().is_some_and(|n| c.failing_over(n));
        // "Down" as far as lyncdr can tell is trusted only when the Edge pool went with the
        // site of the pool it forwards to (a whole site lost); an Edge pool of another site may
        // only be cut off from the vantage points lyncdr has, and Lync refuses the failover
        // while it still forwards there.
        let down_with_its_site = eobs.health() == Health::Down
            && eobs.next_hop.as_ref().is_some_and(|n| {
                c.observed.topology.pools.get(n).zip(c.observed.topology.edges.get(e)).is_some_and(|(p, ed)| p.site == ed.site)
            });
        if !reachable(c, e) && (!forwards_to_failing || down_with_its_site) {
            continue;
        }
        let Some(base) = c.desired.next_hops.get(e).cloned().or_else(|| eobs.next_hop.clone()) else { continue };
        let want = c.target_serving(&base);
        if eobs.next_hop.as_ref() == Some(&want) {
            continue;
        }
        let deps = match c.cms_deps() {
            Ok(d) => d,
            Err(why) => {
                b.block(&dep, format!("the next hop of {e} should be {want}, but {why}"));
                continue;
            }
        };
        let current = eobs.next_hop.clone();
        let reason = match &current {
            Some(cur) if c.failing_over(cur) => {
                format!("{e} uses {cur} as next hop and still runs: repoint it to {want} before failing {cur} over")
            }
            _ if want != base => format!("{base}'s users are served by {want}: {e} forwards to {want}"),
            _ => format!("spec.edge.edgePools: {e} forwards to {want}"),
        };
        let run_on = if c.up(&want) { Some(want.clone()) } else { c.admin_pool() };
        let Some(run_on) = run_on else { continue };
        let mut after = deps;
        if c.failing_back(&want) {
            after.push(id::failback(&want));
        }
        let inv =
            Invocation::new("Set-CsEdgeServer").arg("Identity", format!("EdgeServer:{e}")).arg("Registrar", format!("Registrar:{want}"));
        b.step(id::next_hop(e), inv, &run_on, dep.clone())
            .reason(reason)
            .rules(&[11])
            .after(after)
            .expect(Expect::NextHop { edge: e.clone(), pool: want.clone() })
            .add();
    }
}

/// Steps that re-run local setup on an Edge pool's servers once its replicas hold the change.
fn setup_steps(c: &Ctx, b: &mut Builder, edge: &Fqdn, after: Vec<String>, reason: &str) -> Vec<String> {
    let dep = c.deployment();
    let list: Vec<Fqdn> = answering(c, edge);
    let wait = b
        .step(
            id::cms_replication(&format!("edge/{edge}")),
            Invocation::new("Get-CsManagementStoreReplicationStatus"),
            &c.admin_pool().unwrap_or_else(|| edge.clone()),
            dep.clone(),
        )
        .wait()
        .reason(format!("the Edge servers of {edge} must hold the new topology before setup runs"))
        .rules(&[19])
        .after(after)
        .expect(Expect::CmsReplicated { servers: list.clone().into() })
        .add();
    let mut out = Vec::new();
    for s in &list {
        out.push(
            b.step(id::bootstrap(s), Invocation::new(bootstrapper_path(c.observed.topology.product)), s, dep.clone())
                .reason(reason.to_string())
                .rules(&[19])
                // Never while the same server's services are being stopped or started.
                .after([wait.clone(), id::service(s, false), id::service(s, true)])
                .remember(Remember::EdgeSetupDone { server: s.clone() })
                .add(),
        );
    }
    out
}

fn sip_federation(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    let Some(base) = c.desired.sip_federation.clone().or_else(|| c.observed.federation.sip_edge.clone()) else { return };
    let want = choose(c, &base);
    if c.observed.federation.sip_edge.as_ref() == Some(&want) {
        return;
    }
    let deps = match c.cms_deps() {
        Ok(d) => d,
        Err(why) => {
            b.block(&dep, format!("SIP federation should move to {want}, but {why}"));
            return;
        }
    };
    let Some(run_on) = c.admin_pool() else { return };
    if c.observed.cms.available()
        && c.targets.cms_move.is_none()
        && answering(c, &want).iter().any(|s| !c.observed.cms.in_contact.contains(s))
    {
        b.block(
            &dep,
            format!(
                "SIP federation should move to {want}, but its Edge servers are cut off from the CMS, so they would not receive the change"
            ),
        );
        return;
    }
    let site = c.observed.topology.edges[&want].site.clone();
    let from_down = c
        .observed
        .federation
        .sip_edge
        .clone()
        .filter(|cur| c.observed.edge_health(cur) == Health::Down || (reachable(c, cur) && !c.observed.edge_up(cur)));
    let reason = match &c.observed.federation.sip_edge {
        Some(cur) if !reachable(c, cur) => format!("the SIP federation Edge pool {cur} is down: federation moves to {want}"),
        Some(cur) => format!("SIP federation moves from {cur} to {want} (only one federation Edge pool at a time)"),
        None => format!("SIP federation is routed through {want}"),
    };
    let inv = Invocation::new("Set-CsSite").arg("Identity", site.as_str()).arg("FederationRoute", format!("EdgeServer:{want}"));
    let route = b
        .step(id::sip(&Some(want.clone())), inv, &run_on, dep)
        .reason(reason)
        .rules(&[19, 20])
        .after(deps.into_iter().chain(c.after_failovers()))
        .expect(Expect::SipFederation { edge: Some(want.clone()) })
        .remember(Remember::EdgeSetupPending { servers: servers(c, &want) })
        .remember(Remember::FederationMoved { xmpp: false, from_down })
        .add();
    setup_steps(c, b, &want, vec![route], &format!("re-run local setup on the Edge servers of {want} so they carry federation (rule 19)"));
}

/// XMPP federation (JJ688065, JJ721897, rule 21). Failing over to another Edge pool: stop its
/// services, repoint the route, wait until a person has pointed the XMPP DNS records (A, and
/// `_xmpp-server._tcp` SRV on port 5269, open from the Internet) at it, then start its services.
/// Failing back to the Edge pool it left while that pool was down: start the restored pool's
/// services, repoint the route, wait for the DNS records; nothing is stopped.
fn xmpp_federation(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    let Some(base) = c.desired.xmpp_federation.clone().or_else(|| c.observed.federation.xmpp_edge.clone()) else { return };
    let want = choose(c, &base);
    let current = c.observed.federation.xmpp_edge.clone();
    if current.as_ref() == Some(&want) {
        return;
    }
    if !reachable(c, &want) {
        return;
    }
    let site = c.observed.topology.edges[&want].site.clone();
    let deps = match c.cms_deps() {
        Ok(d) => d.into_iter().chain(c.after_failovers()).collect::<Vec<_>>(),
        Err(why) => {
            b.block(&dep, format!("XMPP federation should move to {want}, but {why}"));
            return;
        }
    };
    let Some(run_on) = c.admin_pool() else { return };
    let running = c.observed.edges.get(&want).map(|e| e.services_running.clone()).unwrap_or_default();
    let failback = c.observed.history.xmpp_moved_from.as_ref() == Some(&want);
    let mut before_route = Vec::new();
    for s in answering(c, &want) {
        let on = running.get(&s).copied().unwrap_or(false);
        if failback && !on {
            before_route.push(
                b.step(id::service(&s, true), Invocation::new("Start-CsWindowsService"), &s, dep.clone())
                    .reason(format!(
                        "start the Lync services on {s}, the restored XMPP Edge pool {want}, before moving XMPP federation back"
                    ))
                    .rules(&[21, 23])
                    .after(deps.clone())
                    .expect(Expect::EdgeServices { server: s.clone(), running: true })
                    .add(),
            );
        } else if !failback && on {
            before_route.push(
                b.step(id::service(&s, false), Invocation::new("Stop-CsWindowsService"), &s, dep.clone())
                    .reason(format!("stop the Lync services on {s} before repointing XMPP federation to {want}"))
                    .rules(&[21])
                    .after(deps.clone())
                    .expect(Expect::EdgeServices { server: s.clone(), running: false })
                    .add(),
            );
        }
    }
    let from_down = current.filter(|cur| c.observed.edge_health(cur) == Health::Down || (reachable(c, cur) && !c.observed.edge_up(cur)));
    let inv = Invocation::new("Set-CsSite").arg("Identity", site.as_str()).arg("XmppFederationRoute", format!("EdgeServer:{want}"));
    let route = b
        .step(id::xmpp(&Some(want.clone())), inv, &run_on, dep.clone())
        .reason(if failback {
            format!("XMPP federation moves back to the restored Edge pool {want}")
        } else {
            format!("XMPP federation is routed through {want}")
        })
        .rules(&[21])
        .after(deps.into_iter().chain(before_route))
        .expect(Expect::XmppFederation { edge: Some(want.clone()) })
        .remember(Remember::FederationMoved { xmpp: true, from_down })
        .add();
    let dns = b
        .step(
            id::xmpp_dns(&want),
            Invocation::new("Resolve-DnsName").arg("Name", c.observed.xmpp_srv_name()).arg("Type", "SRV"),
            &run_on,
            dep.clone(),
        )
        .wait()
        .reason(format!(
            "a person points the XMPP federation DNS records at {want} (the A record and the {} SRV record, port 5269, open from the Internet)",
            c.observed.xmpp_srv_name()
        ))
        .rules(&[21])
        .after([route])
        .expect(Expect::XmppDns { edge: want.clone() })
        .add();
    if !failback {
        for s in answering(c, &want) {
            b.step(id::service(&s, true), Invocation::new("Start-CsWindowsService"), &s, dep.clone())
                .reason(format!("start the Lync services on {s} once the XMPP route and DNS records point at {want}"))
                .rules(&[21])
                .after([dns.clone()])
                .expect(Expect::EdgeServices { server: s.clone(), running: true })
                .add();
        }
    }
    if !c.observed.xmpp_dns_points_at(&want) {
        b.notice(format!(
            "{dep}: XMPP federation moves to {want}: point the XMPP federation A record at {want}, make sure the {} SRV record resolves to it on port 5269 and that port 5269 is open from the Internet; lyncdr waits for the DNS records before {} (rule 21)",
            c.observed.xmpp_srv_name(),
            if failback { "failing back the Front End pools of its site" } else { "starting its services" }
        ));
    }
}

/// While XMPP federation is routed through an Edge pool its DNS records do not point at, remote
/// servers cannot reach it: a person must change them (rule 21). Stays until they do.
fn xmpp_dns_notice(c: &Ctx, b: &mut Builder) {
    let Some(edge) = &c.observed.federation.xmpp_edge else { return };
    // A route about to move (or on an Edge pool that is down) is the move's notice's business.
    let want = choose(c, c.desired.xmpp_federation.as_ref().unwrap_or(edge));
    if want != *edge
        || c.observed.edge_health(edge) == Health::Down
        || c.observed.federation.xmpp_srv.is_none()
        || c.observed.xmpp_dns_points_at(edge)
    {
        return;
    }
    b.notice(format!(
        "{}: XMPP federation is routed through {edge}, but the XMPP federation DNS records do not point at it: point the XMPP federation A record at {edge}, make sure the {} SRV record resolves to it on port 5269 and that port 5269 is open from the Internet (rule 21)",
        c.deployment(),
        c.observed.xmpp_srv_name()
    ));
}

/// Reachable Edge servers whose Lync services are stopped are started.
fn edge_services(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    for (e, eobs) in &c.observed.edges {
        if !eobs.direct.is_ok() {
            continue;
        }
        for (s, running) in &eobs.services_running {
            if !running && !b.has(&id::service(s, true)) {
                b.step(id::service(s, true), Invocation::new("Start-CsWindowsService"), s, dep.clone())
                    .reason(format!("the Lync services of Edge server {s} ({e}) are stopped"))
                    .rules(&[23])
                    .expect(Expect::EdgeServices { server: s.clone(), running: true })
                    .add();
            }
        }
    }
}

/// Setup that an earlier route change left pending (remembered, since Lync does not report it).
fn pending_setup(c: &Ctx, b: &mut Builder) {
    let mut by_edge: std::collections::BTreeMap<Fqdn, ()> = Default::default();
    for s in c.observed.history.pending_edge_setup.keys() {
        if b.has(&id::bootstrap(s)) {
            continue;
        }
        let cut_off = c.observed.cms.available() && !c.observed.cms.in_contact.contains(s);
        if let Some(e) = c.observed.topology.edge_of_server(s)
            && reachable(c, &e.fqdn)
            && !cut_off
        {
            by_edge.insert(e.fqdn.clone(), ());
        }
    }
    for e in by_edge.keys() {
        setup_steps(
            c,
            b,
            e,
            vec![],
            &format!("local setup on the Edge servers of {e} is still pending after a federation change (rule 19)"),
        );
    }
}

fn media(c: &Ctx, b: &mut Builder) {
    let dep = c.deployment();
    for (p, pobs) in &c.observed.pools {
        if !c.up(p) || !c.serves_itself(p) {
            continue;
        }
        let Some(base) = c.desired.media.get(p).cloned().or_else(|| pobs.conferencing_edge.clone()) else { continue };
        let want = choose(c, &base);
        if !reachable(c, &want) {
            continue;
        }
        for (mediation, cur) in [(false, &pobs.conferencing_edge), (true, &pobs.mediation_edge)] {
            if cur.as_ref() == Some(&want) {
                continue;
            }
            let deps = match c.cms_deps() {
                Ok(d) => d,
                Err(why) => {
                    b.block(&dep, format!("{p} should use {want} for media, but {why}"));
                    continue;
                }
            };
            let Some(run_on) = c.admin_pool() else { continue };
            let (cmd, prefix) =
                if mediation { ("Set-CsMediationServer", "MediationServer") } else { ("Set-CsConferenceServer", "ConferencingServer") };
            let reason = match cur {
                Some(x) if !reachable(c, x) => format!("{p} uses {x} for media, which is down: associate it with {want} (rule 22)"),
                Some(x) => format!("{p} should use {want} for media instead of {x}"),
                None => format!("{p} should use {want} for media"),
            };
            let mut starts: Vec<String> = servers(c, &want).iter().map(|s| id::service(s, true)).collect();
            starts.extend(c.after_failovers());
            let inv = Invocation::new(cmd).arg("Identity", format!("{prefix}:{p}")).arg("EdgeServer", format!("EdgeServer:{want}"));
            b.step(id::media(p, mediation), inv, &run_on, dep.clone())
                .reason(reason)
                .rules(&[22])
                .after(deps.into_iter().chain(starts))
                .expect(Expect::MediaEdge { pool: p.clone(), mediation, edge: want.clone() })
                .add();
        }
    }
}
