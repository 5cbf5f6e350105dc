//! The operator on a real Kubernetes apiserver (`lyncdr bench --kubeconfig FILE`): the CRDs are
//! applied with `kubectl`, `lyncdr sim serve` and `lyncdr run` (the operator, watching one new
//! namespace) start as child processes, the simulator behind a loopback TCP relay of this
//! process that notes when each request reaches it. Measured:
//! - **reaction latency**: from `kubectl apply` of a changed PoolPair to the first cmdlet the
//!   simulator receives, against a bare watch on the same object in this process, for the same
//!   applies (p50 and p99, and their ratio);
//! - **API traffic while idle**: kube API requests of the lyncdr resources and Events over a
//!   window of polls of converged pairs, from the apiserver's own `apiserver_request_total`
//!   (writes: goal 0);
//! - the operator process's peak RSS and CPU over the same window.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use serde::Serialize;

use super::BenchError;
use super::procs::{Kid, err, free_port, log, sim_serve};
use super::scale::scenario_yaml;
use crate::api::PoolPair;

/// Reaction-latency ratio goal (p50 and p99 of operator over bare watch).
pub const REACTION_RATIO_GOAL: f64 = 1.5;

/// The figures of one run on the cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeReport {
    pub pairs: usize,
    pub applies: usize,
    pub watch_p50_ms: f64,
    pub watch_p99_ms: f64,
    pub operator_p50_ms: f64,
    pub operator_p99_ms: f64,
    pub ratio_p50: f64,
    pub ratio_p99: f64,
    pub idle_window_s: f64,
    /// Calls the simulator received during the idle window.
    pub idle_backend_calls: usize,
    /// kube API requests by verb during the idle window (lyncdr.io resources and Events).
    pub idle_requests: BTreeMap<String, u64>,
    pub idle_writes: u64,
    pub idle_reads: u64,
    pub operator_cpu_s: f64,
    pub operator_peak_rss_mib: f64,
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, BenchError> {
    let out = Command::new("kubectl").env("KUBECONFIG", kubeconfig).args(args).output().map_err(|e| err("running kubectl", e))?;
    if !out.status.success() {
        return Err(BenchError(format!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A loopback relay to `upstream` that notes the instant each `POST /v1/invoke` arrives.
fn relay(upstream: u16, arrivals: Arc<Mutex<Vec<Instant>>>) -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| err("relay", e))?;
    let port = listener.local_addr().map_err(|e| err("relay", e))?.port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let (Ok(mut c_in), Ok(mut s_out), Ok(mut s_in), mut c_out) =
                (client.try_clone(), server.try_clone(), server.try_clone(), client)
            else {
                continue;
            };
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if buf[..n].starts_with(b"POST /v1/invoke")
                        && let Ok(mut a) = arrivals.lock()
                    {
                        a.push(Instant::now());
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    Ok(port)
}

/// The namespace and the deployment, polling every `poll`.
fn deployment(ns: &str, url: &str, poll: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: bench, namespace: {ns}}}\nspec:\n  connection: {{transport: Simulator, simulatorUrl: '{url}'}}\n  centralManagementStore: {{activePool: pool0.dal.contoso.com}}\n  policy: {{pollInterval: {poll}, concurrency: 4}}\n"
    )
}

/// PoolPair `i` (pair 0 with a grace period of `grace_minutes`, the one the applies change).
fn pair(ns: &str, i: usize, grace_minutes: usize) -> String {
    format!(
        "---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: pair{i}, namespace: {ns}}}\nspec:\n  deployment: bench\n  pools: [pool{i}.dal.contoso.com, pool{i}.sea.contoso.com]\n  failedOver: []\n  allowDataLoss: true\n  automaticFailover: {{enabled: true, gracePeriod: {grace_minutes}m}}\n"
    )
}

/// The kube API requests by verb of the lyncdr resources and Events, from the apiserver's metrics.
fn requests(kubeconfig: &Path) -> Result<BTreeMap<String, u64>, BenchError> {
    let text = kubectl(kubeconfig, &["get", "--raw", "/metrics"])?;
    let mut by_verb = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let ours = line.contains("group=\"lyncdr.io\"") || line.contains("resource=\"events\"");
        let (Some(labels), Some(value)) = (line.split_once('}').map(|x| x.0), line.rsplit_once(' ').map(|x| x.1)) else { continue };
        let Some(verb) = labels.split("verb=\"").nth(1).and_then(|v| v.split('"').next()) else { continue };
        if ours {
            *by_verb.entry(verb.to_string()).or_insert(0) += value.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    Ok(by_verb)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[k.min(v.len() - 1)]
}

fn ready(kubeconfig: &Path, ns: &str) -> bool {
    kubectl(kubeconfig, &["get", "lyncdeployment", "bench", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
        .is_ok_and(|s| s.trim() == "True")
}

/// Runs the operator on the cluster of `kubeconfig` with `pairs` converged pairs: `applies`
/// changed PoolPairs for the reaction latency, then `window` of idle polls.
pub fn measure(kubeconfig: &Path, pairs: usize, applies: usize, window: Duration) -> Result<KubeReport, BenchError> {
    let exe = std::env::current_exe().map_err(|e| err("finding the lyncdr executable", e))?;
    let ns = format!("lyncdr-bench-{}", std::process::id());
    let dir: PathBuf = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(dir.join("crds")).map_err(|e| err("creating the bench directory", e))?;
    for crd in crate::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let text = serde_json::to_string(&crd).map_err(|e| err("CRD", e))?;
        std::fs::write(dir.join("crds").join(format!("{name}.json")), text).map_err(|e| err("writing the CRDs", e))?;
    }
    let crd_dir = dir.join("crds").display().to_string();
    kubectl(kubeconfig, &["apply", "--server-side", "--force-conflicts", "-f", &crd_dir])?;
    kubectl(kubeconfig, &["wait", "--for", "condition=established", "--timeout=60s", "-f", &crd_dir])?;

    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, scenario_yaml(pairs, 10, false)).map_err(|e| err("writing the scenario", e))?;
    let sim_port = free_port()?;
    let _sim = sim_serve(&exe, &dir, &scenario, sim_port)?;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let relay_port = relay(sim_port, arrivals.clone())?;
    let url = format!("http://127.0.0.1:{relay_port}");
    // First a quiet operator (one poll an hour), so that the first cmdlet after an apply is its
    // reaction to it, not a poll; later every 5 s for the idle window.
    let desired = dir.join("desired.yaml");
    let all = |poll: &str| deployment(&ns, &url, poll) + &(0..pairs).map(|i| pair(&ns, i, 5)).collect::<String>();
    std::fs::write(&desired, all("1h")).map_err(|e| err("writing the manifests", e))?;
    let desired_arg = desired.display().to_string();
    kubectl(kubeconfig, &["apply", "-f", &desired_arg])?;
    let changed = dir.join("pair0.yaml");
    let changed_arg = changed.display().to_string();
    let metrics_port = free_port()?;
    let op = Kid(Command::new(&exe)
        .args([
            "run",
            "--log-format",
            "text",
            "--instance",
            "bench",
            "--watch-namespace",
            &ns,
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE")
        .stdin(Stdio::null())
        .stdout(log(&dir, "operator.log")?)
        .stderr(log(&dir, "operator.err")?)
        .spawn()
        .map_err(|e| err("starting the operator", e))?);
    let start = Instant::now();
    while !ready(kubeconfig, &ns) {
        if start.elapsed() > Duration::from_secs(180) {
            return Err(BenchError(format!("the operator did not converge {pairs} pairs in 3 minutes (logs in {})", dir.display())));
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // Reaction latency: a bare watch in this process and the operator, the same applies.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().map_err(|e| err("runtime", e))?;
    let seen: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let watch = {
        let seen = seen.clone();
        let kubeconfig = kubeconfig.to_path_buf();
        let ns = ns.clone();
        rt.spawn(async move {
            let Ok(config) = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).unwrap_or_default(),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            else {
                return;
            };
            let Ok(client) = kube::Client::try_from(config) else { return };
            let api: Api<PoolPair> = Api::namespaced(client, &ns);
            let stream = watcher::watcher(api, watcher::Config::default().fields("metadata.name=pair0"));
            futures::pin_mut!(stream);
            while let Some(Ok(ev)) = stream.next().await {
                if let watcher::Event::Apply(p) = ev
                    && let Ok(mut s) = seen.lock()
                {
                    s.push((p.metadata.generation.unwrap_or_default(), Instant::now()));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let (mut watch_ms, mut op_ms) = (vec![], vec![]);
    for k in 0..applies {
        // Quiet first: the reaction to the previous apply has finished.
        let settled = Instant::now();
        let mut last = arrivals.lock().map(|a| a.len()).unwrap_or_default();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = arrivals.lock().map(|a| a.len()).unwrap_or_default();
            if now == last || settled.elapsed() > Duration::from_secs(30) {
                break;
            }
            last = now;
        }
        let grace = if k % 2 == 0 { 6 } else { 5 };
        std::fs::write(&changed, pair(&ns, 0, grace)).map_err(|e| err("writing the manifests", e))?;
        let before_calls = arrivals.lock().map(|a| a.len()).unwrap_or_default();
        let before_seen = seen.lock().map(|s| s.len()).unwrap_or_default();
        let t0 = Instant::now();
        kubectl(kubeconfig, &["apply", "-f", &changed_arg])?;
        let deadline = t0 + Duration::from_secs(20);
        loop {
            let w = seen.lock().ok().and_then(|s| s.get(before_seen..).and_then(|x| x.first().map(|e| e.1)));
            let o = arrivals.lock().ok().and_then(|a| a.get(before_calls..).and_then(|x| x.iter().find(|at| **at >= t0).copied()));
            if let (Some(w), Some(o)) = (w, o) {
                watch_ms.push(w.duration_since(t0).as_secs_f64() * 1000.0);
                op_ms.push(o.duration_since(t0).as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError(format!("apply {k}: the watch or the operator did not react within 20 s")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    watch.abort();
    drop(rt);

    // Idle: converged, polling every 5 s, a window of polls.
    std::fs::write(&desired, all("5s")).map_err(|e| err("writing the manifests", e))?;
    kubectl(kubeconfig, &["apply", "-f", &desired_arg])?;
    std::thread::sleep(Duration::from_secs(2));
    while !ready(kubeconfig, &ns) {
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(6));
    let pid = op.0.id();
    let (cpu0, _) = super::live::proc_stat(pid)?;
    let r0 = requests(kubeconfig)?;
    let calls0 = arrivals.lock().map(|a| a.len()).unwrap_or_default();
    std::thread::sleep(window);
    let r1 = requests(kubeconfig)?;
    let (cpu1, hwm) = super::live::proc_stat(pid)?;
    let calls1 = arrivals.lock().map(|a| a.len()).unwrap_or_default();
    drop(op);
    let _ = kubectl(kubeconfig, &["delete", "namespace", &ns, "--wait=false"]);
    let delta: BTreeMap<String, u64> =
        r1.iter().map(|(v, n)| (v.clone(), n.saturating_sub(r0.get(v).copied().unwrap_or(0)))).filter(|(_, n)| *n > 0).collect();
    let writes = delta.iter().filter(|(v, _)| matches!(v.as_str(), "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY")).map(|x| x.1).sum();
    let reads = delta.iter().filter(|(v, _)| matches!(v.as_str(), "GET" | "LIST" | "WATCH")).map(|x| x.1).sum();
    let (p50w, p99w, p50o, p99o) =
        (percentile(&watch_ms, 0.5), percentile(&watch_ms, 0.99), percentile(&op_ms, 0.5), percentile(&op_ms, 0.99));
    Ok(KubeReport {
        pairs,
        applies,
        watch_p50_ms: p50w,
        watch_p99_ms: p99w,
        operator_p50_ms: p50o,
        operator_p99_ms: p99o,
        ratio_p50: p50o / p50w.max(1e-3),
        ratio_p99: p99o / p99w.max(1e-3),
        idle_window_s: window.as_secs_f64(),
        idle_backend_calls: calls1.saturating_sub(calls0),
        idle_requests: delta,
        idle_writes: writes,
        idle_reads: reads,
        operator_cpu_s: cpu1 - cpu0,
        operator_peak_rss_mib: hwm,
    })
}

pub fn misses(r: &KubeReport) -> Vec<String> {
    let mut out = vec![];
    if r.ratio_p50 > REACTION_RATIO_GOAL || r.ratio_p99 > REACTION_RATIO_GOAL {
        out.push(format!(
            "reaction latency: the operator's first cmdlet comes {:.2}x (p50) and {:.2}x (p99) after a bare watch's event (goal {REACTION_RATIO_GOAL}x)",
            r.ratio_p50, r.ratio_p99
        ));
    }
    if r.idle_writes > 0 {
        out.push(format!("idle operator: {} kube API writes in {:.0} s (goal 0)", r.idle_writes, r.idle_window_s));
    }
    out
}

pub fn render(r: &KubeReport) -> String {
    format!(
        "| applies | bare watch p50 / p99 | operator's first cmdlet p50 / p99 | ratio p50 / p99 |\n|---:|---:|---:|---:|\n| {} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.2} / {:.2} |\n\nIdle, {} converged pairs, {:.0} s (polling every 5 s): kube API writes {}, reads {} ({}), backend calls {}, operator CPU {:.2} s, peak RSS {:.1} MiB\n",
        r.applies,
        r.watch_p50_ms,
        r.watch_p99_ms,
        r.operator_p50_ms,
        r.operator_p99_ms,
        r.ratio_p50,
        r.ratio_p99,
        r.pairs,
        r.idle_window_s,
        r.idle_writes,
        r.idle_reads,
        r.idle_requests.iter().map(|(v, n)| format!("{v} {n}")).collect::<Vec<_>>().join(", "),
        r.idle_backend_calls,
        r.operator_cpu_s,
        r.operator_peak_rss_mib
    )
}
