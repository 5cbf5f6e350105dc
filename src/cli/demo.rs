//! `lyncdr demo`: the engine against the in-process simulator, in virtual time, until the
//! deployment has converged (or is blocked) and every scheduled fault has happened. Without
//! arguments it tells the built-in two-site story: a disaster at one site, automatic recovery,
//! the site returning, and failback.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::{CliError, DemoTransport, Format, virtual_runtime};
use crate::api::manifests;
use crate::backend::Lync;
use crate::desired::{self, Desired};
use crate::engine::executor::{Event, StepResult};
use crate::engine::journal::MemoryJournal;
use crate::engine::{Converged, Engine, Settings};
use crate::model::text::shown;
use crate::model::{Span, Stamp};
use crate::scenario::{DEMO_SCENARIO, Scenario};
use crate::sim::LocalSim;
use crate::sim::{Outcome, Simulator, Snapshot, TimedFault};
use crate::timeline::{Mark, MarkKind, Timeline};

const DEMO_DESIRED: &str = include_str!("../../examples/two-site/desired.yaml");
/// The built-in story: Dallas is lost five minutes in and returns an hour later.
const DEMO_FAULTS: [&str; 2] = ["5m:down:site/Dallas", "65m:up:site/Dallas"];
/// Simulated time after which the demo gives up waiting.
const HORIZON: Span = Span::hours(24);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CmdletRecord {
    pub cmdlet: String,
    pub args: indexmap::IndexMap<String, Value>,
    pub run_on: String,
    pub server: Option<String>,
    pub start: f64,
    pub end: Option<f64>,
    pub result: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoReport {
    pub scenario: String,
    pub converged: bool,
    pub outcome: String,
    pub rto_seconds: Option<f64>,
    pub lost_changes: u64,
    pub lost_cms_changes: u64,
    pub users_data_dropped: u64,
    pub queries: usize,
    /// Observations the engine made.
    pub observations: usize,
    /// Scripts run over WinRM (`--transport winrm`): the round trips a real deployment pays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trips: Option<u64>,
    pub cmdlets: Vec<CmdletRecord>,
    pub blockers: Vec<crate::planner::Blocker>,
    pub notices: Vec<String>,
    pub timeline: Vec<Event>,
    #[serde(rename = "final")]
    pub final_state: Snapshot,
    /// When the first fault happened and when every user was served again after it (the RTO's
    /// ends), for the timeline chart.
    #[serde(skip)]
    pub first_fault: Option<Stamp>,
    #[serde(skip)]
    pub served_at: Option<Stamp>,
}

/// Why the chart of `--timeline FILE` cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("--timeline {path}: {reason}")]
pub struct ChartFileError {
    /// The path as given, control characters escaped.
    pub path: String,
    pub reason: String,
}

impl ChartFileError {
    fn new(path: &Path, reason: impl Into<String>) -> ChartFileError {
        ChartFileError { path: shown(&path.display().to_string()), reason: reason.into() }
    }
}

/// Checks, before anything runs, that the chart can be written where `--timeline` says: the
/// directory exists and the file can be created there (a file that did not exist is removed
/// again; an existing one is left as it is until the chart replaces it).
pub fn check_chart_path(path: &Path) -> Result<(), ChartFileError> {
    if path.is_dir() {
        return Err(ChartFileError::new(path, "is a directory; give the chart a file name, e.g. timeline.svg"));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(ChartFileError::new(path, format!("there is no directory {}", shown(&dir.display().to_string()))));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| ChartFileError::new(path, format!("cannot be written ({e})")))?;
    if !existed {
        std::fs::remove_file(path).map_err(|e| ChartFileError::new(path, format!("cannot be written ({e})")))?;
    }
    Ok(())
}

/// The chart of a demo's run: its steps, the faults and the moment every user was served.
pub fn chart(s: &Scenario, r: &DemoReport, faults: &[TimedFault]) -> String {
    let mut t = Timeline::from_events(&r.timeline, &s.topology);
    t.title = format!("lyncdr demo: scenario '{}'", s.name);
    let rto = r.rto_seconds.map(|x| format!("RTO {:.1} min", x / 60.0)).unwrap_or_else(|| "no RTO: some users are not served".into());
    t.subtitle = format!("outcome: {}; {rto}; {} changes; simulated time", r.outcome, r.cmdlets.len());
    t.marks = faults.iter().map(|f| Mark { at: Stamp(f.at.0), label: f.fault.to_string(), kind: MarkKind::Fault }).collect();
    if let Some(first) = r.first_fault.filter(|at| !t.marks.iter().any(|m| m.at == *at)) {
        t.marks.push(Mark { at: first, label: "fault in the scenario".into(), kind: MarkKind::Fault });
    }
    if let (Some(at), Some(rto)) = (r.served_at, r.rto_seconds) {
        t.marks.push(Mark { at, label: format!("every user served (RTO {:.1} min)", rto / 60.0), kind: MarkKind::Served });
    }
    crate::timeline::render(&t)
}

fn secs(t: Stamp) -> f64 {
    t.0 as f64 / 1000.0
}

pub fn run(
    scenario: Option<&Path>,
    desired: Option<&Path>,
    faults: &[String],
    format: Format,
    concurrency: usize,
    transport: DemoTransport,
    timeline: Option<&Path>,
) -> Result<ExitCode, CliError> {
    if let Some(path) = timeline {
        check_chart_path(path)?;
    }
    let builtin = scenario.is_none() && desired.is_none() && faults.is_empty();
    let s = match scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::from_yaml(DEMO_SCENARIO)?,
    };
    let d: Desired = match desired {
        Some(p) => super::plan::load_desired(p)?,
        None => {
            let m = manifests::parse(DEMO_DESIRED, "built-in desired state")?;
            desired::compile(&m)?.into_iter().next().ok_or_else(|| CliError("built-in desired state has no deployment".into()))?
        }
    };
    d.check_against(&s.topology)?;
    let fault_texts: Vec<String> = if builtin { DEMO_FAULTS.iter().map(|f| f.to_string()).collect() } else { faults.to_vec() };
    let mut timed = Vec::new();
    for f in &fault_texts {
        let t = TimedFault::parse(f).map_err(|e| CliError(format!("--fault {f}: {e}")))?;
        t.fault.check(&s.topology).map_err(|e| CliError(format!("--fault {f}: {e}")))?;
        timed.push(t);
    }
    let report = match transport {
        DemoTransport::InProcess => virtual_runtime()?.block_on(demo(&s, &d, &timed, concurrency.max(1)))?,
        DemoTransport::Winrm => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(demo_over_winrm(&s, &d, &timed, concurrency.max(1)))?,
    };
    if let Some(path) = timeline {
        std::fs::write(path, chart(&s, &report, &timed)).map_err(|e| ChartFileError::new(path, format!("cannot be written ({e})")))?;
    }
    match format {
        Format::Json | Format::Dot => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&report),
    }
    if let (Some(path), Format::Text) = (timeline, format) {
        println!("\ntimeline chart: {}", shown(&path.display().to_string()));
    }
    Ok(if report.converged { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Runs the story. Public for the end-to-end tests.
pub async fn demo(s: &Scenario, d: &Desired, faults: &[TimedFault], concurrency: usize) -> Result<DemoReport, CliError> {
    let lync = LocalSim::new(simulator(s, faults));
    let story = story(&lync, &|| lync.lock(), d, concurrency).await;
    let sim = lync.lock();
    Ok(report(s, &sim, story, None))
}

/// Simulated seconds per second of `demo --transport winrm`: the two-hour story in about ten
/// seconds of wall-clock time.
pub const WINRM_DEMO_SPEED: f64 = 720.0;

/// The story through the PowerShell driver: the simulator behind its WS-Man endpoint on a
/// loopback port (NTLM with message encryption, a password made for this run), the engine on
/// [`crate::driver::winrm::WinRmLync`]. Public for the end-to-end tests.
pub async fn demo_over_winrm(s: &Scenario, d: &Desired, faults: &[TimedFault], concurrency: usize) -> Result<DemoReport, CliError> {
    use crate::sim::server::SimServer;

    let server = SimServer::new(simulator(s, faults), WINRM_DEMO_SPEED);
    let (lync, serving) = crate::sim::winrm_host::driver_over_loopback(server.clone(), &s.topology).await.map_err(CliError)?;
    let story = story(&lync, &|| server.lock(), d, concurrency).await;
    serving.abort();
    let sim = server.lock();
    Ok(report(s, &sim, story, Some(lync.round_trips())))
}

/// The scenario's simulator with the story's faults scheduled.
fn simulator(s: &Scenario, faults: &[TimedFault]) -> Simulator {
    let mut sim = Simulator::new(s);
    for f in faults {
        sim.schedule(Stamp(f.at.0), f.fault.clone());
    }
    sim
}

/// How the story ended, as the engine saw it.
struct Story {
    converged: bool,
    outcome: String,
    blockers: Vec<crate::planner::Blocker>,
    notices: Vec<String>,
    timeline: Vec<Event>,
    observations: usize,
}

/// Converges, waits for the next fault or recheck, and converges again, until the story ends.
async fn story<'a>(lync: &dyn Lync, sim: &dyn Fn() -> std::sync::MutexGuard<'a, Simulator>, d: &Desired, concurrency: usize) -> Story {
    let journal = MemoryJournal::default();
    let mut engine = Engine::new(lync, &journal);
    engine.settings = Settings { concurrency, by: "lyncdr demo".into(), ..Settings::default() };
    let timeline: Mutex<Vec<Event>> = Mutex::new(Vec::new());
    let observations = std::sync::atomic::AtomicUsize::new(0);
    let sink = |e: Event| {
        if matches!(e, Event::Observed { .. }) {
            observations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if let Ok(mut t) = timeline.lock() {
            t.push(e);
        }
    };
    let mut outcome;
    let mut blockers = vec![];
    let mut notices = vec![];
    let mut converged;
    loop {
        let result = engine.converge(d, &sink).await;
        let next_fault = sim().next_scheduled();
        let now = lync.now();
        blockers.clear();
        notices.clear();
        let (wake, label, done) = match &result {
            Converged::Done { notices: n, .. } => {
                notices = n.clone();
                (next_fault, "converged".to_string(), true)
            }
            Converged::Blocked { plan, .. } => {
                blockers = plan.blockers.clone();
                notices = plan.notices.clone();
                let recheck = plan.recheck_after.map(|r| now.plus(r));
                let wake = match (recheck, next_fault) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (wake, "blocked".to_string(), false)
            }
            Converged::Stalled { step, reason, .. } => (None, format!("stalled at {step}: {reason}"), false),
            Converged::Unobservable { reason } => (next_fault, format!("unobservable: {reason}"), false),
        };
        outcome = label;
        converged = done;
        if matches!(result, Converged::Stalled { .. }) {
            break;
        }
        match wake {
            Some(t) if t.since(Stamp(0)) < HORIZON => {
                let target = t.plus(Span::secs(1));
                lync.sleep(target.since(lync.now())).await;
            }
            _ => break,
        }
    }
    let timeline = timeline.lock().map(|t| t.clone()).unwrap_or_default();
    Story { converged, outcome, blockers, notices, timeline, observations: observations.into_inner() }
}

/// What the story did, from the simulator's log and statistics.
fn report(s: &Scenario, sim: &Simulator, story: Story, round_trips: Option<u64>) -> DemoReport {
    let Story { converged, outcome, blockers, notices, timeline, observations } = story;
    let stats = sim.stats().clone();
    let cmdlets = sim
        .log()
        .iter()
        .filter(|r| r.mutating && !r.what_if)
        .map(|r| CmdletRecord {
            cmdlet: r.cmdlet.clone(),
            args: r.args.clone(),
            run_on: r.run_on.clone(),
            server: r.server.as_ref().map(|s| s.to_string()),
            start: secs(r.started),
            end: r.finished.map(secs),
            result: match r.outcome {
                Outcome::Ok => "ok",
                Outcome::Running => "running",
                _ => "error",
            }
            .to_string(),
            error: r.error.clone(),
        })
        .collect();
    let queries = sim.log().iter().filter(|r| !r.mutating).count();
    DemoReport {
        scenario: s.name.clone(),
        converged,
        outcome,
        rto_seconds: stats.rto().map(|r| r.as_secs_f64()),
        lost_changes: stats.lost_changes.round() as u64,
        lost_cms_changes: stats.lost_cms_changes.round() as u64,
        users_data_dropped: stats.users_data_dropped,
        queries,
        observations,
        round_trips,
        cmdlets,
        blockers,
        notices,
        timeline,
        final_state: sim.snapshot(),
        first_fault: stats.first_fault,
        served_at: stats.first_fault.zip(stats.rto()).map(|(at, rto)| at.plus(rto)),
    }
}

fn print_text(r: &DemoReport) {
    println!("lyncdr demo: scenario '{}' on the in-process simulator (virtual time)\n", r.scenario);
    for e in &r.timeline {
        match e {
            Event::StepStarted { id, command, run_on, at } => {
                println!("{:>10}  start  {id}\n{:>10}         {command}   (on {run_on})", at.to_string(), "")
            }
            Event::StepFinished { id, at, result, .. } => {
                let what = match result {
                    StepResult::Succeeded => "done   ".to_string(),
                    StepResult::Skipped => "skip   ".to_string(),
                    StepResult::Stale(w) => format!("replan ({w})"),
                    StepResult::Failed(w) => format!("FAILED {w}"),
                    StepResult::Stalled(w) => format!("STALLED {w}"),
                };
                println!("{:>10}  {what} {id}", at.to_string());
            }
            Event::StepNote { id, at, note } => println!("{:>10}  note   {id}: {note}", at.to_string()),
            Event::Observed { .. } => {}
        }
    }
    println!();
    println!("outcome:      {}", r.outcome);
    println!(
        "RTO:          {}",
        r.rto_seconds
            .map(|s| format!("{:.0} s ({:.1} min) from the first fault until every user was served", s, s / 60.0))
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "data lost:    {} user/conference changes, {} CMS changes, {} users' contacts",
        r.lost_changes, r.lost_cms_changes, r.users_data_dropped
    );
    println!("cmdlets:      {} changes, {} queries, {} observations", r.cmdlets.len(), r.queries, r.observations);
    if let Some(n) = r.round_trips {
        println!("WinRM:        {n} round trips ({:.1} per observation)", n as f64 / r.observations.max(1) as f64);
    }
    for b in &r.blockers {
        println!("BLOCKED {}: {}", b.resource, b.reason);
    }
    for n in &r.notices {
        println!("note: {n}");
    }
    println!("\nfinal state at {}:", r.final_state.now);
    for (p, s) in &r.final_state.pools {
        println!("  {p}: {} — users served by {}", if s.up { "up" } else { "DOWN" }, s.served_by);
    }
    for (e, s) in &r.final_state.edges {
        println!(
            "  {e}: {} — next hop {}",
            if s.up { "up" } else { "DOWN" },
            s.next_hop.as_ref().map(|x| x.to_string()).unwrap_or_default()
        );
    }
    println!("  CMS: {}", r.final_state.cms.active_pool.as_ref().map(|x| x.to_string()).unwrap_or_default());
    println!(
        "  federation: SIP via {}, XMPP via {}",
        r.final_state.federation.sip_edge_pool.as_ref().map(|x| x.to_string()).unwrap_or_default(),
        r.final_state.federation.xmpp_edge_pool.as_ref().map(|x| x.to_string()).unwrap_or_default()
    );
}
