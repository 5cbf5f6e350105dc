//! Figures for the speed and memory targets of the core: how long planning, observing and a whole
//! disaster recovery take as the deployment grows, what an observation costs in cmdlets, how long
//! the built-in demo takes, what the PowerShell driver pays in WinRM round trips (through the
//! simulator's WS-Man endpoint), and the process's peak memory. Printed as tables; no assertion on
//! time (a slow machine is not a failure), only on correctness of what is measured.
//!
//! `cargo bench --bench engine` measures deployments of 1 to 50 pool pairs; under `cargo test`
//! (no `--bench` argument) it runs the smallest sizes once, as a smoke test of the harness.
//!
//! The planner scale table (issue 13) plans deployments of 10 to 10,000 Front End pools with
//! 10 users each (100,000 at the largest), converged and after losing a site, and shows how plan
//! time and the planner's peak heap allocation grow from one size to the next (linear: about
//! 10x). `cargo bench --bench engine -- planner` prints only that table; the smoke run plans 10
//! and 100 pools. Heap allocation is counted by this benchmark's global allocator (a counter
//! around the system allocator, which every figure here pays for alike).

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lyncdr::backend::Lync;
use lyncdr::desired::Desired;
use lyncdr::engine::journal::MemoryJournal;
use lyncdr::engine::{Converged, Engine, Settings};
use lyncdr::model::Observed;
use lyncdr::planner::{Policy, plan};
use lyncdr::scenario::Scenario;
use lyncdr::sim::LocalSim;
use lyncdr::sim::Simulator;

use lyncdr::bench::scale::{OBSERVED_UP_TO, USERS_PER_POOL, desired_state, scenario, scenario_with, tiled};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

/// One observation of the simulated deployment: the snapshot, its wall time and its cmdlet count.
fn observe(s: &Scenario, d: &Desired) -> (Observed, Duration, usize) {
    lyncdr::bench::scale::observe(s, d).expect("observe")
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
    planner_scale(full);
    if std::env::args().any(|a| a == "planner") {
        return;
    }
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
        "| pairs | WinRM round trips, first observation | WinRM round trips, from the third observation | queries per observation | WinRM round trips, site-loss recovery | recover wall ms |"
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
    /// Round trips of an observation once the memo has caught up (the calls of the last asked
    /// at once).
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
        // The second observation learns where the deployment-wide queries go (a pool seen up);
        // from the third on, the whole observation leaves at once.
        engine.preview(&desired_state(n, false), &|_| {}).await.expect("observe over WinRM");
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

/// The benchmark's allocator: the system allocator, counting the bytes held and the most held
/// since [`peak_during`] last started counting.
struct Counting;

/// Bytes held on the heap now.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// The most bytes held since the last reset.
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(by: usize) {
        let now = HELD.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
    fn shrank(by: usize) {
        HELD.fetch_sub(by, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on unchanged to the system allocator; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Counting::grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Counting::grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (through this allocator).
        unsafe { System.dealloc(ptr, layout) };
        Counting::shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's to guarantee.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Counting::shrank(layout.size());
            Counting::grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most heap bytes held above what was held before it
/// started (what `f` returns is held at the end, so it counts).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// Plan time and the planner's peak heap allocation for `pools` Front End pools (`pools / 2`
/// pairs) of [`USERS_PER_POOL`] users, converged (everything at home) and after losing Dallas
/// (every pair fails over), with the growth from one size to the next.
fn planner_scale(full: bool) {
    let sizes: &[usize] = if full { &[10, 100, 1_000, 10_000] } else { &[10, 100] };
    let repeats = if full { 5 } else { 1 };
    let policy = Policy::default();
    let template_home = observe(&scenario_with(2, USERS_PER_POOL, false), &desired_state(2, false)).0;
    let template_away = observe(&scenario_with(2, USERS_PER_POOL, true), &desired_state(2, true)).0;
    println!(
        "Planner scale: plan time (median of {repeats}) and the planner's peak heap allocation (counted by the benchmark's allocator, the returned plan included), converged and with Dallas lost; growth is the ratio to the previous size (linear: about 10x)"
    );
    println!();
    println!(
        "| pools | users | steps (Dallas lost) | plan ms, converged | growth | plan ms, Dallas lost | growth | peak MiB, converged | peak MiB, Dallas lost | growth | plan JSON MiB, Dallas lost | observation |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut previous: Option<(f64, f64, f64)> = None;
    for &pools in sizes {
        let n = pools / 2;
        let (home, away) = (desired_state(n, false), desired_state(n, true));
        let (o_home, o_away, source) = if pools <= OBSERVED_UP_TO {
            let o_home = observe(&scenario_with(n, USERS_PER_POOL, false), &home).0;
            let o_away = observe(&scenario_with(n, USERS_PER_POOL, true), &away).0;
            assert!(tiled(&template_home, n) == o_home, "{pools} pools: the tiled observation differs from the simulator's (at home)");
            assert!(tiled(&template_away, n) == o_away, "{pools} pools: the tiled observation differs from the simulator's (Dallas lost)");
            (o_home, o_away, "simulator (= tiled)")
        } else {
            (tiled(&template_home, n), tiled(&template_away, n), "tiled")
        };

        let (converged, peak_conv) = peak_during(|| plan(&home, &o_home, &policy));
        assert!(converged.steps.is_empty(), "{pools} pools at home need no step: {}", converged.steps.len());
        let (disaster, peak_dis) = peak_during(|| plan(&away, &o_away, &policy));
        let failovers = disaster.steps.iter().filter(|s| s.cmdlet == "Invoke-CsPoolFailOver").count();
        assert_eq!(failovers, n, "{pools} pools with Dallas lost: every pair fails over");
        let t_conv = median((0..repeats).map(|_| timed(|| plan(&home, &o_home, &policy))).collect());
        let t_dis = median((0..repeats).map(|_| timed(|| plan(&away, &o_away, &policy))).collect());
        let mut json = ByteCount(0);
        serde_json::to_writer(&mut json, &disaster).expect("plan to JSON");

        let figures = (t_conv.as_secs_f64(), t_dis.as_secs_f64(), peak_dis as f64);
        let growth = |now: f64, before: Option<f64>| before.map(|b| format!("{:.1}x", now / b)).unwrap_or_else(|| "".into());
        println!(
            "| {pools} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {source} |",
            pools * USERS_PER_POOL as usize,
            disaster.steps.len(),
            ms(t_conv),
            growth(figures.0, previous.map(|p| p.0)),
            ms(t_dis),
            growth(figures.1, previous.map(|p| p.1)),
            mib(peak_conv),
            mib(peak_dis),
            growth(figures.2, previous.map(|p| p.2)),
            mib(json.0),
        );
        previous = Some(figures);
    }
    println!();
    println!(
        "Each rule-4 wait of the plan with Dallas lost lists every reachable server, so its JSON grows with pools x failovers; in memory the waits share one list."
    );
}

fn mib(bytes: usize) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
