//! One warm `powershell.exe` per server, driven script by script over WinRS stdin: what lyncdr
//! uses to import the Lync module once and then run cmdlets without paying PowerShell's start-up
//! each time. Built on [`Shell`] with the [`INTERACTIVE_BOOTSTRAP`] framing.

use std::time::Duration;

use crate::winrm::clixml;
use crate::winrm::error::WinrmError;
use crate::winrm::powershell::{INTERACTIVE_BOOTSTRAP, SCRIPT_DONE, interactive_script, powershell_command};
use crate::winrm::shell::{Collected, Shell};
use crate::winrm::soap::Signal;

/// What one script printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScriptOutput {
    /// stdout without the completion marker.
    pub stdout: String,
    /// stderr as readable text (CLIXML decoded if it was CLIXML).
    pub stderr: String,
}

/// A long-lived PowerShell process in a WinRS shell.
#[derive(Debug)]
pub struct PsSession {
    shell: Shell,
    command_id: String,
    /// Longest a single Receive waits before asking again.
    pub poll: Duration,
    /// A script timed out: its completion marker may still come, so later output cannot be
    /// attributed to later scripts.
    desynchronised: bool,
}

fn strip_done(stdout: &str) -> Option<String> {
    let trimmed = stdout.trim_end_matches(['\r', '\n']);
    let body = trimmed.strip_suffix(SCRIPT_DONE)?;
    if !(body.is_empty() || body.ends_with('\n')) {
        return None;
    }
    Some(body.to_string())
}

impl PsSession {
    /// Starts the interactive PowerShell in `shell`.
    pub async fn start(mut shell: Shell) -> Result<PsSession, WinrmError> {
        let (cmd, args) = powershell_command(INTERACTIVE_BOOTSTRAP)?;
        let command_id = shell.start(&cmd, &args).await?;
        Ok(PsSession { shell, command_id, poll: Duration::from_secs(20), desynchronised: false })
    }

    /// Runs one script and waits (at most `timeout`) for it to finish. A timeout is
    /// [`WinrmError::OutcomeUnknown`]: the script may still be running, and the session refuses
    /// further scripts (close it and start another).
    pub async fn run(&mut self, script: &str, timeout: Duration) -> Result<ScriptOutput, WinrmError> {
        if self.desynchronised {
            return Err(WinrmError::Protocol("the PowerShell session is out of sync after a timed-out script; start a new one".into()));
        }
        self.shell.send_input(&self.command_id, interactive_script(script).as_bytes(), false).await?;
        let finished = |c: &Collected| strip_done(&String::from_utf8_lossy(&c.stdout)).is_some();
        let got = self.shell.receive_until(&self.command_id, self.poll, timeout, finished).await?;
        let stdout = String::from_utf8_lossy(&got.stdout).into_owned();
        let stderr = clixml::decode_stderr(&String::from_utf8_lossy(&got.stderr));
        match strip_done(&stdout) {
            Some(stdout) => Ok(ScriptOutput { stdout, stderr }),
            None => match got.exit_code {
                Some(code) => Err(WinrmError::Protocol(format!("the PowerShell session exited with code {code}: {}", stderr.trim()))),
                None => {
                    self.desynchronised = true;
                    Err(WinrmError::OutcomeUnknown(format!("the script did not finish within {timeout:?}")))
                }
            },
        }
    }

    /// Ends PowerShell (stdin closed, then terminate) and deletes the shell.
    pub async fn close(mut self) -> Result<(), WinrmError> {
        self.shell.send_input(&self.command_id, b"", true).await?;
        let _ = self.shell.receive_until(&self.command_id, Duration::from_secs(2), Duration::from_secs(5), |_| false).await;
        self.shell.signal(&self.command_id, Signal::Terminate).await?;
        self.shell.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_done_marker_must_end_the_output_on_its_own_line() {
        assert_eq!(strip_done("a\r\nb\r\n#LYNCDR-DONE\r\n").as_deref(), Some("a\r\nb\r\n"));
        assert_eq!(strip_done("#LYNCDR-DONE\r\n").as_deref(), Some(""));
        assert_eq!(strip_done("a\r\n#LYNCDR-DO"), None);
        assert_eq!(strip_done("echo #LYNCDR-DONE"), None);
    }
}
