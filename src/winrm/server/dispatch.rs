//! The server's WinRS state and the six actions on it: shells (owned by the account that created
//! them) holding commands that run on the [`Host`]; Receive waits up to the request's
//! OperationTimeout for output and answers `w:TimedOut` when none came, and never returns more
//! than the client's MaxEnvelopeSize allows (the rest waits for the next Receive).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::FutureExt as _;

use super::host::{Host, Output, Process};
use super::reply::{self, CreatedShell, ServerFault};
use crate::winrm::soap::ns::{self, Action, Signal};
use crate::winrm::soap::{Envelope, request::DEFAULT_MAX_ENVELOPE_SIZE};

/// One output piece: stream name, bytes, and how to put the unsent rest back.
type Piece = (&'static str, Vec<u8>, fn(Vec<u8>) -> Output);

/// Per-request facts the actions need.
pub(crate) struct Ctx<'a> {
    pub account: &'a str,
    pub client_ip: &'a str,
    pub address: &'a str,
    pub host: &'a dyn Host,
    pub max_operation_timeout: Duration,
    pub idle_timeout: Duration,
}

struct Cmd {
    process: Box<dyn Process>,
    pending: VecDeque<Output>,
    exit: Option<i64>,
}

struct ShellEntry {
    owner: String,
    commands: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Cmd>>>>,
}

/// All shells of a server.
#[derive(Default)]
pub(crate) struct Registry {
    shells: Mutex<HashMap<String, Arc<ShellEntry>>>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

fn shell_not_found(id: &str) -> ServerFault {
    ServerFault::invalid_selectors(format!(
        "The request for the Windows Remote Shell with ShellId {id} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation."
    ))
}

fn command_not_found() -> ServerFault {
    ServerFault::invalid_selectors(
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. Check whether the command has completed execution.",
    )
}

impl Registry {
    /// Number of open shells.
    pub fn len(&self) -> usize {
        self.shells.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn shell(&self, env: &Envelope, account: &str) -> Result<(String, Arc<ShellEntry>), ServerFault> {
        let id = env.selector("ShellId").ok_or_else(|| ServerFault::invalid_selectors("The ShellId selector is missing."))?.to_string();
        let shell = self.shells.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned().ok_or_else(|| shell_not_found(&id))?;
        if !shell.owner.eq_ignore_ascii_case(account) {
            return Err(ServerFault::sender("AccessDenied", 5, "Access is denied."));
        }
        Ok((id, shell))
    }

    fn command(shell: &ShellEntry, id: Option<&str>) -> Result<Arc<tokio::sync::Mutex<Cmd>>, ServerFault> {
        let id = id.ok_or_else(|| ServerFault::invalid_parameter("The parameter is incorrect."))?;
        shell.commands.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned().ok_or_else(command_not_found)
    }

    /// Handles one request envelope: the response XML, or the fault to answer.
    pub async fn handle(&self, env: &Envelope, ctx: &Ctx<'_>) -> Result<String, ServerFault> {
        let message_id = env.message_id().ok_or_else(|| ServerFault::invalid_parameter("The request has no MessageID."))?.to_string();
        let action_uri = env.action().unwrap_or_default();
        let action = Action::from_uri(action_uri)
            .ok_or_else(|| ServerFault::action_not_supported(format!("The action {action_uri} is not supported by the service.")))?;
        match env.resource_uri() {
            Some(r) if r.eq_ignore_ascii_case(ns::RESOURCE_CMD) => {}
            other => {
                return Err(ServerFault::sender(
                    "InvalidResourceURI",
                    2_150_858_752,
                    format!("The resource URI {} is not supported: only the cmd shell is.", other.unwrap_or("(none)")),
                ));
            }
        }
        match action {
            Action::Create => self.create(env, ctx, &message_id),
            Action::Command => self.start(env, ctx, &message_id),
            Action::Send => self.send(env, ctx, &message_id),
            Action::Receive => self.receive(env, ctx, &message_id).await,
            Action::Signal => self.signal(env, ctx, &message_id),
            Action::Delete => self.delete(env, ctx, &message_id),
        }
    }

    fn create(&self, env: &Envelope, ctx: &Ctx<'_>, mid: &str) -> Result<String, ServerFault> {
        let shell_el = env.body.child(ns::SHELL, "Shell").ok_or_else(|| ServerFault::invalid_parameter("The request has no rsp:Shell."))?;
        let text = |name: &str, default: &str| {
            shell_el.child(ns::SHELL, name).map(|e| e.trimmed_text().to_string()).unwrap_or_else(|| default.to_string())
        };
        let input_streams = text("InputStreams", "stdin");
        let output_streams = text("OutputStreams", "stdout stderr");
        let id = new_id();
        self.shells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::new(ShellEntry { owner: ctx.account.to_string(), commands: Mutex::new(HashMap::new()) }));
        Ok(reply::created(
            mid,
            &CreatedShell {
                address: ctx.address,
                shell_id: &id,
                owner: ctx.account,
                client_ip: ctx.client_ip,
                idle_timeout: ctx.idle_timeout,
                input_streams: &input_streams,
                output_streams: &output_streams,
            },
        ))
    }

    fn start(&self, env: &Envelope, ctx: &Ctx<'_>, mid: &str) -> Result<String, ServerFault> {
        let (_, shell) = self.shell(env, ctx.account)?;
        let line = env
            .body
            .child(ns::SHELL, "CommandLine")
            .ok_or_else(|| ServerFault::invalid_parameter("The request has no rsp:CommandLine."))?;
        let command = line.child(ns::SHELL, "Command").map(|c| c.text.trim().to_string()).unwrap_or_default();
        if command.is_empty() {
            return Err(ServerFault::invalid_parameter("The command line is empty."));
        }
        let args: Vec<String> = line.children_named(ns::SHELL, "Arguments").map(|a| a.text.clone()).collect();
        let process = ctx.host.start(&command, &args);
        let id = new_id();
        let cmd = Cmd { process, pending: VecDeque::new(), exit: None };
        shell.commands.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), Arc::new(tokio::sync::Mutex::new(cmd)));
        Ok(reply::command(mid, &id))
    }

    fn send(&self, env: &Envelope, ctx: &Ctx<'_>, mid: &str) -> Result<String, ServerFault> {
        let (_, shell) = self.shell(env, ctx.account)?;
        let send = env.body.child(ns::SHELL, "Send").ok_or_else(|| ServerFault::invalid_parameter("The request has no rsp:Send."))?;
        for stream in send.children_named(ns::SHELL, "Stream") {
            if stream.attr("Name").is_some_and(|n| n != "stdin") {
                return Err(ServerFault::invalid_parameter("Only the stdin stream accepts input."));
            }
            let cmd = Self::command(&shell, stream.attr("CommandId"))?;
            let text: String = stream.text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let data = B64.decode(text.as_bytes()).map_err(|_| ServerFault::invalid_parameter("The stream data is not base64."))?;
            let end = stream.attr("End").is_some_and(|e| e.eq_ignore_ascii_case("true"));
            // The command is only locked by a Receive on another connection; input must not wait
            // for that Receive's timeout.
            match cmd.try_lock() {
                Ok(mut c) => c.process.write_stdin(&data, end),
                Err(_) => {
                    let cmd = cmd.clone();
                    tokio::spawn(async move { cmd.lock().await.process.write_stdin(&data, end) });
                }
            }
        }
        Ok(reply::sent(mid))
    }

    async fn receive(&self, env: &Envelope, ctx: &Ctx<'_>, mid: &str) -> Result<String, ServerFault> {
        let (_, shell) = self.shell(env, ctx.account)?;
        let desired = env.body.path(&[(ns::SHELL, "Receive"), (ns::SHELL, "DesiredStream")]);
        let cmd_id = desired.and_then(|d| d.attr("CommandId")).map(str::to_string);
        let cmd = Self::command(&shell, cmd_id.as_deref())?;
        let cmd_id = cmd_id.unwrap_or_default();
        let wait = env.operation_timeout().unwrap_or(Duration::from_secs(60)).min(ctx.max_operation_timeout);
        let max_env = env.max_envelope_size().unwrap_or(DEFAULT_MAX_ENVELOPE_SIZE) as usize;
        let budget = (max_env.saturating_sub(4096) / 4 * 3).max(512);

        let mut c = cmd.lock().await;
        if c.pending.is_empty() && c.exit.is_none() {
            match tokio::time::timeout(wait, c.process.next_output()).await {
                Err(_) => return Err(ServerFault::timed_out()),
                Ok(Some(o)) => c.pending.push_back(o),
                Ok(None) => c.pending.push_back(Output::Exit(0)),
            }
        }
        // Take whatever else is ready now.
        while !matches!(c.pending.back(), Some(Output::Exit(_))) {
            match c.process.next_output().now_or_never() {
                Some(Some(o)) => c.pending.push_back(o),
                Some(None) => c.pending.push_back(Output::Exit(0)),
                None => break,
            }
        }
        let mut chunks: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut used = 0usize;
        while used < budget {
            let Some(next) = c.pending.pop_front() else { break };
            let (stream, mut data, again): Piece = match next {
                Output::Exit(code) => {
                    c.exit = Some(code);
                    break;
                }
                Output::Stdout(d) => ("stdout", d, Output::Stdout),
                Output::Stderr(d) => ("stderr", d, Output::Stderr),
            };
            if used + data.len() > budget {
                c.pending.push_front(again(data.split_off(budget - used)));
            }
            used += data.len();
            chunks.push((stream, data));
        }
        let refs: Vec<(&str, &[u8])> = chunks.iter().map(|(s, d)| (*s, d.as_slice())).collect();
        Ok(reply::received(mid, &cmd_id, &refs, c.exit))
    }

    fn signal(&self, env: &Envelope, ctx: &Ctx<'_>, mid: &str) -> Result<String, ServerFault> {
        let (_, shell) = self.shell(env, ctx.account)?;
        let sig = env.body.child(ns::SHELL, "Signal").ok_or_else(|| ServerFault::invalid_parameter("The request has no rsp:Signal."))?;
        let code = sig.child(ns::SHELL, "Code").map(|c| c.trimmed_text()).unwrap_or_default();
        Signal::from_uri(code).ok_or_else(|| ServerFault::invalid_parameter(format!("Unknown signal {code}.")))?;
        let id = sig.attr("CommandId").ok_or_else(|| ServerFault::invalid_parameter("The signal names no command."))?;
        let cmd = shell.commands.lock().unwrap_or_else(PoisonError::into_inner).remove(id).ok_or_else(command_not_found)?;
        terminate(cmd);
        Ok(reply::signalled(mid))
    }

    fn delete(&self, env: &Envelope, ctx: &Ctx<'_>, mid: &str) -> Result<String, ServerFault> {
        let (id, shell) = self.shell(env, ctx.account)?;
        self.shells.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        let commands: Vec<_> = shell.commands.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, c)| c).collect();
        for c in commands {
            terminate(c);
        }
        Ok(reply::deleted(mid))
    }
}

/// Terminates a command now, or as soon as a Receive in progress releases it.
fn terminate(cmd: Arc<tokio::sync::Mutex<Cmd>>) {
    if let Ok(mut c) = cmd.try_lock() {
        c.process.terminate();
        return;
    }
    tokio::spawn(async move { cmd.lock().await.process.terminate() });
}
