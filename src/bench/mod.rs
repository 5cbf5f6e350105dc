//! `lyncdr bench`: how close lyncdr comes to the limits, every ratio computed within one run.
//! It owns the benchmark scenarios and their measurement, not the engine: each part drives the
//! same front ends a user drives (the demo's story on the in-process simulator, the standalone
//! process and `sim serve` as child processes, the operator against a real apiserver) and reads
//! the figures off the simulator's ground truth, `/proc` and the apiserver's own metrics.
//!
//! - [`recovery`]: site-loss RTO against its critical-path lower bound and the sequential runbook;
//! - [`placement`]: round trips and simulated time per 10,000 moved users;
//! - [`scale`]: planner time and memory from 10 to 10,000 pools;
//! - [`live`]: the standalone process's footprint and idle cost with `sim serve` (and, given a
//!   cluster, the operator's reaction latency and API traffic).

pub mod kube;
pub mod live;
pub mod placement;
mod procs;
pub mod recovery;
pub mod scale;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::demo;

/// Why a benchmark could not be measured.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bench: {0}")]
pub struct BenchError(pub String);

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Smallest sizes only (a smoke run of the harness, about a minute).
    pub quick: bool,
    /// Where to write the timeline charts (SVG) of the site-loss recovery and failback.
    pub charts: Option<PathBuf>,
    /// A cluster to run the operator on (reaction latency, API traffic while idle).
    pub kubeconfig: Option<PathBuf>,
}

/// Every figure of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub machine: Machine,
    pub site_loss: Vec<recovery::RecoveryRow>,
    pub placement: Vec<placement::PlacementRow>,
    pub planner: Vec<scale::ScaleRow>,
    /// The standalone process with `sim serve`: footprint and idle cost.
    pub process: Vec<live::LiveRow>,
    /// The operator on a real apiserver (with `--kubeconfig`).
    pub kube: Option<kube::KubeReport>,
    /// Goals missed, each with what limits it.
    pub misses: Vec<String>,
    /// Charts written.
    pub charts: Vec<String>,
}

/// Where the figures were taken.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub cpus: usize,
    pub os: String,
    pub version: String,
}

impl Machine {
    fn here() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: std::env::consts::OS.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Goals the issue sets (docs/benchmarks.md).
pub const RTO_RATIO_GOAL: f64 = 1.02;
pub const SPEED_UP_GOAL: f64 = 4.0;

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| BenchError(format!("cannot start a runtime: {e}")))
}

/// Runs every part and computes the ratios.
pub fn run(opts: &Options) -> Result<Report, BenchError> {
    let sizes: &[usize] = if opts.quick { &[1, 4] } else { &[1, 4, 16] };
    let mut report = Report {
        machine: Machine::here(),
        site_loss: vec![],
        placement: vec![],
        planner: vec![],
        process: vec![],
        kube: None,
        misses: vec![],
        charts: vec![],
    };
    for &n in sizes {
        let s = recovery::scenario(n)?;
        let d = recovery::desired_state(n)?;
        let faults = recovery::faults()?;
        let concurrency = n.clamp(1, 16);
        let r = runtime()?
            .block_on(demo::demo(&s, &d, &faults, concurrency))
            .map_err(|e| BenchError(format!("site loss with {n} pairs: {}", e.0)))?;
        let row = recovery::measure(n, &r, &s.timings)?;
        if let Some(dir) = &opts.charts
            && (n == 4 || sizes.len() == 1)
        {
            let path = dir.join(format!("site-loss-{n}-pairs.svg"));
            write_chart(&path, &demo::chart(&s, &r, &faults))?;
            report.charts.push(path.display().to_string());
        }
        if row.ratio > RTO_RATIO_GOAL {
            report.misses.push(format!(
                "site loss, {n} pairs: RTO {:.0} s is {:.3}x its lower bound {:.0} s (goal {RTO_RATIO_GOAL}); the gap: {:.0} s detection beyond the grace period, {:.0} s between steps, {:.0} s inside steps, {:.0} s ordering",
                row.rto_s, row.ratio, row.lower_bound_s, row.gap.detection_s, row.gap.between_steps_s, row.gap.in_steps_s, row.gap.ordering_s
            ));
        }
        if n >= 16 && row.speed_up < SPEED_UP_GOAL {
            report
                .misses
                .push(format!("site loss, {n} pairs: {:.1}x faster than the sequential runbook (goal {SPEED_UP_GOAL}x)", row.speed_up));
        }
        report.site_loss.push(row);
    }
    report.placement = placement::run(opts.quick)?;
    report.planner = scale::run(opts.quick)?;
    report.misses.extend(scale::misses(&report.planner));
    report.process = live::run(opts.quick)?;
    report.misses.extend(live::misses(&report.process));
    if let Some(k) = &opts.kubeconfig {
        let (pairs, applies, window) = if opts.quick { (2, 10, 15) } else { (50, 40, 60) };
        let r = kube::measure(k, pairs, applies, std::time::Duration::from_secs(window))?;
        report.misses.extend(kube::misses(&r));
        report.kube = Some(r);
    }
    Ok(report)
}

fn write_chart(path: &Path, svg: &str) -> Result<(), BenchError> {
    std::fs::write(path, svg)
        .map_err(|e| BenchError(format!("cannot write {}: {e}", crate::model::text::shown(&path.display().to_string()))))
}

/// The report as tables (Markdown, as docs/benchmarks.md shows them).
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "lyncdr bench {} on {} ({} CPUs)\n", r.machine.version, r.machine.os, r.machine.cpus);
    let _ = writeln!(s, "Site loss (Dallas with the CMS and both federation routes; automatic failover, grace 5 min):\n");
    let _ = writeln!(
        s,
        "| pairs | steps | RTO | lower bound | ratio | runbook | speed-up | detection | between steps | in steps | ordering | failback |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for x in &r.site_loss {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} s | {:.0} s | {:.3} | {:.0} s | {:.1}x | {:.0} s | {:.0} s | {:.0} s | {:.0} s | {} |",
            x.pairs,
            x.steps,
            x.rto_s,
            x.lower_bound_s,
            x.ratio,
            x.runbook_s,
            x.speed_up,
            x.gap.detection_s,
            x.gap.between_steps_s,
            x.gap.in_steps_s,
            x.gap.ordering_s,
            x.failback_s.map(|f| format!("{f:.0} s")).unwrap_or_else(|| "-".into())
        );
    }
    if let Some(x) = r.site_loss.last() {
        let _ = writeln!(s, "\ncritical path at {} pairs: {}", x.pairs, x.critical_path.join(" -> "));
    }
    let _ = writeln!(s, "\nUser placement (Move-CsUser in batches):\n");
    let _ = writeln!(s, "{}", placement::render(&r.placement));
    let _ = writeln!(s, "Planner scale (two sites, Dallas lost):\n");
    let _ = writeln!(s, "{}", scale::render(&r.planner));
    let _ = writeln!(s, "The standalone process (`lyncdr run --manifests`) with `sim serve`, converged, polling every 5 s:\n");
    let _ = writeln!(s, "{}", live::render(&r.process));
    if let Some(k) = &r.kube {
        let _ = writeln!(s, "The operator on the apiserver: reaction latency from `kubectl apply` of a changed PoolPair:\n");
        let _ = writeln!(s, "{}", kube::render(k));
    }
    if r.misses.is_empty() {
        let _ = writeln!(s, "every goal met");
    } else {
        for m in &r.misses {
            let _ = writeln!(s, "MISSED: {m}");
        }
    }
    for c in &r.charts {
        let _ = writeln!(s, "chart: {c}");
    }
    s
}
