//! The standalone process measured from outside: `lyncdr sim serve` and `lyncdr run --manifests`
//! started as child processes of this one (the operator's process alone, not the simulator, is
//! what is measured), two sites of 50 or 100 converged pairs with 10,000 users placed by
//! `UserPlacement`s. Once every deployment is converged, a window of polls is watched: the
//! process's CPU time (`/proc/<pid>/stat`), the simulator's calls (its call log) per poll, the
//! process's peak resident memory (`VmHWM`). The poll interval is the shortest a spec allows (5 s)
//! so that a short window holds many polls; the hourly figures are per-poll figures times the
//! polls of an hour at the default interval (1 minute).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchError;
use super::procs::{Kid, err, free_port, log, sim_serve};
use super::scale::scenario_yaml;
use crate::model::Fqdn;
use crate::model::sip::generated_user;

/// Polls per hour at the default poll interval (1 minute).
pub const POLLS_PER_HOUR: f64 = 60.0;
/// Peak RSS goal of the operator process (MiB).
pub const RSS_GOAL_MIB: f64 = 40.0;

/// The process's figures at one size.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRow {
    pub pairs: usize,
    pub users: usize,
    /// Wall time from start to every deployment converged.
    pub converge_s: f64,
    /// Polls watched while idle.
    pub polls: usize,
    /// Backend calls (HTTP round trips to the simulator) per idle poll.
    pub calls_per_poll: f64,
    /// State-changing calls while idle (goal 0).
    pub changes_while_idle: usize,
    /// CPU seconds per idle poll, and per hour at the default interval.
    pub cpu_s_per_poll: f64,
    pub cpu_s_per_hour: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
}

/// An HTTP client and the runtime it runs on.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// The manifests: the deployment (polling every 5 s), `pairs` PoolPairs at home, and one
/// `UserPlacement` per Front End pool naming its users where they are.
fn manifests(pairs: usize, users_per_pool: u32, url: &str) -> Result<String, BenchError> {
    let mut t = format!(
        "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: bench, namespace: lync}}\nspec:\n  connection: {{transport: Simulator, simulatorUrl: '{url}'}}\n  centralManagementStore: {{activePool: pool0.dal.contoso.com}}\n  policy: {{pollInterval: 5s, concurrency: 4}}\n"
    );
    for i in 0..pairs {
        t.push_str(&format!(
            "---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: pair{i}, namespace: lync}}\nspec:\n  deployment: bench\n  pools: [pool{i}.dal.contoso.com, pool{i}.sea.contoso.com]\n  failedOver: []\n"
        ));
        for site in ["dal", "sea"] {
            let pool = Fqdn::parse(&format!("pool{i}.{site}.contoso.com")).map_err(|e| err("bench pool name", e))?;
            let users: Vec<String> = (1..=users_per_pool).map(|k| format!("'{}'", generated_user(&pool, k))).collect();
            t.push_str(&format!(
                "---\napiVersion: lyncdr.io/v1alpha1\nkind: UserPlacement\nmetadata: {{name: home-{i}-{site}, namespace: lync}}\nspec:\n  deployment: bench\n  targetPool: {pool}\n  users: [{}]\n",
                users.join(", ")
            ));
        }
    }
    Ok(t)
}

/// CPU seconds (user + system) and peak RSS (MiB) of a process.
pub(super) fn proc_stat(pid: u32) -> Result<(f64, f64), BenchError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| err("reading /proc/<pid>/stat", e))?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name; 100 ticks/s.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| err("reading /proc/<pid>/status", e))?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    Ok((cpu, hwm))
}

/// The simulator's call log: (observations, calls, state-changing calls).
fn sim_calls(http: &Http, url: &str) -> Result<(usize, usize, usize), BenchError> {
    let log: Vec<serde_json::Value> = http
        .rt
        .block_on(async { http.client.get(format!("{url}/v1/log")).send().await?.json().await })
        .map_err(|e| err("reading the simulator's call log", e))?;
    let observations = log.iter().filter(|r| r["cmdlet"] == "Get-CsSipDomain").count();
    let changes = log.iter().filter(|r| r["mutating"] == true && r["whatIf"] != true).count();
    Ok((observations, log.len(), changes))
}

/// Whether every deployment of the status file is converged.
fn converged(status: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(status) else { return false };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { return false };
    let Some(deps) = v["deployments"].as_object() else { return false };
    !deps.is_empty()
        && deps
            .values()
            .all(|d| d["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")))
}

/// Starts the simulator and the standalone process for `pairs` pairs, waits for convergence,
/// then watches `window` of idle polls.
pub fn measure(pairs: usize, users: usize, window: Duration) -> Result<LiveRow, BenchError> {
    let exe = std::env::current_exe().map_err(|e| err("finding the lyncdr executable", e))?;
    let dir = std::env::temp_dir().join(format!("lyncdr-bench-{}-{pairs}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("manifests")).map_err(|e| err("creating the bench directory", e))?;
    let users_per_pool = (users / (2 * pairs)).max(1) as u32;
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, scenario_yaml(pairs, users_per_pool, false)).map_err(|e| err("writing the scenario", e))?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    std::fs::write(dir.join("manifests/bench.yaml"), manifests(pairs, users_per_pool, &url)?)
        .map_err(|e| err("writing the manifests", e))?;
    let _sim = sim_serve(&exe, &dir, &scenario, port)?;
    let http = Http {
        rt: tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| err("runtime", e))?,
        client: reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(|e| err("HTTP client", e))?,
    };
    let up = Instant::now();
    while http.rt.block_on(async { http.client.get(format!("{url}/healthz")).send().await }).is_err() {
        if up.elapsed() > Duration::from_secs(30) {
            return Err(BenchError(format!("lyncdr sim serve did not start (see {})", dir.join("sim.err").display())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = dir.join("status.json");
    let start = Instant::now();
    let op = Kid(Command::new(&exe)
        .args(["run", "--log-format", "text", "--manifests"])
        .arg(dir.join("manifests"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--status-file")
        .arg(&status)
        .stdin(Stdio::null())
        .stdout(log(&dir, "run.log")?)
        .stderr(log(&dir, "run.err")?)
        .spawn()
        .map_err(|e| err("starting lyncdr run", e))?);
    let pid = op.0.id();
    while !converged(&status) {
        if start.elapsed() > Duration::from_secs(300) {
            let mut tail = String::new();
            let _ = std::fs::File::open(dir.join("run.err")).and_then(|mut f| f.read_to_string(&mut tail));
            return Err(BenchError(format!(
                "{pairs} pairs did not converge in 5 minutes: {}",
                tail.chars().rev().take(400).collect::<String>().chars().rev().collect::<String>()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let converge_s = start.elapsed().as_secs_f64();
    let (obs0, calls0, changes0) = sim_calls(&http, &url)?;
    let (cpu0, _) = proc_stat(pid)?;
    std::thread::sleep(window);
    let (obs1, calls1, changes1) = sim_calls(&http, &url)?;
    let (cpu1, hwm) = proc_stat(pid)?;
    drop(op);
    let _ = std::fs::remove_dir_all(&dir);
    let polls = obs1.saturating_sub(obs0);
    let per = |x: f64| if polls == 0 { 0.0 } else { x / polls as f64 };
    Ok(LiveRow {
        pairs,
        users: users_per_pool as usize * 2 * pairs,
        converge_s,
        polls,
        calls_per_poll: per(calls1.saturating_sub(calls0) as f64),
        changes_while_idle: changes1.saturating_sub(changes0),
        cpu_s_per_poll: per(cpu1 - cpu0),
        cpu_s_per_hour: per(cpu1 - cpu0) * POLLS_PER_HOUR,
        peak_rss_mib: hwm,
    })
}

/// The sizes of the table: 50 pairs (idle cost) and 100 pairs (footprint), 10,000 users each.
pub fn run(quick: bool) -> Result<Vec<LiveRow>, BenchError> {
    if quick {
        return Ok(vec![measure(5, 1_000, Duration::from_secs(12))?]);
    }
    Ok(vec![measure(50, 10_000, Duration::from_secs(60))?, measure(100, 10_000, Duration::from_secs(60))?])
}

/// Goals missed.
pub fn misses(rows: &[LiveRow]) -> Vec<String> {
    let mut out = vec![];
    for r in rows {
        if r.peak_rss_mib > RSS_GOAL_MIB && r.pairs >= 100 {
            out.push(format!(
                "operator footprint at {} pairs and {} users: peak RSS {:.1} MiB (goal < {RSS_GOAL_MIB} MiB)",
                r.pairs, r.users, r.peak_rss_mib
            ));
        }
        if r.changes_while_idle > 0 {
            out.push(format!("{} pairs: {} state-changing calls while converged (goal 0)", r.pairs, r.changes_while_idle));
        }
    }
    out
}

pub fn render(rows: &[LiveRow]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| pairs | users | converged after | idle polls | calls per poll | changes while idle | CPU per poll | CPU per hour (1-min poll) | peak RSS |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} s | {} | {:.0} | {} | {:.3} s | {:.1} s | {:.1} MiB |",
            r.pairs,
            r.users,
            r.converge_s,
            r.polls,
            r.calls_per_poll,
            r.changes_while_idle,
            r.cpu_s_per_poll,
            r.cpu_s_per_hour,
            r.peak_rss_mib
        );
    }
    s
}
