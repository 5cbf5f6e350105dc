//! The operator e2e tests' child processes: `lyncdr sim serve` with its HTTP API, the operator
//! (`lyncdr run`), each with a log file, killed on drop (a watchdog kills them if the test
//! process dies), plus checks of the simulator's call log.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::e2e::{BIN, scenario};

/// A child process with its output in a log file. Dropping it kills the process (SIGKILL); if
/// the drop happens during a panic, the end of the log is printed. A watchdog shell kills it if
/// this test process dies without dropping it.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    pub watchdog: Option<Child>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf, capture_stderr: bool) -> Proc {
        let file = fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        cmd.stdin(Stdio::null()).stdout(file.try_clone().expect("log file"));
        if capture_stderr {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stderr(file);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg("while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; kill -9 \"$2\" 2>/dev/null")
            .arg("e2e-watchdog")
            .arg(std::process::id().to_string())
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Proc { name: name.to_string(), child, log, watchdog }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGKILL, as a node failure or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- last lines of {} ({}) ---\n{}\n---", self.name, self.log.display(), self.tail(60));
        }
    }
}

/// A free loopback port (released before use: another process could take it in between, which
/// shows up as a start-up error).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// `lyncdr sim serve` on an ephemeral port, with its HTTP API.
pub struct Sim {
    pub proc: Proc,
    pub url: String,
    pub http: reqwest::Client,
    /// The WS-Man endpoint (`--winrm`), e.g. `http://127.0.0.1:PORT/wsman`.
    pub wsman: Option<String>,
}

impl Sim {
    pub fn start(dir: &Path, speed: u32) -> Sim {
        Sim::start_with(dir, speed, None)
    }

    /// With `winrm: Some((user, password))`, the simulator's WS-Man endpoint too.
    pub fn start_with(dir: &Path, speed: u32, winrm: Option<(&str, &str)>) -> Sim {
        let mut cmd = Command::new(BIN);
        cmd.args(["sim", "serve", "--scenario", &scenario(), "--listen", "127.0.0.1:0", "--speed", &speed.to_string()]);
        if let Some((user, password)) = winrm {
            cmd.args(["--winrm", "127.0.0.1:0", "--winrm-user", user]).env("LYNCDR_WINRM_PASSWORD", password);
        }
        let mut proc = Proc::spawn("lyncdr sim serve", cmd, dir.join("sim.log"), true);
        // The bound address is printed on stderr; the rest of stderr goes on into the log.
        let stderr = proc.child.stderr.take().expect("sim stderr");
        let mut log = fs::OpenOptions::new().append(true).open(&proc.log).expect("sim log");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let line = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("http://") => break line,
                Ok(_) => {}
                Err(e) => panic!("sim serve printed no address within 30 s ({e}):\n{}", proc.tail(20)),
            }
        };
        let start = line.find("http://").expect("address");
        let url: String = line[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        assert!(!url.ends_with(":0"), "expected the bound port: {line}");
        eprintln!("simulator at {url} ({speed}x)");
        let wsman = winrm.map(|_| {
            loop {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(line) if line.contains("WinRM endpoint on http://") => {
                        let start = line.find("http://").expect("address");
                        break line[start..].chars().take_while(|c| !c.is_whitespace()).collect::<String>();
                    }
                    Ok(_) => {}
                    Err(e) => panic!("sim serve printed no WinRM endpoint within 30 s ({e}):\n{}", proc.tail(20)),
                }
            }
        });
        Sim { proc, url, http: reqwest::Client::new(), wsman }
    }

    pub async fn get(&self, path: &str) -> Value {
        let r =
            self.http.get(format!("{}{path}", self.url)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.proc.tail(20)));
        r.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.proc.tail(20)))
    }

    pub async fn fault(&self, fault: &str) {
        let r = self
            .http
            .post(format!("{}/v1/faults", self.url))
            .json(&json!({ "fault": fault }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/faults {fault}: {e}"));
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "fault {fault}: {status} {body}");
        eprintln!("injected {fault} at simulated {}", body["now"]);
    }

    /// The state-changing calls in the simulator's log.
    pub async fn mutating(&self) -> Vec<Value> {
        let log = self.get("/v1/log").await;
        log.as_array().expect("log is a list").iter().filter(|r| r["mutating"] == true && r["whatIf"] != true).cloned().collect()
    }
}

pub fn describe_call(r: &Value) -> String {
    format!(
        "#{} {} [on {}{}] {} ({})",
        r["id"],
        r["line"].as_str().unwrap_or_default(),
        r["runOn"].as_str().unwrap_or_default(),
        r["server"].as_str().map(|s| format!(", server {s}")).unwrap_or_default(),
        r["outcome"].as_str().unwrap_or_default(),
        r["error"].as_str().unwrap_or_default()
    )
}

/// Every state-changing call ran once (no two identical calls: same cmdlet line, same target)
/// and succeeded.
pub fn assert_each_change_once(calls: &[Value]) {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in calls {
        let key = format!("{} | {} | {}", r["runOn"], r["server"], r["line"].as_str().unwrap_or_default());
        seen.entry(key).or_default().push(describe_call(r));
    }
    let repeated: Vec<String> = seen.values().filter(|v| v.len() > 1).map(|v| v.join("\n   ")).collect();
    let all: Vec<String> = calls.iter().map(describe_call).collect();
    assert!(
        repeated.is_empty(),
        "state-changing cmdlets ran more than once:\n   {}\nall changes:\n  {}",
        repeated.join("\n\n   "),
        all.join("\n  ")
    );
    let failed: Vec<String> = calls.iter().filter(|r| r["outcome"] != "ok").map(describe_call).collect();
    assert!(
        failed.is_empty(),
        "state-changing cmdlets that did not succeed:\n  {}\nall changes:\n  {}",
        failed.join("\n  "),
        all.join("\n  ")
    );
}

pub fn count_cmdlet(calls: &[Value], cmdlet: &str) -> usize {
    calls.iter().filter(|r| r["cmdlet"].as_str().is_some_and(|c| c.eq_ignore_ascii_case(cmdlet))).count()
}

/// `lyncdr run`: the operator, as a process, with `KUBECONFIG`.
pub struct Operator {
    pub proc: Proc,
    pub instance: String,
    pub metrics: String,
}

impl Operator {
    /// `lyncdr run --metrics-addr <free port> --log-format text --instance <instance> <args>`.
    pub fn start(dir: &Path, kubeconfig: &Path, instance: &str, args: &[&str]) -> Operator {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--metrics-addr", &metrics, "--log-format", "text", "--instance", instance])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn,hyper=warn,tower=warn")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE");
        let proc = Proc::spawn(&format!("operator {instance}"), cmd, dir.join(format!("operator-{instance}.log")), false);
        eprintln!("operator {instance}: pid {}, metrics on {metrics}, log {}", proc.pid(), proc.log.display());
        Operator { proc, instance: instance.to_string(), metrics }
    }

    /// Waits for `/readyz` (the caches synced: the operator could list and watch its kinds).
    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.proc.exited() {
                panic!("operator {} exited ({status}):\n{}", self.instance, self.proc.tail(40));
            }
            if let Ok(r) = http.get(format!("http://{}/readyz", self.metrics)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "operator {} not ready after 60 s:\n{}", self.instance, self.proc.tail(40));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        let r = reqwest::get(format!("http://{}/metrics", self.metrics)).await.expect("GET /metrics");
        r.text().await.expect("metrics text")
    }
}
