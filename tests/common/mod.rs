//! Shared helpers for the integration tests: scenarios, desired states, and running the engine
//! against the in-process simulator in virtual time.
#![allow(dead_code)]

use lyncdr::api::manifests;
use lyncdr::desired::{self, Desired};
use lyncdr::engine::journal::MemoryJournal;
use lyncdr::engine::{Converged, Engine, Settings};
use lyncdr::model::{History, Observed};
use lyncdr::planner::{Plan, Policy, plan};
use lyncdr::scenario::Scenario;
use lyncdr::sim::LocalSim;
use lyncdr::sim::Simulator;

pub fn scenario(yaml: &str) -> Scenario {
    Scenario::from_yaml(yaml).unwrap_or_else(|e| panic!("scenario: {e}\n{yaml}"))
}

pub fn desired(yaml: &str) -> Desired {
    let m = manifests::parse(yaml, "test").unwrap_or_else(|e| panic!("manifests: {e}\n{yaml}"));
    desired::compile(&m).unwrap_or_else(|e| panic!("desired: {e}")).remove(0)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

pub fn plan_for(s: &Scenario, d: &Desired) -> (Observed, Plan) {
    let rt = runtime();
    rt.block_on(async {
        let lync = LocalSim::new(Simulator::new(s));
        let journal = MemoryJournal::default();
        let engine = Engine::new(&lync, &journal);
        engine.preview(d, &|_| {}).await.expect("observe")
    })
}

pub fn replan(d: &Desired, o: &Observed) -> Plan {
    plan(d, o, &Policy::default())
}

/// Runs the engine until converged or blocked; returns the outcome and the simulator.
pub async fn converge(lync: &LocalSim, d: &Desired, history: History) -> (Converged, History) {
    let journal = MemoryJournal::with_memory(history);
    let mut engine = Engine::new(lync, &journal);
    engine.settings = Settings { wait_timeout: lyncdr::model::Span::hours(2), ..Settings::default() };
    let c = engine.converge(d, &|_| {}).await;
    (c, engine.history())
}

pub const TWO_SITE: &str = include_str!("../../examples/two-site/scenario.yaml");
pub const TWO_SITE_DESIRED: &str = include_str!("../../examples/two-site/desired.yaml");

/// A minimal LyncDeployment + PoolPair for the two-site scenario, with the pair's extra spec lines.
pub fn two_site_desired(pair_extra: &str, deployment_extra: &str) -> Desired {
    desired(&two_site_manifests(pair_extra, deployment_extra))
}

/// The manifests of [`two_site_desired`]: `deployment_extra` and `pair_extra` are spec lines
/// indented by two spaces.
pub fn two_site_manifests(pair_extra: &str, deployment_extra: &str) -> String {
    format!(
        r#"
apiVersion: lyncdr.io/v1alpha1
kind: LyncDeployment
metadata: {{name: contoso}}
spec:
{deployment_extra}
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {{name: dal-sea}}
spec:
  deployment: contoso
  pools: [pool01.dal.contoso.com, pool01.sea.contoso.com]
{pair_extra}
"#
    )
}

pub const DAL: &str = "pool01.dal.contoso.com";
pub const SEA: &str = "pool01.sea.contoso.com";

/// Checks (or, with `LYNCDR_BLESS=1`, rewrites) a generated section of docs/reliability.md,
/// between `<!-- NAME:begin -->` and `<!-- NAME:end -->`: the figures there are what the tests
/// measured, never typed by hand.
pub fn reliability_section(name: &str, body: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let (begin, end) = (format!("<!-- {name}:begin -->"), format!("<!-- {name}:end -->"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let section = format!("{begin}\n{body}{end}");
    let current = match (text.find(&begin), text.find(&end)) {
        (Some(a), Some(b)) if a < b => Some(text[a..b + end.len()].to_string()),
        _ => None,
    };
    if std::env::var("LYNCDR_BLESS").is_ok_and(|v| v == "1") {
        let updated = match &current {
            Some(old) => text.replacen(old, &section, 1),
            None => format!("{text}\n{section}\n"),
        };
        std::fs::write(&path, updated).expect("write docs/reliability.md");
        return;
    }
    assert_eq!(
        current.as_deref(),
        Some(section.as_str()),
        "docs/reliability.md section {name} is not what the test measured; run the test with LYNCDR_BLESS=1 to regenerate it"
    );
}

// ---------------------------------------------------------------------------------------------
// Split brain and the simulated week (tests/split_brain.rs, tests/week.rs): an operator that
// converges continuously, restarts on the same journal file, and a watcher that checks the
// simulator's ground truth at every step the engine starts or finishes.
// ---------------------------------------------------------------------------------------------

use lyncdr::backend::Lync;
use lyncdr::engine::executor::Event;
use lyncdr::engine::journal::FileJournal;
use lyncdr::model::{FailoverState, Fqdn, Span, Stamp};

/// One pool failover or failback the engine started, with the ground truth at that instant.
#[derive(Debug, Clone)]
pub struct PoolOp {
    pub at: Stamp,
    pub pool: Fqdn,
    pub failback: bool,
    pub disaster: bool,
    /// The pool being failed over was running and serving (a wrongful failover).
    pub alive: bool,
    /// The CMS master was available and reached from the pool the cmdlet runs on.
    pub cms_reachable: bool,
}

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub ops: Vec<PoolOp>,
    /// State-changing steps started (pool operations included).
    pub changes: usize,
    /// Steps started that may lose data (`-DisasterMode`, a forced CMS failover): each is in a
    /// plan only with the spec's consent.
    pub data_loss_steps: usize,
    pub violations: Vec<String>,
}

impl Seen {
    pub fn failovers(&self) -> Vec<&PoolOp> {
        self.ops.iter().filter(|o| !o.failback).collect()
    }
    pub fn failbacks(&self) -> Vec<&PoolOp> {
        self.ops.iter().filter(|o| o.failback).collect()
    }
    /// Failovers of a pool that was running and serving.
    pub fn wrongful(&self) -> Vec<&PoolOp> {
        self.ops.iter().filter(|o| !o.failback && o.alive).collect()
    }
}

/// Checks ground truth from the engine's event sink: every pool failover and failback started,
/// and after every step, that no pair is failed over in both directions at once.
pub struct Watcher {
    pub sim: LocalSim,
    pub pairs: Vec<(Fqdn, Fqdn)>,
    pub seen: std::sync::Mutex<Seen>,
}

impl Watcher {
    pub fn new(sim: &LocalSim) -> Watcher {
        let pairs = {
            let g = sim.lock();
            let topo = g.topology();
            topo.pools.keys().filter_map(|p| topo.partner(p).filter(|q| p < *q).map(|q| (p.clone(), q.clone()))).collect()
        };
        Watcher { sim: sim.clone(), pairs, seen: std::sync::Mutex::new(Seen::default()) }
    }

    pub fn event(&self, e: &Event) {
        match e {
            Event::StepStarted { id, command, run_on, at } => {
                let op =
                    id.strip_prefix("pool-failover/").map(|p| (p, false)).or_else(|| id.strip_prefix("pool-failback/").map(|p| (p, true)));
                let mut seen = self.seen.lock().unwrap();
                if !id.starts_with("wait-") {
                    seen.changes += 1;
                }
                if command.contains("-DisasterMode") || command.contains("-Force") {
                    seen.data_loss_steps += 1;
                }
                if let Some((pool, failback)) = op {
                    let pool = Fqdn::parse(pool).unwrap();
                    let on = Fqdn::parse(run_on).ok();
                    let g = self.sim.lock();
                    let partner = g.topology().partner(&pool).cloned().unwrap();
                    let from = on.filter(|o| g.topology().pools.contains_key(o)).unwrap_or(partner.clone());
                    let op = PoolOp {
                        at: *at,
                        pool: pool.clone(),
                        failback,
                        disaster: command.contains("-DisasterMode"),
                        alive: g.pool_alive(&pool),
                        cms_reachable: g.cms_master_reachable_from(&from),
                    };
                    drop(g);
                    if !failback && op.alive {
                        seen.violations.push(format!("{at}: wrongful failover of {pool}: it is running and serving ({command})"));
                    }
                    if !failback && !op.cms_reachable {
                        seen.violations.push(format!("{at}: failover of {pool} without a reachable CMS master ({command})"));
                    }
                    seen.ops.push(op);
                }
            }
            Event::StepFinished { at, .. } => self.check(*at),
            Event::Observed { .. } | Event::StepNote { .. } => {}
        }
    }

    /// No pair failed over (or failing over) in both directions at once.
    pub fn check(&self, at: Stamp) {
        let snap = self.sim.lock().snapshot();
        let away = |p: &Fqdn| snap.pools[p].state != FailoverState::Normal;
        for (a, b) in &self.pairs {
            if away(a) && away(b) {
                let msg = format!(
                    "{at}: {a} ({:?}) and {b} ({:?}) are failed over in both directions at once",
                    snap.pools[a].state, snap.pools[b].state
                );
                self.seen.lock().unwrap().violations.push(msg);
            }
        }
    }
}

/// When the operator runs: until `horizon`, looking again every `poll`, replaced at each of
/// `restarts`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    pub horizon: Stamp,
    pub poll: Span,
    pub restarts: &'a [Stamp],
}

/// How a continuous drive went.
#[derive(Debug, Default)]
pub struct Drove {
    pub rounds: usize,
    pub restarts: usize,
    pub stalls: usize,
    /// The longest time the journal stayed ambiguous (a step whose outcome the engine could
    /// not settle, so it stalled), from the first stalled round to the next that was not.
    pub longest_ambiguity: Span,
}

/// The operator, converging continuously until `horizon`: converge, then look again after
/// `poll` (sooner for a fault or a recheck); after a stall, a poll later. At each time of
/// `restarts` the operator process is replaced (a leader change or a restart): the engine is
/// dropped wherever it is, even in the middle of a step, and a new one opens the same journal
/// file. `round` sees every converge result.
pub async fn drive_continuously(
    lync: &LocalSim,
    journal_path: &std::path::Path,
    d: &Desired,
    watcher: &Watcher,
    when: Schedule<'_>,
    round: &mut dyn FnMut(Stamp, &Converged),
) -> Drove {
    let Schedule { horizon, poll, restarts } = when;
    let mut restarts: std::collections::VecDeque<Stamp> = restarts.iter().copied().collect();
    let mut out = Drove::default();
    let mut stalled_since: Option<Stamp> = None;
    let sink = |e: Event| watcher.event(&e);
    loop {
        let journal = FileJournal::open(journal_path.to_path_buf(), None).expect("the journal file opens");
        let mut engine = Engine::new(lync, &journal);
        engine.settings = Settings { by: format!("operator-{}", out.restarts), ..Settings::default() };
        loop {
            let now = lync.now();
            if now >= horizon {
                return out;
            }
            let restart_in = restarts.front().map(|r| r.since(now).max(Span(1)));
            let c = match restart_in {
                Some(r) => tokio::select! {
                    c = engine.converge(d, &sink) => Some(c),
                    _ = lync.sleep(r) => None,
                },
                None => Some(engine.converge(d, &sink).await),
            };
            let Some(c) = c else { break };
            let now = lync.now();
            out.rounds += 1;
            watcher.check(now);
            round(now, &c);
            let mut wake = now.plus(poll);
            match &c {
                Converged::Stalled { .. } => {
                    out.stalls += 1;
                    let since = *stalled_since.get_or_insert(now);
                    out.longest_ambiguity = out.longest_ambiguity.max(now.since(since));
                }
                Converged::Blocked { plan, .. } => {
                    stalled_since = None;
                    if let Some(r) = plan.recheck_after {
                        wake = wake.min(now.plus(r));
                    }
                }
                _ => stalled_since = None,
            }
            if let Some(f) = lync.lock().next_scheduled() {
                wake = wake.min(f);
            }
            wake = wake.min(horizon).max(now.plus(Span(1)));
            if let Some(r) = restarts.front().copied()
                && r <= wake
            {
                lync.sleep(r.since(now)).await;
                break;
            }
            lync.sleep(wake.since(now)).await;
        }
        // The process is gone (wherever it was); the next one settles what it left pending.
        restarts.pop_front();
        out.restarts += 1;
    }
}

/// Everything the operator said in a round: notices, blockers, stalls.
pub fn said(c: &Converged) -> String {
    let mut out = vec![];
    match c {
        Converged::Done { notices, .. } => out.extend(notices.iter().cloned()),
        Converged::Blocked { plan, .. } => {
            out.extend(plan.notices.iter().cloned());
            out.extend(plan.blockers.iter().map(|b| format!("blocked {}: {}", b.resource, b.reason)));
        }
        Converged::Stalled { step, reason, .. } => out.push(format!("stalled {step}: {reason}")),
        Converged::Unobservable { reason } => out.push(format!("unobservable: {reason}")),
    }
    out.join("\n")
}
