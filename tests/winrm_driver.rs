//! The PowerShell driver end to end: the engine on `driver::winrm::WinRmLync`, through our
//! WinRM client (NTLM with message encryption), to the simulator's WS-Man endpoint, which runs
//! the driver's scripts against the simulated deployment. The built-in two-site story (Dallas
//! lost, recovered automatically, back, failed back) must converge with the same state-changing
//! cmdlets, each once, as through the in-process simulator. A reply lost while the failover's
//! script ran (the connection closed after the script ran, before its answer) is settled by
//! observation: the failover is not run again.

mod common;

use std::collections::BTreeMap;

use lyncdr::cli::demo::{DemoReport, demo, demo_over_winrm};
use lyncdr::desired::{self, Desired};
use lyncdr::scenario::{DEMO_SCENARIO, Scenario, TimedFault};

fn story() -> (Scenario, Desired, Vec<TimedFault>) {
    let s = Scenario::from_yaml(DEMO_SCENARIO).expect("demo scenario");
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/two-site/desired.yaml")).expect("desired");
    let m = lyncdr::api::manifests::parse(&text, "desired.yaml").expect("manifests");
    let d = desired::compile(&m).expect("desired state").into_iter().next().expect("a deployment");
    let faults = ["5m:down:site/Dallas", "65m:up:site/Dallas"].iter().map(|f| TimedFault::parse(f).expect("fault")).collect();
    (s, d, faults)
}

/// Each state-changing cmdlet with its arguments, and how often it ran. The driver adds
/// `-Confirm:$false` where a cmdlet would ask (nobody is there to answer); that is the only
/// difference it may make.
fn changes(r: &DemoReport, unattended: bool) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in &r.cmdlets {
        let mut args = c.args.clone();
        if unattended {
            let spec = lyncdr::ps::catalog::lookup(&c.cmdlet);
            if spec.is_some_and(|s| s.should_process) {
                assert_eq!(args.shift_remove("Confirm"), Some(serde_json::Value::Bool(false)), "{} ran without -Confirm:$false", c.cmdlet);
            }
        }
        *out.entry(format!("{} {} on {}", c.cmdlet, serde_json::to_string(&args).unwrap_or_default(), c.run_on)).or_insert(0) += 1;
    }
    out
}

#[test]
fn the_story_converges_through_the_driver_with_the_same_cmdlets_each_once() {
    let (s, d, faults) = story();
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
        .block_on(demo(&s, &d, &faults, 4))
        .unwrap_or_else(|e| panic!("in-process demo: {}", e.0));
    let started = std::time::Instant::now();
    let remote = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(demo_over_winrm(&s, &d, &faults, 4))
        .unwrap_or_else(|e| panic!("demo over WinRM: {}", e.0));
    let trips = remote.round_trips.unwrap_or_default();
    eprintln!(
        "over WinRM: {} in {:.1} s wall; {} round trips for {} observations ({:.1} per observation) and {} changes; in process: {} queries",
        remote.outcome,
        started.elapsed().as_secs_f64(),
        trips,
        remote.observations,
        trips as f64 / remote.observations.max(1) as f64,
        remote.cmdlets.len(),
        local.queries
    );
    // Read-only calls for the same server travel together: an observation of the two-site
    // deployment is a batch per target (the topology, each pool, each server asked about its own
    // services), not a script per query (about 42 per observation before batching).
    let per_observation = trips as f64 / remote.observations.max(1) as f64;
    assert!(trips < remote.queries as u64, "queries are batched: {trips} round trips for {} queries", remote.queries);
    assert!(per_observation <= 20.0, "{per_observation:.1} round trips per observation");
    assert!(local.converged, "in process: {}", local.outcome);
    assert!(remote.converged, "over WinRM: {}\nblockers: {:?}", remote.outcome, remote.blockers);
    assert!(
        remote.cmdlets.iter().all(|c| c.result == "ok"),
        "{:#?}",
        remote.cmdlets.iter().filter(|c| c.result != "ok").collect::<Vec<_>>()
    );
    let (a, b) = (changes(&local, false), changes(&remote, true));
    assert_eq!(a, b, "the same state-changing cmdlets, each as often");
    assert!(b.values().all(|n| *n == 1), "each change once: {b:#?}");
    let serving = |r: &DemoReport| r.final_state.pools.iter().map(|(p, s)| (p.clone(), s.served_by.clone())).collect::<BTreeMap<_, _>>();
    assert_eq!(serving(&remote), serving(&local), "every pool's users served where they were in process");
}

/// Loses the reply that carries the outcome of the pool failover: the script has run, the
/// driver cannot know. Each shell has a connection of its own: the host arms the hook with the
/// connection of the Send that brought the failover's script, and the next Receive on that
/// connection loses its reply.
#[derive(Default)]
struct LoseFailoverReply {
    /// Connection of the Send being processed (set just before its stdin reaches the host).
    sending: std::sync::atomic::AtomicU64,
    /// Connection whose next Receive loses its reply (0: none).
    armed: std::sync::atomic::AtomicU64,
    fired: std::sync::atomic::AtomicUsize,
}

impl lyncdr::winrm::server::FaultHook for LoseFailoverReply {
    fn on_request(&self, info: &lyncdr::winrm::server::RequestInfo) -> lyncdr::winrm::server::FaultAction {
        use lyncdr::winrm::soap::Action;
        use std::sync::atomic::Ordering;
        match info.action {
            Some(Action::Send) => self.sending.store(info.connection, Ordering::SeqCst),
            Some(Action::Receive)
                if info.connection == self.armed.load(Ordering::SeqCst)
                    && self.armed.compare_exchange(info.connection, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() =>
            {
                self.fired.fetch_add(1, Ordering::SeqCst);
                return lyncdr::winrm::server::FaultAction::LoseReply;
            }
            _ => {}
        }
        lyncdr::winrm::server::FaultAction::Proceed
    }
}

/// The simulator's host, watching stdin for the failover's script.
struct Watching {
    inner: lyncdr::sim::winrm_host::SimHost,
    hook: std::sync::Arc<LoseFailoverReply>,
}

struct WatchingProcess {
    inner: Box<dyn lyncdr::winrm::server::Process>,
    hook: std::sync::Arc<LoseFailoverReply>,
}

impl lyncdr::winrm::server::Host for Watching {
    fn start(&self, command_line: &str, args: &[String]) -> Box<dyn lyncdr::winrm::server::Process> {
        Box::new(WatchingProcess { inner: self.inner.start(command_line, args), hook: self.hook.clone() })
    }
}

impl lyncdr::winrm::server::Process for WatchingProcess {
    fn write_stdin(&mut self, data: &[u8], end: bool) {
        use std::sync::atomic::Ordering;
        if String::from_utf8_lossy(data).contains("Invoke-CsPoolFailOver") && self.hook.fired.load(Ordering::SeqCst) == 0 {
            self.hook.armed.store(self.hook.sending.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        self.inner.write_stdin(data, end)
    }
    fn next_output(&mut self) -> futures::future::BoxFuture<'_, Option<lyncdr::winrm::server::Output>> {
        self.inner.next_output()
    }
    fn terminate(&mut self) {
        self.inner.terminate()
    }
}

#[test]
fn a_lost_reply_to_the_failover_is_settled_by_observation_not_by_running_it_again() {
    use lyncdr::engine::journal::MemoryJournal;
    use lyncdr::engine::{Converged, Engine, Settings};
    use lyncdr::sim::server::SimServer;
    use std::sync::Arc;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = Scenario::load(&root.join("tests/fixtures/two-site-dallas-down.scenario.yaml")).expect("scenario");
    let text = std::fs::read_to_string(root.join("tests/fixtures/failover-dallas.desired.yaml")).expect("desired");
    let d = desired::compile(&lyncdr::api::manifests::parse(&text, "desired").expect("manifests")).expect("desired").remove(0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let server = SimServer::new(lyncdr::sim::Simulator::new(&s), 720.0);
        let hook = Arc::new(LoseFailoverReply::default());
        let host = Watching { inner: lyncdr::sim::winrm_host::SimHost { server: server.clone() }, hook: hook.clone() };
        let (lync, serving) = lyncdr::sim::winrm_host::driver_over_loopback_with(Arc::new(host), Some(hook.clone()), None, &s.topology)
            .await
            .expect("driver");
        let journal = MemoryJournal::default();
        let mut engine = Engine::new(&lync, &journal);
        engine.settings = Settings { concurrency: 4, ..Settings::default() };
        let c = engine.converge(&d, &|_| {}).await;
        serving.abort();
        assert_eq!(hook.fired.load(std::sync::atomic::Ordering::SeqCst), 1, "the failover's reply was lost");
        assert!(matches!(c, Converged::Done { .. }), "{c:?}");
        let failovers = server.lock().log().iter().filter(|r| r.mutating && r.cmdlet == "Invoke-CsPoolFailOver").count();
        assert_eq!(failovers, 1, "the failover ran once: its outcome was settled by observing Dallas served by Seattle");
    });
}

/// Once the driver has seen the deployment, an observation asks all its queries at once: one
/// round trip per site (at its anchor pool; the deployment-wide queries travel with the first
/// site's), whatever the phases of the observer; and it sees what the in-process simulator sees.
/// From an empty memory it takes two observations to get there: the first asks in phases, the
/// second learns which pools are up (where the deployment-wide queries go).
#[test]
fn an_observation_after_the_first_is_one_round_trip_per_site() {
    use lyncdr::engine::observe::observe;
    use lyncdr::model::History;
    use lyncdr::sim::server::SimServer;
    use lyncdr::sim::winrm_host::driver_over_loopback;
    use lyncdr::sim::{LocalSim, Simulator};
    let (s, d, _) = story();
    let scope = lyncdr::engine::scope_for(&d);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (first, next, over_winrm) = rt.block_on(async {
        let server = SimServer::new(Simulator::new(&s), 60.0);
        let (lync, serving) = driver_over_loopback(server, &s.topology).await.expect("driver");
        let mut history = History::default();
        let mut trips = vec![];
        let mut last = None;
        for _ in 0..4 {
            let before = lync.round_trips();
            let o = observe(&lync, &scope, &history).await.expect("observe over WinRM");
            trips.push(lync.round_trips() - before);
            history = o.history.clone();
            last = Some(o);
        }
        serving.abort();
        (trips[0], trips[2..].to_vec(), last.expect("observed"))
    });
    let sites = s.topology.sites.len() as u64;
    assert!(first > sites, "the first observation asks in phases: {first}");
    assert_eq!(next, vec![sites, sites], "then one round trip per site");
    let local = LocalSim::new(Simulator::new(&s));
    let in_process = common::runtime().block_on(observe(&local, &scope, &History::default())).expect("observe in process");
    assert_eq!(over_winrm.topology, in_process.topology);
    assert_eq!(over_winrm.pools, in_process.pools);
    assert_eq!(over_winrm.edges, in_process.edges);
    assert_eq!(over_winrm.federation, in_process.federation);
    assert_eq!(over_winrm.cms.home_pool, in_process.cms.home_pool);
    assert_eq!(over_winrm.cms.in_contact, in_process.cms.in_contact);
}

/// The double hop through a scheduled task: each script travels inside the run-as wrapper (the
/// simulator's endpoint runs what the task would run) and answers as it does directly; a
/// state-changing call runs once.
#[test]
fn through_the_run_as_task_calls_answer_as_they_do_directly() {
    use lyncdr::backend::Lync;
    use lyncdr::driver::script::RunAsTask;
    use lyncdr::engine::observe::{Scope, observe};
    use lyncdr::model::{Fqdn, History, Request, RunOn, Stamp};
    use lyncdr::ps::Invocation;
    use lyncdr::sim::Simulator;
    use lyncdr::sim::server::SimServer;
    use lyncdr::sim::winrm_host::{SimHost, driver_over_loopback, driver_over_loopback_with};
    use std::sync::Arc;
    let (s, _, _) = story();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let server = SimServer::new(Simulator::new(&s), 60.0);
        let host = Arc::new(SimHost { server: server.clone() });
        let (wrapped, serving) =
            driver_over_loopback_with(host, None, Some(RunAsTask::default()), &s.topology).await.expect("driver with run-as");
        let (direct, serving_direct) = driver_over_loopback(server.clone(), &s.topology).await.expect("driver");
        let a = observe(&wrapped, &Scope::default(), &History::default()).await.expect("observe through the task");
        let b = observe(&direct, &Scope::default(), &History::default()).await.expect("observe directly");
        assert_eq!((a.topology, a.pools, a.edges), (b.topology, b.pools, b.edges));

        let pool = Fqdn::parse("pool01.dal.contoso.com").expect("fqdn");
        let sync = Invocation::new("Invoke-CsBackupServiceSync").arg("PoolFqdn", pool.as_str());
        let req = Request { id: "run-as/sync".into(), not_after: Stamp(wrapped.now().0 + 600_000) };
        let out = wrapped.invoke_request(&RunOn::Pool(pool.clone()), &sync, &req).await;
        assert!(out.is_ok(), "{out:?}");
        let ran = server.lock().log().iter().filter(|r| r.cmdlet == "Invoke-CsBackupServiceSync").count();
        assert_eq!(ran, 1, "the sync ran once");
        serving.abort();
        serving_direct.abort();
    });
}
