//! Property tests of the planner against the simulator: for random topologies, runtime states
//! (pools failed over, sites, pools, SQL servers and Edge pools down, partitions, Backup Service
//! errors, pools left unpaired or with LYNCBACKUP stopped) and desired states (including
//! re-pairing across two pairs, with or without consent), executing the plans on the simulator
//! never hits a precondition error, and ends converged (planning again gives an empty plan, and
//! the desired state, pairing included, holds) or blocked with a reason.

mod common;

use std::collections::BTreeMap;

use lyncdr::backend::Lync;
use lyncdr::desired::{BackEndDesired, CmsDesired, Desired, PairDesired};
use lyncdr::engine::Converged;
use lyncdr::model::{Fqdn, History, Role, Span};
use lyncdr::scenario::{BackEndFile, EdgeFile, PoolFile, ScenarioFile, SiteFile, StateFile};
use lyncdr::sim::LocalSim;
use lyncdr::sim::{Outcome, Simulator};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct PoolSpec {
    users: u32,
    mirror: bool,
    witness: bool,
    front_ends: u32,
    rgs: bool,
}

#[derive(Debug, Clone)]
struct PairSpec {
    /// Site index of each pool (different sites).
    sites: (usize, usize),
    pools: (PoolSpec, PoolSpec),
    /// 0: normal, 1: first failed over, 2: second failed over.
    initial: u8,
    desired: u8,
    allow_data_loss: bool,
    automatic: Option<u8>,
    automatic_failback: bool,
    /// 0..=6: paired and running; 7: not paired in the topology (users at home); 8: paired
    /// with LYNCBACKUP stopped on the first pool.
    pairing: u8,
}

#[derive(Debug, Clone)]
struct Case {
    sites: usize,
    edges: Vec<bool>,
    pairs: Vec<PairSpec>,
    cms_pair: usize,
    cms_side: bool,
    sip: Option<usize>,
    xmpp: Option<usize>,
    faults: Vec<u8>,
    fault_site: usize,
    want_cms: Option<(bool, bool, bool)>,
    edge_auto: bool,
    want_sip: Option<usize>,
    principal_mirror: Vec<bool>,
    sync_interval: Option<u8>,
    /// Desire the first pool of pair 0 paired with the second of pair 1 instead (re-pairing),
    /// with `allowRepair` as given.
    cross: Option<bool>,
    /// XMPP SRV records pre-created for every Edge pool (otherwise only for the XMPP Edge pool,
    /// and a person repoints them when the engine waits for it).
    xmpp_dns_all: bool,
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    (0u32..4, any::<bool>(), any::<bool>(), 1u32..4, any::<bool>()).prop_map(|(u, mirror, witness, fe, rgs)| PoolSpec {
        users: u * 700,
        mirror,
        witness: mirror && witness,
        front_ends: fe,
        rgs,
    })
}

fn pair_spec(sites: usize) -> impl Strategy<Value = PairSpec> {
    (
        (0..sites, 1..sites, pool_spec(), pool_spec()),
        (0u8..3, 0u8..3, any::<bool>(), proptest::option::of(0u8..2), any::<bool>(), 0u8..8, 0u8..9),
    )
        .prop_map(move |((a, off, pa, mut pb), (initial, desired, allow, automatic, fb, odd, pairing))| {
            // Mostly supported pairings (same Back End high availability); sometimes not.
            if odd != 0 {
                pb.mirror = pa.mirror;
                pb.witness = pb.mirror && pb.witness;
            }
            PairSpec {
                sites: (a, (a + off) % sites),
                pools: (pa, pb),
                initial,
                desired,
                allow_data_loss: allow,
                automatic,
                automatic_failback: fb,
                pairing,
            }
        })
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..4).prop_flat_map(|sites| {
        (
            Just(sites),
            proptest::collection::vec(any::<bool>(), sites),
            proptest::collection::vec(pair_spec(sites), 1..4),
            any::<bool>(),
            (proptest::option::of(0..sites), proptest::option::of(0..sites)),
            proptest::collection::vec(0u8..9, 0..3),
            0..sites,
            proptest::option::of((any::<bool>(), any::<bool>(), any::<bool>())),
            (any::<bool>(), proptest::option::of(0..sites)),
            proptest::collection::vec(any::<bool>(), 8),
            (proptest::option::of(0u8..3), proptest::option::weighted(0.2, any::<bool>()), any::<bool>()),
        )
            .prop_flat_map(
                |(
                    sites,
                    edges,
                    pairs,
                    side,
                    (sip, xmpp),
                    faults,
                    fault_site,
                    want_cms,
                    (edge_auto, want_sip),
                    pm,
                    (si, cross, dns_all),
                )| {
                    let n = pairs.len();
                    (0..n).prop_map(move |cms_pair| Case {
                        sites,
                        edges: edges.clone(),
                        pairs: pairs.clone(),
                        cms_pair,
                        cms_side: side,
                        sip,
                        xmpp,
                        faults: faults.clone(),
                        fault_site,
                        want_cms,
                        edge_auto,
                        want_sip,
                        principal_mirror: pm.clone(),
                        sync_interval: si,
                        cross,
                        xmpp_dns_all: dns_all,
                    })
                },
            )
    })
}

fn site_name(i: usize) -> String {
    format!("Site{i}")
}

fn pool_name(pair: usize, side: usize, site: usize) -> String {
    format!("pool{pair}{}.s{site}.contoso.com", if side == 0 { "a" } else { "b" })
}

fn edge_name(site: usize) -> String {
    format!("edge.s{site}.contoso.com")
}

fn fq(s: &str) -> Fqdn {
    Fqdn::parse(s).expect("valid")
}

/// Builds the scenario and the desired state of a case.
fn build(c: &Case) -> (ScenarioFile, Desired) {
    let mut sites: Vec<SiteFile> =
        (0..c.sites).map(|i| SiteFile { name: site_name(i), front_end_pools: vec![], edge_pools: vec![] }).collect();
    let mut pairs_file = Vec::new();
    let mut failed_over = Vec::new();
    let mut principal = Vec::new();
    let mut desired_pairs = Vec::new();
    let mut pool_list = Vec::new();
    let mut backup_stopped = Vec::new();
    let mut k = 0;
    for (i, p) in c.pairs.iter().enumerate() {
        let names = [pool_name(i, 0, p.sites.0), pool_name(i, 1, p.sites.1)];
        for (side, (spec, site)) in [(&p.pools.0, p.sites.0), (&p.pools.1, p.sites.1)].into_iter().enumerate() {
            let fqdn = names[side].clone();
            let host = fqdn.split('.').next().unwrap_or_default().to_string();
            sites[site].front_end_pools.push(PoolFile {
                fqdn: fqdn.clone(),
                edition: lyncdr::model::Edition::Enterprise,
                front_ends: Some(spec.front_ends),
                front_end_servers: vec![],
                users: spec.users,
                named_users: vec![],
                back_end: Some(BackEndFile {
                    primary: format!("sql-{host}.s{site}.contoso.com"),
                    mirror: spec.mirror.then(|| format!("sqlm-{host}.s{site}.contoso.com")),
                    witness: spec.witness,
                    clustered: false,
                }),
                product: None,
                virtualization: Default::default(),
                os: "Windows Server 2012 R2".into(),
                call_park: true,
                response_groups: if spec.rgs { vec![format!("Queue-{host}")] } else { vec![] },
            });
            if spec.mirror && c.principal_mirror[k % c.principal_mirror.len()] {
                principal.push((fqdn.clone(), k));
            }
            k += 1;
            pool_list.push(fqdn);
        }
        match p.pairing {
            7 => {}
            8 => backup_stopped.push(names[0].clone()),
            _ => {}
        }
        if p.pairing != 7 {
            pairs_file.push([names[0].clone(), names[1].clone()]);
            match p.initial {
                1 => failed_over.push(names[0].clone()),
                2 => failed_over.push(names[1].clone()),
                _ => {}
            }
        }
        let target = match p.desired {
            1 => Some(fq(&names[0])),
            2 => Some(fq(&names[1])),
            _ => None,
        };
        desired_pairs.push(PairDesired {
            name: format!("pair{i}"),
            generation: 1,
            pools: [fq(&names[0]), fq(&names[1])],
            failed_over: target,
            allow_data_loss: p.allow_data_loss,
            automatic_failover: p.automatic.filter(|_| p.allow_data_loss).map(|g| if g == 0 { Span::ZERO } else { Span::mins(5) }),
            automatic_failback: p.automatic_failback.then(|| Span::mins(10)),
            failback_approved: false,
            allow_repair: false,
            allow_unsupported_pairing: false,
        });
    }
    // Re-pairing: pair 0's first pool with pair 1's second, replacing both PoolPairs.
    if let Some(allow) = c.cross
        && c.pairs.len() >= 2
    {
        let (a, b) = (pool_name(0, 0, c.pairs[0].sites.0), pool_name(1, 1, c.pairs[1].sites.1));
        desired_pairs.retain(|p| p.name != "pair0" && p.name != "pair1");
        desired_pairs.push(PairDesired {
            name: "cross".into(),
            generation: 1,
            pools: [fq(&a), fq(&b)],
            failed_over: None,
            allow_data_loss: false,
            automatic_failover: None,
            automatic_failback: None,
            failback_approved: false,
            allow_repair: allow,
            allow_unsupported_pairing: false,
        });
    }
    for (i, has) in c.edges.iter().enumerate() {
        if *has {
            let hop = sites[i].front_end_pools.first().map(|p| p.fqdn.clone()).or_else(|| pool_list.first().cloned());
            sites[i].edge_pools.push(EdgeFile { fqdn: edge_name(i), next_hop: hop, servers: Some(1), server_names: vec![] });
        }
    }
    // The CMS lives in a pool serving its own users.
    let cp = &c.pairs[c.cms_pair];
    let mut side = c.cms_side;
    if (cp.initial == 1 && !side) || (cp.initial == 2 && side) {
        side = !side;
    }
    let cms_pool = pool_name(c.cms_pair, usize::from(side), if side { cp.sites.1 } else { cp.sites.0 });
    let edge_of = |s: Option<usize>| s.filter(|i| c.edges[*i]).map(edge_name);
    let mut down = Vec::new();
    for f in &c.faults {
        let site = c.fault_site;
        let any_pool = pool_list[(site * 7 + *f as usize) % pool_list.len()].clone();
        let host = any_pool.split('.').next().unwrap_or_default().to_string();
        let rest: String = any_pool.split_once('.').map(|x| x.1).unwrap_or_default().to_string();
        down.push(match f {
            0 | 1 => format!("site/{}", site_name(site)),
            2 => format!("pool/{any_pool}"),
            3 => format!("sql/sql-{host}.{rest}"),
            4 if c.edges[site] => format!("edge/{}", edge_name(site)),
            5 => format!("link/operator:{}", site_name(site)),
            6 => format!("link/{}:{}", site_name(site), site_name((site + 1) % c.sites)),
            7 => format!("backup/{any_pool}"),
            _ => format!("site/{}", site_name(site)),
        });
    }
    down.sort();
    down.dedup();
    let scenario = ScenarioFile {
        name: "prop".into(),
        product: lyncdr::model::Product::SfB2015,
        sites,
        pairs: pairs_file,
        cms: Some(lyncdr::scenario::CmsFile { active_pool: cms_pool.clone() }),
        federation: lyncdr::scenario::FederationFile {
            sip_edge_pool: edge_of(c.sip),
            xmpp_edge_pool: edge_of(c.xmpp),
            xmpp_dns: c.xmpp_dns_all.then(|| {
                let first = edge_of(c.xmpp);
                first
                    .iter()
                    .cloned()
                    .chain((0..c.sites).filter(|i| c.edges[*i]).map(edge_name).filter(|e| Some(e) != first.as_ref()))
                    .collect()
            }),
        },
        media_edge: vec![],
        backup_service: Default::default(),
        transport_faults: None,
        state: StateFile {
            failed_over,
            down,
            back_end_principal: principal
                .iter()
                .map(|(p, _)| lyncdr::scenario::PrincipalFile { pool: p.clone(), principal: Role::Mirror })
                .collect(),
            backup_service_stopped: backup_stopped,
        },
        timings: Default::default(),
    };
    let mut back_ends = BTreeMap::new();
    for (i, p) in pool_list.iter().enumerate() {
        if i % 3 == 0 {
            let mirrored = c.pairs[i / 2].pools.0.mirror && i % 2 == 0 || c.pairs[i / 2].pools.1.mirror && i % 2 == 1;
            if mirrored {
                back_ends.insert(fq(p), BackEndDesired { principal: Role::Primary, automatic_failover: true });
            }
        }
    }
    let desired = Desired {
        deployment: "prop".into(),
        namespace: String::new(),
        generation: 1,
        cms: c.want_cms.map(|(other, loss, auto)| {
            let pool = if other {
                pool_name(c.cms_pair, usize::from(!side), if side { cp.sites.0 } else { cp.sites.1 })
            } else {
                cms_pool.clone()
            };
            CmsDesired { active_pool: fq(&pool), allow_data_loss: loss || auto, automatic_failover: auto }
        }),
        sip_federation: edge_of(c.want_sip).map(|e| fq(&e)),
        xmpp_federation: None,
        edge_failover: c.edge_auto,
        edge_fallbacks: vec![],
        next_hops: BTreeMap::new(),
        media: BTreeMap::new(),
        back_ends,
        sync_interval: c.sync_interval.map(|i| [Span::secs(30), Span::mins(2), Span::mins(5)][i as usize]),
        rgs_export_path: Some(r"\\fs.contoso.com\rgs".into()),
        rgs_resolve_name_conflicts: false,
        pairs: desired_pairs,
        placements: vec![],
        restores: vec![],
    };
    (scenario, desired)
}

/// Runs the engine until it converges or stays blocked, letting grace periods pass and playing
/// the people a wait step waits for (the XMPP DNS records, the cumulative update).
async fn drive(lync: &LocalSim, d: &Desired) -> (Converged, History) {
    let mut history = History::default();
    let mut last = None;
    for _ in 0..8 {
        let (c, h) = common::converge(lync, d, history).await;
        history = h;
        match &c {
            Converged::Blocked { plan, .. } if plan.recheck_after.is_some() => {
                let wait = plan.recheck_after.unwrap_or_default();
                lync.sleep(wait + Span::secs(1)).await;
                last = Some(c);
            }
            Converged::Stalled { step, .. } if person(step).is_some() => {
                let fault = person(step).unwrap_or_default();
                lync.lock().inject(&lyncdr::sim::Fault::parse(&fault).expect("a person's action"));
                last = Some(c);
            }
            _ => return (c, history),
        }
    }
    (last.expect("ran at least once"), history)
}

/// What a person does for a wait step that waits for one.
fn person(step: &str) -> Option<String> {
    if let Some(edge) = step.strip_prefix("wait-xmpp-dns/") {
        return Some(format!("point:xmpp-dns/{edge}"));
    }
    step.strip_prefix("wait-cumulative-update/").map(|s| format!("update:server/{s}"))
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let (file, d) = build(c);
    let scenario = match file.validate() {
        Ok(s) => s,
        Err(e) => {
            // Only cases the generator cannot avoid cheaply (e.g. a fault on a missing Edge) are skipped.
            return Err(TestCaseError::reject(e.to_string()));
        }
    };
    let rt = common::runtime();
    rt.block_on(async {
        let lync = LocalSim::new(Simulator::new(&scenario));
        let (outcome, history) = drive(&lync, &d).await;
        let sim = lync.lock();
        let errors: Vec<String> = sim
            .log()
            .iter()
            .filter(|r| r.mutating && r.outcome != Outcome::Ok)
            .map(|r| format!("{} -> {:?} {}", r.line, r.outcome, r.error.clone().unwrap_or_default()))
            .collect();
        let scenario_yaml = serde_saphyr::to_string(&file).unwrap_or_default();
        prop_assert!(
            errors.is_empty(),
            "cmdlets failed:\n{}\nscenario:\n{scenario_yaml}\ndesired: {d:#?}\nlog:\n{}",
            errors.join("\n"),
            sim.log().iter().filter(|r| r.mutating).map(|r| format!("{} {:?}", r.line, r.outcome)).collect::<Vec<_>>().join("\n")
        );
        if std::env::var_os("LYNCDR_PROP_STATS").is_some() {
            let kind = match &outcome {
                Converged::Done { .. } => "done",
                Converged::Blocked { .. } => "blocked",
                Converged::Stalled { .. } => "stalled",
                Converged::Unobservable { .. } => "unobservable",
            };
            let why = match &outcome {
                Converged::Blocked { plan, .. } => {
                    format!("{:?} recheck={:?}", plan.blockers.iter().map(|b| &b.reason).collect::<Vec<_>>(), plan.recheck_after)
                }
                _ => String::new(),
            };
            eprintln!("case: {kind} changes={} {why}", sim.log().iter().filter(|r| r.mutating).count());
        }
        match &outcome {
            Converged::Done { observed, .. } => {
                // Planning the result again gives an empty plan.
                let again = lyncdr::planner::plan(
                    &d,
                    &lyncdr::model::Observed { history: history.clone(), ..(**observed).clone() },
                    &Default::default(),
                );
                prop_assert!(
                    again.steps.is_empty(),
                    "replanning is not empty: {:?}",
                    again.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
                );
                // The desired pairing state holds (unless an automatic failover overrides it).
                let snap = sim.snapshot();
                let topo = sim.topology();
                for p in &d.pairs {
                    let [a, b] = &p.pools;
                    prop_assert!(
                        topo.partner(a) == Some(b) && topo.partner(b) == Some(a),
                        "{a} and {b} are not paired\nscenario:\n{scenario_yaml}"
                    );
                    // (A pool that is down, or that the operator cannot reach, cannot have its
                    // Backup Service started.)
                    for pool in [a, b] {
                        let reachable = observed.health(pool) == lyncdr::model::Health::Up;
                        prop_assert!(
                            !reachable || snap.pools[pool].backup_service_running,
                            "LYNCBACKUP is not running for {pool}\nscenario:\n{scenario_yaml}"
                        );
                    }
                    for pool in &p.pools {
                        let want = if p.failed_over.as_ref() == Some(pool) { p.partner(pool).clone() } else { pool.clone() };
                        let automatic = history.automatic_failovers.contains_key(pool);
                        prop_assert!(
                            automatic || snap.pools[pool].served_by == want,
                            "{pool} served by {} instead of {want}\nscenario:\n{scenario_yaml}",
                            snap.pools[pool].served_by
                        );
                    }
                }
            }
            Converged::Blocked { plan, .. } => {
                prop_assert!(
                    !plan.blockers.is_empty() || !plan.notices.is_empty() || plan.recheck_after.is_some(),
                    "blocked without a reason"
                );
            }
            Converged::Stalled { step, reason, .. } => {
                prop_assert!(
                    false,
                    "stalled at {step}: {reason}\nscenario:\n{scenario_yaml}\ndesired: {d:#?}\nlog:\n{}",
                    sim.log()
                        .iter()
                        .map(|r| format!("{} {:?}", r.line, r.outcome))
                        .filter(|l| !l.starts_with("Get-"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            Converged::Unobservable { .. } => {
                // Every server unreachable: nothing can be planned; nothing must have run.
                prop_assert!(sim.log().iter().all(|r| !r.mutating));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("LYNCDR_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(160), max_global_rejects: 2000, ..ProptestConfig::default() })]

    #[test]
    fn plans_execute_cleanly_and_converge(c in case()) {
        check(&c)?;
    }
}

/// Cases CI's random runs found (the regressions file only replays seeds of this machine's runs).
#[test]
fn an_unsupported_pairing_in_place_gets_its_backup_service_started_without_consent() {
    // Paired in Lync although one Back End is mirrored and the other is not; pool0a's users are
    // failed over (as desired), LYNCBACKUP is stopped on pool0a. Starting it moves no user.
    let pool = |mirror| PoolSpec { users: 0, mirror, witness: false, front_ends: 1, rgs: false };
    let c = Case {
        sites: 2,
        edges: vec![false, false],
        pairs: vec![PairSpec {
            sites: (0, 1),
            pools: (pool(false), pool(true)),
            initial: 1,
            desired: 1,
            allow_data_loss: false,
            automatic: None,
            automatic_failback: false,
            pairing: 8,
        }],
        cms_pair: 0,
        cms_side: false,
        sip: Some(1),
        xmpp: None,
        faults: vec![],
        fault_site: 1,
        want_cms: None,
        edge_auto: false,
        want_sip: None,
        principal_mirror: vec![false, false, true, false, false, true, true, true],
        sync_interval: None,
        cross: None,
        xmpp_dns_all: true,
    };
    if let Err(e) = check(&c) {
        panic!("{e}");
    }
}
