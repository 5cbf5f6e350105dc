//! pywinrm 0.5.0 and pypsrp 0.9.1, the WinRM clients Ansible and others use against real
//! Windows, run commands against our WS-Man server with NTLM and message encryption "always":
//! a plain command, a PowerShell script with an error exit (non-zero rc, CLIXML stderr that the
//! client cleans), a wrong password (HTTP 401, the client reports an authentication error), and a
//! command slower than the OperationTimeout (the clients loop over our `w:TimedOut` faults).
//! Against `lyncdr sim serve --winrm` (the binary), both run the PowerShell driver's scripts and
//! get the same answer as the simulator's HTTP API, or PowerShell's binding error.
//! Needs `LYNCDR_WINRM_PYTHON` (scripts/winrm-fixtures.sh); skips without it unless
//! `LYNCDR_REQUIRE_WINRM=1`.

#[path = "support/processes.rs"]
mod processes;
#[path = "winrm/support.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lyncdr::winrm::auth::Users;
use lyncdr::winrm::server::{FaultAction, FaultHook, RequestInfo, Server, ServerConfig, TestHost, serve};
use lyncdr::winrm::soap::Action;
use serde_json::Value;

const PASSWORD: &str = "Correct-H0rse";

/// Counts Receive requests (to see the clients loop over `w:TimedOut`).
#[derive(Default)]
struct Receives(AtomicUsize);

impl FaultHook for Receives {
    fn on_request(&self, info: &RequestInfo) -> FaultAction {
        if info.action == Some(Action::Receive) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        FaultAction::Proceed
    }
}

async fn start_server() -> (SocketAddr, Arc<Server>) {
    start_server_with(Arc::new(Receives::default())).await
}

async fn start_server_with(hook: Arc<Receives>) -> (SocketAddr, Arc<Server>) {
    let users = Users::new().with("LAB\\alice", PASSWORD).unwrap();
    let server = Arc::new(Server::new(ServerConfig::new(users), Arc::new(TestHost)).with_fault_hook(hook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, server.clone()));
    (addr, server)
}

async fn run(python: &Path, client: &str, addr: SocketAddr, password: &str, kind: &str, arg: &str) -> Value {
    let out = tokio::process::Command::new(python)
        .arg(support::script("py_client.py"))
        .args([client, "127.0.0.1", &addr.port().to_string(), "LAB\\alice", password, kind, arg])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{client} failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{client} printed {stdout:?}: {e}"))
}

fn ok(v: &Value) -> (i64, &str, &str) {
    assert!(v.get("error").is_none(), "client error: {v}");
    (v["rc"].as_i64().unwrap(), v["stdout"].as_str().unwrap(), v["stderr"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pywinrm_runs_commands_and_scripts_with_encryption() {
    let Some(python) = support::python("pywinrm_runs_commands_and_scripts_with_encryption") else { return };
    let (addr, server) = start_server().await;

    let v = run(&python, "pywinrm", addr, PASSWORD, "cmd", "echo hello from pywinrm").await;
    assert_eq!(ok(&v), (0, "hello from pywinrm\r\n", ""));

    let v = run(&python, "pywinrm", addr, PASSWORD, "ps", "echo before; err Pool fe01.lab.test is not ready; exit 3").await;
    let (rc, stdout, stderr) = ok(&v);
    assert_eq!(rc, 3);
    assert_eq!(stdout, "before\r\n");
    // pywinrm strips the CLIXML envelope and keeps the error text.
    assert!(stderr.contains("Pool fe01.lab.test is not ready"), "{stderr:?}");
    assert!(!stderr.contains("CLIXML") && !stderr.contains("<S S="), "{stderr:?}");
    assert_eq!(server.shell_count(), 0, "pywinrm deleted its shells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_runs_commands_with_encryption() {
    let Some(python) = support::python("pypsrp_runs_commands_with_encryption") else { return };
    let (addr, server) = start_server().await;

    let v = run(&python, "pypsrp", addr, PASSWORD, "cmd", "echo hello from pypsrp").await;
    assert_eq!(ok(&v), (0, "hello from pypsrp\r\n", ""));

    let v = run(&python, "pypsrp", addr, PASSWORD, "cmd", "echo partial; err access denied; exit 5").await;
    assert_eq!(ok(&v), (5, "partial\r\n", "access denied\r\n"));
    assert_eq!(server.shell_count(), 0, "pypsrp deleted its shells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_auth_error_in_both_clients() {
    let Some(python) = support::python("wrong_password_is_an_auth_error_in_both_clients") else { return };
    let (addr, server) = start_server().await;
    let v = run(&python, "pywinrm", addr, "wrong", "cmd", "echo never").await;
    assert_eq!(v["error"], "InvalidCredentialsError", "{v}");
    let v = run(&python, "pypsrp", addr, "wrong", "cmd", "echo never").await;
    assert_eq!(v["error"], "AuthenticationError", "{v}");
    assert_eq!(server.shell_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_clients_loop_over_timed_out_faults() {
    let Some(python) = support::python("both_clients_loop_over_timed_out_faults") else { return };
    let receives = Arc::new(Receives::default());
    let (addr, _server) = start_server_with(receives.clone()).await;
    for client in ["pywinrm", "pypsrp"] {
        let before = receives.0.load(Ordering::Relaxed);
        let t = std::time::Instant::now();
        let v = run(&python, client, addr, PASSWORD, "sleep", "sleep 2500; echo late").await;
        assert_eq!(ok(&v), (0, "late\r\n", ""), "{client}");
        assert!(t.elapsed() >= std::time::Duration::from_millis(2500), "{client}");
        let n = receives.0.load(Ordering::Relaxed) - before;
        assert!(n >= 3, "{client} sent {n} Receives: it should have received again after each w:TimedOut");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_clients_run_driver_scripts_against_sim_serve_winrm() {
    use lyncdr::driver::script::{self, Frame};
    use lyncdr::model::RunOn;
    use lyncdr::ps::Invocation;
    let Some(python) = support::python("both_clients_run_driver_scripts_against_sim_serve_winrm") else { return };
    let sim =
        processes::SimServe::start_with(&processes::root().join("examples/two-site/scenario.yaml"), "600", Some(("LAB\\alice", PASSWORD)));
    let wsman = sim.wsman.expect("the WS-Man endpoint");
    // What the HTTP API answers for the same call: the two endpoints share one simulator.
    let body = serde_json::json!({ "runOn": "any", "invocation": { "cmdlet": "Get-CsPool" } });
    let want = reqwest::Client::new().post(format!("{}/v1/invoke", sim.url)).json(&body).send().await.expect("POST /v1/invoke");
    let want: Value = serde_json::from_str(want.text().await.expect("body").trim()).expect("JSON");
    let get_pool = script::invoke(&RunOn::Any, &Invocation::new("Get-CsPool"), None);
    let bad = script::invoke(
        &RunOn::Any,
        &Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "pool01.dal.contoso.com").arg("NoSuchThing", 1),
        None,
    );
    // pywinrm's run_ps sends `powershell -EncodedCommand`; pypsrp's PowerShell is PSRP, so it
    // runs the same command line through its WinRS client.
    let kind = |client: &str, s: &str| -> (&'static str, String) {
        if client == "pypsrp" {
            ("cmd", format!("powershell.exe -NoProfile -NonInteractive -EncodedCommand {}", lyncdr::winrm::powershell::encode_command(s)))
        } else {
            ("ps", s.to_string())
        }
    };
    for client in ["pywinrm", "pypsrp"] {
        let (k, a) = kind(client, &get_pool);
        let v = run(&python, client, wsman, PASSWORD, k, &a).await;
        let (rc, stdout, stderr) = ok(&v);
        assert_eq!((rc, stderr), (0, ""), "{client}: {v}");
        assert_eq!(script::parse_frame(stdout), Ok(Frame::Result(want["output"].clone())), "{client}");
        let (k, a) = kind(client, &bad);
        let v = run(&python, client, wsman, PASSWORD, k, &a).await;
        match script::parse_frame(ok(&v).1) {
            Ok(Frame::Error(e)) => {
                assert!(e.message.contains("A parameter cannot be found that matches parameter name 'NoSuchThing'"), "{client}: {e:?}")
            }
            other => panic!("{client}: expected an error frame, got {other:?}"),
        }
    }
    let v = run(&python, "pywinrm", wsman, "wrong", "ps", &get_pool).await;
    assert_eq!(v["error"], "InvalidCredentialsError", "{v}");
}
