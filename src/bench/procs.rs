//! The child processes the bench measures from outside: `lyncdr sim serve` and the lyncdr
//! process under test, each killed when dropped, their output in log files of the run's
//! directory; and the small helpers both the standalone and the cluster parts use.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::BenchError;

/// A child process killed when dropped.
pub(super) struct Kid(pub(super) Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bench error saying what failed.
pub(super) fn err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError(format!("{what}: {e}"))
}

pub(super) fn free_port() -> Result<u16, BenchError> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| err("no free port", e))
}

/// A log file of the run's directory, as a child's output.
pub(super) fn log(dir: &Path, name: &str) -> Result<Stdio, BenchError> {
    std::fs::File::create(dir.join(name)).map(Stdio::from).map_err(|e| err("creating a log file", e))
}

/// `lyncdr sim serve` on `port` with the scenario file, at 60 times real time.
pub(super) fn sim_serve(exe: &Path, dir: &Path, scenario: &Path, port: u16) -> Result<Kid, BenchError> {
    Command::new(exe)
        .args(["sim", "serve", "--listen", &format!("127.0.0.1:{port}"), "--speed", "60", "--scenario"])
        .arg(scenario)
        .stdin(Stdio::null())
        .stdout(log(dir, "sim.log")?)
        .stderr(log(dir, "sim.err")?)
        .spawn()
        .map(Kid)
        .map_err(|e| err("starting lyncdr sim serve", e))
}
