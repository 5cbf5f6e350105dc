//! The real `lyncdr` binary as child processes: `lyncdr sim serve` on an ephemeral port (killed
//! when dropped) with a small blocking client of its HTTP API, and one-shot commands with a
//! timeout (a hang is a test failure, not a stuck CI job).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lyncdr");

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `lyncdr sim serve` child process.
pub struct SimServe {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    /// `--winrm`: the WS-Man endpoint's address.
    pub wsman: Option<std::net::SocketAddr>,
}

impl Drop for SimServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SimServe {
    /// Starts the simulator on an ephemeral port and reads the bound address from stderr.
    pub fn start(scenario: &Path, speed: &str) -> SimServe {
        SimServe::start_with(scenario, speed, None)
    }

    /// With `winrm: Some((user, password))`, also the WS-Man endpoint (`--winrm`) for that account.
    pub fn start_with(scenario: &Path, speed: &str, winrm: Option<(&str, &str)>) -> SimServe {
        let mut cmd = Command::new(BIN);
        cmd.args(["sim", "serve", "--scenario"]).arg(scenario).args(["--listen", "127.0.0.1:0", "--speed", speed]);
        if let Some((user, password)) = winrm {
            cmd.args(["--winrm", "127.0.0.1:0", "--winrm-user", user]).env("LYNCDR_WINRM_PASSWORD", password);
        }
        let child = cmd
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lyncdr sim serve");
        let mut s = SimServe { child, url: String::new(), port: 0, wsman: None };
        let stderr = s.child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, also once nobody listens: a full pipe would block the server.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let line = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("http://") => break line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("sim serve printed no address on stderr within 30 s ({e}); it printed: {seen:?}"),
            }
        };
        let start = line.find("http://").unwrap_or_else(|| panic!("no address in {line:?}"));
        s.url = line[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        s.port = s.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        if let Some((_, password)) = winrm {
            let line = loop {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(line) if line.contains("WinRM endpoint on http://") => break line,
                    Ok(line) => seen.push(line),
                    Err(e) => panic!("sim serve printed no WinRM endpoint within 30 s ({e}); it printed: {seen:?}"),
                }
            };
            assert!(seen.iter().chain([&line]).all(|l| !l.contains(password)), "the password is never printed");
            let addr = line[line.find("http://").unwrap_or(0)..].trim_start_matches("http://").split('/').next().unwrap_or_default();
            s.wsman = Some(addr.parse().unwrap_or_else(|e| panic!("WinRM endpoint address in {line:?}: {e}")));
        }
        s
    }

    /// One HTTP/1.1 request (`Connection: close`); returns the status and the body.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(self.port, method, path, body, Duration::from_secs(30))
    }

    /// `GET /v1/log` as JSON.
    pub fn log(&self) -> Vec<serde_json::Value> {
        let (code, body) = self.http("GET", "/v1/log", None);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("log JSON")
    }

    /// State-changing calls that reached a server (`line`, `runOn`).
    pub fn changes(&self) -> Vec<(String, String)> {
        self.log()
            .into_iter()
            .filter(|r| r["mutating"] == true && r["whatIf"] == false && r["outcome"] != "unreachable")
            .map(|r| (r["line"].as_str().unwrap_or_default().to_string(), r["runOn"].as_str().unwrap_or_default().to_string()))
            .collect()
    }

    pub fn fault(&self, fault: &str) {
        let (code, body) = self.http("POST", "/v1/faults", Some(&format!("{{\"fault\":\"{fault}\"}}")));
        assert_eq!(code, 200, "{body}");
    }

    pub fn state(&self) -> serde_json::Value {
        let (code, body) = self.http("GET", "/v1/state", None);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("state JSON")
    }
}

/// A minimal HTTP/1.1 client (no dependency on the code under test).
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>, timeout: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let code: u16 = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let rest = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(rest) } else { rest.to_string() };
    (code, rest)
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A finished command.
pub struct Output {
    /// The command line, for messages.
    pub what: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?} (signal {:?})\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.code, self.signal, self.stdout, self.stderr
        )
    }
    /// No panic and no backtrace anywhere in the output.
    pub fn assert_no_panic(&self) {
        for t in [&self.stdout, &self.stderr] {
            assert!(!t.contains("panicked") && !t.contains("stack backtrace"), "{}", self.describe());
        }
    }
    /// Asserts the exit code.
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(self.code, Some(code), "unexpected exit code of {}", self.describe());
        self
    }
    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }
}

/// Runs `lyncdr ARGS` from the crate root to completion with empty standard input, killing it
/// after `timeout`.
pub fn run(args: &[&str], timeout: Duration) -> Output {
    run_with_input(args, "", timeout)
}

/// Runs `lyncdr ARGS` from the crate root with `input` on standard input, killing it after
/// `timeout`.
pub fn run_with_input(args: &[&str], input: &str, timeout: Duration) -> Output {
    let what = format!("lyncdr {}", args.join(" "));
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    // Written from a thread: a child that does not read its input must not block the test.
    let i = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap_or_else(|e| panic!("{what}: {e}")) {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = i.join();
    use std::os::unix::process::ExitStatusExt;
    Output {
        what,
        code: status.code(),
        signal: status.signal(),
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    }
}
