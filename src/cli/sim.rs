//! `lyncdr sim run` (rehearse a runbook against the simulator, see [`crate::sim::script`]) and
//! `lyncdr sim serve` (the simulator as an HTTP service for the operator's `transport: Simulator`).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use super::{CliError, Format};
use crate::scenario::Scenario;
use crate::sim::Simulator;
use crate::sim::script::{MAX_SCRIPT_BYTES, run_script};
use crate::sim::server::SimServer;

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
