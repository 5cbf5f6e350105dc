//! The operator e2e tests' set-up and observation: the shared control plane with the CRDs
//! installed, a log directory per test, polling with a deadline, LyncDeployment and PoolPair
//! status read through kubectl, Events, and `kubectl --watch` recorders.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::control_plane::ControlPlane;
use super::kubectl::Kubectl;
use super::operator_processes::Proc;

pub const BIN: &str = env!("CARGO_BIN_EXE_lyncdr");
pub const DAL: &str = "pool01.dal.contoso.com";
pub const SEA: &str = "pool01.sea.contoso.com";
pub const EDGE_DAL: &str = "edge01.dal.contoso.com";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenario() -> String {
    root().join("examples/two-site/scenario.yaml").display().to_string()
}

/// One test's context: the shared control plane, admin kubectl, and a directory for logs (kept,
/// and its path printed, when the test fails).
pub struct Env {
    pub plane: &'static ControlPlane,
    pub kubectl: Kubectl,
    pub dir: Option<tempfile::TempDir>,
}

impl Env {
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && std::thread::panicking()
        {
            eprintln!("logs kept in {}", dir.keep().display());
        }
    }
}

/// The shared control plane with the CRDs installed, or `None` (printed) when the test must skip.
pub async fn setup(test: &str) -> Option<Env> {
    let Some(plane) = ControlPlane::shared().await else {
        eprintln!("{test}: skipped (no control plane, see above)");
        return None;
    };
    if Command::new("kubectl").args(["version", "--client"]).output().is_err() {
        eprintln!("{test}: skipped, kubectl is not installed");
        return None;
    }
    let kubectl = Kubectl::new(plane.kubeconfig_path());
    install_crds(&kubectl).await;
    let dir = tempfile::Builder::new().prefix(&format!("lyncdr-e2e-{test}-")).tempdir().expect("temp dir");
    Some(Env { plane, kubectl, dir: Some(dir) })
}

/// `kubectl apply -f crds/` once per test binary, waiting until the four CRDs are established.
pub async fn install_crds(kubectl: &Kubectl) {
    static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CRDS.get_or_init(|| async {
        let crds = root().join("crds").display().to_string();
        let out = kubectl.must(&["apply", "-f", &crds]);
        for kind in ["lyncdeployments", "poolpairs", "userplacements", "conferencecontentrestores"] {
            assert!(out.contains(&format!("customresourcedefinition.apiextensions.k8s.io/{kind}.lyncdr.io")), "{out}");
        }
        kubectl.must(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/lyncdeployments.lyncdr.io",
            "crd/poolpairs.lyncdr.io",
            "crd/userplacements.lyncdr.io",
            "crd/conferencecontentrestores.lyncdr.io",
        ]);
    })
    .await;
}

/// Polls `probe` until it returns `Ok`, for at most `timeout`; panics with its last `Err`.
pub fn poll<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(t) => {
                eprintln!("[{:>5.1} s] {what}", start.elapsed().as_secs_f64());
                return t;
            }
            Err(last) => {
                assert!(start.elapsed() < timeout, "timed out after {} s waiting for {what}; last seen:\n{last}", timeout.as_secs());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn is_true(obj: &Value, type_: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == "True")
}

/// Ready=True for the current generation.
pub fn ready(obj: &Value) -> bool {
    condition(obj, "Ready").is_some_and(|c| c["status"] == "True" && c["observedGeneration"] == obj["metadata"]["generation"])
}

pub fn conditions_line(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={} ({}: {})",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?"),
                        c["reason"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        })
        .unwrap_or_else(|| "no conditions".into())
}

pub fn summary(dep: &Value, pair: &Value) -> String {
    format!(
        "LyncDeployment conditions:\n  {}\nobserved: {}\nplan: {}\njournal: {}\nPoolPair serving: {} conditions:\n  {}",
        conditions_line(dep),
        dep["status"]["observed"],
        dep["status"]["plan"],
        dep["status"]["journal"]
            .as_array()
            .map(|j| j.iter().map(|e| format!("{} {} by {}", e["step"], e["outcome"], e["by"])).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        pair["status"]["serving"],
        conditions_line(pair)
    )
}

pub fn serving(a: &str, b: &str) -> String {
    format!("{DAL}→{a}, {SEA}→{b}")
}

pub fn get_dep(k: &Kubectl, ns: &str) -> Value {
    k.json(&["get", "lyncdeployment", "contoso", "-n", ns])
}

pub fn get_pair(k: &Kubectl, ns: &str) -> Value {
    k.json(&["get", "poolpair", "dal-sea", "-n", ns])
}

/// Waits until the pair's users are served as `want`, and the LyncDeployment (and the pair) are
/// Ready for their current generation, with `extra` holding too.
pub fn wait_converged(
    k: &Kubectl,
    ns: &str,
    want: &str,
    timeout: Duration,
    extra: impl Fn(&Value) -> Result<(), String>,
) -> (Value, Value) {
    poll(&format!("{ns}: {want}, Ready"), timeout, || {
        let dep = get_dep(k, ns);
        let pair = get_pair(k, ns);
        let ok = pair["status"]["serving"] == want && ready(&dep) && ready(&pair);
        match (ok, extra(&dep)) {
            (true, Ok(())) => Ok((dep, pair)),
            (_, e) => Err(format!("{}\nextra: {e:?}", summary(&dep, &pair))),
        }
    })
}

/// Settled with a plan that cannot proceed only because the CMS cannot return to
/// `spec.centralManagementStore.activePool` (its pool is down): Ready=False, reason Blocked,
/// that one blocker, no step left, not Stalled.
pub fn blocked_on_cms_only(dep: &Value) -> bool {
    let blockers = dep["status"]["plan"]["blockers"].as_array().cloned().unwrap_or_default();
    condition(dep, "Ready").is_some_and(|c| c["status"] == "False" && c["reason"] == "Blocked")
        && blockers.len() == 1
        && blockers[0]["reason"].as_str().is_some_and(|r| r.contains("spec.centralManagementStore.activePool"))
        && dep["status"]["plan"]["steps"].as_array().is_none_or(Vec::is_empty)
        && !is_true(dep, "Stalled")
        && !is_true(dep, "Reconciling")
        && dep["status"]["observedGeneration"] == dep["metadata"]["generation"]
}

/// As [`wait_converged`], but the LyncDeployment may also be [`blocked_on_cms_only`].
pub fn wait_settled(k: &Kubectl, ns: &str, want: &str, timeout: Duration, extra: impl Fn(&Value) -> Result<(), String>) -> (Value, Value) {
    poll(&format!("{ns}: {want}, settled"), timeout, || {
        let dep = get_dep(k, ns);
        let pair = get_pair(k, ns);
        let ok = pair["status"]["serving"] == want && (ready(&dep) || blocked_on_cms_only(&dep)) && ready(&pair);
        match (ok, extra(&dep)) {
            (true, Ok(())) => Ok((dep, pair)),
            (_, e) => Err(format!("{}\nextra: {e:?}", summary(&dep, &pair))),
        }
    })
}

/// The example desired state (examples/two-site/desired.yaml) in namespace `ns`, pointing at the
/// simulator, polling every 5 s (the example's default of 1 min is meant for a real deployment;
/// at 600x a minute of wall-clock time is 10 simulated hours), running `concurrency` steps at
/// once (the example says 4).
///
/// Test 3 runs the example as it is (four steps at once): it found an engine bug where an
/// observation that overlapped a finishing step wrote back the operator memory it started from,
/// losing what the step remembered (an Edge setup never ran; a Response Group import ran twice).
/// The RBAC test runs one step at a time, so both paths of the executor are exercised.
pub fn example_desired(ns: &str, sim_url: &str, concurrency: u32) -> String {
    let text = fs::read_to_string(root().join("examples/two-site/desired.yaml")).expect("example");
    let swap = |text: String, from: &str, to: &str, n: usize| {
        assert_eq!(text.matches(from).count(), n, "examples/two-site/desired.yaml should hold {from:?} {n} time(s)");
        text.replace(from, to)
    };
    let text = swap(text, "simulatorUrl: http://127.0.0.1:8080", &format!("simulatorUrl: {sim_url}"), 1);
    let text = swap(text, "namespace: lync", &format!("namespace: {ns}"), 2);
    let text = swap(text, "    concurrency: 4\n", &format!("    concurrency: {concurrency}\n"), 1);
    swap(text, "    approval: Automatic\n", "    approval: Automatic\n    pollInterval: 5s\n", 1)
}

/// Events of the namespace (core/v1 view of the operator's events.k8s.io Events), oldest first.
pub fn events(k: &Kubectl, ns: &str) -> Vec<Value> {
    let mut items = k.json(&["get", "events", "-n", ns])["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|e| e["eventTime"].as_str().or(e["firstTimestamp"].as_str()).unwrap_or_default().to_string());
    items
}

pub fn reasons(events: &[Value]) -> BTreeSet<String> {
    events.iter().filter_map(|e| e["reason"].as_str().map(str::to_string)).collect()
}

pub fn event_lines(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} [{}] {}",
                e["reason"].as_str().unwrap_or_default(),
                e["reportingInstance"].as_str().unwrap_or_default(),
                e["count"],
                e["message"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// `kubectl get ... --watch -o json` in the background: every version of an object, so that
/// states lasting less than a polling interval (a plan running) are seen too.
pub struct Watch {
    pub proc: Proc,
}

impl Watch {
    pub fn start(k: &Kubectl, dir: &Path, name: &str, args: &[&str]) -> Watch {
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={}", k.kubeconfig.display()))
            .arg(format!("--cache-dir={}", k.cache.display()))
            .args(args)
            .args(["--watch", "-o", "json"]);
        Watch { proc: Proc::spawn(&format!("kubectl watch {name}"), cmd, dir.join(format!("watch-{name}.json")), false) }
    }

    /// Every version seen so far.
    pub fn versions(&self) -> Vec<Value> {
        let text = self.proc.log_text();
        serde_json::Deserializer::from_str(&text).into_iter::<Value>().map_while(Result::ok).collect()
    }
}
