//! End-to-end tests of the `lyncdr` binary: the command-line contract other tools depend on
//! (`plan`, `sim run`, `sim serve`, `demo`; issue text in the README's "The pieces"), run as a
//! child process exactly as a user or a script runs it, and golden files of the PowerShell
//! runbooks the planner generates for the two-site example and of the built-in demo's timeline
//! chart (`tests/golden/`).
//!
//! Golden files: after an intended change to the planner, rewrite them with
//! `LYNCDR_BLESS=1 cargo test --release --test cli golden` and review the diff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lyncdr::backend::{HttpSim, Lync, LyncError};
use lyncdr::model::{Fqdn, RunOn};
use lyncdr::planner::{Plan, StepKind};
use lyncdr::ps::Invocation;
use serde_json::{Map, Value, json};

#[path = "support/processes.rs"]
mod processes;

use processes::{Output, SimServe, root};

const DAL: &str = "pool01.dal.contoso.com";
const SEA: &str = "pool01.sea.contoso.com";
const EDGE_DAL: &str = "edge01.dal.contoso.com";
const EDGE_SEA: &str = "edge01.sea.contoso.com";

/// The example deployment and desired state (relative to the crate root, where the binary runs).
const SCENARIO: &str = "examples/two-site/scenario.yaml";
const DESIRED: &str = "examples/two-site/desired.yaml";
/// The example with the whole Dallas site down.
const SCENARIO_DALLAS_DOWN: &str = "tests/fixtures/two-site-dallas-down.scenario.yaml";
/// The example after a disaster recovery, Dallas back online and still failed over.
const SCENARIO_DALLAS_FAILED_OVER: &str = "tests/fixtures/two-site-dallas-failed-over.scenario.yaml";
/// The example desired state with Dallas's users served by Seattle (consent included).
const DESIRED_FAILOVER: &str = "tests/fixtures/failover-dallas.desired.yaml";

const BLESS_HINT: &str = "LYNCDR_BLESS=1 cargo test --release --test cli golden";

// ---------------------------------------------------------------------------------------------
// Running the binary

/// A hung command fails its test instead of stalling CI.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `lyncdr` with arguments from the crate root, with empty standard input.
fn lyncdr(args: &[&str]) -> Output {
    processes::run(args, TIMEOUT)
}

fn lyncdr_with_input(args: &[&str], input: &str) -> Output {
    processes::run_with_input(args, input, TIMEOUT)
}

/// A copy of a file of the crate with one edit, in `dir`; panics if `from` does not occur (the
/// base file changed and the variant would silently test nothing).
fn variant(dir: &Path, base: &str, name: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(root().join(base)).unwrap_or_else(|e| panic!("{base}: {e}"));
    assert!(text.contains(from), "{base} no longer contains {from:?}; update the test");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write variant");
    path.to_str().expect("utf-8 path").to_string()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

// ---------------------------------------------------------------------------------------------
// JSON helpers that say where a field is missing or has the wrong type

fn field<'a>(v: &'a Value, key: &str, at: &str) -> &'a Value {
    v.get(key).unwrap_or_else(|| panic!("{at}: no field `{key}` in {v}"))
}

fn string<'a>(v: &'a Value, key: &str, at: &str) -> &'a str {
    field(v, key, at).as_str().unwrap_or_else(|| panic!("{at}.{key} should be a string: {v}"))
}

fn boolean(v: &Value, key: &str, at: &str) -> bool {
    field(v, key, at).as_bool().unwrap_or_else(|| panic!("{at}.{key} should be a boolean: {v}"))
}

fn number(v: &Value, key: &str, at: &str) -> f64 {
    field(v, key, at).as_f64().unwrap_or_else(|| panic!("{at}.{key} should be a number: {v}"))
}

fn array<'a>(v: &'a Value, key: &str, at: &str) -> &'a Vec<Value> {
    field(v, key, at).as_array().unwrap_or_else(|| panic!("{at}.{key} should be an array: {v}"))
}

fn object<'a>(v: &'a Value, key: &str, at: &str) -> &'a Map<String, Value> {
    field(v, key, at).as_object().unwrap_or_else(|| panic!("{at}.{key} should be an object: {v}"))
}

/// A string or null.
fn optional_string(v: &Value, key: &str, at: &str) -> Option<String> {
    match field(v, key, at) {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("{at}.{key} should be a string or null: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The plan contract

/// Parameters of the cmdlets a plan uses, as the cmdlet reference documents them (domain
/// document, section 4). A plan's `args` must use these names, spelled exactly.
const DOCUMENTED_PARAMETERS: &[(&str, &[&str])] = &[
    (
        "Invoke-CsPoolFailOver",
        &[
            "PoolFqdn",
            "DisasterMode",
            "FlushStorageService",
            "Force",
            "WaitTime",
            "SkipDataVerification",
            "DatabaseCommandTimeoutInSeconds",
            "ServicesStopDelayMins",
        ],
    ),
    (
        "Invoke-CsPoolFailBack",
        &["PoolFqdn", "DisasterMode", "Force", "WaitTime", "SkipDataVerification", "DatabaseCommandTimeoutInSeconds"],
    ),
    (
        "Invoke-CsManagementServerFailover",
        &[
            "BackupSqlServerFqdn",
            "BackupSqlInstanceName",
            "BackupMirrorSqlServerFqdn",
            "BackupMirrorSqlInstanceName",
            "Force",
            "Report",
            "Restore",
        ],
    ),
    ("Get-CsManagementStoreReplicationStatus", &["ReplicaFqdn", "CentralManagementStoreStatus"]),
    ("Export-CsConfiguration", &["FileName", "LocalStore", "Force"]),
    ("Export-CsLisConfiguration", &["FileName"]),
    ("Set-CsEdgeServer", &["Identity", "Registrar"]),
    ("Set-CsSite", &["Identity", "FederationRoute", "XmppFederationRoute"]),
    ("Invoke-CsBackupServiceSync", &["PoolFqdn", "BackupModule", "Force"]),
    ("Get-CsBackupServiceStatus", &["PoolFqdn", "Category", "Force"]),
    ("Export-CsRgsConfiguration", &["Source", "Owner", "FileName", "RemoveExportedConfiguration"]),
    ("Import-CsRgsConfiguration", &["Destination", "FileName", "OverwriteOwner", "ReplaceExistingSettings", "ResolveNameConflicts"]),
    ("Invoke-CsDatabaseFailover", &["PoolFqdn", "DatabaseType", "NewPrincipal", "Force"]),
];

/// Switch parameters: in a plan they are JSON `true`.
const SWITCHES: &[&str] = &[
    "DisasterMode",
    "Force",
    "LocalStore",
    "OverwriteOwner",
    "ReplaceExistingSettings",
    "ResolveNameConflicts",
    "RemoveExportedConfiguration",
    "FlushStorageService",
    "SkipDataVerification",
    "CentralManagementStoreStatus",
    "Restore",
];

fn is_parameter_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

fn looks_like_fqdn(s: &str) -> bool {
    s.contains('.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Checks the `plan --format json` contract field by field (names, types, a valid execution
/// order, documented parameter names, switches as `true`) and returns the plan as the library
/// type (which must round-trip to the same JSON).
fn check_plan_contract(v: &Value, what: &str) -> Plan {
    let top = v.as_object().unwrap_or_else(|| panic!("{what}: the plan is not a JSON object: {v}"));
    for key in ["hash", "steps", "blockers"] {
        assert!(top.contains_key(key), "{what}: the plan has no `{key}`: {v}");
    }
    let hash = string(v, "hash", what);
    assert!(!hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()), "{what}: hash {hash:?} is not a hex digest");
    let mut earlier: BTreeSet<String> = BTreeSet::new();
    for (i, s) in array(v, "steps", what).iter().enumerate() {
        let at = format!("{what}: steps[{i}]");
        let id = string(s, "id", &at).to_string();
        assert!(!id.is_empty(), "{at}: empty id");
        let cmdlet = string(s, "cmdlet", &at);
        assert!(!cmdlet.is_empty(), "{at}: empty cmdlet");
        let args = object(s, "args", &at);
        for (name, value) in args {
            assert!(is_parameter_name(name), "{at} ({id}): `{name}` is not a PowerShell parameter name");
            if let Value::Bool(b) = value {
                assert!(*b, "{at} ({id}): switch -{name} is false; switches are `true` in a plan");
            }
            if SWITCHES.contains(&name.as_str()) {
                assert_eq!(value, &Value::Bool(true), "{at} ({id}): -{name} is a switch and must be `true`");
            }
        }
        if let Some((_, documented)) = DOCUMENTED_PARAMETERS.iter().find(|(c, _)| *c == cmdlet) {
            for name in args.keys() {
                assert!(documented.contains(&name.as_str()), "{at} ({id}): {cmdlet} has no documented parameter -{name}");
            }
        }
        let run_on = string(s, "runOn", &at);
        assert!(looks_like_fqdn(run_on), "{at} ({id}): runOn {run_on:?} is not an FQDN");
        for a in array(s, "after", &at) {
            let a = a.as_str().unwrap_or_else(|| panic!("{at} ({id}): `after` holds a non-string: {a}"));
            assert!(earlier.contains(a), "{at} ({id}): depends on {a}, which does not come earlier in `steps`");
        }
        boolean(s, "dataLoss", &at);
        assert!(!string(s, "reason", &at).trim().is_empty(), "{at} ({id}): empty reason");
        assert!(earlier.insert(id.clone()), "{at}: step id {id} appears twice");
    }
    for (i, b) in array(v, "blockers", what).iter().enumerate() {
        let at = format!("{what}: blockers[{i}]");
        let resource = string(b, "resource", &at);
        let (kind, name) = resource.split_once('/').unwrap_or_else(|| panic!("{at}: resource {resource:?} is not Kind/name"));
        assert!(
            ["LyncDeployment", "PoolPair", "UserPlacement", "ConferenceContentRestore"].contains(&kind) && !name.is_empty(),
            "{at}: resource {resource:?} is not a lyncdr resource"
        );
        assert!(!string(b, "reason", &at).trim().is_empty(), "{at}: empty reason");
    }
    let plan: Plan = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: not a lyncdr plan: {e}"));
    assert_eq!(&serde_json::to_value(&plan).expect("plan to JSON"), v, "{what}: the plan JSON does not round-trip");
    plan
}

/// `lyncdr plan --format json`, checked against the contract.
fn plan_json(scenario: &str, desired: &str) -> (Value, Plan) {
    let run = lyncdr(&["plan", "--scenario", scenario, "--desired", desired, "--format", "json"]);
    run.expect_code(0);
    let v = run.json();
    let plan = check_plan_contract(&v, &run.what);
    (v, plan)
}

fn step_ids(p: &Plan) -> String {
    p.steps.iter().map(|s| format!("  {} <- {:?}", s.id, s.after)).collect::<Vec<_>>().join("\n")
}

fn position(p: &Plan, id: &str) -> usize {
    p.steps.iter().position(|s| s.id == id).unwrap_or_else(|| panic!("no step {id} in the plan:\n{}", step_ids(p)))
}

/// `a` comes before `b` and `b` depends on `a`, directly or through other steps.
fn depends(p: &Plan, b: &str, a: &str) {
    assert!(position(p, a) < position(p, b), "{a} should come before {b}:\n{}", step_ids(p));
    let mut todo = vec![b.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(x) = todo.pop() {
        if x == a {
            return;
        }
        if seen.insert(x.clone()) {
            todo.extend(p.steps[position(p, &x)].after.iter().cloned());
        }
    }
    panic!("{b} does not depend on {a}:\n{}", step_ids(p));
}

/// `Invoke-CsPoolFailOver` uses `-DisasterMode` (and is marked as losing data) exactly when the
/// pool it fails over is unreachable.
fn check_disaster_mode(p: &Plan, unreachable: &[&str]) {
    for s in p.steps.iter().filter(|s| s.cmdlet == "Invoke-CsPoolFailOver") {
        let pool = s.args.get("PoolFqdn").and_then(Value::as_str).unwrap_or_else(|| panic!("{} has no -PoolFqdn", s.id));
        let disaster = s.args.get("DisasterMode") == Some(&Value::Bool(true));
        assert_eq!(disaster, unreachable.contains(&pool), "{}: -DisasterMode must be used exactly when {pool} is unreachable", s.id);
        assert_eq!(s.data_loss, disaster, "{}: dataLoss must match -DisasterMode", s.id);
        assert_ne!(s.run_on.as_str(), pool, "{}: a failover runs on the surviving pool", s.id);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. demo: the built-in story

/// The contract fields of one `cmdlets[]` entry; returns (cmdlet, args, runOn, start, end).
fn check_cmdlet_record(c: &Value, at: &str) -> (String, Map<String, Value>, String, f64, f64) {
    let cmdlet = string(c, "cmdlet", at).to_string();
    let args = object(c, "args", at).clone();
    let run_on = string(c, "runOn", at).to_string();
    let start = number(c, "start", at);
    let end = number(c, "end", at);
    assert!(start <= end, "{at}: start {start} is after end {end}: {c}");
    let result = string(c, "result", at);
    assert!(["ok", "error"].contains(&result), "{at}: result {result:?} is neither ok nor error");
    let error = optional_string(c, "error", at);
    assert_eq!(result == "error", error.is_some(), "{at}: an error result comes with its text, an ok one without: {c}");
    (cmdlet, args, run_on, start, end)
}

/// The contract shape of `final`; returns it for further checks.
fn check_final_shape(v: &Value, at: &str) -> Value {
    let fin = field(v, "final", at).clone();
    for (fqdn, pool) in object(&fin, "pools", "final") {
        let at = format!("final.pools[{fqdn}]");
        boolean(pool, "up", &at);
        assert!(looks_like_fqdn(string(pool, "servedBy", &at)), "{at}.servedBy is not an FQDN");
    }
    let cms = field(&fin, "cms", "final");
    assert!(optional_string(cms, "activePool", "final.cms").is_some(), "final.cms.activePool missing: {cms}");
    for (fqdn, edge) in object(&fin, "edges", "final") {
        let at = format!("final.edges[{fqdn}]");
        boolean(edge, "up", &at);
        optional_string(edge, "nextHop", &at);
    }
    let fed = field(&fin, "federation", "final");
    optional_string(fed, "sipEdgePool", "final.federation");
    optional_string(fed, "xmppEdgePool", "final.federation");
    fin
}

#[test]
fn demo_builtin_story_json_converges_and_runs_each_change_exactly_once() {
    let run = lyncdr(&["demo", "--format", "json"]);
    run.expect_code(0);
    let v = run.json();
    assert!(boolean(&v, "converged", "demo"), "the built-in story should converge: {}", run.describe());
    let rto = number(&v, "rtoSeconds", "demo");
    assert!(rto > 0.0 && rto < 3600.0, "rtoSeconds {rto} should be positive and well under an hour");
    let lost = number(&v, "lostChanges", "demo");
    assert!(lost > 0.0, "the built-in story is a disaster failover with consent: some changes are lost, got {lost}");

    // Every executed cmdlet, with the contract fields, none failed.
    let mut records = Vec::new();
    for (i, c) in array(&v, "cmdlets", "demo").iter().enumerate() {
        let at = format!("cmdlets[{i}]");
        let r = check_cmdlet_record(c, &at);
        assert_eq!(string(c, "result", &at), "ok", "{at} failed: {c}");
        records.push(r);
    }
    assert!(!records.is_empty(), "the story executes cmdlets");

    // Exactly once: no change is repeated (same cmdlet, arguments and place).
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (cmdlet, args, run_on, _, _) in &records {
        *counts.entry(format!("{cmdlet} {} on {run_on}", Value::Object(args.clone()))).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "changes executed more than once: {repeated:?}");
    let named = |name: &str| records.iter().filter(|r| r.0 == name).collect::<Vec<_>>();

    // One failover of Dallas, with -DisasterMode (Dallas is unreachable), on Seattle.
    let failovers = named("Invoke-CsPoolFailOver");
    assert_eq!(failovers.len(), 1, "exactly one pool failover: {failovers:?}");
    let (_, fo_args, fo_on, fo_start, fo_end) = failovers[0];
    assert_eq!(Value::Object(fo_args.clone()), json!({"PoolFqdn": DAL, "DisasterMode": true}));
    assert_eq!(fo_on, SEA, "the failover runs on the surviving pool");
    // Dallas is lost at 5m; the example's grace period is 5 minutes.
    assert!(*fo_start >= 600.0, "automatic failover before the 5-minute grace period ran out: {fo_start}");
    assert!(
        (rto - (fo_end - 300.0)).abs() < 10.0,
        "rtoSeconds {rto} should run from the fault (300 s) to the end of the failover ({fo_end})"
    );

    // The CMS fails over to Seattle first (-Force, disaster-recovery set, in the target pool)
    // and comes home last, without -Force.
    let cms = named("Invoke-CsManagementServerFailover");
    assert_eq!(cms.len(), 2, "the CMS moves to Seattle and back: {cms:?}");
    let (_, away_args, away_on, _, away_end) = cms[0];
    assert_eq!(away_on, SEA, "rule 10: the CMS failover runs in the pool receiving it");
    assert_eq!(away_args.get("Force"), Some(&Value::Bool(true)), "the CMS is unreachable: disaster-recovery set with -Force");
    assert!(away_args.contains_key("BackupSqlServerFqdn"), "disaster-recovery set names the backup SQL server: {away_args:?}");
    assert!(away_end <= fo_start, "rule 3: CMS failover (ends {away_end}) before the pool failover (starts {fo_start})");
    let (_, home_args, home_on, home_start, _) = cms[1];
    assert_eq!(home_on, DAL);
    assert!(!home_args.contains_key("Force"), "rule 9: no -Force while the CMS is reachable: {home_args:?}");

    // One failback, without -DisasterMode (Seattle is up), after Dallas returned (65m) and was
    // stable for the example's 10 minutes, and after federation came home (rule 23).
    let failbacks = named("Invoke-CsPoolFailBack");
    assert_eq!(failbacks.len(), 1, "exactly one pool failback: {failbacks:?}");
    let (_, fb_args, _, fb_start, fb_end) = failbacks[0];
    assert_eq!(Value::Object(fb_args.clone()), json!({"PoolFqdn": DAL}), "failback names the same pool, without -DisasterMode");
    assert!(*fb_start >= 3900.0 + 600.0, "failback before Dallas had been back for the stability period: {fb_start}");
    for (cmdlet, args, _, _, end) in &records {
        if cmdlet == "Set-CsSite" && args.get("Identity") == Some(&json!("Dallas")) {
            assert!(end <= fb_start, "rule 23: federation back to Dallas ({args:?}) before the failback");
        }
    }
    assert!(home_start >= fb_end, "rule 16: the CMS comes home after the failback");
    let sync = named("Invoke-CsBackupServiceSync");
    assert!(sync.iter().any(|r| r.3 >= *fb_end), "rule 24: conference content is copied back after the failback: {sync:?}");

    // The final state: everything at home.
    let fin = check_final_shape(&v, "demo");
    let pools = fin["pools"].as_object().expect("pools");
    assert_eq!(pools.keys().collect::<Vec<_>>(), [DAL, SEA]);
    for (fqdn, p) in pools {
        assert_eq!(p["up"], true, "{fqdn} is up at the end");
        assert_eq!(p["servedBy"], fqdn.as_str(), "{fqdn} serves its own users at the end");
    }
    for (fqdn, e) in fin["edges"].as_object().expect("edges") {
        assert_eq!(e["up"], true, "{fqdn} is up at the end");
    }
    assert_eq!(fin["cms"]["activePool"], DAL);
    assert_eq!(fin["federation"]["sipEdgePool"], EDGE_DAL);
    assert_eq!(fin["federation"]["xmppEdgePool"], EDGE_DAL);
}

#[test]
fn demo_builtin_story_text_tells_the_outcome_and_rto() {
    let json_run = lyncdr(&["demo", "--format", "json"]);
    let rto = number(&json_run.json(), "rtoSeconds", "demo");
    let run = lyncdr(&["demo"]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("outcome:      converged"), "{}", run.describe());
    assert!(out.contains(&format!("RTO:          {rto:.0} s")), "the text RTO should match the JSON ({rto} s): {}", run.describe());
    assert!(out.contains("Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode"), "{}", run.describe());
    assert!(out.contains(&format!("{DAL}: up — users served by {DAL}")), "{}", run.describe());
    assert!(out.contains(&format!("CMS: {DAL}")), "{}", run.describe());
}

#[test]
fn demo_over_winrm_tells_its_round_trips() {
    let run = lyncdr(&["demo", "--transport", "winrm", "--format", "json"]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(string(&v, "outcome", "demo"), "converged", "{}", run.describe());
    let trips = number(&v, "roundTrips", "demo");
    let observations = number(&v, "observations", "demo");
    assert!(trips > 0.0 && observations > 0.0, "{}", run.describe());
    // In process there is no WinRM, so no round trips are reported.
    assert!(lyncdr(&["demo", "--format", "json"]).json().get("roundTrips").is_none());
}

// ---------------------------------------------------------------------------------------------
// 2. demo: a disaster without and with consent

#[test]
fn demo_disaster_without_consent_is_blocked_on_the_pool_pair() {
    let run = lyncdr(&[
        "demo",
        "--scenario",
        SCENARIO,
        "--desired",
        "tests/fixtures/manual-no-consent.desired.yaml",
        "--fault",
        "0s:down:site/Dallas",
        "--format",
        "json",
    ]);
    // Blocked is not converged: exit code 1 (invalid input would be 2).
    run.expect_code(1);
    let v = run.json();
    assert!(!boolean(&v, "converged", "demo"));
    assert_eq!(string(&v, "outcome", "demo"), "blocked");
    let blockers = array(&v, "blockers", "demo");
    let pair = blockers
        .iter()
        .find(|b| b["resource"] == "PoolPair/dal-sea")
        .unwrap_or_else(|| panic!("no blocker names PoolPair/dal-sea: {blockers:?}"));
    let reason = string(pair, "reason", "blocker");
    assert!(reason.contains("-DisasterMode") && reason.contains("allowDataLoss"), "the blocker says what consent is missing: {reason}");
    assert!(
        blockers.iter().any(|b| b["resource"] == "LyncDeployment/contoso" && b["reason"].as_str().is_some_and(|r| r.contains("-Force"))),
        "the CMS move (-Force) is blocked on the deployment too: {blockers:?}"
    );
    for c in array(&v, "cmdlets", "demo") {
        let cmdlet = string(c, "cmdlet", "cmdlets[]");
        assert!(
            !["Invoke-CsPoolFailOver", "Invoke-CsManagementServerFailover"].contains(&cmdlet),
            "nothing that may lose data runs without consent: {c}"
        );
    }
    let fin = check_final_shape(&v, "demo");
    assert_eq!(fin["pools"][DAL]["up"], false);
    assert_eq!(fin["pools"][DAL]["servedBy"], DAL, "Dallas's users are not failed over");
    assert!(field(&v, "rtoSeconds", "demo").is_null(), "no RTO while users are unserved");

    // The text report says so too, with the same exit code.
    let text = lyncdr(&[
        "demo",
        "--scenario",
        SCENARIO,
        "--desired",
        "tests/fixtures/manual-no-consent.desired.yaml",
        "--fault",
        "0s:down:site/Dallas",
    ]);
    text.expect_code(1);
    assert!(text.stdout.contains("outcome:      blocked") && text.stdout.contains("BLOCKED PoolPair/dal-sea:"), "{}", text.describe());
}

#[test]
fn demo_disaster_with_consent_serves_dallas_users_from_seattle() {
    let run = lyncdr(&[
        "demo",
        "--scenario",
        SCENARIO,
        "--desired",
        "tests/fixtures/manual-consent.desired.yaml",
        "--fault",
        "0s:down:site/Dallas",
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert!(boolean(&v, "converged", "demo"), "{}", run.describe());
    assert!(array(&v, "blockers", "demo").is_empty());
    let rto = number(&v, "rtoSeconds", "demo");
    assert!(rto > 0.0 && rto < 3600.0, "rtoSeconds {rto}");
    let mut order = Vec::new();
    for (i, c) in array(&v, "cmdlets", "demo").iter().enumerate() {
        let (cmdlet, args, run_on, start, _) = check_cmdlet_record(c, &format!("cmdlets[{i}]"));
        assert_eq!(c["result"], "ok", "{c}");
        order.push((cmdlet, args, run_on, start));
    }
    let fo: Vec<_> = order.iter().filter(|c| c.0 == "Invoke-CsPoolFailOver").collect();
    assert_eq!(fo.len(), 1, "{order:?}");
    assert_eq!(Value::Object(fo[0].1.clone()), json!({"PoolFqdn": DAL, "DisasterMode": true}));
    let cms = order.iter().position(|c| c.0 == "Invoke-CsManagementServerFailover").expect("CMS failover");
    let pool = order.iter().position(|c| c.0 == "Invoke-CsPoolFailOver").expect("pool failover");
    assert!(cms < pool, "rule 3: the CMS fails over before the pool: {order:?}");
    assert!(order.iter().all(|c| c.0 != "Invoke-CsPoolFailBack"), "nobody asked for a failback: {order:?}");
    let fin = check_final_shape(&v, "demo");
    assert_eq!(fin["pools"][DAL]["up"], false, "Dallas stays down (no fault brings it back)");
    assert_eq!(fin["pools"][DAL]["servedBy"], SEA, "Dallas's users are served by Seattle");
    assert_eq!(fin["pools"][SEA]["servedBy"], SEA);
    assert_eq!(fin["cms"]["activePool"], SEA);
}

/// With nothing asking for a failover, losing Dallas leaves its 20000 users unserved; the
/// engine can do nothing, but that is not "converged": a blocker (or at least a notice) should
/// name the PoolPair and say how to fail the users over.
#[test]
fn demo_pool_down_with_no_failover_asked_is_not_reported_converged() {
    let run = lyncdr(&[
        "demo",
        "--scenario",
        SCENARIO,
        "--desired",
        "tests/fixtures/manual-home.desired.yaml",
        "--fault",
        "0s:down:site/Dallas",
        "--format",
        "json",
    ]);
    let v = run.json();
    assert_eq!(v["final"]["allUsersServed"], false, "precondition: Dallas's users are unserved");
    assert!(!boolean(&v, "converged", "demo"), "not converged while users are unserved: {}", run.describe());
    run.expect_code(1);
    let says_pair = |list: &Value| list.to_string().contains("PoolPair/dal-sea");
    assert!(says_pair(&v["blockers"]) || says_pair(&v["notices"]), "a blocker or notice should name PoolPair/dal-sea: {}", run.describe());
}

/// `plan` and `demo` on the same situation: the plan's notices (CMS unavailable, SIP federation
/// on a down Edge pool) should reach the demo report too.
#[test]
fn demo_report_keeps_the_plan_notices_when_nothing_is_left_to_do() {
    let (v, _) = plan_json(SCENARIO_DALLAS_DOWN, "tests/fixtures/manual-home.desired.yaml");
    let plan_notices = array(&v, "notices", "plan").clone();
    assert!(!plan_notices.is_empty(), "precondition: the plan has notices: {v}");
    let run =
        lyncdr(&["demo", "--scenario", SCENARIO_DALLAS_DOWN, "--desired", "tests/fixtures/manual-home.desired.yaml", "--format", "json"]);
    let report = run.json();
    let demo_notices = array(&report, "notices", "demo");
    for n in &plan_notices {
        assert!(demo_notices.contains(n), "the demo report lacks the plan's notice {n}: {}", run.describe());
    }
}

/// Issue 10, finding 5: a notice that asks a person to act stays while its condition holds, not
/// only while its step is pending. Once Dallas is failed over (and the plan is empty), the report
/// still asks for the LIS database (rule 27); the XMPP notice likewise stays while XMPP federation
/// is routed through an Edge pool the DNS records do not point at.
#[test]
fn demo_report_keeps_notices_while_their_condition_holds() {
    let run = lyncdr(&[
        "demo",
        "--scenario",
        SCENARIO,
        "--desired",
        "tests/fixtures/manual-consent.desired.yaml",
        "--fault",
        "0s:down:site/Dallas",
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["final"]["pools"][DAL]["servedBy"], SEA, "precondition: Dallas is failed over");
    let notices = array(&v, "notices", "demo");
    assert!(
        notices.iter().any(|n| n.as_str().is_some_and(|n| n.contains("Location Information Service") && n.contains("rule 27"))),
        "the LIS notice stays while Dallas is failed over: {}",
        run.describe()
    );

    // XMPP moved to Seattle by a person's hand, DNS records still pointing at Dallas (back up):
    // the notice stays until the records change.
    let dir = tempdir();
    let scenario = variant(
        dir.path(),
        SCENARIO,
        "xmpp-on-seattle.yaml",
        "federation: {sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.dal.contoso.com, xmppDns: [edge01.dal.contoso.com, edge01.sea.contoso.com]}",
        "federation: {sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.sea.contoso.com, xmppDns: [edge01.dal.contoso.com]}",
    );
    let desired = variant(
        dir.path(),
        "tests/fixtures/manual-home.desired.yaml",
        "desired.yaml",
        "  centralManagementStore:",
        "  edge: {xmppFederationPool: edge01.sea.contoso.com}\n  centralManagementStore:",
    );
    let run = lyncdr(&["demo", "--scenario", &scenario, "--desired", &desired, "--format", "json"]);
    let v = run.json();
    let notices = array(&v, "notices", "demo");
    assert!(
        notices.iter().any(|n| n.as_str().is_some_and(|n| n.contains("do not point at it") && n.contains("edge01.sea.contoso.com"))),
        "{}",
        run.describe()
    );
}

/// A planned failover of a reachable pool can take its Response Groups along (rule 25: export,
/// fail over, import into the backup pool); starting from an empty memory, the engine fails
/// Dallas over without ever exporting them, so they stay unavailable until Dallas returns.
#[test]
fn demo_planned_failover_carries_the_response_groups_to_seattle() {
    let run = lyncdr(&["demo", "--scenario", SCENARIO, "--desired", DESIRED_FAILOVER, "--format", "json"]);
    run.expect_code(0);
    let v = run.json();
    let cmdlets = array(&v, "cmdlets", "demo");
    let at = |cmdlet: &str, key: &str, value: &str| {
        cmdlets
            .iter()
            .position(|c| c["cmdlet"] == cmdlet && c["args"][key] == value)
            .unwrap_or_else(|| panic!("no {cmdlet} -{key} {value} in {}", serde_json::to_string_pretty(cmdlets).unwrap_or_default()))
    };
    let export = at("Export-CsRgsConfiguration", "Source", &format!("service:ApplicationServer:{DAL}"));
    let failover = at("Invoke-CsPoolFailOver", "PoolFqdn", DAL);
    let import = at("Import-CsRgsConfiguration", "Destination", &format!("service:ApplicationServer:{SEA}"));
    assert!(export < failover && failover < import, "export ({export}), failover ({failover}), import ({import})");
}

#[test]
fn demo_rejects_faults_it_cannot_apply() {
    for (fault, says) in [("0s:down:site/Nowhere", "site/Nowhere"), ("bogus", "TIME:ACTION:TARGET")] {
        let run = lyncdr(&["demo", "--fault", fault, "--format", "json"]);
        run.expect_code(2);
        assert!(run.stdout.trim().is_empty(), "no report for an invalid fault: {}", run.describe());
        assert!(run.stderr.contains(&format!("--fault {fault}")) && run.stderr.contains(says), "{}", run.describe());
    }
}

#[test]
fn demo_timeline_to_a_bad_path_fails_naming_the_flag_before_anything_runs() {
    let dir = tempdir();
    let missing = dir.path().join("no-such-directory").join("timeline.svg");
    let missing = missing.to_str().expect("utf-8 path");
    let is_dir = dir.path().to_str().expect("utf-8 path");
    for (path, says) in [(missing, "there is no directory"), (is_dir, "is a directory")] {
        // Checked before the scenario is even read: its error is not the one reported.
        let run = lyncdr(&["demo", "--scenario", "no-such-scenario.yaml", "--timeline", path, "--format", "json"]);
        expect_rejected(&run, &[&format!("--timeline {path}"), says]);
        assert!(!run.stderr.contains("no-such-scenario"), "{}", run.describe());
    }
    assert!(!Path::new(missing).exists());
}

// ---------------------------------------------------------------------------------------------
// 3. plan

#[test]
fn plan_json_of_the_healthy_example_matches_the_contract() {
    let (_, p) = plan_json(SCENARIO, DESIRED);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    // At home and healthy: nothing moves; only routine Response Group exports (rule 25).
    for s in &p.steps {
        assert_eq!(s.cmdlet, "Export-CsRgsConfiguration", "unexpected change on a healthy deployment: {}", s.id);
        assert!(!s.data_loss);
    }
}

#[test]
fn plan_json_planned_failover_moves_cms_and_next_hop_first_without_disaster_mode() {
    let (v, p) = plan_json(SCENARIO, DESIRED_FAILOVER);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    check_disaster_mode(&p, &[]);
    assert!(p.steps.iter().all(|s| !s.data_loss), "a planned failover loses nothing:\n{}", step_ids(&p));
    let fo = format!("pool-failover/{DAL}");
    let cms = format!("cms-failover/{SEA}");
    depends(&p, &fo, &cms);
    depends(&p, &fo, &format!("wait-cms-replication/{SEA}"));
    depends(&p, &fo, &format!("edge-next-hop/{EDGE_DAL}"));
    depends(&p, &cms, &format!("cms-export-configuration/{SEA}"));
    let step = |id: &str| &v["steps"][position(&p, id)];
    assert_eq!(step(&fo)["args"], json!({"PoolFqdn": DAL}), "planned failover: no -DisasterMode");
    assert_eq!(step(&fo)["runOn"], SEA);
    assert_eq!(step(&cms)["args"], json!({}), "rule 9: the Normal parameter set, without -Force");
    assert_eq!(step(&cms)["runOn"], SEA, "rule 10");
}

#[test]
fn plan_json_disaster_failover_uses_disaster_mode_and_the_cms_recovery_set() {
    let (v, p) = plan_json(SCENARIO_DALLAS_DOWN, DESIRED_FAILOVER);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    check_disaster_mode(&p, &[DAL]);
    let fo = format!("pool-failover/{DAL}");
    let cms = format!("cms-failover/{SEA}");
    depends(&p, &fo, &cms);
    depends(&p, &fo, &format!("wait-cms-replication/{SEA}"));
    let step = |id: &str| &v["steps"][position(&p, id)];
    assert_eq!(step(&fo)["args"], json!({"PoolFqdn": DAL, "DisasterMode": true}));
    assert_eq!(step(&fo)["dataLoss"], true);
    assert_eq!(
        step(&cms)["args"],
        json!({
            "BackupSqlServerFqdn": "sql01.sea.contoso.com",
            "BackupSqlInstanceName": "rtc",
            "BackupMirrorSqlServerFqdn": "sql02.sea.contoso.com",
            "BackupMirrorSqlInstanceName": "rtc",
            "Force": true
        }),
        "the CMS is unreachable: disaster-recovery set, naming Seattle's mirrored Back End (section 4.4)"
    );
    assert_eq!(step(&cms)["runOn"], SEA);
    assert_eq!(step(&cms)["dataLoss"], true);
    // Federation leaves the lost Edge pool once the users are failed over: the failover does
    // not wait for it (issue 10, finding 8), and Seattle confirms the Dallas Edge pool is down,
    // so its next hop is not repointed (rule 11 concerns an Edge pool that still runs).
    depends(&p, &format!("sip-federation-route/{EDGE_SEA}"), &fo);
    depends(&p, &format!("xmpp-federation-route/{EDGE_SEA}"), &fo);
    assert!(p.steps.iter().all(|s| s.cmdlet != "Set-CsEdgeServer"), "{}", step_ids(&p));
}

#[test]
fn plan_json_failback_moves_federation_home_first_and_content_after() {
    let (_, p) = plan_json(SCENARIO_DALLAS_FAILED_OVER, DESIRED);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    check_disaster_mode(&p, &[]);
    let fb = format!("pool-failback/{DAL}");
    let step = &p.steps[position(&p, &fb)];
    assert_eq!(step.cmdlet, "Invoke-CsPoolFailBack");
    assert_eq!(serde_json::to_value(&step.args).expect("args"), json!({"PoolFqdn": DAL}), "rule 2, and no -DisasterMode: Seattle is up");
    depends(&p, &fb, &format!("sip-federation-route/{EDGE_DAL}"));
    depends(&p, &fb, &format!("xmpp-federation-route/{EDGE_DAL}"));
    depends(&p, &format!("content-sync/{SEA}"), &fb);
    depends(&p, &format!("cms-failover/{DAL}"), &fb);
}

#[test]
fn plan_hash_is_stable_across_runs_and_differs_between_plans() {
    let a = lyncdr(&["plan", "--scenario", SCENARIO_DALLAS_DOWN, "--desired", DESIRED_FAILOVER, "--format", "json"]);
    let b = lyncdr(&["plan", "--scenario", SCENARIO_DALLAS_DOWN, "--desired", DESIRED_FAILOVER, "--format", "json"]);
    a.expect_code(0);
    b.expect_code(0);
    assert_eq!(a.stdout, b.stdout, "the same input gives the same plan, byte for byte");
    let (healthy, _) = plan_json(SCENARIO, DESIRED);
    assert_ne!(a.json()["hash"], healthy["hash"], "different plans have different hashes");
}

#[test]
fn plan_dot_has_one_node_per_step_and_one_edge_per_dependency() {
    for (scenario, desired) in [(SCENARIO_DALLAS_DOWN, DESIRED_FAILOVER), (SCENARIO_DALLAS_DOWN, DESIRED)] {
        let (_, p) = plan_json(scenario, desired);
        let run = lyncdr(&["plan", "--scenario", scenario, "--desired", desired, "--format", "dot"]);
        run.expect_code(0);
        let dot = &run.stdout;
        assert!(dot.starts_with("digraph plan {\n") && dot.trim_end().ends_with('}'), "not a digraph: {}", run.describe());
        assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "unbalanced braces: {dot}");
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for line in dot.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix('"') {
                assert_eq!(line.replace("\\\"", "").matches('"').count() % 2, 0, "unbalanced quotes: {line}");
                let (name, tail) = rest.split_once('"').expect("closing quote");
                if let Some(target) = tail.strip_prefix(" -> \"") {
                    let target = target.strip_suffix("\";").unwrap_or_else(|| panic!("edge line does not end with \";: {line}"));
                    edges.push((name.to_string(), target.to_string()));
                } else {
                    assert!(tail.starts_with(" [") && tail.ends_with("];"), "node line: {line}");
                    nodes.push(name.to_string());
                }
            }
        }
        let (blocker_nodes, step_nodes): (Vec<_>, Vec<_>) = nodes.into_iter().partition(|n| n.starts_with("blocker"));
        let expected_nodes: Vec<_> = p.steps.iter().map(|s| s.id.clone()).collect();
        assert_eq!(step_nodes, expected_nodes, "one node per step id, in plan order");
        assert_eq!(blocker_nodes.len(), p.blockers.len(), "one node per blocker");
        let mut expected_edges: Vec<_> = p.steps.iter().flat_map(|s| s.after.iter().map(|a| (a.clone(), s.id.clone()))).collect();
        let mut edges_sorted = edges.clone();
        expected_edges.sort();
        edges_sorted.sort();
        assert_eq!(edges_sorted, expected_edges, "one edge per dependency, from the prerequisite to the step");
        assert!(dot.contains(&format!("lyncdr plan {}", p.hash)), "the graph is labelled with the plan hash");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. invalid inputs

/// A rejected input: exit code 2, nothing on standard output, and every expected fragment in
/// the message on standard error.
fn expect_rejected(run: &Output, fragments: &[&str]) {
    run.expect_code(2);
    assert!(run.stdout.trim().is_empty(), "nothing is printed as a plan or report: {}", run.describe());
    for f in fragments {
        assert!(run.stderr.contains(f), "the error should mention {f:?}: {}", run.describe());
    }
    assert!(run.stderr.starts_with("error: "), "{}", run.describe());
}

#[test]
fn invalid_scenarios_are_rejected_naming_the_field() {
    let dir = tempdir();
    let d = dir.path();
    let cases = [
        (
            variant(d, SCENARIO, "space.yaml", "- fqdn: pool01.sea.contoso.com", "- fqdn: pool01 sea.contoso.com"),
            vec!["scenario field sites[1].frontEndPools[0].fqdn", "'pool01 sea.contoso.com' is not a valid FQDN"],
        ),
        (
            variant(d, SCENARIO, "two-pairs.yaml", "pairs:\n", "pairs:\n  - [pool01.sea.contoso.com, pool01.dal.contoso.com]\n"),
            vec!["scenario field pairs[1][0]", "already paired"],
        ),
        (
            variant(
                d,
                SCENARIO,
                "unknown-pool.yaml",
                "  - [pool01.dal.contoso.com, pool01.sea.contoso.com]",
                "  - [pool01.dal.contoso.com, pool07.sea.contoso.com]",
            ),
            vec!["scenario field pairs[0][1]", "pool07.sea.contoso.com"],
        ),
        (
            // An unknown field is named with its line (serde reports no path for it).
            variant(d, SCENARIO, "unknown-field.yaml", "        users: 15000\n", "        users: 15000\n        colour: blue\n"),
            vec!["unknown field `colour`", "line 22"],
        ),
    ];
    for (path, fragments) in &cases {
        for format in ["json", "text", "dot"] {
            expect_rejected(&lyncdr(&["plan", "--scenario", path, "--desired", DESIRED, "--format", format]), fragments);
        }
        expect_rejected(&lyncdr(&["demo", "--scenario", path, "--desired", DESIRED, "--format", "json"]), fragments);
        expect_rejected(&lyncdr(&["sim", "run", "--scenario", path, "--script", "tests/fixtures/wrong-order.ps1"]), fragments);
    }
}

#[test]
fn invalid_desired_states_are_rejected_naming_the_resource_and_field() {
    let dir = tempdir();
    let d = dir.path();
    let second_pair = "---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {name: dal-other, namespace: lync}\nspec:\n  deployment: contoso\n  pools: [pool01.dal.contoso.com, pool02.sea.contoso.com]\n";
    let cases = [
        (
            variant(d, DESIRED, "typo.yaml", "  failedOver: []", "  failedover: []"),
            vec!["PoolPair/dal-sea", "spec.failedover", "unknown field", "did you mean 'failedOver'"],
        ),
        (
            variant(d, DESIRED, "not-in-pair.yaml", "  failedOver: []", "  failedOver: [pool02.dal.contoso.com]"),
            vec!["PoolPair/dal-sea", "spec.failedOver", "pool02.dal.contoso.com is not one of the pair's pools"],
        ),
        (
            variant(
                d,
                DESIRED,
                "two-pairs.yaml",
                "  automaticFailback: {enabled: true, stabilityPeriod: 10m}\n",
                &format!("  automaticFailback: {{enabled: true, stabilityPeriod: 10m}}\n{second_pair}"),
            ),
            vec!["PoolPair/dal-sea", "spec.pools[0]", "PoolPair/dal-other", "1:1"],
        ),
        (
            variant(d, DESIRED, "no-deployment.yaml", "  deployment: contoso", "  deployment: fabrikam"),
            vec!["PoolPair/dal-sea", "spec.deployment", "LyncDeployment 'fabrikam' does not exist"],
        ),
        (
            variant(
                d,
                DESIRED,
                "unknown-pool.yaml",
                "  pools: [pool01.dal.contoso.com, pool01.sea.contoso.com]",
                "  pools: [pool01.dal.contoso.com, pool09.sea.contoso.com]",
            ),
            vec!["PoolPair/dal-sea", "spec.pools[1]", "pool09.sea.contoso.com is not a Front End pool"],
        ),
        (
            variant(
                d,
                DESIRED,
                "unknown-cms-pool.yaml",
                "    activePool: pool01.dal.contoso.com",
                "    activePool: pool09.dal.contoso.com",
            ),
            vec!["LyncDeployment/contoso", "spec.centralManagementStore.activePool", "pool09.dal.contoso.com"],
        ),
        (
            variant(d, DESIRED, "deployment-typo.yaml", "    activePool: pool01.dal.contoso.com", "    activepool: pool01.dal.contoso.com"),
            vec!["LyncDeployment/contoso", "spec.centralManagementStore.activepool", "unknown field"],
        ),
    ];
    for (path, fragments) in &cases {
        for format in ["json", "text", "dot"] {
            expect_rejected(&lyncdr(&["plan", "--scenario", SCENARIO, "--desired", path, "--format", format]), fragments);
        }
        expect_rejected(&lyncdr(&["demo", "--scenario", SCENARIO, "--desired", path, "--format", "json"]), fragments);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. sim run

/// The contract of one `sim run --format json` entry: (line, ok, error).
fn check_line_result(r: &Value, at: &str) -> (String, bool, Option<String>) {
    let line = string(r, "line", at).to_string();
    let ok = boolean(r, "ok", at);
    let error = optional_string(r, "error", at);
    field(r, "output", at);
    assert_eq!(ok, error.is_none(), "{at}: a failed line has an error, an ok one none: {r}");
    (line, ok, error)
}

/// The lines of a script `sim run` reports on: commands and directives, not comments or blanks.
fn reported_lines(script: &str) -> Vec<String> {
    script.lines().map(str::trim).filter(|l| !l.is_empty() && (l.starts_with("#!") || !l.starts_with('#'))).map(String::from).collect()
}

#[test]
fn sim_run_documented_disaster_procedure_succeeds() {
    let script_path = "tests/fixtures/disaster-runbook.ps1";
    let script = std::fs::read_to_string(root().join(script_path)).expect("script");
    let run = lyncdr(&["sim", "run", "--scenario", SCENARIO, "--script", script_path, "--format", "json"]);
    run.expect_code(0);
    let v = run.json();
    let results = v.as_array().unwrap_or_else(|| panic!("a list of line results: {}", run.describe()));
    let lines: Vec<_> = results.iter().enumerate().map(|(i, r)| check_line_result(r, &format!("[{i}]"))).collect();
    assert_eq!(lines.iter().map(|l| l.0.clone()).collect::<Vec<_>>(), reported_lines(&script), "one result per line, in order");
    for (line, ok, error) in &lines {
        assert!(ok, "{line}: {error:?}");
    }
    let output = |prefix: &str| {
        results
            .iter()
            .find(|r| r["line"].as_str().is_some_and(|l| l.starts_with(prefix)))
            .map(|r| r["output"].clone())
            .unwrap_or_else(|| panic!("no line {prefix}"))
    };
    assert_eq!(output("Invoke-CsManagementServerFailover -WhatIf")["CentralManagementStorePool"], DAL, "4.3: the CMS lives in Dallas");
    let status = output("Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus");
    assert!(
        status["ActiveMasterFqdn"].as_str().is_some_and(|m| m.ends_with(".sea.contoso.com")),
        "4.4: the CMS master is in Seattle: {status}"
    );
    assert_eq!(output("Get-CsPoolBackupRelationship")["FailoverState"], "FailedOver");
}

#[test]
fn sim_run_pool_failover_before_the_cms_fails_with_the_documented_error() {
    let script_path = "tests/fixtures/wrong-order.ps1";
    let script = std::fs::read_to_string(root().join(script_path)).expect("script");
    let run = lyncdr(&["sim", "run", "--scenario", SCENARIO, "--script", script_path, "--format", "json"]);
    run.expect_code(1);
    let v = run.json();
    let results = v.as_array().unwrap_or_else(|| panic!("a list of line results: {}", run.describe()));
    let lines: Vec<_> = results.iter().enumerate().map(|(i, r)| check_line_result(r, &format!("[{i}]"))).collect();
    assert_eq!(lines.iter().map(|l| l.0.clone()).collect::<Vec<_>>(), reported_lines(&script));
    let (line, ok, error) = lines.last().expect("results");
    assert_eq!(line, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert!(!ok);
    let error = error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("Invoke-CsPoolFailOver : ")
            && error.contains("hosts the active Central Management Server")
            && error.contains("Invoke-CsManagementServerFailover"),
        "the error should say to fail the CMS over first (rule 3): {error}"
    );
    assert!(lines[..lines.len() - 1].iter().all(|l| l.1), "the directives before it are ok: {lines:?}");

    // The same script from standard input, as text.
    let text = lyncdr_with_input(&["sim", "run", "--scenario", SCENARIO, "--script", "-"], &script);
    text.expect_code(1);
    assert!(
        text.stdout.contains("ERROR  Invoke-CsPoolFailOver") && text.stdout.contains("hosts the active Central Management Server"),
        "{}",
        text.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. sim serve

/// `lyncdr sim serve` on an ephemeral port (the shared harness), killed when dropped.
fn serve(scenario: &str, speed: &str) -> SimServe {
    SimServe::start(&root().join(scenario), speed)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn sim_serve_http_api() {
    let server = serve(SCENARIO, "600");
    let url = server.url.clone();
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let get = |path: &str| {
            let req = http.get(format!("{url}{path}"));
            async move { req.send().await.expect("GET") }
        };
        let post = |path: &str, body: Value| {
            let req = http.post(format!("{url}{path}")).json(&body);
            async move { req.send().await.expect("POST") }
        };

        let health = get("/healthz").await;
        assert!(health.status().is_success());
        assert_eq!(health.text().await.expect("body"), "ok");

        let clock: Value = get("/v1/clock").await.json().await.expect("clock JSON");
        assert_eq!(clock["speed"], 600.0);
        let t0 = number(&clock, "now", "clock");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t1 = number(&get("/v1/clock").await.json::<Value>().await.expect("clock"), "now", "clock");
        assert!(t1 >= t0 + 30_000.0, "100 ms at 600x is a minute of simulated time: {t0} -> {t1}");
        let jumped: Value = post("/v1/clock", json!({"advance": "10m"})).await.json().await.expect("clock");
        assert!(number(&jumped, "now", "clock") >= t1 + 600_000.0, "advance 10m: {t1} -> {jumped}");

        // A query.
        let pools: Value =
            post("/v1/invoke", json!({"runOn": "any", "invocation": {"cmdlet": "Get-CsPool"}})).await.json().await.expect("reply");
        assert_eq!(pools["ok"], true, "{pools}");
        let fqdns: Vec<_> = array(&pools, "output", "Get-CsPool").iter().map(|p| p["Fqdn"].clone()).collect();
        // Get-CsPool lists every pool of the topology, Edge pools included.
        assert_eq!(fqdns, [json!(DAL), json!(SEA), json!(EDGE_DAL), json!(EDGE_SEA)]);
        let (started, finished, now) =
            (number(&pools, "started", "reply"), number(&pools, "finished", "reply"), number(&pools, "now", "reply"));
        assert!(started <= finished && finished <= now, "{pools}");

        // A failing change: failback of a pool that is not failed over (rule 2).
        let failback: Value = post(
            "/v1/invoke",
            json!({"runOn": {"pool": SEA}, "invocation": {"cmdlet": "Invoke-CsPoolFailBack", "args": {"PoolFqdn": DAL}}}),
        )
        .await
        .json()
        .await
        .expect("reply");
        assert_eq!(failback["ok"], false, "{failback}");
        assert!(failback.get("output").is_none(), "{failback}");
        let error = &failback["error"];
        assert_eq!(error["kind"], "cmdlet");
        assert_eq!(error["cmdlet"], "Invoke-CsPoolFailBack");
        assert!(error["message"].as_str().is_some_and(|m| m.contains("is not failed over")), "{failback}");

        // Faults: a bad one is refused, Dallas goes down.
        let bad = post("/v1/faults", json!({"fault": "down:site/Nowhere"})).await;
        assert_eq!(bad.status().as_u16(), 400);
        assert!(bad.json::<Value>().await.expect("error JSON")["error"].as_str().is_some_and(|e| e.contains("site/Nowhere")));
        let down = post("/v1/faults", json!({"fault": "down:site/Dallas"})).await;
        assert!(down.status().is_success());
        assert_eq!(down.json::<Value>().await.expect("fault JSON")["fault"], "down:site/Dallas");
        let state: Value = get("/v1/state").await.json().await.expect("state");
        assert_eq!(state["pools"][DAL]["up"], false, "{state}");
        assert_eq!(state["pools"][SEA]["up"], true, "{state}");
        assert_eq!(state["edges"][EDGE_DAL]["up"], false, "{state}");
        assert_eq!(state["cms"]["available"], false, "the CMS lives in Dallas: {state}");
        assert_eq!(state["allUsersServed"], false, "{state}");

        // The log lists both calls, with their outcomes.
        let log: Value = get("/v1/log").await.json().await.expect("log");
        let calls: Vec<_> = log
            .as_array()
            .expect("log is a list")
            .iter()
            .map(|r| (r["cmdlet"].as_str().unwrap_or_default().to_string(), r["outcome"].as_str().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(calls, [("Get-CsPool".to_string(), "ok".to_string()), ("Invoke-CsPoolFailBack".to_string(), "error".to_string())]);
        let stats = get("/v1/stats").await;
        assert!(stats.status().is_success() && stats.json::<Value>().await.expect("stats").is_object());
    });
    drop(server);
}

#[test]
fn sim_serve_rust_client_round_trip() {
    let server = serve(SCENARIO, "600");
    let url = server.url.clone();
    runtime().block_on(async move {
        let lync = HttpSim::connect(&url).await.expect("connect");
        assert!(lync.describe().contains(&url), "{}", lync.describe());
        let sea = RunOn::Pool(Fqdn::parse(SEA).expect("fqdn"));
        let before = lync.now();
        let out = lync.invoke(&sea, &Invocation::new("Get-CsPoolBackupRelationship").arg("PoolFqdn", DAL)).await.expect("query");
        assert_eq!(out["BackupPoolFqdn"], SEA, "{out}");
        assert_eq!(out["FailoverState"], "Normal", "{out}");
        assert!(lync.now() >= before, "the client's clock follows the server's");
        let err = lync.invoke(&sea, &Invocation::new("Invoke-CsPoolFailBack").arg("PoolFqdn", DAL)).await.expect_err("not failed over");
        match &err {
            LyncError::Cmdlet { cmdlet, message, rule } => {
                assert_eq!(cmdlet, "Invoke-CsPoolFailBack");
                assert!(message.contains("is not failed over"), "{message}");
                assert_eq!(*rule, Some(2), "safe-order rule 2");
            }
            other => panic!("expected a cmdlet error, got {other:?}"),
        }
        assert!(!err.nothing_ran(), "a cmdlet error means the call reached the server: {err:?}");

        // Nothing listens on port 1 (outside the ephemeral range the servers of parallel tests
        // get): the client says nothing ran.
        match HttpSim::connect("http://127.0.0.1:1").await {
            Err(e @ LyncError::Unreachable { .. }) => assert!(e.nothing_ran()),
            Err(other) => panic!("expected Unreachable, got {other:?}"),
            Ok(_) => panic!("connected to a closed port"),
        }
    });
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// 7. golden runbooks

fn bless() -> bool {
    std::env::var("LYNCDR_BLESS").is_ok_and(|v| v == "1")
}

/// The plan as a PowerShell runbook: per step a header `# <n>. <id> (on <runOn>)`, its
/// prerequisites and consent as comments, then the command.
fn runbook(title: &str, scenario: &str, desired: &str, p: &Plan) -> String {
    let mut out = format!("# {title}\n# lyncdr plan --scenario {scenario} --desired {desired}\n");
    out.push_str(&format!("# Generated by tests/cli.rs; rewrite with {BLESS_HINT}\n"));
    if p.steps.is_empty() {
        out.push_str("\n# Nothing to do.\n");
    }
    for (i, s) in p.steps.iter().enumerate() {
        out.push_str(&format!("\n# {}. {} (on {})\n", i + 1, s.id, s.run_on));
        if !s.after.is_empty() {
            out.push_str(&format!("#    after: {}\n", s.after.join(", ")));
        }
        if s.kind == StepKind::Wait {
            out.push_str("#    wait: repeat until the condition holds\n");
        }
        if s.data_loss {
            out.push_str("#    MAY LOSE DATA (consented)\n");
        }
        out.push_str(&s.command());
        out.push('\n');
    }
    if !p.blockers.is_empty() || !p.notices.is_empty() {
        out.push('\n');
    }
    for b in &p.blockers {
        out.push_str(&format!("# BLOCKED {}: {}\n", b.resource, b.reason));
    }
    for n in &p.notices {
        out.push_str(&format!("# note: {n}\n"));
    }
    out
}

/// A line diff of `old` and `new` (longest common subsequence), changed lines with two lines
/// of context.
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| ops[k.saturating_sub(2)..(k + 3).min(ops.len())].iter().any(|(op, _)| *op != ' ');
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("@@ ... @@\n");
                skipped = false;
            }
            out.push_str(&format!("{op} {line}\n"));
        } else {
            skipped = true;
        }
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        out.push_str("(the files differ in the final newline)\n");
    }
    out
}

/// Compares `actual` with `tests/golden/<file>`, or rewrites it when blessing.
fn golden(file: &str, actual: &str) -> Result<(), String> {
    let path: PathBuf = root().join("tests/golden").join(file);
    if bless() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create tests/golden");
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("blessed {}", path.display());
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}\nCreate it with: {BLESS_HINT}", path.display()))?
        .replace("\r\n", "\n");
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{} differs from the generated text (- golden, + generated):\n{}\nIf the change is intended, rewrite the golden files with: {BLESS_HINT}",
            path.display(),
            diff(&expected, actual)
        ))
    }
}

/// The scripts the PowerShell driver sends for a plan's steps, in plan order (state-changing
/// steps under a request named after the step), and the clock script.
fn driver_scripts(scenario: &str, p: &Plan) -> String {
    use lyncdr::driver::script;
    let topo = lyncdr::scenario::Scenario::load(&root().join(scenario)).expect("scenario").topology;
    // Where the executor runs a step: on the pool (any of its servers) or on the server.
    let run_on =
        |f: &Fqdn| if topo.pools.contains_key(f) || topo.edges.contains_key(f) { RunOn::Pool(f.clone()) } else { RunOn::Server(f.clone()) };
    let mut out = format!("### clock\n{}", script::clock());
    for st in &p.steps {
        let req = (st.kind != StepKind::Wait)
            .then(|| lyncdr::model::Request { id: format!("golden/{}", st.id), not_after: lyncdr::model::Stamp(120_000) });
        out.push_str(&format!("\n### {}\n{}", st.id, script::invoke(&run_on(&st.run_on), &st.invocation(), req.as_ref())));
    }
    out
}

/// The run-as wrapper (the double hop through a scheduled task) around a failover's script, and
/// the task's runner, as an administrator installs it.
#[test]
fn golden_run_as_scripts() {
    use lyncdr::driver::script::{self, RunAsTask};
    let inv = lyncdr::ps::Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "pool01.dal.contoso.com").switch("DisasterMode");
    let req = lyncdr::model::Request { id: "golden/pool-failover/pool01.dal.contoso.com".into(), not_after: lyncdr::model::Stamp(120_000) };
    let pool = RunOn::Pool(Fqdn::parse("pool01.sea.contoso.com").expect("fqdn"));
    let task = RunAsTask::default();
    let text =
        format!("### wrapper\n{}\n### runner\n{}", script::run_as(&script::invoke(&pool, &inv, Some(&req)), &task), script::runner(&task));
    if let Err(e) = golden("driver/run-as.ps1", &text) {
        panic!("{e}");
    }
}

/// The plan of a situation of the two-site scenario against its golden runbook and JSON; then
/// the runbook, step by step in plan order, is rehearsed on the simulator (strict mode, which
/// refuses every safe-order violation it models) and every line must succeed.
fn golden_situation(name: &str, title: &str, scenario: &str, desired: &str, unreachable: &[&str]) {
    let (v, p) = plan_json(scenario, desired);
    assert!(!p.steps.is_empty(), "{name}: the situation needs steps");
    assert!(p.blockers.is_empty(), "{name}: {:?}", p.blockers);
    check_disaster_mode(&p, unreachable);
    let text = runbook(title, scenario, desired, &p);
    let json = format!("{}\n", serde_json::to_string_pretty(&v).expect("pretty JSON"));
    let driver = driver_scripts(scenario, &p);
    let mismatches: Vec<String> = [
        golden(&format!("{name}.ps1"), &text),
        golden(&format!("{name}.plan.json"), &json),
        golden(&format!("driver/{name}.ps1"), &driver),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));

    let mut rehearsal = String::new();
    for s in &p.steps {
        rehearsal.push_str(&format!("#! on {}\n", s.run_on));
        if s.kind == StepKind::Wait {
            rehearsal.push_str("#! wait 5m\n");
        }
        rehearsal.push_str(&s.command());
        rehearsal.push('\n');
    }
    let run = lyncdr_with_input(&["sim", "run", "--scenario", scenario, "--script", "-", "--format", "json"], &rehearsal);
    let results = run.json();
    for (i, r) in results.as_array().expect("line results").iter().enumerate() {
        let (line, ok, error) = check_line_result(r, &format!("[{i}]"));
        assert!(ok, "{name}: rehearsing the runbook, `{line}` failed: {error:?}\n{rehearsal}");
    }
    run.expect_code(0);
}

#[test]
fn golden_planned_failover_of_dallas() {
    golden_situation(
        "planned-failover-dallas",
        "Planned failover of Dallas: pool01.dal is healthy; its users move to pool01.sea.",
        SCENARIO,
        DESIRED_FAILOVER,
        &[],
    );
}

#[test]
fn golden_disaster_failover_of_dallas() {
    golden_situation(
        "disaster-failover-dallas",
        "Disaster failover of Dallas: the Dallas site is down; consent to data loss is given.",
        SCENARIO_DALLAS_DOWN,
        DESIRED_FAILOVER,
        &[DAL],
    );
}

#[test]
fn golden_failback_of_dallas() {
    golden_situation(
        "failback-dallas",
        "Failback of Dallas: the Dallas site is back after a disaster failover; everything returns home.",
        SCENARIO_DALLAS_FAILED_OVER,
        DESIRED,
        &[],
    );
}

/// The elements of an XML document, checked well-formed on the way: one root, every tag closed
/// in order, only the predefined entities, no character XML forbids. Each element's name and
/// attributes (unescaped), in document order.
fn xml_elements(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    use quick_xml::events::Event as Xml;
    if let Some(c) = text.chars().find(|c| (*c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) {
        panic!("the document holds the character {c:?}, which XML does not allow");
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut open, mut out, mut roots) = (Vec::<String>::new(), Vec::new(), 0);
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("not well-formed at byte {}: {e}", reader.buffer_position()));
        match event {
            Xml::Start(ref e) | Xml::Empty(ref e) => {
                let name = e.name().as_ref().to_string();
                if open.is_empty() {
                    roots += 1;
                }
                let mut attrs = BTreeMap::new();
                for a in e.attributes() {
                    let a = a.unwrap_or_else(|err| panic!("<{name}>: bad attribute: {err}"));
                    let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap_or_else(|err| panic!("<{name}>: {err}"));
                    attrs.insert(a.key.as_ref().to_string(), value.into_owned());
                }
                if matches!(event, Xml::Start(_)) {
                    open.push(name.clone());
                }
                out.push((name, attrs));
            }
            Xml::End(e) => {
                let name = e.name().as_ref().to_string();
                assert_eq!(open.pop().as_deref(), Some(name.as_str()), "</{name}> closes the wrong element");
            }
            Xml::GeneralRef(r) => {
                assert!(r.is_char_ref() || ["lt", "gt", "amp", "apos", "quot"].contains(&r.as_ref()), "unknown entity");
            }
            Xml::DocType(_) => panic!("no DTD expected"),
            Xml::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements: {open:?}");
    assert_eq!(roots, 1, "one root element");
    out
}

/// `lyncdr demo --timeline` of the built-in story: a well-formed SVG with a bar per step the
/// run finished, a lane per pool, Edge pool and the CMS, the critical paths of the recovery
/// and the failback marked, and the faults and RTO as lines; the same bytes as
/// `tests/golden/demo-timeline.svg` (the demo runs in simulated time, so it is deterministic).
#[test]
fn golden_demo_timeline_svg() {
    let dir = tempdir();
    let path = dir.path().join("timeline.svg");
    let run = lyncdr(&["demo", "--format", "json", "--timeline", path.to_str().expect("utf-8 path")]);
    run.expect_code(0);
    let report = run.json();
    let svg = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), run.describe()));
    let elements = xml_elements(&svg);
    assert_eq!(elements.first().map(|(n, _)| n.as_str()), Some("svg"));
    let groups = |class: &str| -> Vec<&BTreeMap<String, String>> {
        elements
            .iter()
            .filter(|(n, a)| n == "g" && a.get("class").is_some_and(|c| c.split(' ').any(|w| w == class)))
            .map(|(_, a)| a)
            .collect()
    };
    let finished = array(&report, "timeline", "demo").iter().filter(|e| e["event"] == "stepFinished").count();
    assert_eq!(groups("step").len(), finished, "one bar per step the run finished");
    for lane in [DAL, SEA, EDGE_DAL, EDGE_SEA, "CMS"] {
        assert!(svg.contains(&format!(">{lane}</text>")), "no lane {lane}");
    }
    let critical: Vec<&str> = groups("critical").iter().filter_map(|a| a.get("data-step").map(String::as_str)).collect();
    for step in [format!("cms-failover/{SEA}"), format!("pool-failover/{DAL}"), format!("pool-failback/{DAL}")] {
        assert!(critical.contains(&step.as_str()), "{step} should be on a critical path: {critical:?}");
    }
    assert!(!critical.iter().any(|s| s.starts_with("rgs-routine-export/")), "nothing before the fault is critical: {critical:?}");
    assert_eq!((groups("fault").len(), groups("served").len()), (2, 1), "the loss of Dallas, its return, and the RTO");
    if let Err(e) = golden("demo-timeline.svg", &svg) {
        panic!("{e}");
    }
}

#[test]
fn golden_diff_shows_changed_lines_with_context() {
    let d = diff("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nD\ne\nf\ng\nh\n");
    assert_eq!(d, "@@ ... @@\n  b\n  c\n- d\n+ D\n  e\n  f\n");
}
