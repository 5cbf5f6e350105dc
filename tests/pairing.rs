//! Desired pool pairings (issue 5): a PoolPair is made true in Lync — verified when it already
//! holds, established through the documented procedure when the pools are unpaired, re-paired
//! only with consent and never while users are failed over or the CMS depends on the old
//! pairing, and blocked with the rule named when the pairing is unsupported.

mod common;

use common::*;
use lyncdr::desired::Desired;
use lyncdr::engine::Converged;
use lyncdr::model::History;
use lyncdr::planner::Plan;
use lyncdr::scenario::Scenario;
use lyncdr::sim::LocalSim;
use lyncdr::sim::{Outcome, Simulator};

fn ids(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.id.clone()).collect()
}

fn pos(p: &Plan, id: &str) -> usize {
    p.steps.iter().position(|s| s.id == id).unwrap_or_else(|| panic!("no {id} in {:#?}", ids(p)))
}

/// Two sites, four pools: Dallas/Seattle pool01 paired with each other; pool02 in each site
/// unpaired unless `pairs` says otherwise.
fn four_pools(pairs: &str, cms: &str, extra_pool_fields: &str) -> String {
    format!(
        r#"
name: four
product: SfB2015
sites:
  - name: Dallas
    frontEndPools:
      - {{fqdn: pool01.dal.contoso.com, edition: Enterprise, frontEnds: 2, users: 1000, backEnd: {{primary: sql01.dal.contoso.com}}}}
      - {{fqdn: pool02.dal.contoso.com, edition: Enterprise, frontEnds: 2, users: 500, backEnd: {{primary: sql02.dal.contoso.com}}}}
  - name: Seattle
    frontEndPools:
      - {{fqdn: pool01.sea.contoso.com, edition: Enterprise, frontEnds: 2, users: 800, backEnd: {{primary: sql01.sea.contoso.com}}}}
      - {{fqdn: pool02.sea.contoso.com, edition: Enterprise, frontEnds: 2, users: 300, backEnd: {{primary: sql02.sea.contoso.com}}{extra_pool_fields}}}
pairs:
{pairs}
cms: {{activePool: {cms}}}
"#
    )
}

fn pair(name: &str, a: &str, b: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: lyncdr.io/v1alpha1
kind: LyncDeployment
metadata: {{name: contoso}}
spec: {{}}
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {{name: {name}}}
spec:
  deployment: contoso
  pools: [{a}, {b}]
{extra}
"#
    )
}

/// Converges on a fresh simulator, asserting that no state-changing cmdlet failed and that the
/// deployment converged; returns the simulator and the operator memory for further checks.
fn converge_cleanly(s: &Scenario, d: &Desired) -> (LocalSim, Converged, History) {
    runtime().block_on(async {
        let lync = LocalSim::new(Simulator::new(s));
        let (c, h) = converge(&lync, d, History::default()).await;
        {
            let sim = lync.lock();
            let failed: Vec<String> =
                sim.log().iter().filter(|r| r.mutating && r.outcome != Outcome::Ok).map(|r| format!("{} {:?}", r.line, r.error)).collect();
            assert!(failed.is_empty(), "{failed:#?}");
        }
        assert!(matches!(c, Converged::Done { .. }), "{c:?}");
        (lync, c, h)
    })
}

const PAIRED_01: &str = "  - [pool01.dal.contoso.com, pool01.sea.contoso.com]";

#[test]
fn an_existing_pairing_is_verified_and_needs_nothing() {
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ""));
    let d = desired(&pair("p01", "pool01.dal.contoso.com", "pool01.sea.contoso.com", ""));
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty() && p.blockers.is_empty(), "{:?} {:?}", ids(&p), p.blockers);
}

#[test]
fn unpaired_pools_are_paired_by_the_documented_procedure_and_it_converges() {
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ""));
    let d = desired(&pair("p02", "pool02.dal.contoso.com", "pool02.sea.contoso.com", ""));
    let (_, p) = plan_for(&s, &d);
    let k = "pool02.dal.contoso.com+pool02.sea.contoso.com";
    // Topology change, then local setup on every Front End, then LYNCBACKUP, then sync, then steady state (rule 13).
    let order = [
        format!("pairing-backup-configuration/{k}"),
        format!("pairing-topology/{k}"),
        format!("pairing-publish/{k}"),
        format!("pairing-enable/{k}"),
        format!("wait-cms-replication/pairing/{k}"),
        "pairing-setup/pool02-fe01.dal.contoso.com".to_string(),
        "pairing-start-backup/pool02-fe01.dal.contoso.com".to_string(),
        "pairing-sync/pool02.dal.contoso.com".to_string(),
        "wait-pairing-sync/pool02.dal.contoso.com".to_string(),
    ];
    for w in order.windows(2) {
        assert!(pos(&p, &w[0]) < pos(&p, &w[1]), "{} before {}", w[0], w[1]);
    }
    for fe in ["pool02-fe01.dal.contoso.com", "pool02-fe02.dal.contoso.com", "pool02-fe01.sea.contoso.com", "pool02-fe02.sea.contoso.com"] {
        assert!(p.step(&format!("pairing-setup/{fe}")).is_some(), "local setup on {fe}");
    }
    let publish = p.step(&format!("pairing-publish/{k}")).expect("publish");
    assert_eq!(publish.cmdlet, "Publish-CsTopology");
    assert!(p.steps.iter().all(|s| !s.cmdlet.contains("Remove-CsUserStoreBackupData")), "nothing to clean up for new pairs");

    // Execute on the simulator: no cmdlet fails, the pools end paired and in sync, and planning
    // again gives nothing.
    let (lync, _, _) = converge_cleanly(&s, &d);
    let sim = lync.lock();
    let snap = sim.snapshot();
    assert_eq!(
        snap.pools[&"pool02.dal.contoso.com".parse().unwrap()].backup_pool.as_ref().map(|f| f.to_string()).as_deref(),
        Some("pool02.sea.contoso.com")
    );
}

#[test]
fn a_pool_paired_elsewhere_is_blocked_without_consent_and_repaired_in_order_with_it() {
    // pool01.dal is paired with pool01.sea; the desired pair is pool01.dal + pool02.sea.
    let s = scenario(&four_pools(PAIRED_01, "pool02.dal.contoso.com", ""));
    let d = desired(&pair("dal-sea2", "pool01.dal.contoso.com", "pool02.sea.contoso.com", ""));
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.iter().all(|s| !s.cmdlet.contains("Topology")), "{:?}", ids(&p));
    let b = p.blockers.iter().find(|b| b.resource == "PoolPair/dal-sea2").expect("blocker");
    assert!(b.reason.contains("allowRepair") && b.reason.contains("pool01.sea.contoso.com"), "{}", b.reason);

    let d = desired(&pair("dal-sea2", "pool01.dal.contoso.com", "pool02.sea.contoso.com", "  allowRepair: true"));
    let (_, p) = plan_for(&s, &d);
    let k = "pool01.dal.contoso.com+pool02.sea.contoso.com";
    assert!(
        pos(&p, &format!("pairing-publish/{k}")) < pos(&p, "pairing-cleanup/pool01.dal.contoso.com"),
        "rule 31: clean up after the new pairing exists"
    );
    assert!(p.step("pairing-cleanup/pool01.dal.contoso.com").is_some_and(|s| s.after.contains(&format!("pairing-publish/{k}"))));
    let (lync, _, h) = converge_cleanly(&s, &d);
    let sim = lync.lock();
    assert!(h.pending_backup_cleanup.is_empty(), "the cleanup ran");
    let topo = sim.topology();
    assert_eq!(topo.partner(&"pool01.dal.contoso.com".parse().unwrap()).map(|f| f.to_string()).as_deref(), Some("pool02.sea.contoso.com"));
    assert_eq!(topo.partner(&"pool01.sea.contoso.com".parse().unwrap()), None, "the former partner has no backup pool now");
}

#[test]
fn no_repair_while_users_are_failed_over_or_the_cms_depends_on_the_old_pairing() {
    let d = desired(&pair("dal-sea2", "pool01.dal.contoso.com", "pool02.sea.contoso.com", "  allowRepair: true"));
    let s = scenario(&format!("{}\nstate:\n  failedOver: [pool01.sea.contoso.com]\n", four_pools(PAIRED_01, "pool02.dal.contoso.com", "")));
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty(), "{:?}", ids(&p));
    assert!(p.blockers.iter().any(|b| b.reason.contains("failed over")), "{:?}", p.blockers);
    // The CMS lives in the old pair: it must move first.
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ""));
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty(), "{:?}", ids(&p));
    assert!(p.blockers.iter().any(|b| b.reason.contains("move the CMS first")), "{:?}", p.blockers);
}

#[test]
fn unsupported_pairings_are_blocked_with_the_rule_named() {
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ", virtualization: Virtual"));
    let d = desired(&pair("p02", "pool02.dal.contoso.com", "pool02.sea.contoso.com", ""));
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty(), "{:?}", ids(&p));
    assert!(p.blockers.iter().any(|b| b.reason.contains("LikeVirtualization")), "{:?}", p.blockers);
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ", os: Windows Server 2016"));
    let (_, p) = plan_for(&s, &d);
    assert!(p.blockers.iter().any(|b| b.reason.contains("SameOperatingSystem")), "{:?}", p.blockers);
}

#[test]
fn a_paired_pool_without_its_backup_service_is_completed_before_anything_fails_over() {
    let s = scenario(&format!(
        "{}\nstate:\n  backupServiceStopped: [pool01.sea.contoso.com]\n",
        four_pools(PAIRED_01, "pool02.dal.contoso.com", "")
    ));
    let d = desired(&pair("p01", "pool01.dal.contoso.com", "pool01.sea.contoso.com", "  failedOver: [pool01.dal.contoso.com]"));
    let (_, p) = plan_for(&s, &d);
    assert!(p.step("pairing-start-backup/pool01-fe01.sea.contoso.com").is_some(), "{:?}", ids(&p));
    assert!(p.step("pool-failover/pool01.dal.contoso.com").is_none(), "no failover to a pool without a usable backup");
    assert!(p.blockers.iter().any(|b| b.reason.contains("once the pairing is complete")), "{:?}", p.blockers);
    let (lync, _, _) = converge_cleanly(&s, &d);
    let sim = lync.lock();
    assert_eq!(sim.snapshot().pools[&"pool01.dal.contoso.com".parse().unwrap()].served_by.to_string(), "pool01.sea.contoso.com");
}

#[test]
fn without_a_pool_pair_nothing_is_unpaired() {
    // Deleting a PoolPair never unpairs: no resource, no step.
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ""));
    let d = desired("apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: contoso}\nspec: {}\n");
    let (_, p) = plan_for(&s, &d);
    assert!(p.steps.is_empty(), "{:?}", ids(&p));
}

#[test]
fn two_pairings_at_once_publish_one_topology_after_the_other() {
    // A topology document holds the whole topology: the second one, written before the first was
    // published, would undo the first pairing. No pool is paired to start with.
    let s = scenario(&four_pools("  []", "pool01.dal.contoso.com", "").replace("pairs:\n  []", "pairs: []"));
    let d = desired(&format!(
        "{}---\n{}",
        pair("p01", "pool01.dal.contoso.com", "pool01.sea.contoso.com", ""),
        pair("p02", "pool02.dal.contoso.com", "pool02.sea.contoso.com", "").split("---").nth(1).unwrap_or_default()
    ));
    let (_, p) = plan_for(&s, &d);
    let first = "pool01.dal.contoso.com+pool01.sea.contoso.com";
    let second = "pool02.dal.contoso.com+pool02.sea.contoso.com";
    let draft = p.step(&format!("pairing-topology/{second}")).expect("second topology draft");
    assert!(draft.after.contains(&format!("pairing-publish/{first}")), "{:?}", draft.after);
    let (lync, _, _) = converge_cleanly(&s, &d);
    let sim = lync.lock();
    let snap = sim.snapshot();
    for (a, b) in [("pool01.dal.contoso.com", "pool01.sea.contoso.com"), ("pool02.dal.contoso.com", "pool02.sea.contoso.com")] {
        let pa = &snap.pools[&a.parse().unwrap()];
        assert_eq!(pa.backup_pool.as_ref().map(ToString::to_string).as_deref(), Some(b));
        assert!(pa.backup_service_running, "LYNCBACKUP runs in {a}");
    }
}

#[test]
fn pairing_the_cms_pool_sets_up_its_standby_so_the_pool_can_then_fail_over() {
    // The CMS lives in pool02.dal, which is unpaired; the spec pairs it and fails its users over.
    // The failover waits for the pairing; the pairing's local setup creates the standby CMS in
    // pool02.sea (domain document 2.4); then the CMS moves first (rule 3) and the pool fails over.
    let s = scenario(&four_pools(PAIRED_01, "pool02.dal.contoso.com", ""));
    let d = desired(&pair("p02", "pool02.dal.contoso.com", "pool02.sea.contoso.com", "  failedOver: [pool02.dal.contoso.com]"));
    let (_, p) = plan_for(&s, &d);
    assert!(p.step("pool-failover/pool02.dal.contoso.com").is_none(), "{:?}", ids(&p));
    let (lync, _, _) = converge_cleanly(&s, &d);
    let sim = lync.lock();
    let snap = sim.snapshot();
    assert_eq!(snap.cms.active_pool.as_ref().map(ToString::to_string).as_deref(), Some("pool02.sea.contoso.com"));
    assert_eq!(snap.pools[&"pool02.dal.contoso.com".parse().unwrap()].served_by.to_string(), "pool02.sea.contoso.com");
    let lines: Vec<&str> = sim.log().iter().filter(|r| r.mutating).map(|r| r.line.as_str()).collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle} in {lines:#?}"));
    assert!(at("Publish-CsTopology") < at("Invoke-CsManagementServerFailover"));
    assert!(at("Invoke-CsManagementServerFailover") < at("Invoke-CsPoolFailOver"));
}

/// The PoolPair's `Paired` condition and `status.pairing` for an observation.
fn paired_condition(d: &lyncdr::desired::Desired, o: &lyncdr::model::Observed) -> (String, String, Option<String>) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let progress = Default::default();
    let round = lyncdr::status::Round {
        desired: d,
        observed: Some(o),
        plan: None,
        phase: lyncdr::status::Phase::Converged,
        generation: 1,
        drift: false,
        progress: &progress,
        now: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    };
    let st = lyncdr::status::pair_status(None, &round, &d.pairs[0], 1);
    let c = st.conditions.iter().find(|c| c.type_ == "Paired").expect("a Paired condition");
    (c.status.clone(), c.reason.clone(), st.pairing.clone())
}

#[test]
fn the_paired_condition_says_what_differs_until_the_pairing_holds() {
    let d = desired(&pair("p02", "pool02.dal.contoso.com", "pool02.sea.contoso.com", ""));
    let unpaired = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", ""));
    let (o, _) = plan_for(&unpaired, &d);
    assert_eq!(paired_condition(&d, &o), ("False".into(), "NotPaired".into(), Some("NotPaired".into())));

    let stopped = scenario(&format!(
        "{}\nstate:\n  backupServiceStopped: [pool02.sea.contoso.com]\n",
        four_pools(&format!("{PAIRED_01}\n  - [pool02.dal.contoso.com, pool02.sea.contoso.com]"), "pool01.dal.contoso.com", "")
    ));
    let (o, _) = plan_for(&stopped, &d);
    assert_eq!(paired_condition(&d, &o).1, "BackupServiceNotRunning");

    let (_, c, _) = converge_cleanly(&unpaired, &d);
    let Converged::Done { observed, .. } = c else { panic!("{c:?}") };
    assert_eq!(paired_condition(&d, &observed), ("True".into(), "Paired".into(), Some("Paired".into())));
}

/// Issue 10, finding 13: an unsupported pairing already in place (Enterprise with Standard)
/// and the Enterprise pool lost. Lync fails over between them anyway; lyncdr says so loudly (a
/// PoolPair condition `SupportedPairing=False` naming the rule, a blocker naming the consent
/// field) and fails over only with `spec.allowUnsupportedPairing: true` (and
/// `spec.allowDataLoss`, as for any `-DisasterMode`).
#[test]
fn unsupported_pairing_in_place_fails_over_only_with_consent() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let standard = four_pools(PAIRED_01, "pool02.sea.contoso.com", "").replace(
        "{fqdn: pool01.sea.contoso.com, edition: Enterprise, frontEnds: 2, users: 800, backEnd: {primary: sql01.sea.contoso.com}}",
        "{fqdn: pool01.sea.contoso.com, edition: Standard, frontEnds: 1, users: 800}",
    );
    assert!(standard.contains("edition: Standard"));
    let s = scenario(&format!("{standard}state:\n  down: [pool/pool01.dal.contoso.com]\n"));
    let failover = "  failedOver: [pool01.dal.contoso.com]\n  allowDataLoss: true";
    let d = desired(&pair("p01", "pool01.dal.contoso.com", "pool01.sea.contoso.com", failover));
    let (o, p) = plan_for(&s, &d);
    assert!(p.step("pool-failover/pool01.dal.contoso.com").is_none(), "{:?}", ids(&p));
    assert!(
        p.blockers
            .iter()
            .any(|b| b.resource == "PoolPair/p01" && b.reason.contains("LikeEdition") && b.reason.contains("spec.allowUnsupportedPairing")),
        "{:?}",
        p.blockers
    );

    // The PoolPair says so in a condition, whatever the plan.
    let progress = Default::default();
    let round = lyncdr::status::Round {
        desired: &d,
        observed: Some(&o),
        plan: Some(&p),
        phase: lyncdr::status::Phase::Blocked,
        generation: 1,
        drift: false,
        progress: &progress,
        now: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    };
    let st = lyncdr::status::pair_status(None, &round, &d.pairs[0], 1);
    let c = st.conditions.iter().find(|c| c.type_ == "SupportedPairing").expect("SupportedPairing condition");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "LikeEdition"), "{c:?}");
    assert!(c.message.contains("pool01.sea.contoso.com is Standard Edition") || c.message.contains("Standard"), "{c:?}");

    // With consent, the disaster failover runs (and the notice stays).
    let d =
        desired(&pair("p01", "pool01.dal.contoso.com", "pool01.sea.contoso.com", &format!("{failover}\n  allowUnsupportedPairing: true")));
    let p = replan(&d, &o);
    let step = p.step("pool-failover/pool01.dal.contoso.com").unwrap_or_else(|| panic!("{:?} {:?}", ids(&p), p.blockers));
    assert_eq!(step.args.get("DisasterMode"), Some(&serde_json::Value::Bool(true)));
    assert!(p.notices.iter().any(|n| n.contains("unsupported pairing") && n.contains("LikeEdition")), "{:?}", p.notices);
    let (lync, _, _) = converge_cleanly(&s, &d);
    let sim = lync.lock();
    assert_eq!(sim.snapshot().pools[&"pool01.dal.contoso.com".parse().unwrap()].served_by.to_string(), "pool01.sea.contoso.com");
}

/// Issue 10, finding 11 (rule 13, JJ204773): pairing SfB 2019 pools, local setup installs the
/// pairing components at the release version; a person re-applies the cumulative update on each
/// Front End, and only then does the Backup Service start. The plan waits for it, observably
/// (`Get-CsServerPatchVersion` on the server, compared with its peers), and the strict simulator
/// (which refuses LYNCBACKUP on a server behind on its update) accepts the whole procedure once
/// the person has acted.
#[test]
fn sfb_2019_pairing_waits_for_the_cumulative_update_before_the_backup_service_starts() {
    let s = scenario(&four_pools(PAIRED_01, "pool01.dal.contoso.com", "").replace("product: SfB2015", "product: SfB2019"));
    let d = desired(&pair("p02", "pool02.dal.contoso.com", "pool02.sea.contoso.com", ""));
    let (_, p) = plan_for(&s, &d);
    for fe in ["pool02-fe01.dal.contoso.com", "pool02-fe02.dal.contoso.com", "pool02-fe01.sea.contoso.com", "pool02-fe02.sea.contoso.com"] {
        let wait = format!("wait-cumulative-update/{fe}");
        assert!(pos(&p, &format!("pairing-setup/{fe}")) < pos(&p, &wait));
        assert!(pos(&p, &wait) < pos(&p, &format!("pairing-start-backup/{fe}")));
        let w = p.step(&wait).expect("wait");
        assert_eq!(
            (w.kind, w.cmdlet.as_str(), w.run_on.to_string()),
            (lyncdr::planner::StepKind::Wait, "Get-CsServerPatchVersion", fe.to_string())
        );
        assert!(p.step(&format!("pairing-start-backup/{fe}")).expect("start").after.contains(&wait));
    }
    assert!(
        p.notices.iter().any(|n| n.contains("re-apply the cumulative update") && n.contains("pool02-fe01.dal.contoso.com")),
        "{:?}",
        p.notices
    );

    // On the simulator: the engine waits at each server until a person re-applies the update
    // (played by `update:server/<fe>` whenever the engine stops at such a wait).
    runtime().block_on(async {
        let lync = LocalSim::new(Simulator::new(&s));
        let mut history = History::default();
        let mut acted = Vec::new();
        let end = loop {
            let (c, h) = converge(&lync, &d, history).await;
            history = h;
            match &c {
                Converged::Stalled { step, .. } if step.starts_with("wait-cumulative-update/") && acted.len() < 8 => {
                    let fe = step.trim_start_matches("wait-cumulative-update/").to_string();
                    lync.lock().inject(&lyncdr::sim::Fault::parse(&format!("update:server/{fe}")).expect("a person's action"));
                    acted.push(fe);
                }
                _ => break c,
            }
        };
        assert!(matches!(end, Converged::Done { .. }), "{end:?}");
        assert!(!acted.is_empty(), "the engine waited for the person");
        let sim = lync.lock();
        let failed: Vec<String> =
            sim.log().iter().filter(|r| r.mutating && r.outcome != Outcome::Ok).map(|r| format!("{} {:?}", r.line, r.error)).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert_eq!(
            sim.snapshot().pools[&"pool02.dal.contoso.com".parse().unwrap()].backup_pool.as_ref().map(|f| f.to_string()).as_deref(),
            Some("pool02.sea.contoso.com")
        );
    });
}
