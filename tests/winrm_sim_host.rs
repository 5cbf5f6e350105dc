//! The simulator over WS-Man (`lyncdr sim serve --winrm`), in process: our WinRS client with NTLM
//! and message encryption runs the PowerShell driver's scripts against [`SimHost`] on loopback, in
//! a warm session, through the stdin bootstrap and with `-EncodedCommand`, and reads back the one
//! frame each answers with: a cmdlet's output (the same as the HTTP API's), PowerShell's binding
//! and parser errors, a server that a fault took down, the simulated clock, and PowerShell's
//! "not recognized" for anything that is not a driver script.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lyncdr::backend::LyncError;
use lyncdr::driver::script::{self, ClockFrame, Frame, ScriptError};
use lyncdr::model::{Fqdn, RunOn};
use lyncdr::ps::Invocation;
use lyncdr::sim::server::SimServer;
use lyncdr::sim::winrm_host::SimHost;
use lyncdr::sim::{Fault, Simulator};
use lyncdr::winrm::auth::{Credentials, Users};
use lyncdr::winrm::http::TransportConfig;
use lyncdr::winrm::powershell::powershell_command;
use lyncdr::winrm::server::{Server, ServerConfig, serve};
use lyncdr::winrm::session::PsSession;
use lyncdr::winrm::shell::Shell;
use lyncdr::winrm::soap::request::ShellOptions;

const PASSWORD: &str = "Sim-H0st-Pass";
const TIMEOUT: Duration = Duration::from_secs(20);
/// Simulated seconds per real second: a failover of minutes takes milliseconds.
const SPEED: f64 = 6000.0;

async fn start() -> (SocketAddr, Arc<SimServer>, Arc<Server>) {
    let sim = SimServer::new(Simulator::new(&common::scenario(common::TWO_SITE)), SPEED);
    let users = Users::new().with("LAB\\lyncdr", PASSWORD).unwrap();
    let server = Arc::new(Server::new(ServerConfig::new(users), Arc::new(SimHost { server: sim.clone() })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, server.clone()));
    (addr, sim, server)
}

async fn shell(addr: SocketAddr) -> Shell {
    let cfg = TransportConfig::new(&format!("http://{addr}/wsman"), Credentials::new("LAB\\lyncdr", PASSWORD).unwrap()).unwrap();
    Shell::open(cfg, &ShellOptions::lyncdr()).await.unwrap()
}

async fn session(addr: SocketAddr) -> PsSession {
    PsSession::start(shell(addr).await).await.unwrap()
}

/// Runs a script in the warm session; its one frame.
async fn frame(ps: &mut PsSession, text: &str) -> Frame {
    let out = ps.run(text, TIMEOUT).await.unwrap();
    assert_eq!(out.stderr, "", "a driver script writes nothing on stderr");
    script::parse_frame(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", out.stdout))
}

fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmdlet_answers_what_the_http_api_answers() {
    let (addr, sim, server) = start().await;
    let mut ps = session(addr).await;
    let get = Invocation::new("Get-CsPool");
    let got = frame(&mut ps, &script::invoke(&RunOn::Any, &get, None)).await;
    let direct = sim.invoke(&RunOn::Any, &get, None).await;
    assert!(direct.ok, "{direct:?}");
    let expected = direct.output.unwrap();
    assert!(expected.as_array().is_some_and(|a| a.len() >= 2), "the two-site pools: {expected}");
    assert_eq!(got, Frame::Result(expected));

    // The same call pinned to a pool and to one of its servers.
    for on in [RunOn::Pool(fqdn(common::SEA)), RunOn::Server(fqdn("pool01-fe01.sea.contoso.com"))] {
        let got = frame(&mut ps, &script::invoke(&on, &get, None)).await;
        assert!(matches!(got, Frame::Result(ref v) if v.is_array()), "{on:?}: {got:?}");
    }
    assert_eq!(server.shell_count(), 1);
    ps.close().await.unwrap();
    assert_eq!(server.shell_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_and_parser_errors_are_error_frames() {
    let (addr, sim, _server) = start().await;
    let mut ps = session(addr).await;
    let bad = Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", common::DAL).arg("NoSuchThing", "x").switch("DisasterMode");
    let got = frame(&mut ps, &script::invoke(&RunOn::Pool(fqdn(common::SEA)), &bad, None)).await;
    let Frame::Error(e) = got else { panic!("expected an error frame, got {got:?}") };
    assert_eq!(e.message, "A parameter cannot be found that matches parameter name 'NoSuchThing'.");
    assert_eq!((e.category.as_str(), e.error_id.as_str(), e.rule), ("InvalidOperation", "Invoke-CsPoolFailOver", None));
    assert!(sim.lock().log().iter().all(|r| r.outcome != lyncdr::sim::Outcome::Ok), "nothing ran");

    // A command line PowerShell cannot parse.
    let text = script::invoke(&RunOn::Any, &Invocation::new("Get-CsPool"), None);
    let text = text.replace("$lyncdrOut = Get-CsPool", "$lyncdrOut = Get-CsPool |");
    let got = frame(&mut ps, &text).await;
    assert_eq!(
        got,
        Frame::Error(ScriptError {
            message: "An empty pipe element is not allowed.".into(),
            category: "ParserError".into(),
            error_id: "ParseException".into(),
            rule: None
        })
    );
    ps.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_unreachable() {
    let (addr, sim, _server) = start().await;
    sim.lock().inject(&Fault::parse("down:site/Dallas").unwrap());
    let mut ps = session(addr).await;
    let on = RunOn::Server(fqdn("pool01-fe01.dal.contoso.com"));
    let get = Invocation::new("Get-CsPool");
    let got = frame(&mut ps, &script::invoke(&on, &get, None)).await;
    let Frame::Unreachable(u) = got else { panic!("expected unreachable, got {got:?}") };
    let direct = sim.invoke(&on, &get, None).await;
    let Some(LyncError::Unreachable { detail, .. }) = direct.error else { panic!("{direct:?}") };
    assert_eq!(u.detail, detail);
    assert!(!u.target.is_empty(), "the frame names the server");
    // Seattle still answers in the same session.
    let got = frame(&mut ps, &script::invoke(&RunOn::Pool(fqdn(common::SEA)), &get, None)).await;
    assert!(matches!(got, Frame::Result(_)), "{got:?}");
    ps.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_script_reads_the_simulated_clock() {
    let (addr, sim, _server) = start().await;
    let mut ps = session(addr).await;
    let before = sim.clock.now().0;
    let got = frame(&mut ps, &script::clock()).await;
    let after = sim.clock.now().0;
    let Frame::Result(v) = got else { panic!("{got:?}") };
    let clock: ClockFrame = serde_json::from_value(v).unwrap();
    assert_eq!(clock.speed, SPEED);
    assert!((before..=after).contains(&clock.now_ms), "{before} <= {} <= {after}", clock.now_ms);
    ps.close().await.unwrap();

    // The same script given on the command line with -EncodedCommand.
    let mut sh = shell(addr).await;
    let (cmd, args) = powershell_command(&script::clock()).unwrap();
    let out = sh.run(&cmd, &args, None).await.unwrap();
    assert_eq!(out.exit_code, 0);
    let Ok(Frame::Result(v)) = script::parse_frame(&out.stdout_text()) else { panic!("{out:?}") };
    assert!(serde_json::from_value::<ClockFrame>(v).unwrap().now_ms >= after);
    sh.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_in_a_warm_session_through_stdin_and_on_several_shells() {
    let (addr, sim, server) = start().await;
    let mut ps = session(addr).await;
    let pools = Invocation::new("Get-CsPool");
    let first = frame(&mut ps, &script::invoke(&RunOn::Any, &pools, None)).await;
    let second = frame(&mut ps, &script::invoke(&RunOn::Pool(fqdn(common::DAL)), &pools, None)).await;
    assert_eq!(first, second, "the same pools, whichever server answers");

    // One script through the stdin bootstrap: one frame, exit code 0.
    let mut sh = shell(addr).await;
    let out = sh.run_powershell(&script::invoke(&RunOn::Any, &pools, None)).await.unwrap();
    assert_eq!((out.exit_code, out.stderr_text()), (0, String::new()));
    assert_eq!(script::parse_frame(&out.stdout_text()), Ok(first.clone()));
    assert!(out.stdout_text().ends_with("\r\n") && !out.stdout_text().contains("#LYNCDR-DONE"));
    sh.close().await.unwrap();

    // Two warm sessions on two shells, scripts in flight at once.
    let mut other = session(addr).await;
    let clock = script::clock();
    let a = script::invoke(&RunOn::Any, &pools, None);
    let (x, y) = tokio::join!(frame(&mut ps, &a), frame(&mut other, &clock));
    assert_eq!(x, first);
    assert!(matches!(y, Frame::Result(_)), "{y:?}");
    assert_eq!(server.shell_count(), 2);
    ps.close().await.unwrap();
    other.close().await.unwrap();
    assert!(sim.lock().log().iter().filter(|r| r.cmdlet == "Get-CsPool").count() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_scripts_are_not_recognized_and_the_session_goes_on() {
    let (addr, _sim, _server) = start().await;
    let mut ps = session(addr).await;
    let out = ps.run("Get-Process -Name w3wp", TIMEOUT).await.unwrap();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.starts_with("Get-Process : The term 'Get-Process' is not recognized as the name of a cmdlet"), "{:?}", out.stderr);
    assert!(out.stderr.contains("CommandNotFoundException"), "{:?}", out.stderr);
    let got = frame(&mut ps, &script::clock()).await;
    assert!(matches!(got, Frame::Result(_)), "{got:?}");
    // Blank lines and comments only: nothing to say.
    let out = ps.run("# nothing here\n", TIMEOUT).await.unwrap();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    ps.close().await.unwrap();

    // A one-shot process exits 1, its error in CLIXML.
    let mut sh = shell(addr).await;
    let out = sh.run_powershell("Restart-Computer -Force").await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("#< CLIXML"));
    assert!(out.stderr_text().contains("The term 'Restart-Computer' is not recognized"), "{}", out.stderr_text());
    // And what is not PowerShell at all, as cmd.exe says it.
    let out = sh.run("ipconfig", &["/all".into()], None).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(out.stderr_text().starts_with("'ipconfig' is not recognized as an internal or external command"), "{}", out.stderr_text());
    sh.close().await.unwrap();
}

/// A WinRM round trip is not free on a real server, and the simulator's endpoint charges it in
/// simulated time (scenario `timings`): a new session its start (`powershell.exe` and the Lync
/// module), each script a round trip on top of its cmdlets' own time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_start_and_each_round_trip_cost_simulated_time() {
    let (addr, sim, _server) = start().await;
    let timings = sim.lock().timings().clone();
    assert_eq!((timings.session_start, timings.round_trip), (lyncdr::model::Span::secs(10), lyncdr::model::Span::secs(1)));
    let t0 = sim.clock.now();
    let mut ps = session(addr).await;
    let get = Invocation::new("Get-CsSite");
    let _ = frame(&mut ps, &script::invoke(&RunOn::Any, &get, None)).await;
    let t1 = sim.clock.now();
    let first = t1.since(t0);
    assert!(first >= timings.session_start + timings.round_trip + timings.query, "first script after {first}");
    // A batch of three queries: one round trip, three queries.
    let _ = script::parse_frames(&ps.run(&script::batch(&RunOn::Any, &[get.clone(), get.clone(), get]), TIMEOUT).await.unwrap().stdout);
    let batch = sim.clock.now().since(t1);
    assert!(batch >= timings.round_trip + timings.query.scale(3, 1), "batch after {batch}");
    ps.close().await.unwrap();
}
