//! Builds the request envelopes of the six WinRS actions (Create shell, Command, Send, Receive,
//! Signal, Delete) with the common WS-Management headers, in the shape Windows clients send them.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::ns::{self, Action, Signal};
use super::xml::{escape_attr, escape_text};

/// The default `MaxEnvelopeSize` (pywinrm and pypsrp use 153600 bytes).
pub const DEFAULT_MAX_ENVELOPE_SIZE: u32 = 153_600;

/// The headers every request of one client shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// `a:To`: the endpoint URL, e.g. `http://host:5985/wsman`.
    pub to: String,
    /// `w:MaxEnvelopeSize`: the largest response the client accepts, in bytes.
    pub max_envelope_size: u32,
    /// `w:Locale` and `p:DataLocale`.
    pub locale: String,
    /// `w:OperationTimeout`: how long the server may hold a request (a Receive) before it answers
    /// `w:TimedOut`.
    pub operation_timeout: Duration,
    /// `p:SessionId` (optional; pypsrp sends one per client).
    pub session_id: Option<String>,
}

impl Headers {
    /// Defaults for `endpoint`: 153600-byte envelopes, en-US, 20 s operation timeout, no session.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Headers {
            to: endpoint.into(),
            max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE,
            locale: "en-US".into(),
            operation_timeout: Duration::from_secs(20),
            session_id: None,
        }
    }
}

/// One built request: its action, MessageID (for the `RelatesTo` check) and XML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub message_id: String,
    pub xml: String,
}

/// Options of a new shell (`rsp:Shell` and the Create OptionSet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOptions {
    /// `WINRS_CODEPAGE` (65001 for UTF-8; Windows defaults to the OEM code page, 437).
    pub codepage: Option<u32>,
    /// `WINRS_NOPROFILE`: do not load the user profile.
    pub no_profile: bool,
    /// `rsp:Environment` variables.
    pub environment: Vec<(String, String)>,
    /// `rsp:WorkingDirectory`.
    pub working_directory: Option<String>,
    /// `rsp:IdleTimeOut`.
    pub idle_timeout: Option<Duration>,
    /// `rsp:Lifetime`.
    pub lifetime: Option<Duration>,
    /// `rsp:Name`.
    pub name: Option<String>,
    /// `rsp:InputStreams`.
    pub input_streams: String,
    /// `rsp:OutputStreams`.
    pub output_streams: String,
}

impl Default for ShellOptions {
    fn default() -> Self {
        ShellOptions {
            codepage: None,
            no_profile: false,
            environment: Vec::new(),
            working_directory: None,
            idle_timeout: None,
            lifetime: None,
            name: None,
            input_streams: "stdin".into(),
            output_streams: "stdout stderr".into(),
        }
    }
}

impl ShellOptions {
    /// What lyncdr uses: UTF-8 code page, no profile.
    pub fn lyncdr() -> Self {
        ShellOptions { codepage: Some(65001), no_profile: true, ..ShellOptions::default() }
    }
}

/// An `xs:duration` in seconds, e.g. `PT20S`, `PT1.500S`.
pub fn xs_duration(d: Duration) -> String {
    let ms = d.subsec_millis();
    if ms == 0 { format!("PT{}S", d.as_secs()) } else { format!("PT{}.{:03}S", d.as_secs(), ms) }
}

/// A fresh `uuid:` MessageID.
pub fn new_message_id() -> String {
    format!("uuid:{}", uuid::Uuid::new_v4().to_string().to_uppercase())
}

struct Opt<'a> {
    name: &'a str,
    value: &'a str,
    must_comply: bool,
}

fn envelope(h: &Headers, action: Action, message_id: &str, options: &[Opt<'_>], shell_id: Option<&str>, body: &str) -> String {
    let mut x = String::with_capacity(1536 + body.len());
    x.push_str(&format!(
        "<s:Envelope xmlns:s=\"{}\" xmlns:a=\"{}\" xmlns:w=\"{}\" xmlns:p=\"{}\" xmlns:rsp=\"{}\"><s:Header>",
        ns::SOAP,
        ns::ADDRESSING,
        ns::WSMAN,
        ns::WSMV,
        ns::SHELL
    ));
    x.push_str(&format!("<a:Action s:mustUnderstand=\"true\">{}</a:Action>", action.uri()));
    let lang = escape_attr(&h.locale);
    x.push_str(&format!("<p:DataLocale s:mustUnderstand=\"false\" xml:lang=\"{lang}\"/>"));
    x.push_str(&format!("<w:Locale s:mustUnderstand=\"false\" xml:lang=\"{lang}\"/>"));
    x.push_str(&format!("<w:MaxEnvelopeSize s:mustUnderstand=\"true\">{}</w:MaxEnvelopeSize>", h.max_envelope_size));
    x.push_str(&format!("<a:MessageID>{}</a:MessageID>", escape_text(message_id)));
    x.push_str(&format!("<w:OperationTimeout>{}</w:OperationTimeout>", xs_duration(h.operation_timeout)));
    x.push_str(&format!("<a:ReplyTo><a:Address s:mustUnderstand=\"true\">{}</a:Address></a:ReplyTo>", ns::ANONYMOUS));
    x.push_str(&format!("<w:ResourceURI s:mustUnderstand=\"true\">{}</w:ResourceURI>", ns::RESOURCE_CMD));
    if let Some(sid) = &h.session_id {
        x.push_str(&format!("<p:SessionId s:mustUnderstand=\"false\">{}</p:SessionId>", escape_text(sid)));
    }
    x.push_str(&format!("<a:To>{}</a:To>", escape_text(&h.to)));
    if !options.is_empty() {
        x.push_str("<w:OptionSet s:mustUnderstand=\"true\">");
        for o in options {
            let mc = if o.must_comply { " MustComply=\"true\"" } else { "" };
            x.push_str(&format!("<w:Option{mc} Name=\"{}\">{}</w:Option>", escape_attr(o.name), escape_text(o.value)));
        }
        x.push_str("</w:OptionSet>");
    }
    if let Some(id) = shell_id {
        x.push_str(&format!("<w:SelectorSet><w:Selector Name=\"ShellId\">{}</w:Selector></w:SelectorSet>", escape_text(id)));
    }
    x.push_str("</s:Header>");
    if body.is_empty() {
        x.push_str("<s:Body/>");
    } else {
        x.push_str("<s:Body>");
        x.push_str(body);
        x.push_str("</s:Body>");
    }
    x.push_str("</s:Envelope>");
    x
}

fn request(h: &Headers, action: Action, options: &[Opt<'_>], shell_id: Option<&str>, body: &str) -> Request {
    let message_id = new_message_id();
    let xml = envelope(h, action, &message_id, options, shell_id, body);
    Request { action, message_id, xml }
}

/// Create a `cmd` shell.
pub fn create_shell(h: &Headers, o: &ShellOptions) -> Request {
    let codepage = o.codepage.map(|c| c.to_string());
    let mut options = Vec::new();
    if o.no_profile {
        options.push(Opt { name: "WINRS_NOPROFILE", value: "TRUE", must_comply: true });
    }
    if let Some(cp) = &codepage {
        options.push(Opt { name: "WINRS_CODEPAGE", value: cp, must_comply: false });
    }
    let mut body = String::from("<rsp:Shell>");
    body.push_str(&format!("<rsp:InputStreams>{}</rsp:InputStreams>", escape_text(&o.input_streams)));
    body.push_str(&format!("<rsp:OutputStreams>{}</rsp:OutputStreams>", escape_text(&o.output_streams)));
    if !o.environment.is_empty() {
        body.push_str("<rsp:Environment>");
        for (k, v) in &o.environment {
            body.push_str(&format!("<rsp:Variable Name=\"{}\">{}</rsp:Variable>", escape_attr(k), escape_text(v)));
        }
        body.push_str("</rsp:Environment>");
    }
    if let Some(t) = o.idle_timeout {
        body.push_str(&format!("<rsp:IdleTimeOut>{}</rsp:IdleTimeOut>", xs_duration(t)));
    }
    if let Some(t) = o.lifetime {
        body.push_str(&format!("<rsp:Lifetime>{}</rsp:Lifetime>", xs_duration(t)));
    }
    if let Some(n) = &o.name {
        body.push_str(&format!("<rsp:Name>{}</rsp:Name>", escape_text(n)));
    }
    if let Some(d) = &o.working_directory {
        body.push_str(&format!("<rsp:WorkingDirectory>{}</rsp:WorkingDirectory>", escape_text(d)));
    }
    body.push_str("</rsp:Shell>");
    request(h, Action::Create, &options, None, &body)
}

/// Start `command` with `args` in the shell. `skip_cmd_shell` sets `WINRS_SKIP_CMD_SHELL`
/// (run the executable directly instead of through `cmd.exe /c`).
pub fn command(h: &Headers, shell_id: &str, command: &str, args: &[String], skip_cmd_shell: bool) -> Request {
    let options = [Opt { name: "WINRS_SKIP_CMD_SHELL", value: if skip_cmd_shell { "True" } else { "False" }, must_comply: false }];
    let mut body = format!("<rsp:CommandLine><rsp:Command>{}</rsp:Command>", escape_text(command));
    for a in args {
        body.push_str(&format!("<rsp:Arguments>{}</rsp:Arguments>", escape_text(a)));
    }
    body.push_str("</rsp:CommandLine>");
    request(h, Action::Command, &options, Some(shell_id), &body)
}

/// Send `data` to the command's `stream` (normally `stdin`); `end` closes the stream.
pub fn send(h: &Headers, shell_id: &str, command_id: &str, stream: &str, data: &[u8], end: bool) -> Request {
    let body = format!(
        "<rsp:Send><rsp:Stream CommandId=\"{}\" End=\"{}\" Name=\"{}\">{}</rsp:Stream></rsp:Send>",
        escape_attr(command_id),
        if end { "True" } else { "False" },
        escape_attr(stream),
        B64.encode(data)
    );
    request(h, Action::Send, &[], Some(shell_id), &body)
}

/// Receive the output available for the command (or for the shell if `command_id` is `None`).
pub fn receive(h: &Headers, shell_id: &str, command_id: Option<&str>, streams: &str) -> Request {
    let options = [Opt { name: "WSMAN_CMDSHELL_OPTION_KEEPALIVE", value: "True", must_comply: false }];
    let cid = command_id.map(|c| format!(" CommandId=\"{}\"", escape_attr(c))).unwrap_or_default();
    let body = format!("<rsp:Receive><rsp:DesiredStream{cid}>{}</rsp:DesiredStream></rsp:Receive>", escape_text(streams));
    request(h, Action::Receive, &options, Some(shell_id), &body)
}

/// Signal the command.
pub fn signal(h: &Headers, shell_id: &str, command_id: &str, code: Signal) -> Request {
    let body = format!("<rsp:Signal CommandId=\"{}\"><rsp:Code>{}</rsp:Code></rsp:Signal>", escape_attr(command_id), code.uri());
    request(h, Action::Signal, &[], Some(shell_id), &body)
}

/// Delete the shell.
pub fn delete(h: &Headers, shell_id: &str) -> Request {
    request(h, Action::Delete, &[], Some(shell_id), "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::soap::xml;

    #[test]
    fn durations_are_xs_durations() {
        assert_eq!(xs_duration(Duration::from_secs(20)), "PT20S");
        assert_eq!(xs_duration(Duration::from_millis(1500)), "PT1.500S");
    }

    #[test]
    fn requests_are_well_formed_and_carry_their_ids() {
        let h = Headers::new("http://h:5985/wsman?a=1&b=<2>");
        let opts = ShellOptions { environment: vec![("A&B".into(), "<v>\"".into())], ..ShellOptions::lyncdr() };
        let reqs = [
            create_shell(&h, &opts),
            command(&h, "S", "cmd <&>", &["a\"b".into()], false),
            send(&h, "S", "C", "stdin", b"\x00\xff", true),
            receive(&h, "S", Some("C"), "stdout stderr"),
            signal(&h, "S", "C", Signal::Terminate),
            delete(&h, "S"),
        ];
        for r in &reqs {
            let el = xml::parse(&r.xml).unwrap();
            let header = el.child(ns::SOAP, "Header").unwrap();
            assert_eq!(header.child(ns::ADDRESSING, "MessageID").unwrap().text, r.message_id);
            assert_eq!(header.child(ns::ADDRESSING, "Action").unwrap().text, r.action.uri());
            assert_eq!(header.child(ns::ADDRESSING, "To").unwrap().text, h.to);
        }
        let create = xml::parse(&reqs[0].xml).unwrap();
        let var = create.path(&[(ns::SOAP, "Body"), (ns::SHELL, "Shell"), (ns::SHELL, "Environment"), (ns::SHELL, "Variable")]).unwrap();
        assert_eq!(var.attr("Name"), Some("A&B"));
        assert_eq!(var.text, "<v>\"");
        assert!(reqs[0].xml.contains("WINRS_CODEPAGE\">65001<"));
        assert_ne!(reqs[0].message_id, reqs[1].message_id);
    }
}
