//! The simulator behind the WS-Man endpoint: [`SimHost`] is the [`Host`] that `lyncdr sim serve
//! --winrm` runs commands on. It stands in for `powershell.exe` on every server of the simulated
//! deployment and understands what the PowerShell driver sends: a warm session started with
//! [`INTERACTIVE_BOOTSTRAP`] (scripts on stdin, each ended by [`SCRIPT_END`], each answered by
//! its frame line and [`SCRIPT_DONE`]), one script on stdin under [`STDIN_BOOTSTRAP`], or a
//! script given with `-EncodedCommand`. Each script is read back with [`parse_script`]; its cmdlet
//! runs through [`SimServer::invoke`] in scaled real time, and its outcome is written as the one
//! frame the driver reads (RESULT, ERROR or UNREACHABLE; the clock script answers with the
//! simulated clock and its speed). Anything that is not a driver script is, as PowerShell says,
//! not recognized. This module owns that translation only: the simulated world is the
//! [`SimServer`]'s, shared with the HTTP API, and the WS-Man protocol is [`crate::winrm::server`]'s.
//!
//! [`INTERACTIVE_BOOTSTRAP`]: crate::winrm::powershell::INTERACTIVE_BOOTSTRAP
//! [`STDIN_BOOTSTRAP`]: crate::winrm::powershell::STDIN_BOOTSTRAP

use std::sync::Arc;

use serde_json::Value;
use tokio::task::JoinHandle;

use super::server::SimServer;
use crate::backend::LyncError;
use crate::backend::wire::InvokeReply;
use crate::driver::script::{
    ClockFrame, ERROR_FRAME, Parsed, RESULT_FRAME, ScriptError, UNREACHABLE_FRAME, Unreachable, frame, parse_script,
};
use crate::model::RunOn;
use crate::ps::{binder, parse_line};
use crate::winrm::clixml::CLIXML_MARKER;
use crate::winrm::powershell::{Launch, SCRIPT_DONE, SCRIPT_END, classify_launch};
use crate::winrm::server::{Host, Input, Process, ProcessIo, channel_process};

/// The largest script (or unfinished script) a process buffers from stdin; a driver script is a
/// few kilobytes. Past it the process says so on stderr and exits with code 1.
pub const MAX_SCRIPT_BYTES: usize = 4 << 20;

/// The exit code of a process that was terminated (WinRS Signal, shell deleted).
const TERMINATED: i64 = -1;

/// Runs the PowerShell driver's scripts against a shared [`SimServer`].
#[derive(Clone)]
pub struct SimHost {
    pub server: Arc<SimServer>,
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost").finish_non_exhaustive()
    }
}

/// The simulator behind a WS-Man endpoint on a loopback port, and the PowerShell driver
/// connected to it with a password made for this run: what `demo --transport winrm`, the
/// benchmarks and the tests use to drive the simulator the way a real deployment is driven.
/// The management servers are the first Front End server of each pool. The server's transport
/// fault schedule applies ([`super::transport_faults::TransportHook`]). Dropping the returned
/// task handle does not stop the endpoint; abort it.
pub async fn driver_over_loopback(
    server: Arc<SimServer>,
    topology: &crate::model::Topology,
) -> Result<(crate::driver::winrm::WinRmLync, JoinHandle<std::io::Result<()>>), String> {
    let hook: Arc<dyn crate::winrm::server::FaultHook> = Arc::new(super::transport_faults::TransportHook { server: server.clone() });
    driver_over_loopback_with(Arc::new(SimHost { server }), Some(hook), None, topology).await
}

/// [`driver_over_loopback`] with the endpoint's host and a transport fault hook of the caller's
/// (tests wrap [`SimHost`] to watch what arrives, and inject faults).
pub async fn driver_over_loopback_with(
    host: Arc<dyn Host>,
    hook: Option<Arc<dyn crate::winrm::server::FaultHook>>,
    run_as: Option<crate::driver::script::RunAsTask>,
    topology: &crate::model::Topology,
) -> Result<(crate::driver::winrm::WinRmLync, JoinHandle<std::io::Result<()>>), String> {
    use crate::driver::winrm::{WinRmConfig, WinRmLync};
    use crate::winrm::auth::{Credentials, Users};
    use crate::winrm::server::{Server, ServerConfig};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let password = format!("loopback-{nanos:x}-{}", std::process::id());
    let users = Users::new().with("LYNCDR\\driver", &password).map_err(|e| e.to_string())?;
    let mut wsman = Server::new(ServerConfig::new(users), host);
    if let Some(hook) = hook {
        wsman = wsman.with_fault_hook(hook);
    }
    let wsman = Arc::new(wsman);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let serving = tokio::spawn(crate::winrm::server::serve(listener, wsman));
    let credentials = Credentials::new("LYNCDR\\driver", password).map_err(|e| e.to_string())?;
    let cfg = WinRmConfig {
        endpoint: format!("http://{addr}/wsman"),
        credentials,
        management_servers: topology.pools.values().filter_map(|p| p.front_ends.first().cloned()).collect(),
        script_timeout: std::time::Duration::from_secs(3600),
        auth: crate::winrm::auth::AuthMethod::Ntlm,
        run_as,
    };
    match WinRmLync::connect(cfg).await {
        Ok(l) => Ok((l, serving)),
        Err(e) => {
            serving.abort();
            Err(format!("cannot connect to the simulator's WS-Man endpoint: {e}"))
        }
    }
}

impl Host for SimHost {
    fn start(&self, command_line: &str, args: &[String]) -> Box<dyn Process> {
        let launch = classify_launch(command_line, args);
        let (process, io) = channel_process();
        tokio::spawn(run(self.server.clone(), launch, io));
        process
    }
}

/// What one script makes the process print.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// Frame lines on stdout (one per call; a batch has several, joined).
    Frame(String),
    /// Not a driver script: PowerShell's CommandNotFoundException for its first command.
    NotRecognized(String),
    /// Nothing to run (blank lines and comments only).
    Nothing,
}

async fn run(server: Arc<SimServer>, launch: Launch, mut io: ProcessIo) {
    let code = match launch {
        Launch::Cmd(words) => {
            let name = words.split_whitespace().next().unwrap_or_default().to_string();
            io.stderr(format!("'{name}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"));
            1
        }
        Launch::BadEncoding(_) => {
            io.stderr(
                "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n",
            );
            1
        }
        Launch::Script(script) => one_script(&server, script, &mut io).await,
        Launch::StdinScript => match read_to_end(&mut io).await {
            Ok(bytes) => one_script(&server, String::from_utf8_lossy(&bytes).into_owned(), &mut io).await,
            Err(code) => code,
        },
        Launch::Interactive => interactive(&server, &mut io).await,
    };
    io.exit(code);
}

/// A process that runs one script and exits: 0 once its frame is written, 1 if the script was
/// not recognized.
async fn one_script(server: &Arc<SimServer>, script: String, io: &mut ProcessIo) -> i64 {
    let task = tokio::spawn(answer(server.clone(), script));
    // Its stdin is not read: nothing that arrives now is kept.
    let (mut ignored, mut ended) = (Vec::new(), true);
    match wait_answer(io, task, &mut ignored, &mut ended).await {
        Some(a) => emit(io, &a),
        None => TERMINATED,
    }
}

/// The warm session: script after script from stdin, each answered and followed by
/// [`SCRIPT_DONE`], until stdin ends (0) or the process is terminated.
async fn interactive(server: &Arc<SimServer>, io: &mut ProcessIo) -> i64 {
    let mut buf = Vec::new();
    let mut ended = false;
    // powershell.exe starts and imports the Lync module.
    let start = server.lock().timings().session_start;
    server.clock.sleep_until(server.clock.now().plus(start)).await;
    loop {
        if buf.len() > MAX_SCRIPT_BYTES {
            return too_large(io);
        }
        if let Some(script) = take_script(&mut buf) {
            let task = tokio::spawn(answer(server.clone(), script));
            match wait_answer(io, task, &mut buf, &mut ended).await {
                Some(a) => {
                    emit(io, &a);
                }
                None => return TERMINATED,
            }
            io.stdout(format!("{SCRIPT_DONE}\r\n"));
            continue;
        }
        if ended {
            // What is left has no end marker: PowerShell's bootstrap drops it too.
            return 0;
        }
        match io.input.recv().await {
            Some(Input::Stdin(d)) => buf.extend(d),
            Some(Input::End) => ended = true,
            Some(Input::Terminate) | None => return TERMINATED,
        }
    }
}

/// Reads stdin to its end, at most [`MAX_SCRIPT_BYTES`]; `Err(exit code)` if the process was
/// terminated or the script is too large.
async fn read_to_end(io: &mut ProcessIo) -> Result<Vec<u8>, i64> {
    let mut buf = Vec::new();
    loop {
        match io.input.recv().await {
            Some(Input::Stdin(d)) => {
                buf.extend(d);
                if buf.len() > MAX_SCRIPT_BYTES {
                    return Err(too_large(io));
                }
            }
            Some(Input::End) => return Ok(buf),
            Some(Input::Terminate) | None => return Err(TERMINATED),
        }
    }
}

fn too_large(io: &ProcessIo) -> i64 {
    powershell_error(io, &[format!("The script on standard input is larger than {MAX_SCRIPT_BYTES} bytes; the simulator refuses it.")]);
    1
}

/// Cuts the first complete script (the lines before a line that is exactly [`SCRIPT_END`]) out
/// of `buf`.
fn take_script(buf: &mut Vec<u8>) -> Option<String> {
    let mut start = 0;
    while let Some(n) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = &buf[start..start + n];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == SCRIPT_END.as_bytes() {
            let script = String::from_utf8_lossy(&buf[..start]).into_owned();
            buf.drain(..start + n + 1);
            return Some(script);
        }
        start += n + 1;
    }
    None
}

/// Waits for a script's answer while stdin goes on arriving (kept in `buf` for the next
/// scripts); `None` if the process is terminated first. The call itself runs on its own task and
/// goes on in the simulated world regardless, as a cmdlet does on a server whose client left.
async fn wait_answer(io: &mut ProcessIo, mut task: JoinHandle<Answer>, buf: &mut Vec<u8>, ended: &mut bool) -> Option<Answer> {
    loop {
        tokio::select! {
            done = &mut task => {
                return Some(done.unwrap_or_else(|e| {
                    Answer::Frame(error_frame(
                        "The simulator failed while running the script.".into(),
                        "NotSpecified",
                        &format!("LyncdrSimulatorFailure: {e}"),
                        None,
                    ))
                }));
            }
            input = io.input.recv() => match input {
                Some(Input::Stdin(d)) if !*ended && buf.len() <= MAX_SCRIPT_BYTES => buf.extend(d),
                Some(Input::Stdin(_)) => {}
                Some(Input::End) => *ended = true,
                Some(Input::Terminate) | None => return None,
            }
        }
    }
}

/// Writes an answer; the exit code a one-script process ends with.
fn emit(io: &ProcessIo, answer: &Answer) -> i64 {
    match answer {
        Answer::Frame(line) => {
            io.stdout(format!("{line}\r\n"));
            0
        }
        Answer::NotRecognized(name) => {
            powershell_error(
                io,
                &[
                    format!("{name} : {}", binder::not_recognized(name).0),
                    format!("    + CategoryInfo          : ObjectNotFound: ({name}:String) [], CommandNotFoundException"),
                    "    + FullyQualifiedErrorId : CommandNotFoundException".to_string(),
                ],
            );
            1
        }
        Answer::Nothing => 0,
    }
}

/// Error records on stderr as Windows PowerShell writes them under `-EncodedCommand`: CLIXML.
fn powershell_error(io: &ProcessIo, lines: &[String]) {
    let records: String = lines.iter().map(|l| format!("<S S=\"Error\">{}</S>", escape_clixml(&format!("{l}\r\n")))).collect();
    io.stderr(format!(
        "{CLIXML_MARKER}\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">{records}</Objs>"
    ));
}

/// XML text with PowerShell's `_xHHHH_` escapes for control characters (and for a `_x` that
/// would otherwise read as one).
fn escape_clixml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '_' if chars.peek() == Some(&'x') => out.push_str("_x005F_"),
            c if c.is_control() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("_x{u:04X}_"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The first command word of a script that is not a driver script (comments and blank lines
/// skipped).
fn first_command(script: &str) -> Option<String> {
    let line = script.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let word = line.split(|c: char| c.is_whitespace() || c == ';' || c == '(').next().unwrap_or(line);
    Some(if word.is_empty() { line.to_string() } else { word.to_string() })
}

/// Runs one script against the simulator.
async fn answer(server: Arc<SimServer>, script: String) -> Answer {
    match parse_script(&script) {
        None => first_command(&script).map_or(Answer::Nothing, Answer::NotRecognized),
        Some(Parsed::Clock) => {
            let clock = ClockFrame { now_ms: server.clock.now().0, speed: server.clock.speed() };
            Answer::Frame(frame(RESULT_FRAME, &serde_json::to_value(clock).unwrap_or_default()))
        }
        Some(Parsed::Invoke { run_on, request, command }) => {
            round_trip(&server).await;
            Answer::Frame(call(&server, &run_on, request.as_ref(), &command).await)
        }
        Some(Parsed::Batch { run_on, commands }) => {
            round_trip(&server).await;
            // One after another, as PowerShell runs a script's statements.
            let mut lines = Vec::new();
            for command in &commands {
                lines.push(call(&server, &run_on, None, command).await);
            }
            Answer::Frame(lines.join("\r\n"))
        }
    }
}

/// What a script costs over WinRM before its cmdlets run ([`Timings::round_trip`]), in
/// simulated time.
///
/// [`Timings::round_trip`]: crate::scenario::timing::Timings::round_trip
async fn round_trip(server: &SimServer) {
    let cost = server.lock().timings().round_trip;
    server.clock.sleep_until(server.clock.now().plus(cost)).await;
}

/// Runs one cmdlet line of a driver script; its frame.
async fn call(server: &Arc<SimServer>, run_on: &RunOn, request: Option<&crate::model::Request>, command: &str) -> String {
    let inv = match parse_line(command, &binder::is_switch) {
        Ok(Some(inv)) => inv,
        Ok(None) => return parser_error("You must provide a value expression following the '=' operator.".into()),
        Err(e) => return parser_error(e.0),
    };
    let reply = server.invoke_via(super::transport_faults::Transport::Winrm, run_on, &inv, request).await;
    reply_frame(run_on, reply)
}

fn parser_error(message: String) -> String {
    error_frame(message, "ParserError", "ParseException", None)
}

fn error_frame(message: String, category: &str, error_id: &str, rule: Option<u8>) -> String {
    let e = ScriptError { message, category: category.into(), error_id: error_id.into(), rule };
    frame(ERROR_FRAME, &serde_json::to_value(e).unwrap_or_default())
}

/// Where a call was meant to run, for an unreachable answer that names no target.
fn target_of(run_on: &RunOn) -> String {
    match run_on {
        RunOn::Any => "any server".into(),
        RunOn::Pool(p) => p.to_string(),
        RunOn::Server(s) => s.to_string(),
    }
}

/// The frame of a call's outcome.
fn reply_frame(run_on: &RunOn, reply: InvokeReply) -> String {
    if reply.ok {
        return frame(RESULT_FRAME, &reply.output.unwrap_or(Value::Null));
    }
    match reply.error {
        Some(LyncError::Cmdlet { cmdlet, message, rule }) => error_frame(message, "InvalidOperation", &cmdlet, rule),
        Some(LyncError::Unreachable { target, detail }) => {
            let target = if target.is_empty() { target_of(run_on) } else { target };
            let u = Unreachable { target, detail };
            frame(UNREACHABLE_FRAME, &serde_json::to_value(u).unwrap_or_default())
        }
        Some(LyncError::Ambiguous { detail }) => error_frame(
            format!("The simulator lost the connection while the cmdlet ran; its outcome is unknown: {detail}"),
            "OperationStopped",
            crate::driver::winrm::OUTCOME_UNKNOWN,
            None,
        ),
        Some(LyncError::Protocol(detail)) => {
            error_frame(format!("Simulator protocol error: {detail}"), "ProtocolError", "LyncdrProtocolError", None)
        }
        None => {
            error_frame("Simulator protocol error: the call failed without an error".into(), "ProtocolError", "LyncdrProtocolError", None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::clixml::decode_stderr;

    #[test]
    fn scripts_are_cut_at_a_line_that_is_exactly_the_end_marker() {
        let mut buf = b"a\r\nb #LYNCDR-END\n#LYNCDR-END\r\nc\n#LYNCDR-END\nd".to_vec();
        assert_eq!(take_script(&mut buf).as_deref(), Some("a\r\nb #LYNCDR-END\n"));
        assert_eq!(take_script(&mut buf).as_deref(), Some("c\n"));
        assert_eq!(take_script(&mut buf), None);
        assert_eq!(buf, b"d");
        // A multi-byte character split across chunks survives.
        let mut buf = "ü".as_bytes()[..1].to_vec();
        assert_eq!(take_script(&mut buf), None);
        buf.extend(&"ü".as_bytes()[1..]);
        buf.extend(b"\n#LYNCDR-END\n");
        assert_eq!(take_script(&mut buf).as_deref(), Some("ü\n"));
    }

    #[test]
    fn not_driver_scripts_name_their_first_command() {
        assert_eq!(first_command("# note\n\n  Get-Process -Name x\n"), Some("Get-Process".into()));
        assert_eq!(first_command("frob;bar"), Some("frob".into()));
        assert_eq!(first_command("# only a comment\n"), None);
        let (mut p, io) = channel_process();
        assert_eq!(emit(&io, &Answer::NotRecognized("Get-Process".into())), 1);
        io.exit(1);
        let err = futures::executor::block_on(async {
            let mut s = String::new();
            while let Some(o) = p.next_output().await {
                if let crate::winrm::server::Output::Stderr(d) = o {
                    s.push_str(&String::from_utf8_lossy(&d));
                }
            }
            s
        });
        assert!(err.starts_with(CLIXML_MARKER));
        let text = decode_stderr(&err);
        assert!(text.starts_with("Get-Process : The term 'Get-Process' is not recognized"), "{text}");
        assert!(text.contains("CommandNotFoundException"));
    }

    #[test]
    fn clixml_escapes_what_xml_and_powershell_need() {
        assert_eq!(escape_clixml("a<b>&\"_x0041_\r\n\u{1}"), "a&lt;b&gt;&amp;&quot;_x005F_x0041__x000D__x000A__x0001_");
        assert_eq!(crate::winrm::clixml::decode_escapes("_x005F_x0041__x000D_"), "_x0041_\r");
    }
}
