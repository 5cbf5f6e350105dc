//! `lyncdr bench --quick` end to end (issue 13): the harness measures what it claims. The site-loss
//! RTO is never below its lower bound and the recovery beats the sequential runbook once pairs
//! can fail over at once; every user placement converges; the standalone process stays idle when
//! converged (no state-changing call); and, on the real apiserver of the tests, the operator
//! reacts to `kubectl apply` and writes nothing to the API while idle. Without the control-plane
//! binaries the cluster part is skipped (and required when `LYNCDR_REQUIRE_CONTROL_PLANE=1`).
//!
//! `LYNCDR_BENCH_FULL=1` runs the full bench instead (about ten minutes) and prints its tables:
//! how the figures of docs/benchmarks.md are taken (`scripts/bench.sh`).

#[path = "support/control_plane.rs"]
mod control_plane;

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lyncdr");

#[test]
fn quick_bench_measures_every_part() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cp = rt.block_on(control_plane::ControlPlane::start()).expect("control plane");
    let charts = tempfile::tempdir().unwrap();
    if std::env::var("LYNCDR_BENCH_FULL").is_ok_and(|v| v == "1") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-charts");
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["bench", "--charts"]).arg(&dir);
        if let Some(cp) = &cp {
            cmd.arg("--kubeconfig").arg(cp.kubeconfig_path());
        }
        let out = cmd.output().unwrap();
        println!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "lyncdr bench failed: {}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["bench", "--quick", "--format", "json", "--charts"]).arg(charts.path());
    if let Some(cp) = &cp {
        cmd.arg("--kubeconfig").arg(cp.kubeconfig_path());
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "lyncdr bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());

    let rows = r["siteLoss"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let (rto, bound, runbook) =
            (row["rtoS"].as_f64().unwrap(), row["lowerBoundS"].as_f64().unwrap(), row["runbookS"].as_f64().unwrap());
        assert!(bound > 300.0 && rto >= bound, "RTO {rto} s cannot beat its lower bound {bound} s");
        assert!(runbook >= bound, "one step after another ({runbook} s) is never faster than the longest chain ({bound} s)");
        assert!(row["converged"].as_bool().unwrap());
        let path = row["criticalPath"].as_array().unwrap();
        assert!(path.last().unwrap().as_str().unwrap().starts_with("pool-failover/"), "{path:?}");
    }
    assert!(rows[1]["speedUp"].as_f64().unwrap() > 1.5, "4 pairs fail over at once: {}", rows[1]);
    assert!(charts.path().join("site-loss-4-pairs.svg").exists());

    for p in r["placement"].as_array().unwrap() {
        assert_eq!(p["converged"], true, "{p}");
        assert_eq!(
            p["moves"].as_u64().unwrap(),
            p["users"].as_u64().unwrap().div_ceil(p["batch"].as_u64().unwrap()),
            "each batch once: {p}"
        );
    }
    for p in r["process"].as_array().unwrap() {
        assert_eq!(p["changesWhileIdle"], 0, "{p}");
        assert!(p["polls"].as_u64().unwrap() >= 1 && p["peakRssMib"].as_f64().unwrap() > 1.0, "{p}");
    }
    match (&cp, &r["kube"]) {
        (Some(_), k) => {
            assert_eq!(k["idleWrites"], 0, "an idle operator writes nothing: {k}");
            assert!(
                k["watchP50Ms"].as_f64().unwrap() > 0.0 && k["operatorP50Ms"].as_f64().unwrap() >= k["watchP50Ms"].as_f64().unwrap() * 0.5,
                "{k}"
            );
        }
        (None, k) => {
            assert!(k.is_null());
            assert!(std::env::var("LYNCDR_REQUIRE_CONTROL_PLANE").is_err(), "the control plane is required but its binaries are missing");
        }
    }
}
