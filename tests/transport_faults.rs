//! Transport faults (issue 14): the site-loss story (Dallas lost, automatic failover to
//! Seattle) run by the engine against the simulator over both of `sim serve`'s transports, in
//! process on loopback: the HTTP JSON API through `HttpSim`, and the WS-Man endpoint through the
//! PowerShell driver. Each kind of transport fault is injected at the two state-changing steps
//! that matter most, the CMS failover (`Invoke-CsManagementServerFailover`) and the pool
//! failover (`Invoke-CsPoolFailOver`). Whatever the fault, no state-changing call runs twice,
//! nothing is skipped (the end state and the calls are those of the run without faults), a call
//! that certainly did not run is tried again with backoff within a bound, an outcome that is
//! unknown is resolved by the request ledger and observation, and the journal and the events
//! say what happened. The figures go to docs/reliability.md (`transport-faults`). The schedule
//! itself is checked as a scenario section, through the HTTP API, and in a real `sim serve`
//! process on both endpoints.

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use lyncdr::backend::{HttpSim, Lync};
use lyncdr::desired::Desired;
use lyncdr::engine::executor::{Event, MAX_ATTEMPTS};
use lyncdr::engine::journal::{Entry, Journal, MemoryJournal, Outcome};
use lyncdr::engine::{Converged, Engine, Settings};
use lyncdr::model::Span;
use lyncdr::scenario::transport::TransportFaultsFile;
use lyncdr::sim::server::SimServer;
use lyncdr::sim::transport_faults::Listing;
use lyncdr::sim::{Fault, Outcome as SimOutcome, Simulator, Snapshot};

/// Simulated seconds per real second: the failovers take minutes, the story well under a second.
const SPEED: f64 = 6000.0;
/// How long a state-changing request may take to reach the simulator (wall clock): a request
/// lost on the way is known never to run once it has passed (30 simulated minutes).
const WINDOW: Duration = Duration::from_millis(300);

const CMS: &str = "Invoke-CsManagementServerFailover";
const FAILOVER: &str = "Invoke-CsPoolFailOver";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Http,
    Winrm,
}

fn desired() -> Desired {
    common::desired(
        &common::TWO_SITE_DESIRED
            .replace("automaticFailback: {enabled: true, stabilityPeriod: 10m}", "automaticFailback: {enabled: false}"),
    )
}

struct Run {
    end: Converged,
    events: Vec<Event>,
    entries: Vec<Entry>,
    /// State-changing calls that reached the simulator: (line, where) -> how often.
    calls: BTreeMap<(String, String), usize>,
    snapshot: Snapshot,
    listing: Listing,
}

impl Run {
    /// The journal entries of the step whose command runs `cmdlet`.
    fn entries_of(&self, cmdlet: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.step.cmdlet == cmdlet).collect()
    }

    /// The notes of the step whose command runs `cmdlet`.
    fn notes_of(&self, cmdlet: &str) -> Vec<String> {
        let ids: Vec<&str> = self.entries_of(cmdlet).iter().map(|e| e.step.id.as_str()).collect();
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::StepNote { id, note, .. } if ids.contains(&id.as_str()) => Some(note.clone()),
                _ => None,
            })
            .collect()
    }

    fn fired(&self, kind: &str, cmdlet: &str) -> usize {
        self.listing.fired.iter().filter(|f| f.kind.name() == kind && f.cmdlet == cmdlet).count()
    }

    /// What the story is judged on: who serves whom, where the CMS and federation are.
    fn end_state(&self) -> String {
        let s = &self.snapshot;
        let pools: Vec<String> =
            s.pools.iter().map(|(p, x)| format!("{p}: up={} servedBy={} state={:?}", x.up, x.served_by, x.state)).collect();
        format!(
            "{pools:?} cms={:?} sip={:?} xmpp={:?} allServed={}",
            s.cms.active_pool, s.federation.sip_edge_pool, s.federation.xmpp_edge_pool, s.all_users_served
        )
    }
}

fn brief(c: &Converged) -> String {
    match c {
        Converged::Done { .. } => "done".into(),
        Converged::Blocked { plan, .. } => format!("blocked ({:?})", plan.blockers),
        Converged::Stalled { step, reason, .. } => format!("stalled at {step}: {reason}"),
        Converged::Unobservable { reason } => format!("unobservable: {reason}"),
    }
}

/// The story is over: Dallas's users on Seattle, every user served, SIP and XMPP federation
/// through Seattle, the CMS in Seattle, and nothing left to run.
fn story_over(c: &Converged, s: &Snapshot) -> bool {
    let Converged::Blocked { plan, .. } = c else { return !matches!(c, Converged::Unobservable { .. }) };
    let dal = s.pools.get(&lyncdr::model::Fqdn::parse(common::DAL).unwrap());
    plan.steps.is_empty() && plan.recheck_after.is_none() && dal.is_some_and(|p| p.served_by.as_str() == common::SEA)
}

/// Small answers leave at once (as `sim serve` does).
fn no_delay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}

async fn story(via: Via, rules: &str) -> Run {
    let s = common::scenario(common::TWO_SITE);
    let mut sim = Simulator::new(&s);
    sim.inject(&Fault::parse("down:site/Dallas").unwrap());
    let server = SimServer::new(sim, SPEED);
    let file: TransportFaultsFile = serde_saphyr::from_str(rules).unwrap_or_else(|e| panic!("{e}: {rules}"));
    server.transport.set(file.validate(&s.topology).unwrap_or_else(|e| panic!("{e:?}")));
    let (lync, serving): (Box<dyn Lync>, tokio::task::JoinHandle<std::io::Result<()>>) = match via {
        Via::Http => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let router = server.router();
            let serving = tokio::spawn(async move { axum::serve(listener.tap_io(no_delay), router).await });
            let mut c = HttpSim::connect(&format!("http://{addr}")).await.unwrap();
            c.set_request_window(WINDOW);
            (Box::new(c), serving)
        }
        Via::Winrm => {
            let (mut l, serving) = lyncdr::sim::winrm_host::driver_over_loopback(server.clone(), &s.topology).await.unwrap();
            l.set_request_window(WINDOW);
            (Box::new(l), serving)
        }
    };
    let journal = MemoryJournal::default();
    let mut engine = Engine::new(lync.as_ref(), &journal);
    engine.settings = Settings { wait_timeout: Span::hours(2), ..Settings::default() };
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let sink = move |e: Event| seen.lock().unwrap().push(e);
    let d = desired();
    let deadline = Instant::now() + Duration::from_secs(60);
    let end = loop {
        let c = engine.converge(&d, &sink).await;
        if story_over(&c, &server.lock().snapshot()) {
            break c;
        }
        assert!(Instant::now() < deadline, "{via:?} {rules}: no end in 60 s: {}", brief(&c));
        // The automatic failover waits for its grace period; the Edge setup comes later.
        lync.sleep(Span::mins(1)).await;
    };
    serving.abort();
    let entries = journal.entries().await.unwrap();
    let (log, snapshot) = {
        let g = server.lock();
        (g.log().to_vec(), g.snapshot())
    };
    let mut calls = BTreeMap::new();
    for r in log.iter().filter(|r| r.mutating && !r.what_if && r.outcome != SimOutcome::Unreachable) {
        *calls.entry((r.line.clone(), r.run_on.clone())).or_insert(0) += 1;
    }
    let events = events.lock().unwrap().clone();
    Run { end, events, entries, calls, snapshot, listing: server.transport.listing() }
}

/// One fault at one step: the rule, and what the client is expected to know of it.
struct Case {
    kind: &'static str,
    /// The rule's extra fields.
    extra: &'static str,
    /// How many calls it hits.
    count: u32,
    /// What the engine must do.
    expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Nothing ran and the client knows: tried again in place, with backoff.
    Retried,
    /// The client cannot tell; the ledger says it never ran: tried again in place, a new request.
    NeverRan,
    /// The client cannot tell; it ran: the ledger and an observation say it took effect.
    TookEffect,
    /// Only late: nothing to resolve.
    Plain,
    /// The client cannot tell and nothing can: the story stops at the step, its entry pending.
    Stall,
}

const CASES: &[Case] = &[
    Case { kind: "refuse", extra: "", count: 2, expect: Expect::Retried },
    Case { kind: "unauthorized", extra: "", count: 2, expect: Expect::Retried },
    Case { kind: "timeoutBeforeSend", extra: ", delay: 30s", count: 1, expect: Expect::NeverRan },
    Case { kind: "dropAfterSend", extra: "", count: 1, expect: Expect::NeverRan },
    Case { kind: "status", extra: ", status: 503", count: 1, expect: Expect::NeverRan },
    Case { kind: "loseReply", extra: "", count: 1, expect: Expect::TookEffect },
    Case { kind: "truncate", extra: ", bytes: 7", count: 1, expect: Expect::TookEffect },
    Case { kind: "slow", extra: ", delay: 2m", count: 1, expect: Expect::Plain },
];

fn rule(kind: &str, extra: &str, cmdlet: &str, count: u32) -> String {
    format!("seed: 14\nrules:\n- {{kind: {kind}{extra}, cmdlet: {cmdlet}, mutatingOnly: true, nth: 1, count: {count}}}\n")
}

/// Checks one faulted run against the run without faults; the row of the table.
fn check(via: Via, case: &Case, cmdlet: &str, run: &Run, base: &Run) -> String {
    let what = format!("{via:?} {} at {cmdlet}", case.kind);
    let fired = run.fired(case.kind, cmdlet);
    assert!(fired >= 1, "{what}: the fault never fired: {:#?}", run.listing);
    let entries = run.entries_of(cmdlet);
    let notes = run.notes_of(cmdlet);
    let show =
        || format!("{what}: {}\nentries {:#?}\nnotes {notes:#?}", brief(&run.end), entries.iter().map(|e| &e.outcome).collect::<Vec<_>>());
    // Over WinRM nothing keeps a ledger of requests (a real server has none): a call whose
    // fate is unknown and whose effect is not observed stops the story at its step.
    let expect = match (via, case.expect) {
        (Via::Winrm, Expect::NeverRan) => Expect::Stall,
        (_, e) => e,
    };
    if expect == Expect::Stall {
        let Converged::Stalled { step, reason, .. } = &run.end else { panic!("{}", show()) };
        assert_eq!(entries.len(), 1, "{}", show());
        assert_eq!((&entries[0].step.id, &entries[0].outcome), (step, &Outcome::Pending), "{}", show());
        assert!(reason.contains(step.as_str()) && reason.contains(cmdlet) && reason.contains("unknown"), "{}", show());
        assert!(notes.iter().any(|n| n.contains("resolved: neither the ledger nor an observation")), "{}", show());
        assert!(!run.calls.keys().any(|(l, _)| l.starts_with(cmdlet)), "{what}: it never reached the simulator: {:#?}", run.calls);
        for (call, n) in &run.calls {
            assert_eq!(base.calls.get(call), Some(n), "{what}: {call:?} ran {n} times");
        }
        return format!(
            "| {} | `{cmdlet}` | {via:?} | {fired} | unknown; no ledger, effect not observed: stalled at the step, entry pending | nothing ran twice; stopped there |\n",
            case.kind
        );
    }
    assert!(story_over(&run.end, &run.snapshot), "{}", show());
    assert!(!matches!(run.end, Converged::Stalled { .. }), "{}", show());
    assert_eq!(run.calls, base.calls, "{what}: the state-changing calls differ from the run without faults");
    assert_eq!(run.end_state(), base.end_state(), "{what}: the end state differs from the run without faults");
    // Exactly one entry succeeded, the last one; every other one says nothing ran.
    assert_eq!(entries.iter().filter(|e| e.outcome == Outcome::Succeeded).count(), 1, "{}", show());
    assert_eq!(entries.last().map(|e| &e.outcome), Some(&Outcome::Succeeded), "{}", show());
    let failed: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::Failed(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    assert!(entries.iter().all(|e| e.outcome != Outcome::Pending), "{}", show());
    // Each attempt has its own request.
    let ids: std::collections::BTreeSet<_> = entries.iter().filter_map(|e| e.request.as_ref().map(|r| r.id.clone())).collect();
    assert_eq!(ids.len(), entries.len(), "{}", show());
    let resolution = match expect {
        Expect::Retried => {
            assert!(!failed.is_empty() && failed.len() < MAX_ATTEMPTS as usize, "{}", show());
            for (i, m) in failed.iter().enumerate() {
                assert!(m.starts_with(&format!("attempt {} of {MAX_ATTEMPTS}: ", i + 1)) && m.ends_with("nothing ran"), "{}", show());
            }
            assert_eq!(
                notes.iter().filter(|n| n.contains("did not run") && n.contains("trying again in")).count(),
                failed.len(),
                "{}",
                show()
            );
            format!("did not run, retried in place: {} attempts", entries.len())
        }
        Expect::NeverRan => {
            assert_eq!(failed.len(), 1, "{}", show());
            assert!(failed[0].starts_with("attempt 1 of ") && failed[0].contains("never reached the deployment"), "{}", show());
            assert!(notes.iter().any(|n| n.contains("outcome of attempt 1 is unknown")), "{}", show());
            assert!(notes.iter().any(|n| n.contains("resolved: it never ran")), "{}", show());
            assert!(notes.iter().any(|n| n.starts_with("attempt 1 of") && n.contains("trying again in")), "{}", show());
            format!("unknown; ledger: never ran; retried in place: {} attempts", entries.len())
        }
        Expect::TookEffect => {
            assert!(failed.is_empty(), "{}", show());
            assert!(notes.iter().any(|n| n.contains("outcome of attempt 1 is unknown")), "{}", show());
            assert!(notes.iter().any(|n| n.contains("resolved: it took effect")), "{}", show());
            format!(
                "unknown; {}: took effect: {} entry",
                if via == Via::Http { "ledger + observation" } else { "observation" },
                entries.len()
            )
        }
        Expect::Plain | Expect::Stall => {
            assert!(failed.is_empty() && notes.is_empty(), "{}", show());
            format!("late answer, no retry: {} entry", entries.len())
        }
    };
    format!("| {} | `{cmdlet}` | {via:?} | {fired} | {resolution} | yes |\n", case.kind)
}

/// The rows of one transport: every case at both steps, against the run without faults.
async fn rows_of(via: Via) -> String {
    let base = story(via, "rules: []\n").await;
    assert!(base.calls.keys().any(|(l, _)| l.starts_with(FAILOVER)), "{via:?}: the story fails the pool over: {:#?}", base.calls);
    assert!(base.calls.keys().any(|(l, _)| l.starts_with(CMS)), "{via:?}: the story moves the CMS: {:#?}", base.calls);
    assert!(base.calls.values().all(|n| *n == 1), "{via:?}: every change runs once: {:#?}", base.calls);
    let mut rows = String::new();
    for case in CASES {
        for cmdlet in [CMS, FAILOVER] {
            let run = story(via, &rule(case.kind, case.extra, cmdlet, case.count)).await;
            rows.push_str(&check(via, case, cmdlet, &run, &base));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_fault_at_a_failover_step_neither_repeats_nor_skips_it() {
    let mut rows = String::from("| fault | step | transport | fired | what the engine did | calls and end state as without faults |\n");
    rows.push_str("|---|---|---|---:|---|---|\n");
    // The two transports side by side: most of a story is waiting in scaled time.
    let (http, winrm) = tokio::join!(rows_of(Via::Http), rows_of(Via::Winrm));
    rows.push_str(&http);
    rows.push_str(&winrm);
    common::reliability_section("transport-faults", &rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_every_time_fails_its_step_after_the_bound_naming_it() {
    for via in [Via::Http, Via::Winrm] {
        let run = story(via, &rule("refuse", "", FAILOVER, 100)).await;
        let Converged::Stalled { step, reason, .. } = &run.end else { panic!("{via:?}: expected a stall, got {}", brief(&run.end)) };
        let entries = run.entries_of(FAILOVER);
        assert_eq!(entries.len(), MAX_ATTEMPTS as usize, "{via:?}: one entry per attempt: {entries:#?}");
        assert_eq!(&entries[0].step.id, step);
        assert!(reason.contains(step.as_str()) && reason.contains(FAILOVER), "{via:?}: names the step and its command: {reason}");
        assert!(reason.contains(&format!("did not run in {MAX_ATTEMPTS} attempts")), "{via:?}: {reason}");
        assert!(reason.contains("15s, 30s"), "{via:?}: says how it backed off: {reason}");
        assert!(entries.iter().all(|e| matches!(&e.outcome, Outcome::Failed(m) if m.ends_with("nothing ran"))), "{entries:#?}");
        assert_eq!(run.fired("refuse", FAILOVER), MAX_ATTEMPTS as usize);
        assert!(!run.calls.keys().any(|(l, _)| l.starts_with(FAILOVER)), "{via:?}: the failover never ran: {:#?}", run.calls);
        // The backoff is in the deployment's time: the attempts are 15 s, then 30 s apart at least.
        let at: Vec<u64> = entries.iter().map(|e| e.started_at.0).collect();
        assert!(at[1] - at[0] >= 15_000 && at[2] - at[1] >= 30_000, "{via:?}: attempts at {at:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_sets_lists_and_refuses_schedules() {
    let s = common::scenario(common::TWO_SITE);
    let server = SimServer::new(Simulator::new(&s), SPEED);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/transport-faults", listener.local_addr().unwrap());
    let router = server.router();
    let serving = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let bad = serde_json::json!({"rules": [{"kind": "refuse"}, {"kind": "status", "status": 404}]});
    let r = client.post(&url).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("rules[1].status:"), "{body}");
    let good = serde_json::json!({"seed": 3, "rules": [{"kind": "refuse", "target": common::SEA, "cmdlet": "Get-CsPool"}]});
    let r = client.post(&url).json(&good).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A call to Seattle is refused, one elsewhere is not; the listing shows what fired.
    let sim = HttpSim::connect(&url.replace("/v1/transport-faults", "")).await.unwrap();
    let get = lyncdr::ps::Invocation::new("Get-CsPool");
    let sea = lyncdr::model::RunOn::Pool(lyncdr::model::Fqdn::parse(common::SEA).unwrap());
    let e = sim.invoke(&sea, &get).await.unwrap_err();
    assert!(e.nothing_ran() && e.to_string().contains("connection refused"), "{e}");
    assert!(sim.invoke(&lyncdr::model::RunOn::Any, &get).await.is_ok());
    let listing: Listing = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!((listing.seed, listing.rules.len(), listing.fired.len()), (3, 1, 1));
    assert_eq!((listing.rules[0].matched, listing.rules[0].fired), (1, 1));
    assert_eq!(listing.fired[0].cmdlet, "Get-CsPool");
    assert!(server.lock().log().iter().all(|r| r.run_on != sea.to_string()), "the refused call never reached the simulated world");
    serving.abort();
}

#[test]
fn the_scenario_section_is_validated_with_the_field_named() {
    let with = |section: &str| lyncdr::scenario::Scenario::from_yaml(&format!("{}\n{section}", common::TWO_SITE));
    let s = with("transportFaults:\n  seed: 9\n  rules:\n  - {kind: loseReply, target: pool01.sea.contoso.com, mutatingOnly: true, from: 10m, until: 1h}\n")
        .unwrap();
    assert_eq!(s.transport_faults.seed, 9);
    assert_eq!(s.transport_faults.rules.len(), 1);
    assert!(s.transport_faults.rules[0].mutating_only);
    let e = with("transportFaults:\n  rules:\n  - {kind: loseReply}\n  - {kind: truncate}\n").unwrap_err().to_string();
    assert!(e.contains("transportFaults.rules[1].bytes"), "{e}");
    let e = with("transportFaults:\n  rules:\n  - {kind: refuse, bogus: 1}\n").unwrap_err().to_string();
    assert!(e.contains("transportFaults.rules[0]") && e.contains("bogus"), "{e}");
    assert!(with("").unwrap().transport_faults.rules.is_empty());
}

#[test]
fn sim_serve_takes_the_schedule_from_the_scenario_on_both_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.yaml");
    let section =
        format!("transportFaults:\n  seed: 5\n  rules:\n  - {{kind: refuse, target: {}, cmdlet: Get-CsPool, count: 2}}\n", common::SEA);
    std::fs::write(&path, format!("{}\n{section}", common::TWO_SITE)).unwrap();
    let sim = processes::SimServe::start_with(&path, "60", Some(("LAB\\lyncdr", "Sch3dule-Pass")));
    let (code, body) = sim.http("GET", "/v1/transport-faults", None);
    assert_eq!(code, 200, "{body}");
    let listing: Listing = serde_json::from_str(&body).unwrap();
    assert_eq!((listing.seed, listing.rules.len(), listing.fired.len()), (5, 1, 0), "{body}");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let get = lyncdr::ps::Invocation::new("Get-CsPool");
        let sea = lyncdr::model::RunOn::Pool(lyncdr::model::Fqdn::parse(common::SEA).unwrap());
        // Over HTTP, then over WinRM: each refused once, with nothing run.
        let http = HttpSim::connect(&sim.url).await.unwrap();
        let e = http.invoke(&sea, &get).await.unwrap_err();
        assert!(e.nothing_ran() && e.to_string().contains("connection refused"), "{e}");
        let cfg = lyncdr::driver::winrm::WinRmConfig {
            endpoint: format!("http://{}/wsman", sim.wsman.unwrap()),
            credentials: lyncdr::winrm::auth::Credentials::new("LAB\\lyncdr", "Sch3dule-Pass").unwrap(),
            management_servers: vec![lyncdr::model::Fqdn::parse("pool01-fe01.sea.contoso.com").unwrap()],
            script_timeout: Duration::from_secs(60),
            auth: lyncdr::winrm::auth::AuthMethod::Ntlm,
            run_as: None,
        };
        let winrm = lyncdr::driver::winrm::WinRmLync::connect(cfg).await.unwrap();
        let e = winrm.invoke(&sea, &get).await.unwrap_err();
        assert!(e.nothing_ran() && e.to_string().contains("connection refused"), "{e}");
        // The count is spent: the third call runs.
        assert!(http.invoke(&sea, &get).await.is_ok());
    });
    let (_, body) = sim.http("GET", "/v1/transport-faults", None);
    let listing: Listing = serde_json::from_str(&body).unwrap();
    let via: Vec<String> = listing.fired.iter().map(|f| format!("{:?}", f.transport)).collect();
    assert_eq!(via, ["Http", "Winrm"], "{body}");
}
