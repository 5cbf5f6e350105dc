//! The planner on concrete situations: each safe-order rule it encodes shows up as an ordering
//! of steps, consent gates data loss, converged input gives an empty plan, hashes are stable.

mod common;

use common::*;
use lyncdr::planner::{Plan, Step};

fn pos(p: &Plan, id: &str) -> usize {
    p.steps.iter().position(|s| s.id == id).unwrap_or_else(|| panic!("no step {id} in plan:\n{}", ids(p)))
}

fn ids(p: &Plan) -> String {
    p.steps.iter().map(|s| format!("{} <- {:?}", s.id, s.after)).collect::<Vec<_>>().join("\n")
}

fn step<'a>(p: &'a Plan, id: &str) -> &'a Step {
    p.step(id).unwrap_or_else(|| panic!("no step {id} in plan:\n{}", ids(p)))
}

/// `a` comes before `b` in the order and `b` depends on `a` (directly or transitively).
fn before(p: &Plan, a: &str, b: &str) {
    assert!(pos(p, a) < pos(p, b), "{a} should come before {b}:\n{}", ids(p));
    let mut stack = vec![b.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(x) = stack.pop() {
        if x == a {
            return;
        }
        if seen.insert(x.clone()) {
            stack.extend(step(p, &x).after.iter().cloned());
        }
    }
    panic!("{b} does not depend on {a}:\n{}", ids(p));
}

fn with_state(state: &str) -> String {
    let base = if state.contains("failedOver: [pool01.dal") {
        // The CMS cannot be active in a pool whose users are failed over: it moved to Seattle.
        TWO_SITE.replace("cms: {activePool: pool01.dal.contoso.com}", "cms: {activePool: pool01.sea.contoso.com}")
    } else {
        TWO_SITE.to_string()
    };
    format!("{base}\nstate:\n{state}\n")
}

#[test]
fn converged_deployment_gives_an_empty_plan() {
    let s = scenario(TWO_SITE);
    let d = two_site_desired("  failedOver: []", "  centralManagementStore: {activePool: pool01.dal.contoso.com}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty() && p.blockers.is_empty(), "{}", ids(&p));
}

#[test]
fn planned_failover_of_the_cms_pool_moves_the_cms_first_without_force() {
    let s = scenario(TWO_SITE);
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", "  {}");
    let (_, p) = plan_for(&s, &d);
    let fo = step(&p, "pool-failover/pool01.dal.contoso.com");
    assert_eq!(fo.args.get("DisasterMode"), None, "a reachable pool fails over without -DisasterMode");
    assert!(!fo.data_loss);
    assert_eq!(fo.run_on.as_str(), SEA, "failover runs on the surviving pool");
    // Rule 3 and 4: CMS failover, then replication, then the pool.
    before(&p, "cms-failover/pool01.sea.contoso.com", "pool-failover/pool01.dal.contoso.com");
    before(&p, "cms-export-configuration/pool01.sea.contoso.com", "cms-failover/pool01.sea.contoso.com");
    before(&p, "cms-export-lis-configuration/pool01.sea.contoso.com", "cms-failover/pool01.sea.contoso.com");
    let cms = step(&p, "cms-failover/pool01.sea.contoso.com");
    assert!(cms.args.is_empty(), "a reachable CMS moves with the Normal parameter set: {:?}", cms.args);
    assert_eq!(cms.run_on.as_str(), SEA, "rule 10: run in the pool receiving the CMS");
    // Rule 11: the Dallas Edge forwards to the failed pool and still runs: repoint it first.
    before(&p, "edge-next-hop/edge01.dal.contoso.com", "pool-failover/pool01.dal.contoso.com");
    assert_eq!(step(&p, "edge-next-hop/edge01.dal.contoso.com").args["Registrar"], "Registrar:pool01.sea.contoso.com");
}

#[test]
fn disaster_failover_needs_consent() {
    let s = scenario(&with_state("  down: [site/Dallas]"));
    let d = two_site_desired(
        "  failedOver: [pool01.dal.contoso.com]",
        "  centralManagementStore: {activePool: pool01.dal.contoso.com, allowDataLoss: true}",
    );
    let (_, p) = plan_for(&s, &d);
    assert!(p.step("pool-failover/pool01.dal.contoso.com").is_none(), "{}", ids(&p));
    let b = p.blockers.iter().find(|b| b.resource == "PoolPair/dal-sea").expect("a blocker for the pair");
    assert!(b.reason.contains("-DisasterMode") && b.reason.contains("allowDataLoss"), "{}", b.reason);

    let d = two_site_desired(
        "  failedOver: [pool01.dal.contoso.com]\n  allowDataLoss: true",
        "  centralManagementStore: {activePool: pool01.dal.contoso.com, allowDataLoss: true}",
    );
    let (_, p) = plan_for(&s, &d);
    let fo = step(&p, "pool-failover/pool01.dal.contoso.com");
    assert_eq!(fo.args["DisasterMode"], true);
    assert!(fo.data_loss);
    // The CMS on the lost site needs the disaster-recovery parameters and -Force.
    let cms = step(&p, "cms-failover/pool01.sea.contoso.com");
    assert_eq!(cms.args["BackupSqlServerFqdn"], "sql01.sea.contoso.com");
    assert_eq!(cms.args["Force"], true);
    assert!(cms.data_loss);
    assert_eq!(step(&p, "cms-export-configuration/pool01.sea.contoso.com").args["LocalStore"], true);
    // Seattle confirms that the Dallas Edge is down too: its next hop is left alone (rule 11
    // concerns an Edge pool that still runs).
    assert!(p.step("edge-next-hop/edge01.dal.contoso.com").is_none(), "{}", ids(&p));
    before(&p, "wait-cms-replication/pool01.sea.contoso.com", "pool-failover/pool01.dal.contoso.com");

    // Dallas's pool is down but its Edge pool runs (Seattle reaches it; the operator does not):
    // it is repointed before the failover (rule 11).
    let s = scenario(&with_state("  down: [pool/pool01.dal.contoso.com, link/operator:Dallas]"));
    let (_, p) = plan_for(&s, &d);
    before(&p, "edge-next-hop/edge01.dal.contoso.com", "pool-failover/pool01.dal.contoso.com");
}

#[test]
fn forced_cms_failover_needs_its_own_consent() {
    let s = scenario(&with_state("  down: [site/Dallas]"));
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]\n  allowDataLoss: true", "  {}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.iter().all(|s| !s.cmdlet.starts_with("Invoke-Cs")), "{}", ids(&p));
    assert!(
        p.blockers.iter().any(|b| b.resource == "LyncDeployment/contoso" && b.reason.contains("centralManagementStore.allowDataLoss")),
        "{:?}",
        p.blockers
    );
}

#[test]
fn cms_failover_names_the_principal_mirror() {
    // Rule 5: the standby pool's principal is its mirror.
    let s = scenario(&with_state("  down: [site/Dallas]\n  backEndPrincipal: [{pool: pool01.sea.contoso.com, principal: Mirror}]"));
    let d = two_site_desired(
        "  failedOver: [pool01.dal.contoso.com]\n  allowDataLoss: true",
        "  centralManagementStore: {activePool: pool01.dal.contoso.com, allowDataLoss: true}",
    );
    let (_, p) = plan_for(&s, &d);
    let cms = step(&p, "cms-failover/pool01.sea.contoso.com");
    assert_eq!(cms.args["BackupSqlServerFqdn"], "sql01.sea.contoso.com");
    assert_eq!(cms.args["BackupMirrorSqlServerFqdn"], "sql02.sea.contoso.com");
}

#[test]
fn cross_failover_fails_back_first() {
    // Rule 1: Dallas's users are on Seattle; now Seattle's users should move to Dallas.
    let s = scenario(&with_state("  failedOver: [pool01.dal.contoso.com]"));
    let d = two_site_desired("  failedOver: [pool01.sea.contoso.com]", "  {}");
    let (_, p) = plan_for(&s, &d);
    before(&p, "pool-failback/pool01.dal.contoso.com", "pool-failover/pool01.sea.contoso.com");
}

#[test]
fn failback_waits_for_the_pool_and_restores_content_and_next_hop() {
    let s = scenario(&with_state("  failedOver: [pool01.dal.contoso.com]\n  down: [site/Dallas]"));
    let d = two_site_desired("  failedOver: []", "  {}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.step("pool-failback/pool01.dal.contoso.com").is_none());
    assert!(p.blockers.iter().any(|b| b.reason.contains("not back online")), "{:?}", p.blockers);

    let s = scenario(&with_state("  failedOver: [pool01.dal.contoso.com]"));
    let (_, p) = plan_for(&s, &d);
    let fb = step(&p, "pool-failback/pool01.dal.contoso.com");
    assert_eq!(fb.args.get("DisasterMode"), None);
    assert_eq!(fb.args["PoolFqdn"], DAL, "rule 2: the same PoolFqdn as the failover");
    // Rule 24: conference content from the partner after failback.
    before(&p, "pool-failback/pool01.dal.contoso.com", "content-sync/pool01.sea.contoso.com");
    before(&p, "content-sync/pool01.sea.contoso.com", "wait-content-sync/pool01.sea.contoso.com");
    assert_eq!(step(&p, "content-sync/pool01.sea.contoso.com").args["BackupModule"], "ConfServices.DataConf");
}

#[test]
fn edge_fails_back_before_the_front_end_pool() {
    // Rule 23: federation had moved to Seattle while Dallas was down; Dallas is back.
    // As failover left it: federation and the Dallas Edge's next hop on Seattle.
    let scen = with_state("  failedOver: [pool01.dal.contoso.com]")
        .replace(
            "federation: {sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.dal.contoso.com, xmppDns: [edge01.dal.contoso.com, edge01.sea.contoso.com]}",
            "federation: {sipEdgePool: edge01.sea.contoso.com}",
        )
        .replace(
            "{fqdn: edge01.dal.contoso.com, nextHop: pool01.dal.contoso.com, servers: 2}",
            "{fqdn: edge01.dal.contoso.com, nextHop: pool01.sea.contoso.com, servers: 2}",
        );
    let s = scenario(&scen);
    let d = two_site_desired(
        "  failedOver: []",
        "  edge:\n    sipFederationPool: edge01.dal.contoso.com\n    edgePools: [{fqdn: edge01.dal.contoso.com, nextHop: pool01.dal.contoso.com}]",
    );
    let (_, p) = plan_for(&s, &d);
    before(&p, "sip-federation-route/edge01.dal.contoso.com", "pool-failback/pool01.dal.contoso.com");
    before(&p, "edge-setup/edge01-es01.dal.contoso.com", "pool-failback/pool01.dal.contoso.com");
    before(&p, "wait-cms-replication/edge/edge01.dal.contoso.com", "edge-setup/edge01-es02.dal.contoso.com");
    // The Edge next hop returns to Dallas only after failback.
    before(&p, "pool-failback/pool01.dal.contoso.com", "edge-next-hop/edge01.dal.contoso.com");
}

#[test]
fn mirror_failover_user_database_first() {
    // Rule 18: Seattle's primary SQL is down; the mirror takes the User database, then CentralMgmt.
    let s = scenario(&with_state("  down: [sql/sql01.dal.contoso.com]"));
    let d = two_site_desired("  failedOver: []", "  {}");
    let (_, p) = plan_for(&s, &d);
    before(&p, "database-failover/pool01.dal.contoso.com/User", "database-failover/pool01.dal.contoso.com/CentralMgmt");
    let u = step(&p, "database-failover/pool01.dal.contoso.com/User");
    assert_eq!(u.args["NewPrincipal"], "Mirror");
    assert_eq!(u.args["Force"], true, "the current principal is not accessible");
}

#[test]
fn unreachable_pool_is_not_failed_over_when_its_partner_still_sees_it() {
    // The operator is cut off from Dallas, but Seattle reaches it: Dallas is alive.
    let s = scenario(&with_state("  down: [link/operator:Dallas]"));
    let d = two_site_desired("  allowDataLoss: true\n  automaticFailover: {enabled: true, gracePeriod: 0s}", "  {}");
    let (o, p) = plan_for(&s, &d);
    assert_eq!(o.health(&DAL.parse().unwrap()), lyncdr::model::Health::Isolated);
    assert!(p.step("pool-failover/pool01.dal.contoso.com").is_none(), "{}", ids(&p));
    assert!(p.notices.iter().any(|n| n.contains("alive")), "{:?}", p.notices);
}

#[test]
fn automatic_failover_waits_for_the_grace_period() {
    let s = scenario(&with_state("  down: [site/Dallas]"));
    let d = two_site_desired(
        "  allowDataLoss: true\n  automaticFailover: {enabled: true, gracePeriod: 5m}",
        "  centralManagementStore: {activePool: pool01.dal.contoso.com, allowDataLoss: true}",
    );
    let (o, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty(), "{}", ids(&p));
    assert_eq!(p.recheck_after, Some(lyncdr::model::Span::mins(5)));
    // Five minutes later (same observation, later clock and memory), the failover is planned.
    let mut later = o.clone();
    later.at = later.at.plus(lyncdr::model::Span::mins(5));
    let p = replan(&d, &later);
    let fo = step(&p, "pool-failover/pool01.dal.contoso.com");
    assert_eq!(fo.args["DisasterMode"], true);
    assert!(matches!(fo.remember[0], lyncdr::planner::Remember::AutomaticFailover { .. }));
}

#[test]
fn both_pools_down_is_a_blocker() {
    let s = scenario(&with_state("  down: [pool/pool01.dal.contoso.com, pool/pool01.sea.contoso.com]"));
    let d = two_site_desired("  allowDataLoss: true\n  automaticFailover: {enabled: true, gracePeriod: 0s}", "  {}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty());
    assert!(p.blockers.iter().any(|b| b.reason.contains("both pools")), "{:?}", p.blockers);
}

#[test]
fn unsupported_pairing_is_blocked_with_the_rule_named() {
    let scen = TWO_SITE.replacen("users: 15000", "users: 15000\n        virtualization: Virtual", 1);
    let s = scenario(&scen);
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", "  {}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.iter().all(|s| s.resource != "PoolPair/dal-sea"));
    assert!(p.blockers.iter().any(|b| b.reason.contains("LikeVirtualization")), "{:?}", p.blockers);
}

#[test]
fn hash_is_stable_and_tracks_what_runs() {
    let s = scenario(TWO_SITE);
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", "  {}");
    let (o, p1) = plan_for(&s, &d);
    let p2 = replan(&d, &o);
    assert_eq!(p1.hash, p2.hash);
    assert_eq!(p1, p2, "the planner is deterministic");
    let d2 = two_site_desired("  failedOver: [pool01.sea.contoso.com]", "  {}");
    assert_ne!(replan(&d2, &o).hash, p1.hash);
}

#[test]
fn plan_json_follows_the_contract() {
    let s = scenario(TWO_SITE);
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", "  {}");
    let (_, p) = plan_for(&s, &d);
    let v = serde_json::to_value(&p).unwrap();
    assert!(v["hash"].is_string());
    for st in v["steps"].as_array().unwrap() {
        for k in ["id", "cmdlet", "args", "runOn", "after", "dataLoss", "reason"] {
            assert!(st.get(k).is_some(), "step lacks {k}: {st}");
        }
    }
    assert!(v["blockers"].is_array());
    // Steps are in a valid execution order.
    let mut seen = std::collections::BTreeSet::new();
    for st in &p.steps {
        assert!(st.after.iter().all(|a| seen.contains(a)), "{} before its dependencies", st.id);
        seen.insert(st.id.clone());
    }
}

/// Whether `b` depends on `a`, directly or transitively.
fn depends(p: &Plan, b: &str, a: &str) -> bool {
    let mut stack = vec![b.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(x) = stack.pop() {
        if seen.insert(x.clone()) {
            for d in &step(p, &x).after {
                if d == a {
                    return true;
                }
                stack.push(d.clone());
            }
        }
    }
    false
}

/// The example's Edge policy: federation on the Dallas Edge pool, automatic Edge failover to
/// Seattle's.
const EDGE_AUTO: &str = "  edge:\n    sipFederationPool: edge01.dal.contoso.com\n    xmppFederationPool: edge01.dal.contoso.com\n    automaticFailover: true\n    fallbackPools: [edge01.sea.contoso.com]";

/// Issue 10, finding 3: the operator is cut off from Dallas, but Seattle reaches Dallas's Edge
/// servers: the Edge pool is alive, so SIP and XMPP federation stay on it (like the users).
#[test]
fn federation_stays_on_an_edge_pool_that_only_the_operator_cannot_reach() {
    let s = scenario(&with_state("  down: [link/operator:Dallas]"));
    let d = two_site_desired("  allowDataLoss: true\n  automaticFailover: {enabled: true, gracePeriod: 0s}", EDGE_AUTO);
    let (o, p) = plan_for(&s, &d);
    assert_eq!(o.edges[&"edge01.dal.contoso.com".parse().unwrap()].health(), lyncdr::model::Health::Isolated);
    assert!(p.steps.iter().all(|s| !s.id.contains("federation-route") && !s.id.starts_with("media-edge")), "{}", ids(&p));
    assert!(p.notices.iter().any(|n| n.contains("edge01.dal.contoso.com") && n.contains("alive")), "{:?}", p.notices);

    // The Edge pool itself down (confirmed from Seattle): federation moves.
    let s = scenario(&with_state("  down: [edge/edge01.dal.contoso.com]"));
    let (o, p) = plan_for(&s, &d);
    assert_eq!(o.edges[&"edge01.dal.contoso.com".parse().unwrap()].health(), lyncdr::model::Health::Down);
    step(&p, "sip-federation-route/edge01.sea.contoso.com");
    step(&p, "xmpp-federation-route/edge01.sea.contoso.com");
}

/// Issue 10, finding 8: with the whole Dallas site lost, its Edge pool is confirmed down from
/// Seattle, so its next hop is not repointed (rule 11 does not apply to an Edge pool that is
/// down), and the federation moves come after the pool failover: their CMS replication must not
/// delay it.
#[test]
fn whole_site_lost_pool_failover_waits_for_no_edge_change() {
    let s = scenario(&with_state("  down: [site/Dallas]"));
    let d = two_site_desired(
        "  failedOver: [pool01.dal.contoso.com]\n  allowDataLoss: true",
        &format!("  centralManagementStore: {{activePool: pool01.dal.contoso.com, allowDataLoss: true}}\n{EDGE_AUTO}"),
    );
    let (_, p) = plan_for(&s, &d);
    assert!(p.step("edge-next-hop/edge01.dal.contoso.com").is_none(), "{}", ids(&p));
    let fo = "pool-failover/pool01.dal.contoso.com";
    for id in ["sip-federation-route/edge01.sea.contoso.com", "xmpp-federation-route/edge01.sea.contoso.com"] {
        assert!(!depends(&p, fo, id), "the failover waits for {id}:\n{}", ids(&p));
        before(&p, fo, id);
    }
    assert!(p.steps.iter().filter(|s| s.cmdlet == "Set-CsEdgeServer").count() == 0, "{}", ids(&p));
}

/// The two-site scenario without the pre-created XMPP SRV record for Seattle's Edge pool: only
/// Dallas's Edge pool is in the XMPP federation DNS records.
fn without_seattle_xmpp_dns(scen: &str) -> String {
    let with = "xmppDns: [edge01.dal.contoso.com, edge01.sea.contoso.com]";
    assert!(scen.contains(with));
    scen.replace(with, "xmppDns: [edge01.dal.contoso.com]")
}

/// Issue 10, finding 12 (rule 21): failing XMPP over to Seattle's Edge pool stops its services,
/// repoints the route, waits until a person has pointed the DNS records at it (A, and the
/// `_xmpp-server._tcp` SRV record on port 5269) and only then starts the services; the notice
/// says what to change. Failing back to the restored Dallas Edge pool (JJ721897) stops nothing
/// and moves the route, then waits for the DNS records, before the Dallas Front End pool fails
/// back.
#[test]
fn xmpp_moves_follow_the_documented_order() {
    let s = scenario(&without_seattle_xmpp_dns(&with_state("  down: [edge/edge01.dal.contoso.com]")));
    let d = two_site_desired("", EDGE_AUTO);
    let (_, p) = plan_for(&s, &d);
    let (route, dns) = ("xmpp-federation-route/edge01.sea.contoso.com", "wait-xmpp-dns/edge01.sea.contoso.com");
    for n in ["01", "02"] {
        before(&p, &format!("edge-services-stop/edge01-es{n}.sea.contoso.com"), route);
        before(&p, dns, &format!("edge-services-start/edge01-es{n}.sea.contoso.com"));
    }
    before(&p, route, dns);
    let wait = step(&p, dns);
    assert_eq!(wait.kind, lyncdr::planner::StepKind::Wait);
    assert_eq!(wait.cmdlet, "Resolve-DnsName");
    assert_eq!(wait.args["Name"], "_xmpp-server._tcp.contoso.com");
    assert!(
        p.notices.iter().any(|n| n.contains("_xmpp-server._tcp.contoso.com") && n.contains("5269") && n.contains("edge01.sea.contoso.com")),
        "{:?}",
        p.notices
    );

    // Back home: federation had moved to Seattle while Dallas was down; Dallas is back.
    let scen = with_state("  failedOver: [pool01.dal.contoso.com]").replace(
        "federation: {sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.dal.contoso.com, xmppDns: [edge01.dal.contoso.com, edge01.sea.contoso.com]}",
        "federation: {sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.sea.contoso.com, xmppDns: [edge01.sea.contoso.com]}",
    );
    let s = scenario(&scen);
    let d = two_site_desired("  failedOver: []", EDGE_AUTO);
    let (mut o, _) = plan_for(&s, &d);
    o.history.xmpp_moved_from = Some("edge01.dal.contoso.com".parse().unwrap());
    let p = replan(&d, &o);
    let (route, dns) = ("xmpp-federation-route/edge01.dal.contoso.com", "wait-xmpp-dns/edge01.dal.contoso.com");
    assert!(p.steps.iter().all(|s| s.cmdlet != "Stop-CsWindowsService"), "{}", ids(&p));
    before(&p, route, dns);
    before(&p, dns, "pool-failback/pool01.dal.contoso.com");
}

/// Issue 10, finding 14: an XMPP Edge pool that is down, with nowhere to move XMPP federation,
/// gets a notice as SIP federation does.
#[test]
fn xmpp_federation_on_a_down_edge_pool_is_noticed() {
    let s = scenario(&with_state("  down: [edge/edge01.dal.contoso.com]"));
    let d = two_site_desired("", "  {}");
    let (_, p) = plan_for(&s, &d);
    for kind in ["SIP", "XMPP"] {
        assert!(
            p.notices
                .iter()
                .any(|n| n.starts_with(&format!("LyncDeployment/contoso: {kind} federation uses edge01.dal.contoso.com, which is down"))),
            "{kind}: {:?}",
            p.notices
        );
    }
}

/// The two-site manifests plus a UserPlacement homing `users` on Seattle (with consent to
/// `Move-CsUser -Force`).
fn with_placement(pair_extra: &str, users: &str) -> lyncdr::desired::Desired {
    desired(&format!(
        "{}---\napiVersion: lyncdr.io/v1alpha1\nkind: UserPlacement\nmetadata: {{name: rehome}}\nspec:\n  deployment: contoso\n  users: [{users}]\n  targetPool: pool01.sea.contoso.com\n  allowDataLoss: true\n",
        two_site_manifests(pair_extra, "  {}")
    ))
}

/// Issue 10, finding 1: `Move-CsUser -Force` drops contacts and meetings for good and is for a
/// pool lost for good. Dallas runs and its users are failed over to Seattle: with the pair failed
/// back in the same plan, the users move after the failback, without `-Force`; with the pair kept
/// failed over, the placement is blocked naming the PoolPair field, even with consent. Only a
/// Dallas confirmed down is left with `-Force` (with consent).
#[test]
fn users_of_a_running_pool_are_rehomed_without_force() {
    let users = "sip:u00001.pool01@dal.contoso.com, sip:u00002.pool01@dal.contoso.com";
    let s = scenario(&with_state("  failedOver: [pool01.dal.contoso.com]"));

    let d = with_placement("  failedOver: []", users);
    let (_, p) = plan_for(&s, &d);
    let mv = step(&p, "move-users/rehome/u00001.pool01@dal.contoso.com");
    assert_eq!(mv.args.get("Force"), None, "{}", mv.command());
    assert!(!mv.data_loss);
    before(&p, "pool-failback/pool01.dal.contoso.com", "move-users/rehome/u00001.pool01@dal.contoso.com");

    let d = with_placement("  failedOver: [pool01.dal.contoso.com]", users);
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.iter().all(|s| s.cmdlet != "Move-CsUser"), "{}", ids(&p));
    let b = p.blockers.iter().find(|b| b.resource == "UserPlacement/rehome").expect("a blocker on the placement");
    assert!(b.reason.contains("PoolPair/dal-sea") && b.reason.contains("spec.failedOver") && b.reason.contains("-Force"), "{}", b.reason);

    // Dallas lost for good: -Force, consented.
    let s = scenario(&with_state("  failedOver: [pool01.dal.contoso.com]\n  down: [site/Dallas]"));
    let (_, p) = plan_for(&s, &d);
    let mv = step(&p, "move-users/rehome/u00001.pool01@dal.contoso.com");
    assert_eq!(mv.args["Force"], true);
    assert!(mv.data_loss);
}

const RGS: &str = "  responseGroups: {exportPath: '\\\\fs01.contoso.com\\lyncdr\\rgs'}";

/// Issue 10, finding 2 (rule 25, export before): a planned failover waits for the routine
/// Response Group export of the pool it fails over; the import into the backup pool uses it.
#[test]
fn planned_failover_waits_for_the_response_group_export() {
    let s = scenario(TWO_SITE);
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", RGS);
    let (_, p) = plan_for(&s, &d);
    before(&p, "rgs-routine-export/pool01.dal.contoso.com", "pool-failover/pool01.dal.contoso.com");
    before(&p, "pool-failover/pool01.dal.contoso.com", "rgs-import/pool01.sea.contoso.com/pool01.dal.contoso.com");
}

/// Issue 10, finding 6 (rule 26): a workflow name Dallas shares with Seattle blocks the failover
/// itself (not only the import after it), naming the way out; with
/// `spec.responseGroups.resolveNameConflicts` the failover runs and the import renames the copies
/// (`-ResolveNameConflicts`).
#[test]
fn clashing_response_group_names_block_the_failover() {
    let s = scenario(&TWO_SITE.replace("responseGroups: [Facilities]", "responseGroups: [Facilities, Helpdesk]"));
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", RGS);
    let (_, p) = plan_for(&s, &d);
    assert!(p.step("pool-failover/pool01.dal.contoso.com").is_none(), "{}", ids(&p));
    let b = p.blockers.iter().find(|b| b.resource == "PoolPair/dal-sea").expect("a blocker on the pair");
    assert!(
        b.reason.contains("rule 26") && b.reason.contains("Helpdesk") && b.reason.contains("spec.responseGroups.resolveNameConflicts"),
        "{}",
        b.reason
    );

    let resolve = RGS.replace('}', ", resolveNameConflicts: true}");
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", &resolve);
    let (_, p) = plan_for(&s, &d);
    step(&p, "pool-failover/pool01.dal.contoso.com");
    let import = step(&p, "rgs-import/pool01.sea.contoso.com/pool01.dal.contoso.com");
    assert_eq!(import.args["ResolveNameConflicts"], true, "{}", import.command());
}

/// Issue 10, finding 7 (rules 1 and 3): Dallas's users are failed over to Seattle, which hosts
/// the CMS; now Seattle's users should go to Dallas. Dallas is failed back first, then the CMS
/// moves into Dallas (a pool serving its own users again), then Seattle fails over.
#[test]
fn cross_failover_of_the_cms_pool_fails_back_before_moving_the_cms() {
    let s = scenario(&with_state("  failedOver: [pool01.dal.contoso.com]"));
    let d = two_site_desired("  failedOver: [pool01.sea.contoso.com]", "  {}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    before(&p, "pool-failback/pool01.dal.contoso.com", "cms-failover/pool01.dal.contoso.com");
    before(&p, "cms-failover/pool01.dal.contoso.com", "wait-cms-replication/pool01.dal.contoso.com");
    before(&p, "wait-cms-replication/pool01.dal.contoso.com", "pool-failover/pool01.sea.contoso.com");
    assert!(step(&p, "cms-failover/pool01.dal.contoso.com").args.is_empty(), "the CMS is reachable: no -Force");
}

/// Issue 10, finding 10 (section 4.4, C3): a forced CMS failover to a mirrored Back End names the
/// mirror too, even while the primary is the principal.
#[test]
fn forced_cms_failover_names_the_mirror_of_a_mirrored_back_end() {
    let s = scenario(&with_state("  down: [site/Dallas]"));
    let d = two_site_desired(
        "  failedOver: [pool01.dal.contoso.com]\n  allowDataLoss: true",
        "  centralManagementStore: {activePool: pool01.dal.contoso.com, allowDataLoss: true}",
    );
    let (_, p) = plan_for(&s, &d);
    let cms = step(&p, "cms-failover/pool01.sea.contoso.com");
    assert_eq!(cms.args["BackupSqlServerFqdn"], "sql01.sea.contoso.com");
    assert_eq!(cms.args["BackupMirrorSqlServerFqdn"], "sql02.sea.contoso.com", "{}", cms.command());
    assert_eq!(cms.args["BackupMirrorSqlInstanceName"], "rtc");
}

/// Issue 10, finding 14: the CMS blocker says that the standby pool is down when it is (not that
/// the CMS pool "cannot be confirmed down"); and while the plan's own Back End failover restores
/// the CMS of a pool to be failed over, the CMS move is planned after it (no transient "cannot be
/// failed over first").
#[test]
fn cms_messages_say_what_is_wrong() {
    let s = scenario(&with_state("  down: [pool/pool01.dal.contoso.com, pool/pool01.sea.contoso.com]"));
    let d = two_site_desired("", "  centralManagementStore: {activePool: pool01.sea.contoso.com, allowDataLoss: true}");
    let (_, p) = plan_for(&s, &d);
    let b = p.blockers.iter().find(|b| b.resource == "LyncDeployment/contoso").expect("a CMS blocker");
    assert!(!b.reason.contains("cannot be confirmed down"), "{}", b.reason);
    assert!(b.reason.contains("standby pool pool01.sea.contoso.com cannot be reached either"), "{}", b.reason);

    let s = scenario(&with_state("  down: [sql/sql01.dal.contoso.com]"));
    let d = two_site_desired("  failedOver: [pool01.dal.contoso.com]", "  {}");
    let (_, p) = plan_for(&s, &d);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    before(&p, "database-failover/pool01.dal.contoso.com/CentralMgmt", "cms-export-configuration/pool01.sea.contoso.com");
    before(&p, "cms-failover/pool01.sea.contoso.com", "pool-failover/pool01.dal.contoso.com");
    assert_eq!(step(&p, "pool-failover/pool01.dal.contoso.com").args.get("DisasterMode"), None, "the mirror serves Dallas");
}

/// Issue 10, finding 9 (S20): with a witness, a mirror fails over on its own within about five
/// minutes; lyncdr does not race it with `Invoke-CsDatabaseFailover -Force`. It waits (notice,
/// look again later) and fails the databases over itself only if the witness has not.
#[test]
fn mirror_with_a_witness_is_left_to_the_witness_first() {
    let scen = with_state("  down: [sql/sql01.dal.contoso.com]").replacen(
        "mirror: sql02.dal.contoso.com, witness: false",
        "mirror: sql02.dal.contoso.com, witness: true",
        1,
    );
    let s = scenario(&scen);
    let d = two_site_desired("  failedOver: []", "  {}");
    let (o, p) = plan_for(&s, &d);
    assert!(p.steps.iter().all(|s| s.cmdlet != "Invoke-CsDatabaseFailover"), "{}", ids(&p));
    assert!(p.notices.iter().any(|n| n.contains("witness") && n.contains("pool01.dal.contoso.com")), "{:?}", p.notices);
    let left = p.recheck_after.expect("look again once the witness had its time");
    assert!(left <= lyncdr::model::Span::mins(6), "{left}");

    // The witness did not act in time: lyncdr fails the databases over itself.
    let mut later = o.clone();
    later.at = later.at.plus(left);
    let p = replan(&d, &later);
    let u = step(&p, "database-failover/pool01.dal.contoso.com/User");
    assert_eq!(u.args["Force"], true);
}
