//! The WinRS shell lifecycle a Lync driver uses: open a `cmd` shell, start commands, feed stdin
//! in chunks, receive output until the command is done (tolerating `w:TimedOut`), receive just
//! what is available now (to drive a long-lived `powershell.exe` interactively), signal, delete.

use std::time::{Duration, Instant};

use crate::winrm::client::WsmanClient;
use crate::winrm::clixml;
use crate::winrm::error::WinrmError;
use crate::winrm::http::TransportConfig;
use crate::winrm::powershell::{STDIN_BOOTSTRAP, powershell_command};
use crate::winrm::soap::request::{self, ShellOptions};
use crate::winrm::soap::response::{self, ReceiveOutput};
use crate::winrm::soap::{Action, Signal};

/// Bytes of room the envelope around a Send needs, besides the base64 payload.
const SEND_OVERHEAD: usize = 4096;

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

impl CommandOutput {
    /// stdout as text (UTF-8, lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as readable text: PowerShell's CLIXML error records decoded, else the raw text.
    pub fn stderr_text(&self) -> String {
        clixml::decode_stderr(&String::from_utf8_lossy(&self.stderr))
    }
}

/// Output received so far from a running command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Set once the command is done.
    pub exit_code: Option<i64>,
}

impl Collected {
    fn absorb(&mut self, out: &ReceiveOutput) {
        self.stdout.extend(out.stream("stdout"));
        self.stderr.extend(out.stream("stderr"));
        if out.done() {
            // Windows always reports the exit code; if a server omits it, do not report success.
            self.exit_code = Some(out.exit_code().unwrap_or(-1));
        }
    }

    /// The command is done.
    pub fn done(&self) -> bool {
        self.exit_code.is_some()
    }
}

/// An open WinRS shell on its own authenticated connection.
#[derive(Debug)]
pub struct Shell {
    client: Option<WsmanClient>,
    id: String,
}

impl Shell {
    /// Connects, authenticates and creates a shell.
    pub async fn open(cfg: TransportConfig, options: &ShellOptions) -> Result<Shell, WinrmError> {
        Shell::open_with(WsmanClient::new(cfg)?, options).await
    }

    /// Creates a shell through an existing client (custom headers, timeouts).
    pub async fn open_with(mut client: WsmanClient, options: &ShellOptions) -> Result<Shell, WinrmError> {
        let req = request::create_shell(client.headers(), options);
        let env = client.call(&req).await?;
        let id = response::shell_id(&env)?;
        Ok(Shell { client: Some(client), id })
    }

    /// The ShellId.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn client(&mut self) -> Result<&mut WsmanClient, WinrmError> {
        self.client.as_mut().ok_or_else(|| WinrmError::Protocol("the shell is closed".into()))
    }

    /// The client (headers, transport statistics).
    pub fn wsman(&mut self) -> Result<&mut WsmanClient, WinrmError> {
        self.client()
    }

    /// Starts `command args…` through `cmd.exe` and returns its CommandId.
    pub async fn start(&mut self, command: &str, args: &[String]) -> Result<String, WinrmError> {
        let id = self.id.clone();
        let client = self.client()?;
        let req = request::command(client.headers(), &id, command, args, false);
        let env = client.call(&req).await?;
        response::command_id(&env)
    }

    /// Writes `data` to the command's stdin, in as many Send requests as the envelope size
    /// needs; `end` closes stdin after the last chunk.
    pub async fn send_input(&mut self, command_id: &str, data: &[u8], end: bool) -> Result<(), WinrmError> {
        let id = self.id.clone();
        let client = self.client()?;
        let max = (client.headers().max_envelope_size as usize).saturating_sub(SEND_OVERHEAD).max(1024) / 4 * 3;
        let mut chunks: Vec<&[u8]> = data.chunks(max).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let req = request::send(client.headers(), &id, command_id, "stdin", chunk, end && i == last);
            let env = client.call(&req).await?;
            response::acknowledged(&env, Action::Send)?;
        }
        Ok(())
    }

    /// One Receive with the client's OperationTimeout. A `w:TimedOut` fault (no output in time)
    /// comes back as an empty output, not an error.
    pub async fn receive(&mut self, command_id: &str) -> Result<ReceiveOutput, WinrmError> {
        let id = self.id.clone();
        let client = self.client()?;
        let req = request::receive(client.headers(), &id, Some(command_id), "stdout stderr");
        match client.call(&req).await {
            Ok(env) => response::receive_output(&env),
            Err(e) if e.is_timed_out() => Ok(ReceiveOutput::default()),
            Err(e) => Err(e),
        }
    }

    /// Receives what is available within `wait` (the server answers as soon as output exists,
    /// or `w:TimedOut` after `wait`): the call to drive a long-lived process interactively.
    pub async fn receive_available(&mut self, command_id: &str, wait: Duration) -> Result<ReceiveOutput, WinrmError> {
        let client = self.client()?;
        let saved = client.headers().operation_timeout;
        client.headers_mut().operation_timeout = wait.max(Duration::from_millis(100));
        let out = self.receive(command_id).await;
        if let Some(c) = self.client.as_mut() {
            c.headers_mut().operation_timeout = saved;
        }
        out
    }

    /// Receives until the command is done; stream chunks are concatenated per stream.
    pub async fn receive_until_done(&mut self, command_id: &str) -> Result<CommandOutput, WinrmError> {
        let mut acc = Collected::default();
        loop {
            let out = self.receive(command_id).await?;
            acc.absorb(&out);
            if let Some(exit_code) = acc.exit_code {
                return Ok(CommandOutput { stdout: acc.stdout, stderr: acc.stderr, exit_code });
            }
        }
    }

    /// Receives (each Receive waiting at most `poll`) until `stop` says the output collected so
    /// far is enough, the command is done, or `deadline` passes (then `Ok` with what came).
    pub async fn receive_until(
        &mut self,
        command_id: &str,
        poll: Duration,
        deadline: Duration,
        mut stop: impl FnMut(&Collected) -> bool,
    ) -> Result<Collected, WinrmError> {
        let start = Instant::now();
        let mut acc = Collected::default();
        while !stop(&acc) && !acc.done() && start.elapsed() < deadline {
            let left = deadline.saturating_sub(start.elapsed());
            let out = self.receive_available(command_id, poll.min(left)).await?;
            acc.absorb(&out);
        }
        Ok(acc)
    }

    /// Sends a signal to the command.
    pub async fn signal(&mut self, command_id: &str, signal: Signal) -> Result<(), WinrmError> {
        let id = self.id.clone();
        let client = self.client()?;
        let req = request::signal(client.headers(), &id, command_id, signal);
        let env = client.call(&req).await?;
        response::acknowledged(&env, Action::Signal)
    }

    /// Runs a command to completion: start, optional stdin (then closed), receive until done,
    /// terminate signal (frees the command on the server).
    pub async fn run(&mut self, command: &str, args: &[String], stdin: Option<&[u8]>) -> Result<CommandOutput, WinrmError> {
        let cid = self.start(command, args).await?;
        if let Some(input) = stdin {
            self.send_input(&cid, input, true).await?;
        }
        let out = self.receive_until_done(&cid).await?;
        self.signal(&cid, Signal::Terminate).await?;
        Ok(out)
    }

    /// Runs a PowerShell script of any length: the fixed [`STDIN_BOOTSTRAP`] on the command line,
    /// the script on stdin.
    pub async fn run_powershell(&mut self, script: &str) -> Result<CommandOutput, WinrmError> {
        let (cmd, args) = powershell_command(STDIN_BOOTSTRAP)?;
        self.run(&cmd, &args, Some(script.as_bytes())).await
    }

    /// Deletes the shell (and with it any command still running).
    pub async fn close(mut self) -> Result<(), WinrmError> {
        let Some(mut client) = self.client.take() else { return Ok(()) };
        let req = request::delete(client.headers(), &self.id);
        let env = client.call(&req).await?;
        response::acknowledged(&env, Action::Delete)
    }
}

impl Drop for Shell {
    /// A shell dropped without [`Shell::close`] is deleted in the background (best effort) when
    /// a tokio runtime is available, so servers do not accumulate idle shells.
    fn drop(&mut self) {
        let Some(mut client) = self.client.take() else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let id = std::mem::take(&mut self.id);
        handle.spawn(async move {
            let req = request::delete(client.headers(), &id);
            let _ = client.call(&req).await;
        });
    }
}
