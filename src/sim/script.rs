//! Rehearsal scripts (`lyncdr sim run`): PowerShell, one command per line, as a Lync admin
//! types it in the Lync Server Management Shell. Lines starting with `#!` are directives for the
//! rehearsal: `#! on <server or pool>` chooses where the following commands run (as if the admin
//! opened the shell there), `#! wait <duration>` lets simulated time pass, `#! fault
//! <ACTION:TARGET>` injects a fault.

use serde::Serialize;
use serde_json::Value;

use super::{Failure, Fault, Simulator};
use crate::model::{Fqdn, RunOn, Span, Stamp};
use crate::ps::{binder, parse_line};

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

/// Largest rehearsal script read (a runbook is a few hundred lines).
pub const MAX_SCRIPT_BYTES: u64 = 1 << 20;

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
                    Ok(d) if d > super::server::MAX_ADVANCE => result(
                        false,
                        Some(format!("#! wait {d}: at most {} at once; split the wait", super::server::MAX_ADVANCE)),
                        None,
                        now,
                    ),
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
                _ => result(
                    false,
                    Some("unknown directive; use `#! on <fqdn>`, `#! wait <duration>` or `#! fault <ACTION:TARGET>`".into()),
                    None,
                    now,
                ),
            }
            continue;
        }
        let inv = match parse_line(line, &binder::is_switch) {
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
