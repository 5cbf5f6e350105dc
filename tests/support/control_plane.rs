//! A real Kubernetes control plane (etcd + kube-apiserver) for integration tests, like
//! controller-runtime's envtest but native: no Go at test time, no cgo, no downloads.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/control_plane.rs"]
//! mod control_plane;
//! ```
//!
//! The binaries come from `KUBEBUILDER_ASSETS` (a directory holding `etcd` and `kube-apiserver`),
//! which `scripts/test.sh` sets to the output of `scripts/control-plane.sh`; they are built from
//! the Go module proxy (tests/controlplane/). Without them [`ControlPlane::start`] returns
//! `Ok(None)` and prints why, so the test can return early and the suite still passes on a machine
//! without Go. The PKI is made by `scripts/gen-pki.sh` (openssl).
//!
//! What you get is a bare apiserver: no controller-manager, scheduler or kubelet, so there is no
//! garbage collection, namespaces never finish terminating, and no Pods run. Authorization is RBAC;
//! the admin identity (`kubeconfig_path`, `client`) is in `system:masters`, and
//! [`ControlPlane::kubeconfig_for_user`] / [`ControlPlane::kubeconfig_for_service_account`] make
//! identities with no rights beyond what the test binds.
//!
//! Start-up takes a few seconds; share one control plane per test binary where you can
//! ([`ControlPlane::shared`]) and give each test its own namespace. Statics are never dropped: a
//! watchdog process kills etcd and kube-apiserver (and deletes the temp dir, unless
//! `LYNCDR_KEEP_CONTROL_PLANE` is set) within a second or two of the test process exiting,
//! however it exits.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Default for [`Options::ready_timeout`]; `LYNCDR_CONTROL_PLANE_TIMEOUT` (seconds) overrides it.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How to start the control plane.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long to wait for kube-apiserver's `/readyz`. Two busy cores can take 30 s and more.
    pub ready_timeout: Duration,
    /// Extra kube-apiserver flags (feature gates, say), appended after the harness's own.
    pub extra_apiserver_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        let ready_timeout = std::env::var("LYNCDR_CONTROL_PLANE_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().trim_end_matches('s').parse::<u64>().ok())
            .map_or(DEFAULT_READY_TIMEOUT, Duration::from_secs);
        Options { ready_timeout, extra_apiserver_args: Vec::new() }
    }
}

/// A running etcd + kube-apiserver on loopback ports, with its own temp dir, PKI and kubeconfig.
/// Dropping it kills both processes and deletes the temp dir; the temp dir is kept, and its path
/// printed, when the drop happens during a panic or `LYNCDR_KEEP_CONTROL_PLANE` is set, so the
/// logs (`etcd.log`, `kube-apiserver.log`) can be read afterwards.
pub struct ControlPlane {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    server_url: String,
    kubeconfig: PathBuf,
    processes: Vec<(&'static str, Child)>,
    watchdog: Option<Child>,
    issued: AtomicUsize,
    startup: Duration,
    keep_dir: bool,
}

impl ControlPlane {
    /// Starts a control plane with [`Options::default`]. `Ok(None)` means the binaries are not
    /// available (the reason is printed): the caller should skip its test.
    pub async fn start() -> Result<Option<ControlPlane>, String> {
        Self::start_with(Options::default()).await
    }

    /// One control plane for the whole test binary, started by the first caller and shared by
    /// every test after it (each `#[tokio::test]` may run on its own runtime: the plane holds no
    /// client, so that is fine). `None` means skip, as for [`ControlPlane::start`]; a failed start
    /// panics in every caller. It is never dropped; the watchdog cleans up after the process.
    pub async fn shared() -> Option<&'static ControlPlane> {
        static SHARED: tokio::sync::OnceCell<Result<Option<ControlPlane>, String>> = tokio::sync::OnceCell::const_new();
        match SHARED.get_or_init(ControlPlane::start).await {
            Ok(plane) => plane.as_ref(),
            Err(e) => panic!("control plane: {e}"),
        }
    }

    /// Starts a control plane and waits until kube-apiserver reports ready.
    pub async fn start_with(options: Options) -> Result<Option<ControlPlane>, String> {
        let Some(assets) = assets_dir() else {
            return Ok(None);
        };
        let started = Instant::now();
        let dir = tempfile::Builder::new().prefix("lyncdr-control-plane-").tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path().to_path_buf();
        let pki = root.join("pki");
        gen_pki(&[pki.as_os_str()])?;

        let [etcd_port, peer_port, api_port] = free_ports()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let server_url = format!("https://127.0.0.1:{api_port}");

        let mut plane = ControlPlane {
            dir: Some(dir),
            root: root.clone(),
            server_url: server_url.clone(),
            kubeconfig: root.join("kubeconfig"),
            processes: Vec::new(),
            watchdog: None,
            issued: AtomicUsize::new(0),
            startup: Duration::ZERO,
            keep_dir: false,
        };
        // From here on, `plane` owns every process started, so an early return kills them.

        let etcd_args = [
            "--name=lyncdr-test".to_string(),
            format!("--data-dir={}", root.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=lyncdr-test={peer_url}"),
            // Durability is worthless for a throw-away store, and fsync is slow on busy disks.
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ];
        plane.spawn("etcd", &assets.join("etcd"), &etcd_args)?;

        let pki_file = |name: &str| pki.join(name).display().to_string();
        let mut apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", pki.display()),
            format!("--tls-cert-file={}", pki_file("apiserver.crt")),
            format!("--tls-private-key-file={}", pki_file("apiserver.key")),
            // Client certificates are the only authentication: CN is the user, O the groups.
            format!("--client-ca-file={}", pki_file("client-ca.crt")),
            "--authorization-mode=RBAC".to_string(),
            format!("--service-account-issuer={server_url}/"),
            format!("--service-account-key-file={}", pki_file("sa.pub")),
            format!("--service-account-signing-key-file={}", pki_file("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            // No controller-manager creates default ServiceAccounts, so this admission plugin
            // would reject every Pod.
            "--disable-admission-plugins=ServiceAccount".to_string(),
            "--allow-privileged=true".to_string(),
            // Do not publish 127.0.0.1 as the endpoints of the `kubernetes` Service.
            "--endpoint-reconciler-type=none".to_string(),
        ];
        apiserver_args.extend(options.extra_apiserver_args.iter().cloned());
        plane.spawn("kube-apiserver", &assets.join("kube-apiserver"), &apiserver_args)?;
        plane.watchdog = spawn_watchdog(&root, &plane.processes);

        write_kubeconfig(&plane.kubeconfig, &server_url, &pki.join("ca.crt"), &pki.join("admin.crt"), &pki.join("admin.key"), "admin")?;

        if let Err(e) = plane.wait_ready(options.ready_timeout).await {
            plane.keep_dir = true;
            return Err(e);
        }
        plane.startup = started.elapsed();
        eprintln!(
            "control plane: kube-apiserver {server_url} (etcd {etcd_url}) ready in {:.1} s; files in {}",
            plane.startup.as_secs_f64(),
            root.display()
        );
        Ok(Some(plane))
    }

    /// The admin kubeconfig (client certificate in `system:masters`), for kubectl and kube-rs.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The temp dir: `pki/`, `etcd/`, kubeconfigs and the two processes' logs.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// From the start of [`ControlPlane::start`] to a ready kube-apiserver.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// A kube client with the admin identity.
    pub async fn client(&self) -> kube::Client {
        self.client_for(&self.kubeconfig).await
    }

    /// A kube client for a kubeconfig, e.g. one from [`ControlPlane::kubeconfig_for_user`].
    pub async fn client_for(&self, kubeconfig: &Path) -> kube::Client {
        client_from(kubeconfig).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes a kubeconfig for a client certificate with CN=`user` and one O per group, signed by
    /// the client CA, and returns its path. The identity has exactly the rights that RBAC grants
    /// `user` and `groups` (plus `system:authenticated`, which every authenticated user gets).
    pub fn kubeconfig_for_user(&self, user: &str, groups: &[&str]) -> PathBuf {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let slug: String = user.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(48).collect();
        let pki = self.root.join("pki");
        let prefix = pki.join(format!("user-{n}-{slug}"));
        let mut args = vec![pki.as_os_str(), "client".as_ref(), prefix.as_os_str(), user.as_ref()];
        args.extend(groups.iter().map(|g| std::ffi::OsStr::new(*g)));
        gen_pki(&args).unwrap_or_else(|e| panic!("client certificate for {user}: {e}"));

        let path = self.root.join(format!("kubeconfig-{n}-{slug}"));
        write_kubeconfig(&path, &self.server_url, &pki.join("ca.crt"), &prefix.with_extension("crt"), &prefix.with_extension("key"), user)
            .unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// A kubeconfig for the identity a Pod running as ServiceAccount `namespace/name` has:
    /// user `system:serviceaccount:<namespace>:<name>`, groups `system:serviceaccounts` and
    /// `system:serviceaccounts:<namespace>`. RBAC matches ServiceAccount subjects by that user
    /// name, so the Helm chart's (Cluster)RoleBindings apply to it exactly as in a cluster, without
    /// a ServiceAccount object or token (there is no controller-manager to make tokens).
    pub fn kubeconfig_for_service_account(&self, namespace: &str, name: &str) -> PathBuf {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let namespace_group = format!("system:serviceaccounts:{namespace}");
        self.kubeconfig_for_user(&user, &["system:serviceaccounts", &namespace_group])
    }

    fn spawn(&mut self, name: &'static str, binary: &Path, args: &[String]) -> Result<(), String> {
        let log = fs::File::create(self.root.join(format!("{name}.log"))).map_err(|e| format!("{name} log file: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("{name} log file: {e}"))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.processes.push((name, child));
        Ok(())
    }

    /// Polls `/readyz?verbose` with the admin client until every check passes, failing early when etcd or
    /// kube-apiserver exits.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let client = client_from(&self.kubeconfig).await?;
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.processes.iter_mut().find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                return Err(format!("{name} exited ({status}) before kube-apiserver was ready\n{}", self.log_tails()));
            }
            // `axum::http` is the `http` crate kube uses; it saves a direct dependency.
            let request = axum::http::Request::get("/readyz?verbose").body(Vec::new()).map_err(|e| e.to_string())?;
            let last_error = match client.request_text(request).await {
                Ok(body) if body.lines().last() == Some("readyz check passed") => return Ok(()),
                Ok(body) => body,
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "kube-apiserver not ready after {} s (raise LYNCDR_CONTROL_PLANE_TIMEOUT?): {last_error}\n{}",
                    timeout.as_secs(),
                    self.log_tails()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tails(&self) -> String {
        let mut out = String::new();
        for (name, _) in &self.processes {
            let path = self.root.join(format!("{name}.log"));
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            out += &format!("--- last lines of {} ---\n{}\n", path.display(), tail.join("\n"));
        }
        out
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // SIGKILL: the data is thrown away anyway, and kube-apiserver's graceful shutdown is slow.
        for (_, child) in self.processes.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let keep = self.keep_dir || std::thread::panicking() || std::env::var_os("LYNCDR_KEEP_CONTROL_PLANE").is_some();
        if let Some(dir) = self.dir.take()
            && keep
        {
            eprintln!("control plane: kept {} (logs, PKI, kubeconfigs)", dir.keep().display());
        }
    }
}

/// The directory with `etcd` and `kube-apiserver`, or `None` (with the reason printed).
fn assets_dir() -> Option<PathBuf> {
    let hint = "run the tests with KUBEBUILDER_ASSETS=\"$(bash scripts/control-plane.sh)\" (as scripts/test.sh does)";
    let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|d| !d.is_empty()) else {
        eprintln!("control plane: skipped, KUBEBUILDER_ASSETS is not set; {hint}");
        return None;
    };
    let dir = PathBuf::from(dir);
    for binary in ["etcd", "kube-apiserver"] {
        if !dir.join(binary).is_file() {
            eprintln!("control plane: skipped, KUBEBUILDER_ASSETS={} has no {binary}; {hint}", dir.display());
            return None;
        }
    }
    Some(dir)
}

/// Runs `scripts/gen-pki.sh` with `args`.
fn gen_pki(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-pki.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}); is openssl installed?\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Three distinct free loopback ports. They are released before etcd and kube-apiserver bind
/// them, so another process could take one in between; that shows up as a start-up error.
fn free_ports() -> Result<[u16; 3], String> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"));
    // All three listeners are held at once, so the ports differ.
    let listeners = [bind()?, bind()?, bind()?];
    let mut ports = [0; 3];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().map_err(|e| e.to_string())?.port();
    }
    Ok(ports)
}

/// A `sh` loop that, once this test process has gone, SIGKILLs the processes and deletes the temp
/// dir, for the cases where `Drop` never runs: a `static` control plane, `process::exit`, SIGKILL.
fn spawn_watchdog(dir: &Path, processes: &[(&'static str, Child)]) -> Option<Child> {
    let script = r#"parent=$1 dir=$2; shift 2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
kill -9 "$@" 2>/dev/null; sleep 1; [ -z "$dir" ] || rm -rf -- "$dir""#;
    // An empty dir argument keeps the files.
    let dir = if std::env::var_os("LYNCDR_KEEP_CONTROL_PLANE").is_some() { Path::new("") } else { dir };
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("control-plane-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .args(processes.iter().map(|(_, child)| child.id().to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

async fn client_from(kubeconfig: &Path) -> Result<kube::Client, String> {
    let what = || format!("kubeconfig {}", kubeconfig.display());
    let kubeconfig = Kubeconfig::read_from(kubeconfig).map_err(|e| format!("{}: {e}", what()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.map_err(|e| format!("{}: {e}", what()))?;
    kube::Client::try_from(config).map_err(|e| format!("{}: {e}", what()))
}

/// Writes a self-contained kubeconfig (certificates embedded; mode 0600) as JSON, which kubectl
/// and kube-rs read like YAML.
fn write_kubeconfig(path: &Path, server: &str, ca: &Path, cert: &Path, key: &Path, user: &str) -> Result<(), String> {
    let data = |p: &Path| fs::read(p).map(|bytes| base64(&bytes)).map_err(|e| format!("{}: {e}", p.display()));
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "lyncdr-test",
            "cluster": { "server": server, "certificate-authority-data": data(ca)? },
        }],
        "users": [{
            "name": user,
            "user": { "client-certificate-data": data(cert)?, "client-key-data": data(key)? },
        }],
        "contexts": [{
            "name": "lyncdr-test",
            "context": { "cluster": "lyncdr-test", "user": user },
        }],
        "current-context": "lyncdr-test",
    });
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Standard base64 with padding (RFC 4648), as kubeconfig `*-data` fields expect.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
