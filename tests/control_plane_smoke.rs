//! Smoke test of the real control plane (tests/support/control_plane.rs) with the real kubectl:
//! the committed CRDs install and are served, and RBAC is enforced for a restricted identity.
//!
//! Skips (passes with a printed reason) without `KUBEBUILDER_ASSETS` or without kubectl.
//! Run: `KUBEBUILDER_ASSETS="$(bash scripts/control-plane.sh)" cargo test --release --test control_plane_smoke -- --nocapture`

#[path = "support/control_plane.rs"]
mod control_plane;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use control_plane::ControlPlane;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::ListParams;

fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")
}

/// The CRD names (`poolpairs.lyncdr.io`, ...) of the committed manifests, from their file names.
fn committed_crds() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(crds_dir())
        .expect("crds/")
        .map(|entry| entry.expect("crds/ entry").file_name().to_string_lossy().into_owned())
        .filter_map(|file| file.strip_suffix(".yaml").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The description of `spec.failedOver` in the committed PoolPair CRD, as `kubectl explain` must
/// show it.
fn failed_over_description() -> String {
    let path = crds_dir().join("poolpairs.lyncdr.io.yaml");
    let text = std::fs::read_to_string(&path).expect("poolpairs CRD");
    let crd: serde_json::Value = serde_saphyr::from_str(&text).expect("CRD YAML");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["failedOver"]["description"]
        .as_str()
        .expect("spec.failedOver has a description")
        .to_owned()
}

/// Runs kubectl with a kubeconfig from the control plane's temp dir, and a discovery cache there
/// too: ~/.kube/cache could hold a stale entry for a reused port.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let cache = kubeconfig.with_file_name("kubectl-cache");
    let output = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .output()
        .expect("run kubectl");
    eprintln!(
        "$ kubectl {} -> {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs kubectl until `done` holds for its output, for up to 30 s, and returns the last output.
fn kubectl_until(kubeconfig: &Path, args: &[&str], done: impl Fn(&Output) -> bool) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = kubectl(kubeconfig, args);
        if done(&output) || Instant::now() >= deadline {
            return output;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_installs_the_crds_and_rbac_is_enforced() {
    let Some(plane) = ControlPlane::start().await.unwrap_or_else(|e| panic!("control plane: {e}")) else {
        return;
    };
    if Command::new("kubectl").arg("version").arg("--client").output().is_err() {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    eprintln!("control plane started in {:.1} s", plane.startup_time().as_secs_f64());
    let admin = plane.kubeconfig_path();
    // Every check runs and the test fails at the end with the whole list, so that one failure
    // does not hide the state of the others.
    let mut failures: Vec<String> = Vec::new();

    let apply = kubectl(admin, &["apply", "-f", &crds_dir().display().to_string()]);
    if !apply.status.success() {
        failures.push(format!("kubectl apply -f crds/ failed:\n{}", text(&apply)));
    }

    let wait = kubectl(admin, &["wait", "--for=condition=established", "--timeout=60s", "crd/poolpairs.lyncdr.io"]);
    if !wait.status.success() {
        failures.push(format!("PoolPair CRD not established:\n{}", text(&wait)));
    }

    let expected = committed_crds();
    assert_eq!(expected.len(), 4, "crds/ should hold four CRDs: {expected:?}");
    let get = kubectl(admin, &["get", "crd", "-o", "name"]);
    let served: Vec<String> = String::from_utf8_lossy(&get.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("customresourcedefinition.apiextensions.k8s.io/"))
        .filter(|name| name.ends_with(".lyncdr.io"))
        .map(str::to_owned)
        .collect();
    if served != expected {
        failures.push(format!("kubectl get crd lists {served:?}, expected {expected:?}"));
    }

    // The OpenAPI document that `kubectl explain` reads is republished a moment after the CRD
    // is established, so retry for a while.
    let description = failed_over_description();
    let explained = |o: &Output| o.status.success() && text(o).contains(&description);
    let explain = kubectl_until(admin, &["explain", "poolpair.spec.failedOver"], explained);
    if !explained(&explain) {
        failures.push(format!("kubectl explain poolpair.spec.failedOver lacks {description:?}:\n{}", text(&explain)));
    }

    // The admin (system:masters) may list PoolPairs, a restricted identity may not: RBAC is on.
    let admin_get = kubectl(admin, &["get", "poolpairs", "-A"]);
    if !admin_get.status.success() {
        failures.push(format!("admin cannot list PoolPairs:\n{}", text(&admin_get)));
    }
    let user = "system:serviceaccount:lyncdr-smoke:nobody";
    let restricted = plane.kubeconfig_for_user(user, &["lyncdr-smoke"]);
    let whoami = kubectl(&restricted, &["auth", "whoami", "-o", "json"]);
    let identity: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap_or(serde_json::Value::Null);
    let user_info = &identity["status"]["userInfo"];
    if user_info["username"] != user || !user_info["groups"].as_array().is_some_and(|g| g.iter().any(|g| g == "lyncdr-smoke")) {
        failures.push(format!("the restricted certificate does not authenticate as {user} in group lyncdr-smoke:\n{}", text(&whoami)));
    }
    let denied = kubectl(&restricted, &["get", "poolpairs"]);
    let denied_text = text(&denied);
    if denied.status.success() || !denied_text.contains("Forbidden") || !denied_text.contains(user) {
        failures.push(format!("expected Forbidden for {user} on `kubectl get poolpairs`, got ({}):\n{denied_text}", denied.status));
    }

    // A ServiceAccount-like identity gets what a binding to the ServiceAccount grants, and no
    // more: the way later tests will run the operator with the Helm chart's RBAC.
    let reader = plane.kubeconfig_for_service_account("lyncdr-smoke", "reader");
    for args in [
        &["create", "clusterrole", "lyncdr-smoke-reader", "--verb=get,list,watch", "--resource=poolpairs.lyncdr.io"][..],
        &[
            "create",
            "clusterrolebinding",
            "lyncdr-smoke-reader",
            "--clusterrole=lyncdr-smoke-reader",
            "--serviceaccount=lyncdr-smoke:reader",
        ][..],
    ] {
        let created = kubectl(admin, args);
        if !created.status.success() {
            failures.push(format!("kubectl {}:\n{}", args.join(" "), text(&created)));
        }
    }
    let can = |kubeconfig: &Path, verb: &str, resource: &str| {
        let output = kubectl(kubeconfig, &["auth", "can-i", verb, resource, "-A"]);
        String::from_utf8_lossy(&output.stdout).trim() == "yes"
    };
    let reader_list = kubectl(&reader, &["get", "poolpairs", "-A"]);
    if !reader_list.status.success() {
        failures.push(format!("the ServiceAccount-like identity cannot list PoolPairs despite its binding:\n{}", text(&reader_list)));
    }
    if !can(&reader, "watch", "poolpairs.lyncdr.io") || can(&reader, "delete", "poolpairs.lyncdr.io") || can(&reader, "list", "secrets") {
        failures.push("`kubectl auth can-i` for the ServiceAccount-like identity does not match its binding".to_owned());
    }

    // The kube-rs client the operator's tests will use sees the same CRDs.
    let crds: Api<CustomResourceDefinition> = Api::all(plane.client().await);
    match crds.list(&ListParams::default()).await {
        Ok(list) => {
            let n = list.items.iter().filter(|c| c.spec.group == "lyncdr.io").count();
            if n != served.len() {
                failures.push(format!("kube-rs lists {n} lyncdr.io CRDs, kubectl {}", served.len()));
            }
        }
        Err(e) => failures.push(format!("kube-rs cannot list CRDs: {e}")),
    }

    assert!(failures.is_empty(), "{} check(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}
