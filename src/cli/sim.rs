//! `lyncdr sim run` (rehearse a runbook against the simulator, see [`crate::sim::script`]) and
//! `lyncdr sim serve` (the simulator as an HTTP service for the operator's `transport: Simulator`,
//! and with `--winrm` also as a WS-Man endpoint the PowerShell driver runs its scripts on, see
//! [`crate::sim::winrm_host`]).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{CliError, Format};
use crate::model::text::shown;
use crate::scenario::Scenario;
use crate::sim::Simulator;
use crate::sim::script::{MAX_SCRIPT_BYTES, run_script};
use crate::sim::server::SimServer;
use crate::sim::transport_faults::TransportHook;
use crate::sim::winrm_host::SimHost;
use crate::winrm::auth::Users;
use crate::winrm::server::{Server, ServerConfig};

/// The environment variable holding the password of the WinRM endpoint's account.
pub const WINRM_PASSWORD_ENV: &str = "LYNCDR_WINRM_PASSWORD";

/// `--winrm` and `--winrm-user` of `sim serve`.
#[derive(Debug, Clone)]
pub struct WinrmListen {
    pub addr: String,
    pub user: String,
}

/// The WinRM endpoint's account, its password from [`WINRM_PASSWORD_ENV`] (never shown).
fn winrm_users(user: &str) -> Result<Users, CliError> {
    let password = match std::env::var(WINRM_PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            return Err(CliError(format!("--winrm needs the password of --winrm-user in the environment variable {WINRM_PASSWORD_ENV}")));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(CliError(format!("the environment variable {WINRM_PASSWORD_ENV} is not valid Unicode")));
        }
    };
    Users::new().with(user, &password).map_err(|e| CliError(format!("--winrm-user: {e}")))
}

pub fn run(scenario: &Path, script: &Path, format: Format, lenient: bool) -> Result<ExitCode, CliError> {
    let s = Scenario::load(scenario)?;
    let text = if script.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().take(MAX_SCRIPT_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_SCRIPT_BYTES {
            return Err(CliError(format!("--script -: standard input is larger than {MAX_SCRIPT_BYTES} bytes")));
        }
        String::from_utf8(bytes).map_err(|e| CliError(format!("--script -: not UTF-8 text: {e}")))?
    } else {
        crate::api::manifests::read_text(script, MAX_SCRIPT_BYTES).map_err(|e| CliError(format!("--script: {e}")))?
    };
    let mut sim = Simulator::new(&s);
    sim.set_strict(!lenient);
    let results = run_script(&mut sim, &text);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        _ => {
            for r in &results {
                let mark = if r.ok { "ok   " } else { "ERROR" };
                // The line and the error come from the script: shown escaped, one line each.
                println!("{:>9}  {mark}  {}", r.at.to_string(), shown(&r.line));
                if let Some(e) = &r.error {
                    println!("{:>9}         {}", "", shown(e));
                }
                if let Some(o) = &r.output {
                    for l in serde_json::to_string_pretty(o)?.lines().take(40) {
                        println!("{:>9}         {l}", "");
                    }
                }
            }
            for h in &sim.stats().hazards {
                println!("hazard: {h}");
            }
        }
    }
    Ok(if results.iter().all(|r| r.ok) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn serve(scenario: &Path, listen: &str, speed: f64, lenient: bool, winrm: Option<WinrmListen>) -> Result<ExitCode, CliError> {
    let s = Scenario::load(scenario)?;
    if !(speed.is_finite() && speed > 0.0) {
        return Err(CliError("--speed must be a positive number of simulated seconds per second".into()));
    }
    let winrm = match winrm {
        Some(w) => Some((winrm_users(&w.user)?, w.addr)),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let mut sim = Simulator::new(&s);
        sim.set_strict(!lenient);
        let server = SimServer::new(sim, speed);
        server.transport.set(s.transport_faults.clone());
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| CliError(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        let wsman = match winrm {
            Some((users, waddr)) => {
                let l =
                    tokio::net::TcpListener::bind(&waddr).await.map_err(|e| CliError(format!("--winrm: cannot listen on {waddr}: {e}")))?;
                let host = Arc::new(SimHost { server: server.clone() });
                let hook = Arc::new(TransportHook { server: server.clone() });
                Some((l, Arc::new(Server::new(ServerConfig::new(users), host).with_fault_hook(hook))))
            }
            None => None,
        };
        eprintln!("lyncdr simulator '{}' listening on http://{addr} ({speed}x real time)", s.name);
        if let Some((l, _)) = &wsman {
            eprintln!("lyncdr simulator WinRM endpoint on http://{}/wsman", l.local_addr()?);
        }
        // Replies stream (a heartbeat, then the answer): without TCP_NODELAY each small write
        // waits for the client's delayed ACK, some 40 ms per call.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            let _ = tcp.set_nodelay(true);
        });
        let http = axum::serve(listener, server.router()).with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        let winrm = async move {
            match wsman {
                Some((l, ws)) => crate::winrm::server::serve(l, ws).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = http => r?,
            r = winrm => r.map_err(|e| CliError(format!("WinRM endpoint: {e}")))?,
        }
        Ok::<_, CliError>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
