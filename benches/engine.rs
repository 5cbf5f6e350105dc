//! Figures for the speed and memory targets of the core: how long planning, observing and a whole
//! disaster recovery take as the deployment grows, what an observation costs in cmdlets, how long
//! the built-in demo takes, what the PowerShell driver pays in WinRM round trips (through the
//! simulator's WS-Man endpoint), and the process's peak memory. Printed as tables; no assertion on
//! time (a slow machine is not a failure), only on correctness of what is measured.
//!
//! `cargo bench --bench engine` measures deployments of 1 to 50 pool pairs; under `cargo test`
//! (no `--bench` argument) it runs the smallest sizes once, as a smoke test of the harness.

use std::process::Command;
use std::time::{Duration, Instant};

use lyncdr::api::manifests;
use lyncdr::backend::Lync;
use lyncdr::desired::{self, Desired};
use lyncdr::engine::journal::MemoryJournal;
use lyncdr::engine::{Converged, Engine, Settings};
use lyncdr::model::Observed;
use lyncdr::planner::{Policy, plan};
use lyncdr::scenario::Scenario;
use lyncdr::sim::LocalSim;
use lyncdr::sim::Simulator;

/// A two-site deployment with `n` pairs (pool<i>.dal paired with pool<i>.sea), one Edge pool per
/// site, the CMS in pool0.dal; `dallas_down` starts with the Dallas site lost.
fn scenario(n: usize, dallas_down: bool) -> Scenario {
    let pools = |site: &str| {
        (0..n)
            .map(|i| {
                format!(
                    "      - {{fqdn: pool{i}.{site}.contoso.com, edition: Enterprise, frontEnds: 2, users: 1000, backEnd: {{primary: sql{i}.{site}.contoso.com}}}}\n"
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
    Scenario::from_yaml(&yaml).unwrap_or_else(|e| panic!("bench scenario: {e}"))
}

/// Every Dallas pool's users served from Seattle (with consent to data loss), the CMS and
/// federation following; or everything at home.
fn desired_state(n: usize, failed_over: bool) -> Desired {
    let (cms, edge) =
        if failed_over { ("pool0.sea.contoso.com", "edge01.sea.contoso.com") } else { ("pool0.dal.contoso.com", "edge01.dal.contoso.com") };
    let fo = |i: usize| if failed_over { format!("[pool{i}.dal.contoso.com]") } else { "[]".to_string() };
    let mut yaml = format!(
        "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: bench}}\nspec:\n  centralManagementStore: {{activePool: {cms}, allowDataLoss: true}}\n  edge:\n    sipFederationPool: {edge}\n    xmppFederationPool: {edge}\n    edgePools:\n      - {{fqdn: edge01.dal.contoso.com, nextHop: {}}}\n      - {{fqdn: edge01.sea.contoso.com, nextHop: pool0.sea.contoso.com}}\n  policy: {{concurrency: 4}}\n",
        if failed_over { "pool0.sea.contoso.com" } else { "pool0.dal.contoso.com" }
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: pair{i}}}\nspec:\n  deployment: bench\n  pools: [pool{i}.dal.contoso.com, pool{i}.sea.contoso.com]\n  failedOver: {}\n  allowDataLoss: true\n",
            fo(i)
        ));
    }
    let m = manifests::parse(&yaml, "bench").unwrap_or_else(|e| panic!("bench manifests: {e}"));
    desired::compile(&m).unwrap_or_else(|e| panic!("bench desired: {e}")).remove(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

/// One observation of the simulated deployment: the snapshot, its wall time and its cmdlet count.
fn observe(s: &Scenario, d: &Desired) -> (Observed, Duration, usize) {
    runtime().block_on(async {
        let lync = LocalSim::new(Simulator::new(s));
        let journal = MemoryJournal::default();
        let engine = Engine::new(&lync, &journal);
        let t = Instant::now();
        let (o, _) = engine.preview(d, &|_| {}).await.expect("observe");
        let wall = t.elapsed();
        let calls = lync.lock().log().len();
        (o, wall, calls)
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full { &[] } else { &[1, 3] };
    let repeats = if full { 21 } else { 1 };

    println!("lyncdr core benchmarks ({})", if full { "full" } else { "smoke run; `cargo bench --bench engine` for figures" });
    println!();
    println!(
        "| pairs | observe ms | observe cmdlets | plan (converged) ms | plan (disaster) ms | disaster steps | recover wall ms | recover cmdlets | simulated RTO |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let healthy = scenario(n, false);
        let lost = scenario(n, true);
        let at_home = desired_state(n, false);
        let away = desired_state(n, true);

        let (o_healthy, obs_wall, obs_calls) = observe(&healthy, &at_home);
        let (o_lost, _, _) = observe(&lost, &away);
        let policy = Policy::default();

        let converged = plan(&at_home, &o_healthy, &policy);
        assert!(converged.steps.is_empty(), "a healthy deployment at home needs no step: {:?}", converged.steps.len());
        let t_conv = median((0..repeats).map(|_| timed(|| plan(&at_home, &o_healthy, &policy))).collect());

        let disaster = plan(&away, &o_lost, &policy);
        assert!(!disaster.steps.is_empty(), "a lost site needs steps");
        assert_eq!(disaster.hash, plan(&away, &o_lost, &policy).hash, "the plan is deterministic");
        let t_dis = median((0..repeats).map(|_| timed(|| plan(&away, &o_lost, &policy))).collect());

        let (wall, cmdlets, rto) = runtime().block_on(async {
            let lync = LocalSim::new(Simulator::new(&lost));
            let journal = MemoryJournal::default();
            let mut engine = Engine::new(&lync, &journal);
            engine.settings = Settings { concurrency: 4, ..Settings::default() };
            let start = lync.now();
            let t = Instant::now();
            let c = engine.converge(&away, &|_| {}).await;
            let wall = t.elapsed();
            assert!(matches!(c, Converged::Done { .. }), "{n} pairs: the disaster did not converge: {c:?}");
            let sim = lync.lock();
            let changes = sim.log().iter().filter(|r| r.mutating).count();
            (wall, changes, lync.now().since(start))
        });
        println!(
            "| {n} | {} | {obs_calls} | {} | {} | {} | {} | {cmdlets} | {rto} |",
            ms(obs_wall),
            ms(t_conv),
            ms(t_dis),
            disaster.steps.len(),
            ms(wall)
        );
    }

    // The PowerShell driver over WinRM: what a real deployment pays in round trips (each costs
    // seconds on real servers), per observation and per site-loss recovery.
    let winrm_sizes: &[usize] = if full { &[1, 10, 50] } else { &[1, 3] };
    println!();
    println!(
        "| pairs | WinRM round trips, first observation | WinRM round trips, next observations | queries per observation | WinRM round trips, site-loss recovery | recover wall ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for &n in winrm_sizes {
        let f = winrm_figures(n);
        println!("| {n} | {} | {} | {} | {} | {} |", f.first_observation, f.next_observation, f.queries, f.recovery, ms(f.wall));
    }

    // The README's demo command, as a user runs it (the release binary, virtual time).
    let exe = env!("CARGO_BIN_EXE_lyncdr");
    let runs = if full { 5 } else { 1 };
    let times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(exe).args(["demo", "--format", "json"]).output().expect("run lyncdr demo");
            let wall = t.elapsed();
            assert!(out.status.success(), "lyncdr demo failed: {}", String::from_utf8_lossy(&out.stderr));
            wall
        })
        .collect();
    println!();
    println!("`lyncdr demo` wall time: median {} ms over {runs} run(s)", ms(median(times)));
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory of the benchmark process: {mib:.1} MiB");
    }
}

/// What the WinRM driver costs at one size.
struct WinRmFigures {
    /// Round trips of the first observation (phases that depend on each other).
    first_observation: u64,
    /// Round trips of the next one (the calls of the last asked at once).
    next_observation: u64,
    /// Queries per observation.
    queries: usize,
    /// Round trips of a whole site-loss recovery.
    recovery: u64,
    wall: Duration,
}

/// Round trips of observations (and the queries in one), and of a whole site-loss recovery,
/// through the driver and the simulator's WS-Man endpoint (at 3,600x real time).
fn winrm_figures(n: usize) -> WinRmFigures {
    use lyncdr::sim::server::SimServer;
    use lyncdr::sim::winrm_host::driver_over_loopback;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let healthy = scenario(n, false);
        let server = SimServer::new(Simulator::new(&healthy), 3600.0);
        let (lync, serving) = driver_over_loopback(server.clone(), &healthy.topology).await.expect("driver");
        let journal = MemoryJournal::default();
        let engine = Engine::new(&lync, &journal);
        let (before, logged) = (lync.round_trips(), server.lock().log().len());
        engine.preview(&desired_state(n, false), &|_| {}).await.expect("observe over WinRM");
        let first_observation = lync.round_trips() - before;
        let queries = server.lock().log().len() - logged;
        let before = lync.round_trips();
        engine.preview(&desired_state(n, false), &|_| {}).await.expect("observe over WinRM");
        let next_observation = lync.round_trips() - before;
        serving.abort();

        let lost = scenario(n, true);
        let server = SimServer::new(Simulator::new(&lost), 3600.0);
        let (lync, serving) = driver_over_loopback(server.clone(), &lost.topology).await.expect("driver");
        let journal = MemoryJournal::default();
        let mut engine = Engine::new(&lync, &journal);
        engine.settings = Settings { concurrency: 4, ..Settings::default() };
        let before = lync.round_trips();
        let t = Instant::now();
        let c = engine.converge(&desired_state(n, true), &|_| {}).await;
        let wall = t.elapsed();
        assert!(matches!(c, Converged::Done { .. }), "{n} pairs over WinRM: the disaster did not converge: {c:?}");
        serving.abort();
        WinRmFigures { first_observation, next_observation, queries, recovery: lync.round_trips() - before, wall }
    })
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    let out = f();
    let d = t.elapsed();
    std::hint::black_box(out);
    d
}
