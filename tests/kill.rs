//! SIGKILL of the real `lyncdr run --manifests` process (issue 9): the site-loss story with
//! automatic failover, against `lyncdr sim serve`, killed while its k-th state-changing cmdlet
//! runs and right after one returned, then started again on the same state directory. Each run
//! must converge to where a run without a kill ends, with every state-changing cmdlet executed
//! exactly as often (exactly once per purpose). `tests/crash.rs` covers every step boundary in
//! process; this test checks that a real process death (no destructors, no flush) keeps the
//! same promise.

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use processes::{BIN, SimServe, root};

const KEY: &str = "lync_contoso";

fn manifests(dir: &Path) -> PathBuf {
    let text = include_str!("../examples/two-site/desired.yaml")
        .replace("    approval: Automatic\n", "    approval: Automatic\n    pollInterval: 5s\n")
        // Failback is not part of this story.
        .replace("automaticFailback: {enabled: true, stabilityPeriod: 10m}", "automaticFailback: {enabled: false}");
    let p = dir.join("desired.yaml");
    std::fs::write(&p, text).expect("manifests");
    p
}

fn start(m: &Path, state: &Path, sim: &str) -> Child {
    Command::new(BIN)
        .args(["run", "--manifests", &m.to_string_lossy(), "--state-dir", &state.to_string_lossy(), "--simulator", sim])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lyncdr run")
}

fn kill(child: &mut Child) {
    // SIGKILL: no destructor, no flush, no signal handler runs.
    let _ = child.kill();
    let _ = child.wait();
}

/// Converged: Dallas's users on Seattle, every user served, SIP and XMPP federation through
/// Seattle, and
/// the status file's plan has nothing left to run (the CMS stays in Seattle until Dallas
/// returns: that blocker remains).
fn converged(sim: &SimServe, state: &Path) -> bool {
    let s = sim.state();
    let served = s["pools"]["pool01.dal.contoso.com"]["servedBy"] == "pool01.sea.contoso.com" && s["allUsersServed"] == true;
    let done =
        std::fs::read(state.join("status.json")).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()).is_some_and(|v| {
            let st = &v["deployments"][KEY]["status"];
            st["plan"]["steps"].as_array().is_none_or(|s| s.is_empty())
                && st["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Stalled" && c["status"] == "False"))
        });
    // Federation moves after the pool failover (issue 10): XMPP ends on Seattle too, not only SIP.
    served
        && done
        && s["federation"]["sipEdgePool"] == "edge01.sea.contoso.com"
        && s["federation"]["xmppEdgePool"] == "edge01.sea.contoso.com"
}

/// When to kill: while the k-th state-changing call runs, or right after it returned.
#[derive(Debug, Clone, Copy)]
enum When {
    Running(usize),
    Returned(usize),
}

/// Runs the story; returns the state-changing calls and whether the kill happened.
fn story(when: Option<When>) -> (Vec<(String, String)>, bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let m = manifests(dir.path());
    let sim = SimServe::start(&root().join("examples/two-site/scenario.yaml"), "120");
    sim.fault("down:site/Dallas");
    let mut child = start(&m, &state, &sim.url);
    let mut killed = false;
    let mut quiet: Option<(Instant, usize)> = None;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        assert!(Instant::now() < deadline, "{when:?}: no convergence in 4 minutes; calls so far: {:#?}", sim.changes());
        if let Some(w) = when.filter(|_| !killed) {
            let log: Vec<serde_json::Value> =
                sim.log().into_iter().filter(|r| r["mutating"] == true && r["whatIf"] == false && r["outcome"] != "unreachable").collect();
            let hit = match w {
                When::Running(k) => log.get(k - 1).is_some_and(|r| r["outcome"] == "running"),
                When::Returned(k) => log.get(k - 1).is_some_and(|r| r["outcome"] != "running"),
            };
            // Past the point without seeing it (the call was too short to catch running): kill now.
            let missed = matches!(w, When::Running(k) if log.len() > k);
            if hit || missed {
                kill(&mut child);
                killed = true;
                child = start(&m, &state, &sim.url);
            }
        }
        // The status file is written once per round, so the end state must also hold still: no
        // new call for a while (the Edge setup after the federation moves runs minutes later).
        if converged(&sim, &state) && (killed || when.is_none()) {
            let calls = sim.changes().len();
            match quiet {
                Some((since, n)) if n == calls && since.elapsed() >= Duration::from_secs(4) => break,
                Some((_, n)) if n == calls => {}
                _ => quiet = Some((Instant::now(), calls)),
            }
        } else {
            quiet = None;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    kill(&mut child);
    (sim.changes(), killed)
}

fn counts(calls: &[(String, String)]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.clone()).or_insert(0) += 1;
    }
    out
}

#[test]
fn sigkill_of_the_standalone_process_neither_repeats_nor_skips_a_step() {
    let (base, _) = story(None);
    assert!(base.len() >= 10, "the site-loss story makes at least 10 changes: {base:#?}");
    let base = counts(&base);
    let n = base.values().sum::<usize>();
    let points: Vec<When> = [1, n / 4, n / 2, 3 * n / 4, n]
        .into_iter()
        .filter(|k| *k >= 1)
        .map(When::Running)
        .chain([When::Returned(2), When::Returned(n / 2)])
        .collect();
    let mut rows = String::new();
    rows.push_str("| kill | state-changing calls | as without a kill |\n|---|---:|---|\n");
    for w in points {
        let (calls, killed) = story(Some(w));
        assert!(killed, "{w:?}: the process was never killed");
        let got = counts(&calls);
        assert_eq!(got, base, "{w:?}: calls differ from the run without a kill");
        rows.push_str(&format!("| {w:?} | {} | yes |\n", calls.len()));
    }
    common::reliability_section("sigkill-standalone", &rows);
}
