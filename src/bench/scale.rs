//! The planner at scale, and the generated two-site deployments the benchmarks share: N pairs
//! (pool<i>.dal paired with pool<i>.sea), one Edge pool per site, the CMS in pool0.dal; their
//! desired states at home or failed over; and observations of large deployments tiled from the
//! simulator's observation of a small one (the simulator's own observation grows with the square
//! of its pools). [`run`] times `plan` from 10 to 10,000 Front End pools (100,000 users), converged
//! and with Dallas lost, and shows the growth per 10 times the pools (linear: about 10x). The
//! generators panic on a malformed template: they are fixed text, covered by the tests.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchError;
use crate::api::manifests;
use crate::desired::{self, Desired};
use crate::engine::Engine;
use crate::engine::journal::MemoryJournal;
use crate::model::Observed;
use crate::planner::{Policy, plan};
use crate::scenario::Scenario;
use crate::sim::{LocalSim, Simulator};

/// A two-site deployment with `n` pairs (pool<i>.dal paired with pool<i>.sea), one Edge pool per
/// site, the CMS in pool0.dal; `dallas_down` starts with the Dallas site lost.
pub fn scenario(n: usize, dallas_down: bool) -> Scenario {
    scenario_with(n, 1000, dallas_down)
}

/// [`scenario`] with `users` users homed in each of the `2 * n` Front End pools.
pub fn scenario_with(n: usize, users: u32, dallas_down: bool) -> Scenario {
    Scenario::from_yaml(&scenario_yaml(n, users, dallas_down)).unwrap_or_else(|e| panic!("bench scenario: {e}"))
}

/// The scenario file of [`scenario_with`].
pub fn scenario_yaml(n: usize, users: u32, dallas_down: bool) -> String {
    let pools = |site: &str| {
        (0..n)
            .map(|i| {
                format!(
                    "      - {{fqdn: pool{i}.{site}.contoso.com, edition: Enterprise, frontEnds: 2, users: {users}, backEnd: {{primary: sql{i}.{site}.contoso.com}}}}\n"
                )
            })
            .collect::<String>()
    };
    let pairs: String = (0..n).map(|i| format!("  - [pool{i}.dal.contoso.com, pool{i}.sea.contoso.com]\n")).collect();
    let state = if dallas_down { "state:\n  down: [site/Dallas]\n" } else { "" };
    let yaml = format!(
        "name: bench-{n}\nproduct: SfB2015\nsites:\n  - name: Dallas\n    frontEndPools:\n{}    edgePools:\n      - {{fqdn: edge01.dal.contoso.com, nextHop: pool0.dal.contoso.com}}\n  - name: Seattle\n    frontEndPools:\n{}    edgePools:\n      - {{fqdn: edge01.sea.contoso.com, nextHop: pool0.sea.contoso.com}}\npairs:\n{pairs}cms: {{activePool: pool0.dal.contoso.com}}\nfederation: {{sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.dal.contoso.com, xmppDns: [edge01.dal.contoso.com, edge01.sea.contoso.com]}}\n{state}",
        pools("dal"),
        pools("sea")
    );
    yaml
}

/// Every Dallas pool's users served from Seattle (with consent to data loss), the CMS and
/// federation following; or everything at home.
pub fn desired_state(n: usize, failed_over: bool) -> Desired {
    let (cms, edge) =
        if failed_over { ("pool0.sea.contoso.com", "edge01.sea.contoso.com") } else { ("pool0.dal.contoso.com", "edge01.dal.contoso.com") };
    let fo = |i: usize| if failed_over { format!("[pool{i}.dal.contoso.com]") } else { "[]".to_string() };
    let yaml = format!(
        "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: bench}}\nspec:\n  centralManagementStore: {{activePool: {cms}, allowDataLoss: true}}\n  edge:\n    sipFederationPool: {edge}\n    xmppFederationPool: {edge}\n    edgePools:\n      - {{fqdn: edge01.dal.contoso.com, nextHop: {}}}\n      - {{fqdn: edge01.sea.contoso.com, nextHop: pool0.sea.contoso.com}}\n  policy: {{concurrency: 4}}\n",
        if failed_over { "pool0.sea.contoso.com" } else { "pool0.dal.contoso.com" }
    );
    let mut docs = vec![yaml];
    for i in 0..n {
        docs.push(format!(
            "---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: pair{i}}}\nspec:\n  deployment: bench\n  pools: [pool{i}.dal.contoso.com, pool{i}.sea.contoso.com]\n  failedOver: {}\n  allowDataLoss: true\n",
            fo(i)
        ));
    }
    // The parser takes at most 1,024 documents from one text: larger deployments come as several.
    let mut m = Vec::new();
    for chunk in docs.chunks(1000) {
        m.extend(manifests::parse(&chunk.concat(), "bench").unwrap_or_else(|e| panic!("bench manifests: {e}")));
    }
    desired::compile(&m).unwrap_or_else(|e| panic!("bench desired: {e}")).remove(0)
}

/// Users homed in each Front End pool of the scale table (100,000 at 10,000 pools).
pub const USERS_PER_POOL: u32 = 10;

/// Sizes up to which the table observes the simulator itself (and checks the tiling against it).
pub const OBSERVED_UP_TO: usize = 1_000;

/// One observation of the simulated deployment: the snapshot, its wall time and its cmdlet count.
pub fn observe(s: &Scenario, d: &Desired) -> Result<(Observed, Duration, usize), BenchError> {
    let rt = super::runtime()?;
    rt.block_on(async {
        let lync = LocalSim::new(Simulator::new(s));
        let journal = MemoryJournal::default();
        let engine = Engine::new(&lync, &journal);
        let t = Instant::now();
        let (o, _) = engine.preview(d, &|_| {}).await.map_err(|e| BenchError(format!("observing {}: {e}", s.name)))?;
        let wall = t.elapsed();
        let calls = lync.lock().log().len();
        Ok((o, wall, calls))
    })
}

/// One row of the planner scale table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleRow {
    pub pools: usize,
    pub users: usize,
    pub steps: usize,
    pub converged_ms: f64,
    pub dallas_lost_ms: f64,
    /// Growth of the Dallas-lost plan time from the previous size.
    pub growth: Option<f64>,
    /// Where the observation came from: the simulator (checked equal to the tiling) or tiled.
    pub observation: String,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    std::hint::black_box(f());
    t.elapsed()
}

/// Plan times for 10 to 10,000 pools (10 and 100 when `quick`).
pub fn run(quick: bool) -> Result<Vec<ScaleRow>, BenchError> {
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1_000, 10_000] };
    let repeats = if quick { 1 } else { 3 };
    let policy = Policy::default();
    let template_home = observe(&scenario_with(2, USERS_PER_POOL, false), &desired_state(2, false))?.0;
    let template_away = observe(&scenario_with(2, USERS_PER_POOL, true), &desired_state(2, true))?.0;
    let mut rows: Vec<ScaleRow> = vec![];
    for &pools in sizes {
        let n = pools / 2;
        let (home, away) = (desired_state(n, false), desired_state(n, true));
        let (o_home, o_away, source) = if pools <= OBSERVED_UP_TO && (quick || pools <= 100) {
            let o_home = observe(&scenario_with(n, USERS_PER_POOL, false), &home)?.0;
            let o_away = observe(&scenario_with(n, USERS_PER_POOL, true), &away)?.0;
            if tiled(&template_home, n) != o_home || tiled(&template_away, n) != o_away {
                return Err(BenchError(format!("{pools} pools: the tiled observation differs from the simulator's")));
            }
            (o_home, o_away, "simulator (= tiled)")
        } else {
            (tiled(&template_home, n), tiled(&template_away, n), "tiled")
        };
        let disaster = plan(&away, &o_away, &policy);
        let failovers = disaster.steps.iter().filter(|s| s.cmdlet == "Invoke-CsPoolFailOver").count();
        if failovers != n || !plan(&home, &o_home, &policy).steps.is_empty() {
            return Err(BenchError(format!("{pools} pools: expected no step at home and {n} failovers with Dallas lost, got {failovers}")));
        }
        let t_conv = median((0..repeats).map(|_| timed(|| plan(&home, &o_home, &policy))).collect());
        let t_dis = median((0..repeats).map(|_| timed(|| plan(&away, &o_away, &policy))).collect());
        let dallas_lost_ms = t_dis.as_secs_f64() * 1000.0;
        rows.push(ScaleRow {
            pools,
            users: pools * USERS_PER_POOL as usize,
            steps: disaster.steps.len(),
            converged_ms: t_conv.as_secs_f64() * 1000.0,
            dallas_lost_ms,
            growth: rows.last().map(|p| dallas_lost_ms / p.dallas_lost_ms.max(1e-6)),
            observation: source.to_string(),
        });
    }
    Ok(rows)
}

/// Growth goal per 10 times the pools (linear would be 10x; cache effects allowed to 20x).
pub const GROWTH_LIMIT: f64 = 20.0;

/// Sizes whose plan time grew faster than [`GROWTH_LIMIT`].
pub fn misses(rows: &[ScaleRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.growth.is_some_and(|g| g > GROWTH_LIMIT))
        .map(|r| {
            format!(
                "planner at {} pools: plan time grew {:.1}x for 10x the pools (limit {GROWTH_LIMIT}x)",
                r.pools,
                r.growth.unwrap_or_default()
            )
        })
        .collect()
}

pub fn render(rows: &[ScaleRow]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| pools | users | steps (Dallas lost) | plan, converged | plan, Dallas lost | growth | observation |\n|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} ms | {:.2} ms | {} | {} |",
            r.pools,
            r.users,
            r.steps,
            r.converged_ms,
            r.dallas_lost_ms,
            r.growth.map(|g| format!("{g:.1}x")).unwrap_or_default(),
            r.observation
        );
    }
    s
}

/// The observation of [`scenario_with`]`(n, ..)` made from `template`, the simulator's
/// observation of the same deployment with 2 pairs: every entry about pair 1 (its pools, Front
/// Ends and SQL servers, wherever they appear) is repeated for pairs 1 to n - 1, renamed; pair 0,
/// which holds the CMS and the Edge pools' next hops, stays as it is. The planner scale table
/// checks it equal to the simulator's own observation at every size it observes.
pub fn tiled(template: &Observed, n: usize) -> Observed {
    let v = serde_json::to_value(template).expect("observation to JSON");
    serde_json::from_value(tile(v, n)).expect("tiled observation")
}

/// Whether a name (or a JSON text) names something of pair 1 of [`scenario_with`].
fn names_pair1(s: &str) -> bool {
    s.contains("pool1.") || s.contains("pool1-") || s.contains("sql1.")
}

/// `s` with the names of pair 1 turned into those of pair `i`.
fn rename(s: &str, i: usize) -> String {
    s.replace("pool1.", &format!("pool{i}.")).replace("pool1-", &format!("pool{i}-")).replace("sql1.", &format!("sql{i}."))
}

/// `v` with every name of pair 1, in keys and values, turned into that of pair `i`.
fn renamed(v: &serde_json::Value, i: usize) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(rename(s, i)),
        Value::Array(a) => Value::Array(a.iter().map(|x| renamed(x, i)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (rename(k, i), renamed(x, i))).collect()),
        other => other.clone(),
    }
}

/// `v` with each map entry keyed by, and each list item naming, something of pair 1 repeated
/// for pairs 1 to n - 1.
fn tile(v: serde_json::Value, n: usize) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                if names_pair1(&k) {
                    out.extend((1..n).map(|i| (rename(&k, i), renamed(&x, i))));
                } else {
                    out.insert(k, tile(x, n));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .flat_map(|x| if names_pair1(&x.to_string()) { (1..n).map(|i| renamed(&x, i)).collect() } else { vec![tile(x, n)] })
                .collect(),
        ),
        other => other,
    }
}
