//! `kubectl` as the end-to-end tests run it: one identity (kubeconfig) per instance, a discovery
//! cache of its own, every command and its output echoed unless quiet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The outcome of one command.
pub struct Ran {
    pub ok: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// kubectl with one identity, and a discovery cache of its own (~/.kube/cache could hold a stale
/// entry for a reused port).
#[derive(Clone)]
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub cache: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: &Path) -> Kubectl {
        let cache = kubeconfig.with_file_name(format!(
            "kubectl-cache-{}",
            kubeconfig.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        Kubectl { kubeconfig: kubeconfig.to_path_buf(), cache }
    }

    pub fn exec(&self, args: &[&str], stdin: Option<&str>, quiet: bool) -> Ran {
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--cache-dir={}", self.cache.display()))
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("kubectl stdin");
            let input = input.to_string();
            // A writer thread, so that a large input never deadlocks against a full stdout pipe.
            std::thread::spawn(move || {
                let _ = pipe.write_all(input.as_bytes());
            });
        }
        let out = child.wait_with_output().expect("wait for kubectl");
        let ran = Ran {
            ok: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if !quiet {
            let shown: String = ran.text().chars().take(3000).collect();
            eprintln!("$ kubectl {} -> {}\n{}", args.join(" "), ran.status, shown.trim_end());
        }
        ran
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.exec(args, None, false)
    }

    /// Runs kubectl and panics with its output unless it succeeds.
    pub fn must(&self, args: &[&str]) -> String {
        let ran = self.run(args);
        assert!(ran.ok, "kubectl {} failed ({}):\n{}", args.join(" "), ran.status, ran.text());
        ran.stdout
    }

    pub fn apply(&self, manifest: &str, extra: &[&str]) -> Ran {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        self.exec(&args, Some(manifest), false)
    }

    pub fn must_apply(&self, manifest: &str) {
        let ran = self.apply(manifest, &[]);
        assert!(ran.ok, "kubectl apply failed ({}):\n{}\n--- manifest ---\n{manifest}", ran.status, ran.text());
    }

    /// `kubectl get ... -o json`, quietly (for polling); `Value::Null` when it fails.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-o", "json"]);
        let ran = self.exec(&all, None, true);
        if !ran.ok {
            return Value::Null;
        }
        serde_json::from_str(&ran.stdout).unwrap_or(Value::Null)
    }

    pub fn create_namespace(&self, ns: &str) {
        let ran = self.exec(&["create", "namespace", ns], None, false);
        assert!(ran.ok || ran.stderr.contains("AlreadyExists"), "create namespace {ns}:\n{}", ran.text());
    }
}
