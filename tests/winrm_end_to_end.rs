//! Our WinRS client against our WS-Man server over loopback, NTLM with message encryption: a
//! command with stdin and an error exit (CLIXML stderr decoded), large input and output split
//! across Send and Receive envelopes, a long-lived PowerShell session driven interactively, the
//! `w:TimedOut` loop, a wrong password, plaintext refusal, unknown shells, injected transport
//! faults (lost reply, 401 mid-session, dropped connection, 5xx, refused connection), and HTTPS
//! with Basic and NTLM. Needs nothing outside the repository.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lyncdr::winrm::WinrmError;
use lyncdr::winrm::auth::{AuthMethod, Credentials, Users};
use lyncdr::winrm::client::WsmanClient;
use lyncdr::winrm::http::{Endpoint, TransportConfig};
use lyncdr::winrm::powershell::{INTERACTIVE_BOOTSTRAP, SCRIPT_DONE, STDIN_BOOTSTRAP, interactive_script, powershell_command};
use lyncdr::winrm::server::{FaultAction, FaultHook, RequestInfo, Server, ServerConfig, TestHost, serve};
use lyncdr::winrm::shell::Shell;
use lyncdr::winrm::soap::request::{self, ShellOptions};
use lyncdr::winrm::soap::{Action, Signal};

const PASSWORD: &str = "Correct-H0rse";

/// Injects the planned fault at the first request of each planned action, in plan order, and
/// records every request's action.
#[derive(Default)]
struct Plan {
    faults: Mutex<VecDeque<(Action, FaultAction)>>,
    refuse_connections: Mutex<u32>,
    seen: Mutex<Vec<Option<Action>>>,
}

impl Plan {
    fn new(faults: Vec<(Action, FaultAction)>) -> Arc<Plan> {
        Arc::new(Plan { faults: Mutex::new(faults.into()), ..Plan::default() })
    }

    fn count(&self, action: Action) -> usize {
        self.seen.lock().unwrap().iter().filter(|a| **a == Some(action)).count()
    }
}

impl FaultHook for Plan {
    fn on_connect(&self, _connection: u64) -> bool {
        let mut refuse = self.refuse_connections.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return false;
        }
        true
    }

    fn on_request(&self, info: &RequestInfo) -> FaultAction {
        self.seen.lock().unwrap().push(info.action);
        let mut faults = self.faults.lock().unwrap();
        match faults.front() {
            Some((a, _)) if Some(*a) == info.action => faults.pop_front().map(|(_, f)| f).unwrap_or(FaultAction::Proceed),
            _ => FaultAction::Proceed,
        }
    }
}

async fn start_server(hook: Arc<Plan>, tls: Option<openssl::ssl::SslAcceptor>) -> (SocketAddr, Arc<Server>) {
    let users = Users::new().with("LAB\\alice", PASSWORD).unwrap();
    let mut cfg = ServerConfig::new(users);
    cfg.allow_basic = true;
    let mut server = Server::new(cfg, Arc::new(TestHost)).with_fault_hook(hook);
    if let Some(t) = tls {
        server = server.with_tls(t);
    }
    let server = Arc::new(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, server.clone()));
    (addr, server)
}

fn config(addr: SocketAddr, password: &str) -> TransportConfig {
    TransportConfig::new(&format!("http://{addr}/wsman"), Credentials::new("LAB\\alice", password).unwrap()).unwrap()
}

fn client(addr: SocketAddr, op_timeout: Duration) -> WsmanClient {
    let mut c = WsmanClient::new(config(addr, PASSWORD)).unwrap();
    c.headers_mut().operation_timeout = op_timeout;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_with_stdin_and_error_exit() {
    let (addr, server) = start_server(Plan::new(vec![]), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let out = shell.run("echo", &["hi".into()], None).await.unwrap();
    assert_eq!((out.stdout_text().as_str(), out.exit_code), ("hi\r\n", 0));

    let (cmd, args) = powershell_command(STDIN_BOOTSTRAP).unwrap();
    let out = shell.run(&cmd, &args, Some(b"echo from stdin; err Pool fe01.lab not found; exit 4")).await.unwrap();
    assert_eq!(out.stdout_text(), "from stdin\r\n");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("#< CLIXML"), "stderr is CLIXML on the wire");
    assert_eq!(out.stderr_text(), "Pool fe01.lab not found");
    assert_eq!(out.exit_code, 4);
    assert_eq!(server.shell_count(), 1);
    shell.close().await.unwrap();
    assert_eq!(server.shell_count(), 0);
    assert_eq!(server.connection_count(), 1, "one connection for the whole shell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_input_and_output_span_several_envelopes() {
    let plan = Plan::new(vec![]);
    let (addr, _server) = start_server(plan.clone(), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let input: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let out = shell.run("cat", &[], Some(&input)).await.unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input, "stdout must equal stdin byte for byte");
    assert!(plan.count(Action::Send) >= 4, "400 kB of stdin needs several Sends, saw {}", plan.count(Action::Send));
    assert!(plan.count(Action::Receive) >= 4, "400 kB of stdout needs several Receives, saw {}", plan.count(Action::Receive));
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_powershell_is_driven_interactively() {
    let (addr, _server) = start_server(Plan::new(vec![]), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let (cmd, args) = powershell_command(INTERACTIVE_BOOTSTRAP).unwrap();
    let cid = shell.start(&cmd, &args).await.unwrap();
    let done = |c: &lyncdr::winrm::shell::Collected| String::from_utf8_lossy(&c.stdout).contains(SCRIPT_DONE);

    // Nothing to read before the first script: an empty answer after the short wait.
    let idle = shell.receive_available(&cid, Duration::from_millis(200)).await.unwrap();
    assert!(idle.chunks.is_empty() && !idle.done());

    let mut rtts = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        shell.send_input(&cid, interactive_script(&format!("echo answer {i}")).as_bytes(), false).await.unwrap();
        let got = shell.receive_until(&cid, Duration::from_secs(5), Duration::from_secs(10), done).await.unwrap();
        rtts.push(t.elapsed());
        assert_eq!(String::from_utf8_lossy(&got.stdout), format!("answer {i}\r\n{SCRIPT_DONE}\r\n"));
        assert!(!got.done(), "the session stays alive between scripts");
    }
    rtts.sort();
    eprintln!(
        "interactive script round trip over loopback (send + receive, sealed): median {:?}, max {:?}",
        rtts[rtts.len() / 2],
        rtts[rtts.len() - 1]
    );

    shell.send_input(&cid, b"", true).await.unwrap();
    let end = shell.receive_until_done(&cid).await.unwrap();
    assert_eq!(end.exit_code, 0);
    shell.signal(&cid, Signal::Terminate).await.unwrap();
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_loops_over_timed_out_faults() {
    let plan = Plan::new(vec![]);
    let (addr, _server) = start_server(plan.clone(), None).await;
    let mut shell = Shell::open_with(client(addr, Duration::from_millis(400)), &ShellOptions::lyncdr()).await.unwrap();
    let t = Instant::now();
    let out = shell.run("sleep", &["1500;".into(), "echo".into(), "late".into()], None).await.unwrap();
    assert_eq!((out.stdout_text().as_str(), out.exit_code), ("late\r\n", 0));
    assert!(t.elapsed() >= Duration::from_millis(1500));
    assert!(plan.count(Action::Receive) >= 3, "expected TimedOut Receives to be repeated, saw {}", plan.count(Action::Receive));

    // A single Receive that times out is an empty output, not an error.
    let cid = shell.start("sleep", &["2000".into()]).await.unwrap();
    let empty = shell.receive(&cid).await.unwrap();
    assert!(empty.chunks.is_empty() && empty.state.is_none());
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_auth_error_before_anything_runs() {
    let (addr, server) = start_server(Plan::new(vec![]), None).await;
    let err = Shell::open(config(addr, "guess"), &ShellOptions::lyncdr()).await.unwrap_err();
    assert!(matches!(err, WinrmError::Auth(_)), "{err:?}");
    assert!(err.nothing_ran());
    assert!(!format!("{err:?} {err}").contains("guess"));
    assert_eq!(server.shell_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_and_plaintext_requests_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _server) = start_server(Plan::new(vec![]), None).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = request::create_shell(&request::Headers::new(format!("http://{addr}/wsman")), &ShellOptions::default()).xml;
    let req = format!(
        "POST /wsman HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    let lower = resp.to_ascii_lowercase();
    assert!(lower.contains("www-authenticate: negotiate") && lower.contains("www-authenticate: ntlm"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_shell_is_a_typed_fault() {
    let (addr, _server) = start_server(Plan::new(vec![]), None).await;
    let mut c = client(addr, Duration::from_secs(5));
    let req = request::receive(c.headers(), "NO-SUCH-SHELL", Some("C"), "stdout stderr");
    match c.call(&req).await {
        Err(WinrmError::Fault(f)) => {
            assert_eq!(f.subcode.as_deref(), Some("w:InvalidSelectors"));
            assert_eq!(f.wsman_code, Some(2150858843));
            assert_eq!(f.machine.as_deref(), Some("lyncdr-sim"));
            assert!(f.message.contains("NO-SUCH-SHELL"));
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_is_outcome_unknown_and_the_next_request_reconnects() {
    let plan = Plan::new(vec![(Action::Command, FaultAction::LoseReply)]);
    let (addr, server) = start_server(plan.clone(), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let err = shell.start("echo", &["x".into()]).await.unwrap_err();
    assert!(matches!(err, WinrmError::OutcomeUnknown(_)), "{err:?}");
    assert!(!err.nothing_ran());
    assert_eq!(plan.count(Action::Command), 1, "the lost Command must not be resent");
    let out = shell.run("echo", &["again".into()], None).await.unwrap();
    assert_eq!(out.stdout_text(), "again\r\n");
    assert_eq!(server.connection_count(), 2, "reconnected and re-authenticated once");
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_mid_session_re_authenticates_transparently() {
    let plan = Plan::new(vec![(Action::Command, FaultAction::Unauthorized)]);
    let (addr, server) = start_server(plan.clone(), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let out = shell.run("echo", &["ok".into()], None).await.unwrap();
    assert_eq!(out.stdout_text(), "ok\r\n");
    assert_eq!(plan.count(Action::Command), 2, "refused once with 401, then resent after re-authentication");
    assert_eq!(server.connection_count(), 2);
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_and_server_errors_are_reported() {
    let plan = Plan::new(vec![(Action::Command, FaultAction::DropBeforeProcessing), (Action::Command, FaultAction::Status(503))]);
    let (addr, server) = start_server(plan.clone(), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let err = shell.start("echo", &[]).await.unwrap_err();
    assert!(matches!(err, WinrmError::OutcomeUnknown(_)), "the client cannot tell a drop before from a drop after: {err:?}");
    let err = shell.start("echo", &[]).await.unwrap_err();
    assert!(matches!(err, WinrmError::Http { status: 503, .. }), "{err:?}");
    assert_eq!(shell.run("echo", &["fine".into()], None).await.unwrap().stdout_text(), "fine\r\n");
    shell.close().await.unwrap();
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_a_connect_error() {
    let plan = Plan::new(vec![]);
    *plan.refuse_connections.lock().unwrap() = 10;
    let (addr, _server) = start_server(plan, None).await;
    let err = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap_err();
    assert!(err.nothing_ran(), "{err:?}");
    // Nothing listens on a closed port at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = Shell::open(config(closed, PASSWORD), &ShellOptions::lyncdr()).await.unwrap_err();
    assert!(matches!(err, WinrmError::Connect { .. }), "{err:?}");
}

fn self_signed() -> openssl::ssl::SslAcceptor {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::ssl::{SslAcceptor, SslMethod};
    use openssl::x509::{X509, X509NameBuilder};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor.set_certificate(&cert).unwrap();
    acceptor.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_basic_and_ntlm() {
    let (addr, _server) = start_server(Plan::new(vec![]), Some(self_signed())).await;
    for auth in [AuthMethod::Basic, AuthMethod::Ntlm] {
        let mut cfg = config(addr, PASSWORD);
        cfg.endpoint = Endpoint::parse(&format!("https://{addr}/wsman")).unwrap();
        cfg.auth = auth;
        // The certificate is self-signed: verification must fail unless explicitly skipped.
        let err = Shell::open(cfg.clone(), &ShellOptions::lyncdr()).await.unwrap_err();
        assert!(matches!(err, WinrmError::Connect { .. }), "{auth:?}: {err:?}");
        cfg.tls.insecure_skip_verify = true;
        let mut shell = Shell::open(cfg, &ShellOptions::lyncdr()).await.unwrap();
        let out = shell.run("echo", &[format!("over tls with {auth:?}")], None).await.unwrap();
        assert_eq!(out.stdout_text(), format!("over tls with {auth:?}\r\n"));
        shell.close().await.unwrap();
    }
    let mut cfg = config(addr, "bad");
    cfg.endpoint = Endpoint::parse(&format!("https://{addr}/wsman")).unwrap();
    cfg.auth = AuthMethod::Basic;
    cfg.tls.insecure_skip_verify = true;
    let err = Shell::open(cfg, &ShellOptions::lyncdr()).await.unwrap_err();
    assert!(matches!(err, WinrmError::Auth(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_relates_to_truncated_and_slow_replies_are_detected() {
    let plan = Plan::new(vec![
        (Action::Command, FaultAction::WrongRelatesTo),
        (Action::Command, FaultAction::Truncate(120)),
        (Action::Command, FaultAction::Delay(Duration::from_secs(2))),
    ]);
    let (addr, server) = start_server(plan.clone(), None).await;
    let mut c = client(addr, Duration::from_millis(300));
    c.set_read_margin(Duration::from_millis(300));
    let mut shell = Shell::open_with(c, &ShellOptions::lyncdr()).await.unwrap();
    let err = shell.start("echo", &[]).await.unwrap_err();
    assert!(matches!(err, WinrmError::Protocol(ref m) if m.contains("relates to")), "{err:?}");
    let err = shell.start("echo", &[]).await.unwrap_err();
    assert!(matches!(err, WinrmError::OutcomeUnknown(ref m) if m.contains("undecryptable")), "truncated: {err:?}");
    let t = Instant::now();
    let err = shell.start("echo", &[]).await.unwrap_err();
    assert!(matches!(err, WinrmError::OutcomeUnknown(ref m) if m.contains("no reply")), "slow: {err:?}");
    assert!(t.elapsed() < Duration::from_millis(1500), "gave up after the read timeout, not the delay");
    assert_eq!(shell.run("echo", &["recovered".into()], None).await.unwrap().stdout_text(), "recovered\r\n");
    assert_eq!(plan.count(Action::Command), 4, "no request was resent behind the caller's back");
    assert!(server.connection_count() >= 3, "truncation and the timeout each cost the connection");
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_powershell_session_and_one_shot_scripts() {
    use lyncdr::winrm::session::PsSession;
    let (addr, server) = start_server(Plan::new(vec![]), None).await;
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    // A script far beyond the 8,191-character command line goes through stdin.
    let long = format!("echo {}; exit 7", "x".repeat(20_000));
    let out = shell.run_powershell(&long).await.unwrap();
    assert_eq!((out.stdout.len(), out.exit_code), (20_002, 7));

    let mut ps = PsSession::start(shell).await.unwrap();
    let first = ps.run("echo imported", Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.stdout, "imported\r\n");
    let second = ps.run("echo pool ok\nerr warning only", Duration::from_secs(5)).await.unwrap();
    assert_eq!(second.stdout, "pool ok\r\n");
    assert_eq!(second.stderr, "warning only");
    let slow = ps.run("sleep 1500", Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(slow, WinrmError::OutcomeUnknown(_)), "{slow:?}");
    let refused = ps.run("echo late", Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(refused, WinrmError::Protocol(ref m) if m.contains("out of sync")), "{refused:?}");
    assert_eq!(server.shell_count(), 1);
    ps.close().await.unwrap();
    assert_eq!(server.shell_count(), 0);

    let shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let mut ps = PsSession::start(shell).await.unwrap();
    let ended = ps.run("exit 9", Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(ended, WinrmError::Protocol(ref m) if m.contains("code 9")), "{ended:?}");
    ps.close().await.unwrap();
    assert_eq!(server.shell_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clixml_stderr_split_across_receives_is_decoded_whole() {
    let plan = Plan::new(vec![]);
    let (addr, _server) = start_server(plan.clone(), None).await;
    let mut c = client(addr, Duration::from_secs(5));
    // Small envelopes force the CLIXML document to arrive in many pieces.
    c.headers_mut().max_envelope_size = 8192;
    let mut shell = Shell::open_with(c, &ShellOptions::lyncdr()).await.unwrap();
    let message: String = (0..2000).map(|i| format!("line {i} <&> ")).collect();
    let out = shell.run_powershell(&format!("err {message}; exit 1")).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(plan.count(Action::Receive) >= 5, "expected the stderr to span Receives, saw {}", plan.count(Action::Receive));
    assert_eq!(out.stderr_text(), message.trim_end());
    shell.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings_over_loopback() {
    let (addr, _server) = start_server(Plan::new(vec![]), None).await;
    let t = Instant::now();
    let mut shell = Shell::open(config(addr, PASSWORD), &ShellOptions::lyncdr()).await.unwrap();
    let open = t.elapsed();
    let mut runs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let out = shell.run("echo", &["x".into()], None).await.unwrap();
        runs.push(t.elapsed());
        assert_eq!(out.stdout_text(), "x\r\n");
    }
    runs.sort();
    let t = Instant::now();
    shell.close().await.unwrap();
    eprintln!(
        "loopback, NTLM + sealing: connect+handshake+Create {open:?}; Command+Receive+Signal median {:?} (max {:?}); Delete {:?}",
        runs[runs.len() / 2],
        runs[runs.len() - 1],
        t.elapsed()
    );
    assert!(open < Duration::from_secs(5));
}
