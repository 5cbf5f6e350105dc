//! Reads the WinRS responses a client receives: the ShellId of a created shell, the CommandId of a
//! started command, and Receive output (base64 chunks per stream, end markers, command state,
//! exit code). Faults are already errors by the time these run ([`Envelope::into_result`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::envelope::Envelope;
use super::ns;
use crate::winrm::error::WinrmError;

/// The state of a command as a Receive reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandState {
    Pending,
    Running,
    /// Exited; `exit_code` is `None` only if the server omitted it.
    Done {
        exit_code: Option<i64>,
    },
    /// A state URI this client does not know.
    Other(String),
}

/// One `rsp:Stream` element of a Receive response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChunk {
    pub name: String,
    pub command_id: Option<String>,
    pub data: Vec<u8>,
    pub end: bool,
}

/// A parsed Receive response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiveOutput {
    pub chunks: Vec<StreamChunk>,
    pub state: Option<CommandState>,
}

impl ReceiveOutput {
    /// The concatenated bytes of one stream in this response.
    pub fn stream(&self, name: &str) -> Vec<u8> {
        self.chunks.iter().filter(|c| c.name == name).flat_map(|c| c.data.iter().copied()).collect()
    }

    /// The command has exited.
    pub fn done(&self) -> bool {
        matches!(self.state, Some(CommandState::Done { .. }))
    }

    /// The exit code, once done.
    pub fn exit_code(&self) -> Option<i64> {
        match self.state {
            Some(CommandState::Done { exit_code }) => exit_code,
            _ => None,
        }
    }
}

fn expect_action(env: &Envelope, expected: ns::Action) -> Result<(), WinrmError> {
    let want = expected.response_uri();
    match env.action() {
        Some(a) if a == want => Ok(()),
        Some(a) => Err(WinrmError::Protocol(format!("expected action {want}, got {a}"))),
        None => Err(WinrmError::Protocol(format!("response to {expected:?} has no a:Action"))),
    }
}

/// The ShellId of a CreateResponse (from the ResourceCreated selector, else `rsp:Shell/rsp:ShellId`).
pub fn shell_id(env: &Envelope) -> Result<String, WinrmError> {
    expect_action(env, ns::Action::Create)?;
    let from_selector = env
        .body
        .path(&[(ns::TRANSFER, "ResourceCreated"), (ns::ADDRESSING, "ReferenceParameters"), (ns::WSMAN, "SelectorSet")])
        .and_then(|set| set.children_named(ns::WSMAN, "Selector").find(|s| s.attr("Name") == Some("ShellId")))
        .map(|s| s.trimmed_text().to_string());
    let from_shell = || env.body.path(&[(ns::SHELL, "Shell"), (ns::SHELL, "ShellId")]).map(|s| s.trimmed_text().to_string());
    from_selector
        .or_else(from_shell)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WinrmError::Protocol("CreateResponse carries no ShellId".into()))
}

/// The CommandId of a CommandResponse.
pub fn command_id(env: &Envelope) -> Result<String, WinrmError> {
    expect_action(env, ns::Action::Command)?;
    env.body
        .path(&[(ns::SHELL, "CommandResponse"), (ns::SHELL, "CommandId")])
        .map(|c| c.trimmed_text().to_string())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| WinrmError::Protocol("CommandResponse carries no CommandId".into()))
}

/// Checks a response with an empty or trivial body (Send, Signal, Delete).
pub fn acknowledged(env: &Envelope, action: ns::Action) -> Result<(), WinrmError> {
    expect_action(env, action)
}

/// The output of a ReceiveResponse.
pub fn receive_output(env: &Envelope) -> Result<ReceiveOutput, WinrmError> {
    expect_action(env, ns::Action::Receive)?;
    let rr = env.body.child(ns::SHELL, "ReceiveResponse").ok_or_else(|| WinrmError::Protocol("no rsp:ReceiveResponse".into()))?;
    let mut out = ReceiveOutput::default();
    for s in rr.children_named(ns::SHELL, "Stream") {
        let name = s.attr("Name").ok_or_else(|| WinrmError::Protocol("rsp:Stream without Name".into()))?.to_string();
        let text: String = s.text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let data = B64.decode(text.as_bytes()).map_err(|e| WinrmError::Protocol(format!("stream {name}: bad base64: {e}")))?;
        let end = s.attr("End").is_some_and(|e| e.eq_ignore_ascii_case("true"));
        out.chunks.push(StreamChunk { name, command_id: s.attr("CommandId").map(str::to_string), data, end });
    }
    if let Some(cs) = rr.child(ns::SHELL, "CommandState") {
        let state = cs.attr("State").unwrap_or_default();
        out.state = Some(if state == ns::STATE_DONE {
            let exit_code = match cs.child(ns::SHELL, "ExitCode") {
                Some(e) => Some(e.trimmed_text().parse::<i64>().map_err(|err| WinrmError::Protocol(format!("bad ExitCode: {err}")))?),
                None => None,
            };
            CommandState::Done { exit_code }
        } else if state == ns::STATE_RUNNING {
            CommandState::Running
        } else if state == ns::STATE_PENDING {
            CommandState::Pending
        } else {
            CommandState::Other(state.to_string())
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::soap::envelope;

    fn env(body: &str, action: &str) -> Envelope {
        let xml = format!(
            r#"<s:Envelope xmlns:s="{}" xmlns:a="{}" xmlns:rsp="{}"><s:Header><a:Action>{action}</a:Action></s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
            ns::SOAP,
            ns::ADDRESSING,
            ns::SHELL
        );
        envelope::parse(xml.as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn receive_collects_chunks_state_and_exit_code() {
        let e = env(
            r#"<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C">aGkN
Cg==</rsp:Stream><rsp:Stream Name="stderr" CommandId="C">ZXJy</rsp:Stream><rsp:Stream Name="stdout" CommandId="C">IQ==</rsp:Stream><rsp:Stream Name="stdout" CommandId="C" End="true"></rsp:Stream><rsp:CommandState CommandId="C" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>-1</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"#,
            &ns::Action::Receive.response_uri(),
        );
        let out = receive_output(&e).unwrap();
        assert_eq!(out.stream("stdout"), b"hi\r\n!");
        assert_eq!(out.stream("stderr"), b"err");
        assert!(out.chunks[3].end);
        assert_eq!(out.exit_code(), Some(-1));
    }

    #[test]
    fn running_state_and_bad_payloads() {
        let running = env(
            r#"<rsp:ReceiveResponse><rsp:CommandState CommandId="C" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/></rsp:ReceiveResponse>"#,
            &ns::Action::Receive.response_uri(),
        );
        let out = receive_output(&running).unwrap();
        assert_eq!(out.state, Some(CommandState::Running));
        assert!(!out.done());
        let bad = env(
            r#"<rsp:ReceiveResponse><rsp:Stream Name="stdout">!!</rsp:Stream></rsp:ReceiveResponse>"#,
            &ns::Action::Receive.response_uri(),
        );
        assert!(receive_output(&bad).is_err());
        let wrong = env("<rsp:ReceiveResponse/>", &ns::Action::Command.response_uri());
        assert!(receive_output(&wrong).is_err());
        assert!(command_id(&env("<rsp:CommandResponse/>", &ns::Action::Command.response_uri())).is_err());
    }
}
