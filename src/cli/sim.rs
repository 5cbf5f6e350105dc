//! `lyncdr sim run` (rehearse a runbook against the simulator) and `lyncdr sim serve` (the
//! simulator as an HTTP service for the operator's `transport: Simulator`).
//!
//! A script is PowerShell, one command per line. Lines starting with `#!` are directives for
//! the rehearsal: `#! on <server or pool>` chooses where the following commands run (as if the
//! admin opened the Lync Server Management Shell there), `#! wait <duration>` lets simulated
//! time pass, `#! fault <ACTION:TARGET>` injects a fault.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use super::{CliError, Format};
use crate::model::{Fqdn, RunOn, Span, Stamp};
use crate::ps::{catalog, parse_line};
use crate::scenario::Scenario;
use crate::sim::server::SimServer;
use crate::sim::{Failure, Fault, Simulator};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineResult {
    pub number: usize,
    pub line: String,
    pub ok: bool,
    pub error: Option<String>,
    pub output: Option<Value>,
    pub at: Stamp,
}

/// Runs the lines of a script against a simulator; returns one result per command or directive.
pub fn run_script(sim: &mut Simulator, text: &str) -> Vec<LineResult> {
    let mut on = RunOn::Any;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let mut result = |ok: bool, error: Option<String>, output: Option<Value>, at: Stamp| {
            out.push(LineResult { number: i + 1, line: line.to_string(), ok, error, output, at });
        };
        if let Some(directive) = line.strip_prefix("#!") {
            let now = sim.now();
            let mut words = directive.split_whitespace();
            match (words.next(), words.next()) {
                (Some("on"), Some(target)) => match Fqdn::parse(target) {
                    Ok(f) if sim.topology().pools.contains_key(&f) || sim.topology().edges.contains_key(&f) => {
                        on = RunOn::Pool(f);
                        result(true, None, None, now);
                    }
                    Ok(f) => {
                        on = RunOn::Server(f);
                        result(true, None, None, now);
                    }
                    Err(e) => result(false, Some(e.to_string()), None, now),
                },
                (Some("wait"), Some(d)) => match Span::parse(d) {
                    Ok(d) => {
                        sim.advance_to(now.plus(d));
                        result(true, None, None, sim.now());
                    }
                    Err(e) => result(false, Some(e.to_string()), None, now),
                },
                (Some("fault"), Some(f)) => match Fault::parse(f).and_then(|f| f.check(sim.topology()).map(|_| f)) {
                    Ok(f) => {
                        sim.inject(&f);
                        result(true, None, None, now);
                    }
                    Err(e) => result(false, Some(e), None, now),
                },
                _ => result(false, Some("unknown directive; use `#! on <fqdn>`, `#! wait <duration>` or `#! fault <ACTION:TARGET>`".into()), None, now),
            }
            continue;
        }
        let inv = match parse_line(line, &catalog::is_switch) {
            Ok(None) => continue,
            Ok(Some(inv)) => inv,
            Err(e) => {
                result(false, Some(e.0), None, sim.now());
                continue;
            }
        };
        match sim.run(&on, &inv) {
            Ok(v) => result(true, None, (!v.is_null()).then_some(v), sim.now()),
            Err(Failure::Cmdlet(e)) => result(false, Some(e.to_string()), None, sim.now()),
            Err(f) => result(false, Some(f.to_string()), None, sim.now()),
        }
    }
    out
}

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
