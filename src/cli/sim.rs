//! `lyncdr sim run` (rehearse a runbook against the simulator, see [`crate::sim::script`]) and
//! `lyncdr sim serve` (the simulator as an HTTP service for the operator's `transport: Simulator`).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use super::{CliError, Format};
use crate::scenario::Scenario;
use crate::sim::Simulator;
use crate::sim::script::run_script;
use crate::sim::server::SimServer;

pub fn run(scenario: &Path, script: &Path, format: Format, lenient: bool) -> Result<ExitCode, CliError> {
    let s = Scenario::load(scenario)?;
    let text = if script.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t)?;
        t
    } else {
        std::fs::read_to_string(script).map_err(|e| CliError(format!("cannot read {}: {e}", script.display())))?
    };
    let mut sim = Simulator::new(&s);
    sim.set_strict(!lenient);
    let results = run_script(&mut sim, &text);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        _ => {
            for r in &results {
                let mark = if r.ok { "ok   " } else { "ERROR" };
                println!("{:>9}  {mark}  {}", r.at.to_string(), r.line);
                if let Some(e) = &r.error {
                    println!("{:>9}         {e}", "");
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

pub fn serve(scenario: &Path, listen: &str, speed: f64, lenient: bool) -> Result<ExitCode, CliError> {
    let s = Scenario::load(scenario)?;
    if !(speed.is_finite() && speed > 0.0) {
        return Err(CliError("--speed must be a positive number of simulated seconds per second".into()));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let mut sim = Simulator::new(&s);
        sim.set_strict(!lenient);
        let server = SimServer::new(sim, speed);
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| CliError(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        eprintln!("lyncdr simulator '{}' listening on http://{addr} ({speed}x real time)", s.name);
        axum::serve(listener, server.router())
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok::<_, CliError>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
