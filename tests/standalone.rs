//! The standalone front end (`lyncdr run --manifests`) and `lyncdr sim serve` as processes,
//! against the findings of issue 9: a stall is shown as it is and cleared by `lyncdr resolve` or
//! the `lyncdr.io/resolve` annotation; a bad `--status-file` is found before anything runs; a
//! corrupt journal stalls instead of being dropped; one writer per deployment; a password in the
//! simulator URL appears nowhere; `sim serve` refuses absurd clock jumps and never panics; a
//! printing command whose reader goes away ends quietly. And transport WinRM, with credentials
//! from `--secrets-dir`, through the PowerShell driver to the simulator's WS-Man endpoint.

#[path = "support/processes.rs"]
mod processes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use processes::{SimServe, root, run};
use serde_json::Value;

const DESIRED: &str = include_str!("../examples/two-site/desired.yaml");
const FAILOVER: &str = "pool-failover/pool01.dal.contoso.com";
/// The state files' name stem of the example (namespace `lync`, deployment `contoso`).
const KEY: &str = "lync_contoso";

fn scenario() -> PathBuf {
    root().join("examples/two-site/scenario.yaml")
}

/// The example's desired state, asking for a planned failover of Dallas; `annotations` are
/// added to the LyncDeployment.
fn planned_failover(dir: &Path, annotations: &[(&str, &str)]) -> PathBuf {
    // The CMS moves with Dallas's users and stays in Seattle (rule 16).
    let mut text = DESIRED
        .replace("failedOver: []", "failedOver: [pool01.dal.contoso.com]")
        .replace("activePool: pool01.dal.contoso.com", "activePool: pool01.sea.contoso.com");
    if !annotations.is_empty() {
        let lines: String = annotations.iter().map(|(k, v)| format!("    {k}: '{v}'\n")).collect();
        text = text.replacen(
            "  name: contoso\n  namespace: lync\n",
            &format!("  name: contoso\n  namespace: lync\n  annotations:\n{lines}"),
            1,
        );
    }
    let p = dir.join("desired.yaml");
    std::fs::write(&p, text).expect("write manifests");
    p
}

fn run_once(manifests: &Path, state: &Path, sim: &str) -> processes::Output {
    let out = run(
        &["run", "--manifests", &manifests.to_string_lossy(), "--state-dir", &state.to_string_lossy(), "--once", "--simulator", sim],
        Duration::from_secs(120),
    );
    out.assert_no_panic();
    out
}

fn status(state: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(state.join("status.json")).expect("status.json")).expect("status JSON")
}

fn condition<'a>(conds: &'a Value, t: &str) -> &'a Value {
    conds.as_array().and_then(|a| a.iter().find(|c| c["type"] == t)).unwrap_or_else(|| panic!("no {t} condition in {conds}"))
}

/// A journal whose last entry is the planned failover of Dallas, started by an earlier version
/// (no request, so only observation can settle it) and never finished: its effect is not
/// observed, so lyncdr must stall.
fn journal_with_an_unsettled_failover(state: &Path, manifests: &Path) {
    let out = run(
        &["plan", "--scenario", &scenario().to_string_lossy(), "--desired", &manifests.to_string_lossy(), "--format", "json"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    let step = plan["steps"].as_array().and_then(|s| s.iter().find(|s| s["id"] == FAILOVER)).expect("the failover step").clone();
    let journal = serde_json::json!({
        "entries": [{ "step": step, "planHash": plan["hash"], "startedAt": 0, "by": "lyncdr 0.0 (an older process)", "outcome": { "state": "pending" } }],
        "memory": {}
    });
    std::fs::create_dir_all(state).expect("state dir");
    std::fs::write(state.join(format!("{KEY}.journal.json")), serde_json::to_vec_pretty(&journal).expect("json")).expect("journal");
}

/// The stall as a person sees it: the deployment, the pair and the step all say so, with what
/// is observed now, and nothing ran.
fn assert_shows_the_stall(state: &Path, sim: &SimServe) {
    let st = status(state);
    let d = &st["deployments"][KEY];
    let stalled = condition(&d["status"]["conditions"], "Stalled");
    assert_eq!(stalled["status"], "True", "{st}");
    let msg = stalled["message"].as_str().unwrap_or_default();
    assert!(msg.contains(FAILOVER) && msg.contains("lyncdr resolve") && msg.contains("lyncdr.io/resolve"), "{msg}");
    assert_eq!(condition(&d["status"]["conditions"], "Ready")["status"], "False");
    let pair = &d["poolPairs"]["dal-sea"]["conditions"];
    assert_eq!(condition(pair, "Ready")["status"], "False", "the PoolPair shows the stall: {pair}");
    assert_eq!(condition(pair, "Stalled")["status"], "True", "{pair}");
    assert!(d["status"]["observed"]["pools"].as_array().is_some_and(|p| !p.is_empty()), "a current observation: {st}");
    assert!(
        d["status"]["journal"].as_array().is_some_and(|j| j.iter().any(|e| e["step"] == FAILOVER && e["outcome"] == "Pending")),
        "{st}"
    );
    assert!(sim.changes().is_empty(), "nothing ran while stalled: {:?}", sim.changes());
    // `lyncdr status` tells the same.
    let out = run(&["status", "--state", &state.to_string_lossy()], Duration::from_secs(30));
    assert!(out.stdout.contains("Stalled: True") && out.stdout.contains(FAILOVER), "{}", out.describe());
}

/// After the stall is resolved, the next round does the planned failover, once.
fn assert_goes_on(manifests: &Path, state: &Path, sim: &SimServe) {
    let out = run_once(manifests, state, &sim.url);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let st = status(state);
    assert_eq!(condition(&st["deployments"][KEY]["status"]["conditions"], "Ready")["status"], "True", "{st}");
    let failovers = sim.changes().into_iter().filter(|(line, _)| line.starts_with("Invoke-CsPoolFailOver")).count();
    assert_eq!(failovers, 1);
    assert_eq!(sim.state()["pools"]["pool01.dal.contoso.com"]["servedBy"], "pool01.sea.contoso.com");
}

#[test]
fn a_stall_is_shown_as_it_is_and_lyncdr_resolve_clears_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let manifests = planned_failover(dir.path(), &[]);
    journal_with_an_unsettled_failover(&state, &manifests);
    let sim = SimServe::start(&scenario(), "600");

    let out = run_once(&manifests, &state, &sim.url);
    assert_ne!(out.code, Some(0), "a stalled round is not a success: {}", out.describe());
    assert_shows_the_stall(&state, &sim);

    // A person checked the deployment: the failover never ran.
    let out = run(
        &["resolve", "contoso", "pool-failover/nothing-pending", "--state", &state.to_string_lossy(), "-n", "lync"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(2), "an id that is not pending is refused: {}", out.describe());
    assert!(out.stderr.contains(FAILOVER), "the message lists what is pending: {}", out.describe());
    let out = run(&["resolve", "contoso", FAILOVER, "--state", &state.to_string_lossy(), "-n", "lync"], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_goes_on(&manifests, &state, &sim);
}

#[test]
fn the_resolve_annotation_works_in_the_standalone_front_end_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let manifests = planned_failover(dir.path(), &[]);
    journal_with_an_unsettled_failover(&state, &manifests);
    let sim = SimServe::start(&scenario(), "600");
    run_once(&manifests, &state, &sim.url);
    assert_shows_the_stall(&state, &sim);

    let manifests = planned_failover(dir.path(), &[("lyncdr.io/resolve", FAILOVER)]);
    assert_goes_on(&manifests, &state, &sim);
    let st = status(&state);
    assert_eq!(st["deployments"][KEY]["status"]["lastHandledResolve"], FAILOVER, "{st}");
    let journal: Value = serde_json::from_slice(&std::fs::read(state.join(format!("{KEY}.journal.json"))).expect("journal")).expect("json");
    let first = &journal["entries"][0];
    assert_eq!(first["outcome"]["state"], "failed");
    assert!(first["outcome"]["message"].as_str().is_some_and(|m| m.contains("resolved by a person")), "{first}");
}

#[test]
fn a_bad_status_file_directory_is_found_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = planned_failover(dir.path(), &[]);
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, "a file").expect("file");
    let sim = SimServe::start(&scenario(), "600");
    let out = run(
        &[
            "run",
            "--manifests",
            &manifests.to_string_lossy(),
            "--state-dir",
            &dir.path().join("state").to_string_lossy(),
            "--status-file",
            &blocker.join("status.json").to_string_lossy(),
            "--once",
            "--simulator",
            &sim.url,
        ],
        Duration::from_secs(60),
    );
    out.assert_no_panic();
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("--status-file") && !out.stderr.contains("state directory"), "{}", out.describe());
    assert!(sim.log().is_empty(), "nothing was asked of the deployment: {:?}", sim.log());
}

#[test]
fn a_corrupt_journal_stalls_naming_the_file_and_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state");
    let journal = state.join(format!("{KEY}.journal.json"));
    std::fs::write(&journal, "{\"entries\": [ this is not JSON").expect("write");
    let manifests = planned_failover(dir.path(), &[]);
    let sim = SimServe::start(&scenario(), "600");
    let out = run_once(&manifests, &state, &sim.url);
    assert_ne!(out.code, Some(0), "{}", out.describe());
    let st = status(&state);
    let stalled = condition(&st["deployments"][KEY]["status"]["conditions"], "Stalled");
    assert_eq!(stalled["status"], "True", "{st}");
    assert!(
        stalled["message"].as_str().is_some_and(|m| m.contains(&*journal.to_string_lossy()) && m.contains("not a lyncdr journal")),
        "{stalled}"
    );
    assert!(sim.log().is_empty(), "{:?}", sim.log());
    assert_eq!(std::fs::read_to_string(&journal).expect("journal"), "{\"entries\": [ this is not JSON", "left as it was");
}

#[test]
fn a_second_process_on_the_same_deployment_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let manifests = DESIRED;
    let m = dir.path().join("desired.yaml");
    std::fs::write(&m, manifests).expect("write");
    let sim = SimServe::start(&scenario(), "60");
    let mut first = std::process::Command::new(processes::BIN)
        .args(["run", "--manifests", &m.to_string_lossy(), "--state-dir", &state.to_string_lossy(), "--simulator", &sim.url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("first writer");
    // Wait until the first process holds the deployment.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !state.join("status.json").exists() {
        assert!(std::time::Instant::now() < deadline, "the first process never finished a round");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run(
        &["run", "--manifests", &m.to_string_lossy(), "--state-dir", &state.to_string_lossy(), "--once", "--simulator", &sim.url],
        Duration::from_secs(60),
    );
    let _ = first.kill();
    let _ = first.wait();
    out.assert_no_panic();
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains(&format!("{KEY}.lock")) && out.stderr.contains("one writer per deployment"), "{}", out.describe());
}

#[test]
fn a_password_in_the_simulator_url_appears_nowhere() {
    const SECRET: &str = "S3cr3t-Pa55w0rd";
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let manifests = planned_failover(dir.path(), &[]);
    // Nothing listens on a port just released: the errors of an unreachable simulator first.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut seen = String::new();
    let out = run_once(&manifests, &state, &format!("http://admin:{SECRET}@127.0.0.1:{free}"));
    assert_ne!(out.code, Some(0));
    assert!(out.stdout.contains("127.0.0.1"), "the message still names the server: {}", out.describe());
    seen += &out.stdout;
    seen += &out.stderr;
    seen += &std::fs::read_to_string(state.join("status.json")).expect("status");
    // Then the whole planned failover through it.
    let sim = SimServe::start(&scenario(), "600");
    let url = sim.url.replacen("http://", &format!("http://admin:{SECRET}@"), 1);
    let out = run_once(&manifests, &state, &url);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    seen += &out.stdout;
    seen += &out.stderr;
    for entry in std::fs::read_dir(&state).expect("state") {
        seen += &String::from_utf8_lossy(&std::fs::read(entry.expect("entry").path()).unwrap_or_default());
    }
    assert!(!seen.contains(SECRET), "the password leaked:\n{seen}");
}

/// `lyncdr run --manifests` over WinRM: the planned failover through the PowerShell driver to
/// the simulator's WS-Man endpoint (NTLM, sealed), the account and password read from the files
/// of a mounted Secret. Without `--secrets-dir` it stalls naming the field and the fix; with a
/// wrong password it reaches nothing and changes nothing; the password appears nowhere.
#[test]
fn the_standalone_front_end_runs_over_winrm_with_credentials_from_a_secrets_directory() {
    const PASSWORD: &str = "Standalone-W1nrm-Pa55";
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let sim = SimServe::start_with(&scenario(), "600", Some(("LAB\\lyncdr", PASSWORD)));
    let wsman = sim.wsman.expect("the WS-Man endpoint");
    let manifests = planned_failover(dir.path(), &[]);
    let text = std::fs::read_to_string(&manifests).expect("manifests");
    let old = "  connection:\n    transport: Simulator\n    simulatorUrl: http://127.0.0.1:8080\n";
    assert!(text.contains(old), "the example's connection block changed");
    // The simulator's single endpoint stands in for every server (no {server} in the template).
    let winrm = format!(
        "  connection:\n    transport: WinRM\n    endpointTemplate: http://{wsman}/wsman\n    endpoints: [pool01-fe01.dal.contoso.com, pool01-fe01.sea.contoso.com]\n    credentialsSecret: lync-winrm\n"
    );
    std::fs::write(&manifests, text.replace(old, &winrm)).expect("write manifests");
    let run_with = |secrets: Option<&Path>| {
        let (m, st) = (manifests.to_string_lossy().into_owned(), state.to_string_lossy().into_owned());
        let mut args = vec!["run", "--manifests", &m, "--state-dir", &st, "--once"];
        let s = secrets.map(|p| p.to_string_lossy().into_owned());
        if let Some(s) = &s {
            args.extend(["--secrets-dir", s.as_str()]);
        }
        let out = run(&args, Duration::from_secs(120));
        out.assert_no_panic();
        out
    };
    let mut seen = String::new();

    // No --secrets-dir: a stall naming the field and the fix; nothing ran.
    let out = run_with(None);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let st = status(&state);
    let stalled = condition(&st["deployments"][KEY]["status"]["conditions"], "Stalled");
    assert_eq!(stalled["status"], "True", "{st}");
    let message = stalled["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.connection.credentialsSecret") && message.contains("--secrets-dir"), "{message}");
    assert!(message.contains("lync-winrm/username"), "{message}");
    assert!(sim.changes().is_empty(), "{:?}", sim.changes());
    seen += &out.stdout;
    seen += &out.stderr;

    // A secrets directory without this Secret: the message names the files it looked for.
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(secrets.join("lync-winrm")).expect("mkdir");
    let out = run_with(Some(&secrets));
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let st = status(&state);
    let message = condition(&st["deployments"][KEY]["status"]["conditions"], "Stalled")["message"].as_str().unwrap_or_default().to_string();
    assert!(message.starts_with("credentials Secret lync/lync-winrm: no file"), "{message}");
    assert!(message.contains("lync-winrm/password"), "{message}");

    // A wrong password: nothing is reached, nothing changes.
    std::fs::write(secrets.join("lync-winrm/username"), "LAB\\lyncdr\n").expect("write");
    std::fs::write(secrets.join("lync-winrm/password"), "not-the-password\n").expect("write");
    let out = run_with(Some(&secrets));
    assert_ne!(out.code, Some(0), "{}", out.describe());
    let st = status(&state);
    let message = condition(&st["deployments"][KEY]["status"]["conditions"], "Stalled")["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("refused the credentials of LAB\\lyncdr (HTTP 401)"), "names the account, never the password: {message}");
    assert!(sim.changes().is_empty(), "{:?}", sim.changes());
    seen += &out.stdout;
    seen += &out.stderr;

    // The right one (as `echo` writes it, with a newline): the planned failover runs over WinRM.
    std::fs::write(secrets.join("lync-winrm/password"), format!("{PASSWORD}\n")).expect("write");
    let out = run_with(Some(&secrets));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let st = status(&state);
    assert_eq!(condition(&st["deployments"][KEY]["status"]["conditions"], "Ready")["status"], "True", "{st}");
    let changes = sim.changes();
    assert!(changes.iter().any(|(line, _)| line.starts_with("Invoke-CsPoolFailOver")), "{changes:?}");
    let log = sim.log();
    let failover = log.iter().find(|r| r["cmdlet"] == "Invoke-CsPoolFailOver").expect("failover");
    assert_eq!(failover["args"]["Confirm"], false, "through the driver, unattended: {failover}");
    seen += &out.stdout;
    seen += &out.stderr;
    for entry in std::fs::read_dir(&state).expect("state") {
        seen += &String::from_utf8_lossy(&std::fs::read(entry.expect("entry").path()).unwrap_or_default());
    }
    assert!(!seen.contains(PASSWORD), "the password leaked:\n{seen}");
}

#[test]
fn sim_serve_refuses_absurd_clock_jumps_and_keeps_answering() {
    let sim = SimServe::start(&scenario(), "60");
    let t = std::time::Instant::now();
    let (code, body) = sim.http("POST", "/v1/clock", Some("{\"advance\": \"36500d\"}"));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("advance") && body.contains("at most"), "{body}");
    assert!(t.elapsed() < Duration::from_secs(5), "answered at once");
    let (code, body) = sim.http("POST", "/v1/clock", Some("{\"advance\": \"18446744073709552\"}"));
    assert_eq!(code, 422, "an overflowing duration is refused by the JSON layer: {body}");
    let (code, _) = sim.http("POST", "/v1/clock", Some("{\"advance\": \"2d\"}"));
    assert_eq!(code, 200);
    assert_eq!(sim.http("GET", "/healthz", None).0, 200);
}

#[test]
fn sim_serve_with_huge_timings_and_a_tiny_speed_does_not_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(scenario()).expect("scenario") + "timings: {query: 7d}\n";
    let s = dir.path().join("slow.yaml");
    std::fs::write(&s, text).expect("write");
    let mut sim = SimServe::start(&s, "0.001");
    let port = sim.port;
    // The longest query a scenario may ask for (7d; longer is refused), at a speed that makes it
    // last about 19 years: the server waits, sending heartbeats, and stays healthy.
    std::thread::spawn(move || {
        let _ = processes::http(
            port,
            "POST",
            "/v1/invoke",
            Some("{\"runOn\":\"any\",\"invocation\":{\"cmdlet\":\"Get-CsPool\"}}"),
            Duration::from_secs(3),
        );
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sim.http("GET", "/healthz", None).0, 200);
    assert!(sim.child.try_wait().expect("wait").is_none(), "sim serve is still running");
}

#[test]
fn a_printing_command_whose_reader_goes_away_ends_quietly() {
    use std::io::Read;
    // Far more output than a pipe holds: a rehearsal printing the pools 2,000 times.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("many.ps1");
    std::fs::write(&script, "Get-CsPool\n".repeat(2000)).expect("script");
    let mut child = std::process::Command::new(processes::BIN)
        .args(["sim", "run", "--scenario", &scenario().to_string_lossy(), "--script", &script.to_string_lossy(), "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one byte, then close the pipe, as `lyncdr sim run ... | head -c1` does.
    let mut out = child.stdout.take().expect("stdout");
    let mut one = [0u8; 1];
    out.read_exact(&mut one).expect("a byte");
    drop(out);
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    let status = child.wait().expect("wait");
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(13), "ends by SIGPIPE, quietly: {status:?} {err}");
}
