//! The server's response envelopes: the six WinRS responses and SOAP 1.2 faults in the shape
//! Windows sends them (`RelatesTo` the request, `f:WSManFault` details), `w:TimedOut` included.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::winrm::error::WSMAN_TIMED_OUT_CODE;
use crate::winrm::soap::ns::{self, Action};
use crate::winrm::soap::request::{new_message_id, xs_duration};
use crate::winrm::soap::xml::{escape_attr, escape_text};

/// A fault the server answers with (HTTP 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFault {
    /// `s:Sender` or `s:Receiver` (local part).
    pub code: &'static str,
    /// WS-Management subcode local part, e.g. `TimedOut` (namespace `w`), or an addressing one
    /// with `a:` already in it.
    pub subcode: String,
    pub wsman_code: u64,
    pub message: String,
}

impl ServerFault {
    pub fn sender(subcode: &str, wsman_code: u64, message: impl Into<String>) -> Self {
        ServerFault { code: "Sender", subcode: subcode.into(), wsman_code, message: message.into() }
    }

    pub fn receiver(subcode: &str, wsman_code: u64, message: impl Into<String>) -> Self {
        ServerFault { code: "Receiver", subcode: subcode.into(), wsman_code, message: message.into() }
    }

    /// No output within the OperationTimeout.
    pub fn timed_out() -> Self {
        ServerFault::receiver(
            "TimedOut",
            WSMAN_TIMED_OUT_CODE,
            "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
        )
    }

    /// Unknown shell or command.
    pub fn invalid_selectors(message: impl Into<String>) -> Self {
        ServerFault::sender("InvalidSelectors", 2_150_858_843, message)
    }

    /// Malformed request.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ServerFault::sender("InvalidParameter", 87, message)
    }

    /// Unsupported action or resource.
    pub fn action_not_supported(message: impl Into<String>) -> Self {
        ServerFault::sender("ActionNotSupported", 2_150_858_754, message)
    }
}

fn envelope(action: &str, relates_to: &str, body: &str) -> String {
    format!(
        "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"{}\" xmlns:a=\"{}\" xmlns:x=\"{}\" xmlns:w=\"{}\" xmlns:rsp=\"{}\" xmlns:p=\"{}\"><s:Header><a:Action>{}</a:Action><a:MessageID>{}</a:MessageID><a:To>{}</a:To><a:RelatesTo>{}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>",
        ns::SOAP,
        ns::ADDRESSING,
        ns::TRANSFER,
        ns::WSMAN,
        ns::SHELL,
        ns::WSMV,
        escape_text(action),
        new_message_id(),
        ns::ANONYMOUS,
        escape_text(relates_to)
    )
}

/// The same reply with its `RelatesTo` replaced (fault injection).
pub fn relate_to(reply: &str, relates_to: &str) -> String {
    match (reply.find("<a:RelatesTo>"), reply.find("</a:RelatesTo>")) {
        (Some(a), Some(b)) if a < b => format!("{}<a:RelatesTo>{}{}", &reply[..a], escape_text(relates_to), &reply[b..]),
        _ => reply.to_string(),
    }
}

/// The fault envelope.
pub fn fault(relates_to: &str, machine: &str, f: &ServerFault) -> String {
    let subcode = if f.subcode.contains(':') { f.subcode.clone() } else { format!("w:{}", f.subcode) };
    let body = format!(
        "<s:Fault><s:Code><s:Value>s:{}</s:Value><s:Subcode><s:Value>{}</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">{}</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f=\"{}\" Code=\"{}\" Machine=\"{}\"><f:Message>{}</f:Message></f:WSManFault></s:Detail></s:Fault>",
        f.code,
        escape_text(&subcode),
        escape_text(&f.message),
        ns::WSMAN_FAULT,
        f.wsman_code,
        escape_attr(machine),
        escape_text(&f.message)
    );
    envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, &body)
}

/// Facts echoed in a CreateResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedShell<'a> {
    pub address: &'a str,
    pub shell_id: &'a str,
    pub owner: &'a str,
    pub client_ip: &'a str,
    pub idle_timeout: std::time::Duration,
    pub input_streams: &'a str,
    pub output_streams: &'a str,
}

pub fn created(relates_to: &str, s: &CreatedShell<'_>) -> String {
    let body = format!(
        "<x:ResourceCreated><a:Address>{addr}</a:Address><a:ReferenceParameters><w:ResourceURI>{res}</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">{id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>{id}</rsp:ShellId><rsp:ResourceUri>{res}</rsp:ResourceUri><rsp:Owner>{owner}</rsp:Owner><rsp:ClientIP>{ip}</rsp:ClientIP><rsp:IdleTimeOut>{idle}</rsp:IdleTimeOut><rsp:InputStreams>{ins}</rsp:InputStreams><rsp:OutputStreams>{outs}</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>",
        addr = escape_text(s.address),
        res = ns::RESOURCE_CMD,
        id = escape_text(s.shell_id),
        owner = escape_text(s.owner),
        ip = escape_text(s.client_ip),
        idle = xs_duration(s.idle_timeout),
        ins = escape_text(s.input_streams),
        outs = escape_text(s.output_streams),
    );
    envelope(&Action::Create.response_uri(), relates_to, &body)
}

pub fn command(relates_to: &str, command_id: &str) -> String {
    let body = format!("<rsp:CommandResponse><rsp:CommandId>{}</rsp:CommandId></rsp:CommandResponse>", escape_text(command_id));
    envelope(&Action::Command.response_uri(), relates_to, &body)
}

pub fn sent(relates_to: &str) -> String {
    envelope(&Action::Send.response_uri(), relates_to, "<rsp:SendResponse/>")
}

pub fn signalled(relates_to: &str) -> String {
    envelope(&Action::Signal.response_uri(), relates_to, "<rsp:SignalResponse/>")
}

pub fn deleted(relates_to: &str) -> String {
    envelope(&Action::Delete.response_uri(), relates_to, "")
}

/// A ReceiveResponse: the chunks `(stream, bytes)` in order, then end markers and the exit code
/// once `exit_code` is known, else the Running state.
pub fn received(relates_to: &str, command_id: &str, chunks: &[(&str, &[u8])], exit_code: Option<i64>) -> String {
    let cid = escape_attr(command_id);
    let mut body = String::from("<rsp:ReceiveResponse>");
    for (stream, data) in chunks {
        body.push_str(&format!("<rsp:Stream Name=\"{}\" CommandId=\"{cid}\">{}</rsp:Stream>", escape_attr(stream), B64.encode(data)));
    }
    match exit_code {
        Some(code) => {
            body.push_str(&format!("<rsp:Stream Name=\"stdout\" CommandId=\"{cid}\" End=\"true\"></rsp:Stream>"));
            body.push_str(&format!("<rsp:Stream Name=\"stderr\" CommandId=\"{cid}\" End=\"true\"></rsp:Stream>"));
            body.push_str(&format!(
                "<rsp:CommandState CommandId=\"{cid}\" State=\"{}\"><rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>",
                ns::STATE_DONE
            ));
        }
        None => body.push_str(&format!("<rsp:CommandState CommandId=\"{cid}\" State=\"{}\"/>", ns::STATE_RUNNING)),
    }
    body.push_str("</rsp:ReceiveResponse>");
    envelope(&Action::Receive.response_uri(), relates_to, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::soap::{envelope as env, response};

    #[test]
    fn replies_parse_back_with_the_client_readers() {
        let shell = CreatedShell {
            address: "http://h:5985/wsman",
            shell_id: "S-1",
            owner: "LAB\\alice",
            client_ip: "127.0.0.1",
            idle_timeout: std::time::Duration::from_secs(7200),
            input_streams: "stdin",
            output_streams: "stdout stderr",
        };
        let e = env::parse(created("uuid:1", &shell).as_bytes(), 1 << 20).unwrap();
        assert_eq!(e.relates_to(), Some("uuid:1"));
        assert_eq!(response::shell_id(&e).unwrap(), "S-1");
        let e = env::parse(command("uuid:2", "C-1").as_bytes(), 1 << 20).unwrap();
        assert_eq!(response::command_id(&e).unwrap(), "C-1");
        let e = env::parse(received("uuid:3", "C-1", &[("stdout", b"a"), ("stderr", b"b"), ("stdout", b"c")], Some(4)).as_bytes(), 1 << 20)
            .unwrap();
        let out = response::receive_output(&e).unwrap();
        assert_eq!((out.stream("stdout"), out.stream("stderr"), out.exit_code()), (b"ac".to_vec(), b"b".to_vec(), Some(4)));
        let e = env::parse(received("uuid:4", "C-1", &[], None).as_bytes(), 1 << 20).unwrap();
        assert_eq!(response::receive_output(&e).unwrap().state, Some(response::CommandState::Running));
        let e = env::parse(fault("uuid:5", "sim", &ServerFault::timed_out()).as_bytes(), 1 << 20).unwrap();
        let f = e.fault().unwrap();
        assert!(f.is_timed_out());
        assert_eq!((f.code.as_str(), f.subcode.as_deref(), f.machine.as_deref()), ("s:Receiver", Some("w:TimedOut"), Some("sim")));
        let moved = env::parse(relate_to(&sent("uuid:6"), "uuid:7").as_bytes(), 1 << 20).unwrap();
        assert_eq!(moved.relates_to(), Some("uuid:7"));
        for r in [sent("u"), signalled("u"), deleted("u")] {
            assert!(env::parse(r.as_bytes(), 1 << 20).unwrap().fault().is_none());
        }
    }
}
