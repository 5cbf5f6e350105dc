//! What the WS-Man server runs commands on: a [`Host`] starts a [`Process`] per WinRS Command;
//! a process takes stdin chunks and yields stdout/stderr chunks and an exit code asynchronously,
//! so a long-lived process can answer while its stdin stays open. [`channel_process`] gives
//! hosts a ready-made process backed by channels, driven by a task of the host's own.

use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// One piece of a process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process exited; nothing follows.
    Exit(i64),
}

/// A running command.
pub trait Process: Send {
    /// Delivers stdin bytes; `end` closes stdin.
    fn write_stdin(&mut self, data: &[u8], end: bool);
    /// Waits for the next output; `None` once the process has exited and everything was read.
    fn next_output(&mut self) -> BoxFuture<'_, Option<Output>>;
    /// Terminates the process (WinRS Signal, shell Delete).
    fn terminate(&mut self);
}

/// Runs commands for the server.
pub trait Host: Send + Sync {
    /// Starts `command_line` (the WinRS `rsp:Command`, which may itself contain arguments) with
    /// the separate `rsp:Arguments`.
    fn start(&self, command_line: &str, args: &[String]) -> Box<dyn Process>;
}

/// Input to a channel-backed process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin(Vec<u8>),
    /// stdin was closed.
    End,
    /// The process must stop.
    Terminate,
}

/// The host's end of a [`channel_process`]: read input, write output.
#[derive(Debug)]
pub struct ProcessIo {
    pub input: mpsc::UnboundedReceiver<Input>,
    pub output: mpsc::UnboundedSender<Output>,
}

impl ProcessIo {
    pub fn stdout(&self, data: impl Into<Vec<u8>>) {
        let _ = self.output.send(Output::Stdout(data.into()));
    }

    pub fn stderr(&self, data: impl Into<Vec<u8>>) {
        let _ = self.output.send(Output::Stderr(data.into()));
    }

    pub fn exit(&self, code: i64) {
        let _ = self.output.send(Output::Exit(code));
    }
}

struct ChannelProcess {
    input: mpsc::UnboundedSender<Input>,
    output: mpsc::UnboundedReceiver<Output>,
    exited: bool,
}

impl Process for ChannelProcess {
    fn write_stdin(&mut self, data: &[u8], end: bool) {
        if !data.is_empty() {
            let _ = self.input.send(Input::Stdin(data.to_vec()));
        }
        if end {
            let _ = self.input.send(Input::End);
        }
    }

    fn next_output(&mut self) -> BoxFuture<'_, Option<Output>> {
        Box::pin(async move {
            if self.exited {
                return None;
            }
            match self.output.recv().await {
                Some(Output::Exit(c)) => {
                    self.exited = true;
                    Some(Output::Exit(c))
                }
                Some(o) => Some(o),
                // The host dropped its end without an exit code.
                None => {
                    self.exited = true;
                    Some(Output::Exit(-1))
                }
            }
        })
    }

    fn terminate(&mut self) {
        let _ = self.input.send(Input::Terminate);
    }
}

/// A process whose behaviour is whatever task holds the returned [`ProcessIo`].
pub fn channel_process() -> (Box<dyn Process>, ProcessIo) {
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    (Box::new(ChannelProcess { input: in_tx, output: out_rx, exited: false }), ProcessIo { input: in_rx, output: out_tx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_process_carries_io_and_exit() {
        let (mut p, mut io) = channel_process();
        p.write_stdin(b"abc", true);
        assert_eq!(io.input.recv().await, Some(Input::Stdin(b"abc".to_vec())));
        assert_eq!(io.input.recv().await, Some(Input::End));
        io.stdout("out");
        io.exit(3);
        assert_eq!(p.next_output().await, Some(Output::Stdout(b"out".to_vec())));
        assert_eq!(p.next_output().await, Some(Output::Exit(3)));
        assert_eq!(p.next_output().await, None);
        let (mut q, io2) = channel_process();
        drop(io2);
        assert_eq!(q.next_output().await, Some(Output::Exit(-1)));
    }
}
