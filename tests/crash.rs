//! Crash at every step boundary (issue 9): the site-loss story and the failback story, with
//! automatic failover on (automatic failback on, and off with a person's approval) and off (the
//! spec fails over and back), each run once without a crash, then once per crash point: before
//! each mutating step is journaled, right after, while its cmdlet runs, after it returned but
//! before its outcome is written, and right after. A crash drops the engine (as a killed process
//! stops) and keeps only what a process keeps: the journal file (entries and memory) and the
//! deployment itself. A fresh engine on the same file then drives the rest of the story.
//!
//! Every crash run must end where the run without a crash ends, with the same memory, having
//! made every call the crash-free run makes, each exactly as often (exactly once per purpose),
//! without a stall: the backend's request ledger tells a restarted engine whether a journaled
//! call ran, and a repeatable call (backup, local setup) that succeeded just before the crash is
//! not repeated. No action that needs consent or approval runs without it (a run never makes a
//! call the crash-free run does not make). The figures go to docs/reliability.md
//! (`LYNCDR_BLESS=1` rewrites its section; otherwise the test checks it is current).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{TWO_SITE, TWO_SITE_DESIRED, desired, runtime, scenario};
use futures::FutureExt;
use futures::future::BoxFuture;
use lyncdr::backend::Lync;
use lyncdr::desired::Desired;
use lyncdr::engine::journal::{Entry, FileJournal, Journal, JournalError, MemoryChange, Outcome};
use lyncdr::engine::{Converged, Engine, Settings};
use lyncdr::model::{History, Span, Stamp};
use lyncdr::sim::LocalSim;
use lyncdr::sim::{Outcome as SimOutcome, Record, Simulator, Snapshot, TimedFault};
use tokio::sync::Notify;

/// A story: faults at simulated times, and the desired state from each time on.
struct Story {
    name: &'static str,
    faults: &'static [&'static str],
    phases: Vec<(Span, Desired)>,
}

impl Story {
    fn desired_at(&self, t: Stamp) -> &Desired {
        let mut d = &self.phases[0].1;
        for (at, x) in &self.phases {
            if t.0 >= at.0 {
                d = x;
            }
        }
        d
    }
    fn next_phase_after(&self, t: Stamp) -> Option<Stamp> {
        self.phases.iter().map(|(at, _)| Stamp(at.0)).find(|at| *at > t)
    }
}

fn stories() -> Vec<Story> {
    let auto = desired(TWO_SITE_DESIRED);
    let no_auto_failback_yaml =
        TWO_SITE_DESIRED.replace("automaticFailback: {enabled: true, stabilityPeriod: 10m}", "automaticFailback: {enabled: false}");
    let waits = desired(&no_auto_failback_yaml);
    let mut approved = waits.clone();
    approved.pairs[0].failback_approved = true;
    let manual_yaml = no_auto_failback_yaml
        .replace("automaticFailover: {enabled: true, gracePeriod: 5m}", "automaticFailover: {enabled: false}")
        .replace(
            "  centralManagementStore:\n    activePool: pool01.dal.contoso.com\n    allowDataLoss: true\n    automaticFailover: true",
            "  centralManagementStore:\n    activePool: pool01.dal.contoso.com\n    allowDataLoss: true",
        );
    let home = desired(&manual_yaml);
    let sea_cms = desired(
        &manual_yaml
            .replace("failedOver: []", "failedOver: [pool01.dal.contoso.com]")
            .replace("activePool: pool01.dal.contoso.com", "activePool: pool01.sea.contoso.com"),
    );
    let back = desired(&manual_yaml.replace("activePool: pool01.dal.contoso.com", "activePool: pool01.sea.contoso.com"));
    vec![
        Story {
            name: "automatic failover and failback",
            faults: &["5m:down:site/Dallas", "65m:up:site/Dallas"],
            phases: vec![(Span::ZERO, auto)],
        },
        Story {
            name: "automatic failover, failback approved by a person",
            faults: &["5m:down:site/Dallas", "65m:up:site/Dallas"],
            phases: vec![(Span::ZERO, waits), (Span::mins(90), approved)],
        },
        Story {
            name: "failover and failback by spec",
            faults: &["5m:down:site/Dallas", "65m:up:site/Dallas"],
            phases: vec![(Span::ZERO, home), (Span::mins(7), sea_cms), (Span::mins(90), back)],
        },
    ]
}

/// Where a crash happens, relative to the k-th journaled step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Point {
    /// Before its entry is written.
    BeforeBegin,
    /// Its entry is durable; its cmdlet has not started.
    AfterBegin,
    /// Its cmdlet runs.
    During,
    /// Its cmdlet returned; its outcome is not written.
    BeforeFinish,
    /// Its outcome is durable.
    AfterFinish,
}

const POINTS: [Point; 5] = [Point::BeforeBegin, Point::AfterBegin, Point::During, Point::BeforeFinish, Point::AfterFinish];

/// A file journal that stops (never returns, so the test drops the engine) at one point of the
/// k-th step it journals.
struct CrashJournal {
    inner: FileJournal,
    k: usize,
    point: Option<Point>,
    begins: AtomicUsize,
    target: Mutex<Option<String>>,
    crashed: Notify,
    began: Notify,
}

impl CrashJournal {
    fn new(path: &Path, k: usize, point: Option<Point>) -> CrashJournal {
        CrashJournal {
            inner: FileJournal::open(path.to_path_buf(), None).expect("journal"),
            k,
            point,
            begins: AtomicUsize::new(0),
            target: Mutex::new(None),
            crashed: Notify::new(),
            began: Notify::new(),
        }
    }
    async fn stop(&self) {
        self.crashed.notify_one();
        futures::future::pending::<()>().await;
    }
    fn is_target(&self, id: &str) -> bool {
        self.target.lock().unwrap().as_deref() == Some(id)
    }
}

impl Journal for CrashJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            let n = self.begins.fetch_add(1, Ordering::SeqCst) + 1;
            let mine = n == self.k;
            if mine {
                *self.target.lock().unwrap() = Some(e.step.id.clone());
                if self.point == Some(Point::BeforeBegin) {
                    self.stop().await;
                }
            }
            self.inner.begin(e).await?;
            if mine {
                match self.point {
                    Some(Point::AfterBegin) => self.stop().await,
                    Some(Point::During) => self.began.notify_one(),
                    _ => {}
                }
            }
            Ok(())
        }
        .boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome, at: Stamp) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            let mine = self.is_target(step_id);
            if mine && self.point == Some(Point::BeforeFinish) {
                self.stop().await;
            }
            self.inner.finish(step_id, outcome, at).await?;
            if mine && self.point == Some(Point::AfterFinish) {
                self.stop().await;
            }
            Ok(())
        }
        .boxed()
    }
    fn remember(&self, change: MemoryChange) -> BoxFuture<'_, Result<History, JournalError>> {
        self.inner.remember(change)
    }
    fn memory(&self) -> History {
        self.inner.memory()
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        self.inner.pending()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        self.inner.entries()
    }
}

/// How a drive ended.
struct Drive {
    stalls: usize,
    last: String,
}

/// Drives the story from now until nothing is left to wait for: converge with the desired state
/// of the moment; sleep until the next fault, desired-state change or recheck; after a stall
/// (an outcome a restart could not settle yet), look again a poll later, as the operator does.
async fn drive(engine: &Engine<'_>, lync: &LocalSim, story: &Story) -> Drive {
    let horizon = Stamp(0).plus(Span::hours(6));
    let mut stalls = 0;
    loop {
        let d = story.desired_at(lync.now());
        let c = engine.converge(d, &|_| {}).await;
        let now = lync.now();
        let next = [lync.lock().next_scheduled(), story.next_phase_after(now)].into_iter().flatten().min();
        let (wake, last) = match &c {
            Converged::Done { .. } => (next, "done".to_string()),
            Converged::Unobservable { reason } => (next, format!("unobservable: {reason}")),
            Converged::Blocked { plan, .. } => {
                let recheck = plan.recheck_after.map(|r| now.plus(r));
                ([recheck, next].into_iter().flatten().min(), format!("blocked: {:?}", plan.blockers))
            }
            Converged::Stalled { step, reason, .. } => {
                stalls += 1;
                if std::env::var("LYNCDR_DEBUG_CRASH").is_ok() {
                    eprintln!("{}: stalled at {now}: {step}: {reason}", story.name);
                }
                assert!(stalls < 30, "{}: stalled for good at {step}: {reason}", story.name);
                (Some(now.plus(Span::mins(1))), format!("stalled at {step}: {reason}"))
            }
        };
        match wake {
            Some(t) if t < horizon => lync.sleep(t.plus(Span::secs(1)).since(now)).await,
            _ => return Drive { stalls, last },
        }
    }
}

fn settings() -> Settings {
    Settings { concurrency: 4, by: "tests/crash.rs".into(), ..Settings::default() }
}

fn new_sim(story: &Story) -> LocalSim {
    let mut sim = Simulator::new(&scenario(TWO_SITE));
    for f in story.faults {
        let t = TimedFault::parse(f).expect("fault");
        sim.schedule(Stamp(t.at.0), t.fault);
    }
    LocalSim::new(sim)
}

/// What a run left: the state-changing calls that reached a server, the final deployment, the
/// memory, and whether a restart stalled before it could go on.
struct RunResult {
    calls: Vec<Record>,
    snapshot: Snapshot,
    memory: History,
    entries: Vec<Entry>,
    stalls: usize,
    last: String,
}

fn changes(lync: &LocalSim) -> Vec<Record> {
    lync.lock().log().iter().filter(|r| r.mutating && !r.what_if && r.outcome != SimOutcome::Unreachable).cloned().collect()
}

/// Runs a story, crashing at `crash` (k-th journaled step, point) if given; `None` when the
/// story ended before the k-th step.
fn run(story: &Story, crash: Option<(usize, Point)>) -> Option<RunResult> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("contoso.journal.json");
    runtime().block_on(async {
        let lync = new_sim(story);
        let (k, point) = match crash {
            Some((k, p)) => (k, Some(p)),
            None => (0, None),
        };
        let mut stalls = 0;
        {
            let journal = CrashJournal::new(&path, k, point);
            let mut engine = Engine::new(&lync, &journal);
            engine.settings = settings();
            let crashed = async {
                if point == Some(Point::During) {
                    journal.began.notified().await;
                    // The cmdlet has started (it begins in the same poll as the entry is
                    // written); one millisecond later it still runs.
                    lync.sleep(Span::ms(1)).await;
                } else {
                    journal.crashed.notified().await;
                }
            };
            tokio::select! {
                end = drive(&engine, &lync, story) => {
                    if crash.is_some() {
                        return None;
                    }
                    let entries = journal.entries().await.expect("entries");
                    return Some(RunResult {
                        calls: changes(&lync), snapshot: lync.lock().snapshot(), memory: journal.memory(), entries, stalls: end.stalls, last: end.last,
                    });
                }
                _ = crashed => {}
            }
        }
        // The process is gone: only the journal file and the deployment remain.
        let journal = FileJournal::open(path.clone(), None).expect("the journal survives the crash");
        let mut engine = Engine::new(&lync, &journal);
        engine.settings = settings();
        let end = drive(&engine, &lync, story).await;
        stalls += end.stalls;
        let entries = journal.entries().await.expect("entries");
        Some(RunResult { calls: changes(&lync), snapshot: lync.lock().snapshot(), memory: journal.memory(), entries, stalls, last: end.last })
    })
}

type CallKey = (String, String);

/// A crash run: the k-th journaled step and the point.
type Job = (usize, Point);

fn counts(calls: &[Record]) -> BTreeMap<CallKey, usize> {
    let mut out = BTreeMap::new();
    for r in calls {
        *out.entry((r.line.clone(), r.run_on.clone())).or_insert(0) += 1;
    }
    out
}

/// The parts of the final deployment a story decides.
fn decided(s: &Snapshot) -> String {
    let pools: Vec<String> = s.pools.iter().map(|(p, x)| format!("{p}:{}:{:?}", x.served_by, x.state)).collect();
    let edges: Vec<String> = s.edges.iter().map(|(e, x)| format!("{e}:{:?}", x.next_hop)).collect();
    format!(
        "pools {pools:?} cms {:?} sip {:?} xmpp {:?} edges {edges:?} served {}",
        s.cms.active_pool, s.federation.sip_edge_pool, s.federation.xmpp_edge_pool, s.all_users_served
    )
}

/// The memory a story must keep: what lyncdr did on its own and what is still pending.
fn kept(m: &History) -> String {
    format!(
        "automatic {:?} setup {:?} rgs {:?} cleanup {:?} restores {:?}",
        m.automatic_failovers.keys().collect::<Vec<_>>(),
        m.pending_edge_setup.keys().collect::<Vec<_>>(),
        m.rgs_exports.keys().collect::<Vec<_>>(),
        m.pending_backup_cleanup,
        m.completed_restores
    )
}

/// Checks one crash run against the crash-free run.
fn check(story: &Story, base: &RunResult, crash: (usize, Point), run: &RunResult) {
    let what = format!("{}: crash {:?} step {}", story.name, crash.1, crash.0);
    let show =
        |calls: &[Record]| calls.iter().map(|r| format!("  {} {} (on {})", r.started, r.line, r.run_on)).collect::<Vec<_>>().join("\n");
    assert_eq!(decided(&run.snapshot), decided(&base.snapshot), "{what}: ends elsewhere ({})\n{}", run.last, show(&run.calls));
    assert_eq!(run.last, base.last, "{what}: the last round differs");
    assert_eq!(kept(&run.memory), kept(&base.memory), "{what}: the memory differs");
    let (b, r) = (counts(&base.calls), counts(&run.calls));
    for (key, n) in &b {
        let m = r.get(key).copied().unwrap_or(0);
        assert!(m > 0, "{what}: skipped {} (on {})\n{}", key.0, key.1, show(&run.calls));
        assert_eq!(m, *n, "{what}: {} (on {}) ran {m} times, {n} without a crash\n{}", key.0, key.1, show(&run.calls));
    }
    for key in r.keys() {
        assert!(b.contains_key(key), "{what}: ran {} (on {}), which the crash-free run never does\n{}", key.0, key.1, show(&run.calls));
    }
    assert_eq!(run.stalls, 0, "{what}: a restart stalled ({})", run.last);
}

#[test]
fn a_crash_at_any_step_boundary_neither_repeats_nor_skips_a_step() {
    let mut report = String::new();
    report.push_str("| story | journaled steps | crash point | runs | ended as without a crash, every call exactly once, no stall |\n");
    report.push_str("|---|---:|---|---:|---:|\n");
    for story in stories() {
        let base = run(&story, None).expect("the crash-free run");
        assert_eq!(base.stalls, 0, "{}: the crash-free run stalled: {}", story.name, base.last);
        assert!(base.last == "done", "{}: the crash-free run ends {}", story.name, base.last);
        let steps = base.entries.len();
        assert!(steps >= 10, "{}: {steps} journaled steps", story.name);
        let mut tallies: BTreeMap<Point, usize> = BTreeMap::new();
        let jobs: Vec<(usize, Point)> = (1..=steps).flat_map(|k| POINTS.iter().map(move |p| (k, *p))).collect();
        let results: Mutex<Vec<(Job, Option<RunResult>)>> = Mutex::new(Vec::new());
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { break };
                        let out = run(&story, Some(*job));
                        results.lock().unwrap().push((*job, out));
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap();
        results.sort_by_key(|(j, _)| *j);
        for (job, out) in &results {
            let out = out.as_ref().unwrap_or_else(|| panic!("{}: the story ended before step {} was journaled", story.name, job.0));
            check(&story, &base, *job, out);
            *tallies.entry(job.1).or_default() += 1;
        }
        for (p, runs) in &tallies {
            report.push_str(&format!("| {} | {steps} | {p:?} | {runs} | {runs} |\n", story.name));
        }
    }
    common::reliability_section("crash-campaign", &report);
}
