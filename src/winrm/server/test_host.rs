//! A small scripted [`Host`] for tests and demos: it understands a handful of statements, run in
//! order (separated by `;` or newlines), directly or inside `powershell -EncodedCommand`:
//! `echo TEXT` (stdout line), `err TEXT` (stderr line; CLIXML error record under PowerShell),
//! `sleep MS`, `exit N`, `cat` (copy stdin to stdout until it ends). The lyncdr bootstraps are
//! recognised ([`classify_launch`]): [`STDIN_BOOTSTRAP`] runs stdin as a script,
//! [`INTERACTIVE_BOOTSTRAP`] runs script after script from stdin, printing [`SCRIPT_DONE`] after
//! each. Anything else is "not recognized" on stderr with exit code 1, as `cmd.exe` says it.
//!
//! [`STDIN_BOOTSTRAP`]: crate::winrm::powershell::STDIN_BOOTSTRAP
//! [`INTERACTIVE_BOOTSTRAP`]: crate::winrm::powershell::INTERACTIVE_BOOTSTRAP

use std::time::Duration;

use super::host::{Host, Input, Process, ProcessIo, channel_process};
use crate::winrm::clixml::CLIXML_MARKER;
use crate::winrm::powershell::{Launch, SCRIPT_DONE, SCRIPT_END, classify_launch};

/// The scripted test host.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestHost;

enum Mode {
    Cmd,
    PowerShell,
}

enum Program {
    Script(Mode, String),
    StdinScript,
    Interactive,
}

fn escape_clixml(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\r' => out.push_str("_x000D_"),
            '\n' => out.push_str("_x000A_"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn classify(command_line: &str, args: &[String]) -> Program {
    match classify_launch(command_line, args) {
        Launch::Cmd(words) => Program::Script(Mode::Cmd, words),
        Launch::Script(script) => Program::Script(Mode::PowerShell, script),
        Launch::BadEncoding(_) => Program::Script(Mode::PowerShell, "err The command is not valid base64 UTF-16LE.; exit 1".into()),
        Launch::StdinScript => Program::StdinScript,
        Launch::Interactive => Program::Interactive,
    }
}

/// Runs one script; returns `Some(code)` if it ended with `exit`, `None` if it ran to its end.
async fn run_script(io: &mut ProcessIo, mode: &Mode, script: &str, stdin_buf: &mut Vec<u8>, stdin_ended: &mut bool) -> Option<i64> {
    let mut clixml_started = false;
    for stmt in script.split([';', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
        let (verb, rest) = stmt.split_once(' ').map_or((stmt, ""), |(v, r)| (v, r.trim()));
        match verb.to_ascii_lowercase().as_str() {
            "echo" | "write-output" => io.stdout(format!("{rest}\r\n")),
            "err" => match mode {
                Mode::Cmd => io.stderr(format!("{rest}\r\n")),
                Mode::PowerShell => {
                    if !clixml_started {
                        io.stderr(format!("{CLIXML_MARKER}\r\n"));
                        clixml_started = true;
                    }
                    io.stderr(format!(
                        "<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">{}</S></Objs>",
                        escape_clixml(&format!("{rest}\r\n"))
                    ));
                }
            },
            "sleep" => tokio::time::sleep(Duration::from_millis(rest.parse().unwrap_or(0))).await,
            "exit" => return Some(rest.parse().unwrap_or(0)),
            "cat" => loop {
                if !stdin_buf.is_empty() {
                    io.stdout(std::mem::take(stdin_buf));
                }
                if *stdin_ended {
                    break;
                }
                match io.input.recv().await {
                    Some(Input::Stdin(d)) => stdin_buf.extend(d),
                    Some(Input::End) => *stdin_ended = true,
                    Some(Input::Terminate) | None => return Some(-1),
                }
            },
            other => {
                io.stderr(format!(
                    "'{other}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
                ));
                return Some(1);
            }
        }
    }
    None
}

/// Reads stdin up to its end; `false` if terminated first.
async fn read_all(io: &mut ProcessIo, buf: &mut Vec<u8>) -> bool {
    loop {
        match io.input.recv().await {
            Some(Input::Stdin(d)) => buf.extend(d),
            Some(Input::End) => return true,
            Some(Input::Terminate) | None => return false,
        }
    }
}

async fn run(program: Program, mut io: ProcessIo) {
    let mut buf = Vec::new();
    let mut ended = false;
    let code = match program {
        Program::Script(mode, script) => run_script(&mut io, &mode, &script, &mut buf, &mut ended).await.unwrap_or(0),
        Program::StdinScript => {
            if !read_all(&mut io, &mut buf).await {
                return io.exit(-1);
            }
            let script = String::from_utf8_lossy(&std::mem::take(&mut buf)).into_owned();
            ended = true;
            run_script(&mut io, &Mode::PowerShell, &script, &mut buf, &mut ended).await.unwrap_or(0)
        }
        Program::Interactive => loop {
            // Cut complete scripts out of the buffer; read more when there is none.
            let text = String::from_utf8_lossy(&buf).into_owned();
            let marker = format!("{SCRIPT_END}\n");
            if let Some(pos) = text.find(&marker) {
                let script = text[..pos].to_string();
                buf = text.as_bytes()[pos + marker.len()..].to_vec();
                let mut no_stdin = Vec::new();
                let mut closed = true;
                if let Some(code) = run_script(&mut io, &Mode::PowerShell, &script, &mut no_stdin, &mut closed).await {
                    break code;
                }
                io.stdout(format!("{SCRIPT_DONE}\r\n"));
                continue;
            }
            match io.input.recv().await {
                Some(Input::Stdin(d)) => buf.extend(d),
                Some(Input::End) => break 0,
                Some(Input::Terminate) | None => break -1,
            }
        },
    };
    io.exit(code);
}

impl Host for TestHost {
    fn start(&self, command_line: &str, args: &[String]) -> Box<dyn Process> {
        let program = classify(command_line, args);
        let (process, io) = channel_process();
        tokio::spawn(run(program, io));
        process
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::powershell::{INTERACTIVE_BOOTSTRAP, STDIN_BOOTSTRAP, encode_command, interactive_script};
    use crate::winrm::server::host::Output;

    async fn collect(p: &mut Box<dyn Process>) -> (String, String, i64) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match p.next_output().await {
                Some(Output::Stdout(d)) => out.extend(d),
                Some(Output::Stderr(d)) => err.extend(d),
                Some(Output::Exit(c)) => return (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap(), c),
                None => panic!("no exit"),
            }
        }
    }

    #[tokio::test]
    async fn cmd_statements_run_in_order() {
        let mut p = TestHost.start("echo", &["hi;".into(), "err".into(), "oops;".into(), "exit".into(), "3".into()]);
        assert_eq!(collect(&mut p).await, ("hi\r\n".into(), "oops\r\n".into(), 3));
        let mut p = TestHost.start("frobnicate", &[]);
        let (_, err, code) = collect(&mut p).await;
        assert!(err.contains("'frobnicate' is not recognized"));
        assert_eq!(code, 1);
    }

    #[tokio::test]
    async fn powershell_errors_are_clixml_and_stdin_scripts_run() {
        let mut p = TestHost.start(&format!("powershell -encodedcommand {}", encode_command("err boom; exit 2")), &[]);
        let (_, err, code) = collect(&mut p).await;
        assert_eq!(crate::winrm::clixml::decode_stderr(&err), "boom");
        assert_eq!(code, 2);
        let mut p = TestHost.start("powershell.exe", &["-NoProfile".into(), "-EncodedCommand".into(), encode_command(STDIN_BOOTSTRAP)]);
        p.write_stdin(b"echo from stdin", false);
        p.write_stdin(b"; echo again", true);
        assert_eq!(collect(&mut p).await, ("from stdin\r\nagain\r\n".into(), String::new(), 0));
    }

    #[tokio::test]
    async fn interactive_sessions_answer_script_by_script() {
        let mut p = TestHost.start("powershell.exe", &["-EncodedCommand".into(), encode_command(INTERACTIVE_BOOTSTRAP)]);
        p.write_stdin(interactive_script("echo one").as_bytes(), false);
        assert_eq!(p.next_output().await, Some(Output::Stdout(b"one\r\n".to_vec())));
        assert_eq!(p.next_output().await, Some(Output::Stdout(format!("{SCRIPT_DONE}\r\n").into_bytes())));
        p.write_stdin(interactive_script("echo two").as_bytes(), true);
        assert_eq!(collect(&mut p).await, (format!("two\r\n{SCRIPT_DONE}\r\n"), String::new(), 0));
    }
}
