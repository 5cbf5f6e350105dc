//! Starting Windows PowerShell through WinRS: `-EncodedCommand` (base64 of UTF-16LE) with a small
//! fixed bootstrap that reads the real script from stdin (the command line through `cmd.exe` is
//! capped at 8,191 characters), and the framing of a warm interactive session that reads one
//! script after another from stdin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::winrm::error::WinrmError;

/// The longest command line `cmd.exe` accepts (Microsoft KB 830473).
pub const MAX_COMMAND_LINE: usize = 8191;

/// The executable.
pub const POWERSHELL: &str = "powershell.exe";

/// Reads the whole of stdin and runs it as one script (stdin must be closed with `End`).
pub const STDIN_BOOTSTRAP: &str = "$ProgressPreference='SilentlyContinue';$s=[Console]::In.ReadToEnd();& ([ScriptBlock]::Create($s))";

/// The line that ends one script in an interactive session.
pub const SCRIPT_END: &str = "#LYNCDR-END";
/// The line the session prints on stdout when a script has finished.
pub const SCRIPT_DONE: &str = "#LYNCDR-DONE";

/// Runs scripts from stdin one after another, each terminated by [`SCRIPT_END`], printing
/// [`SCRIPT_DONE`] after each: one warm `powershell.exe` per server (the Lync module imported
/// once). Errors of a script go to stderr and do not end the session; stdin `End` does.
pub const INTERACTIVE_BOOTSTRAP: &str = "$ProgressPreference='SilentlyContinue';\
while($true){$b=New-Object System.Text.StringBuilder;\
while((($l=[Console]::In.ReadLine()) -ne $null) -and ($l -ne '#LYNCDR-END')){[void]$b.AppendLine($l)};\
if($l -eq $null){break};\
try{& ([ScriptBlock]::Create($b.ToString())) | Out-String -Stream | ForEach-Object {[Console]::Out.WriteLine($_)}}catch{[Console]::Error.WriteLine($_.ToString())};\
[Console]::Out.WriteLine('#LYNCDR-DONE');[Console]::Out.Flush()}";

/// Base64 of the UTF-16LE script, as `-EncodedCommand` wants it.
pub fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    B64.encode(bytes)
}

/// Decodes an `-EncodedCommand` argument back to the script.
pub fn decode_command(encoded: &str) -> Result<String, WinrmError> {
    let bytes = B64.decode(encoded.trim()).map_err(|e| WinrmError::Protocol(format!("bad -EncodedCommand: {e}")))?;
    if bytes.len() % 2 != 0 {
        return Err(WinrmError::Protocol("-EncodedCommand is not UTF-16LE".into()));
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|e| WinrmError::Protocol(format!("-EncodedCommand: {e}")))
}

/// What a WinRS command asks for, as a host standing in for Windows reads it (the test host and
/// the simulator's endpoint share this reading).
#[derive(Debug)]
pub enum Launch {
    /// Not PowerShell: the command's words joined by spaces, for `cmd.exe`.
    Cmd(String),
    /// PowerShell running this script (from `-EncodedCommand`, or the words that are not flags).
    Script(String),
    /// PowerShell with [`STDIN_BOOTSTRAP`]: one script on stdin.
    StdinScript,
    /// PowerShell with [`INTERACTIVE_BOOTSTRAP`]: scripts one after another on stdin.
    Interactive,
    /// PowerShell with an `-EncodedCommand` that does not decode.
    BadEncoding(WinrmError),
}

/// Reads the WinRS `rsp:Command` (which may hold arguments itself) and its `rsp:Arguments`.
pub fn classify_launch(command_line: &str, args: &[String]) -> Launch {
    let words: Vec<&str> = command_line.split_whitespace().chain(args.iter().map(String::as_str)).collect();
    let is_ps = words.first().is_some_and(|w| {
        let w = w.to_ascii_lowercase();
        w == "powershell" || w == "powershell.exe" || w.ends_with("\\powershell.exe")
    });
    if !is_ps {
        return Launch::Cmd(words.join(" "));
    }
    let encoded = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("-EncodedCommand") || w.eq_ignore_ascii_case("-enc"))
        .and_then(|i| words.get(i + 1));
    let script = match encoded {
        Some(e) => match decode_command(e) {
            Ok(s) => s,
            Err(e) => return Launch::BadEncoding(e),
        },
        None => words.iter().skip(1).filter(|w| !w.starts_with('-')).copied().collect::<Vec<_>>().join(" "),
    };
    if script == STDIN_BOOTSTRAP {
        Launch::StdinScript
    } else if script == INTERACTIVE_BOOTSTRAP {
        Launch::Interactive
    } else {
        Launch::Script(script)
    }
}

/// `powershell.exe -NoProfile -NonInteractive -EncodedCommand <bootstrap>`, as the command and
/// arguments of a WinRS Command; refused if the command line would exceed [`MAX_COMMAND_LINE`].
pub fn powershell_command(bootstrap: &str) -> Result<(String, Vec<String>), WinrmError> {
    let args = vec!["-NoProfile".to_string(), "-NonInteractive".to_string(), "-EncodedCommand".to_string(), encode_command(bootstrap)];
    let len = POWERSHELL.len() + args.iter().map(|a| a.len() + 1).sum::<usize>();
    if len > MAX_COMMAND_LINE {
        return Err(WinrmError::Config(format!(
            "PowerShell command line of {len} characters exceeds {MAX_COMMAND_LINE}: send the script on stdin"
        )));
    }
    Ok((POWERSHELL.to_string(), args))
}

/// The stdin of one script for a session started with [`INTERACTIVE_BOOTSTRAP`].
pub fn interactive_script(script: &str) -> String {
    let mut s = script.replace("\r\n", "\n");
    if !s.ends_with('\n') {
        s.push('\n');
    }
    format!("{s}{SCRIPT_END}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_commands_round_trip_as_utf16le() {
        assert_eq!(encode_command("dir"), B64.encode([b'd', 0, b'i', 0, b'r', 0]));
        let s = "Get-CsPool | ConvertTo-Json # ünï 😀";
        assert_eq!(decode_command(&encode_command(s)).unwrap(), s);
        assert!(decode_command("AAAA").is_err(), "odd byte count");
        assert!(decode_command("!!").is_err());
    }

    #[test]
    fn bootstraps_fit_the_command_line_and_long_scripts_do_not() {
        for b in [STDIN_BOOTSTRAP, INTERACTIVE_BOOTSTRAP] {
            let (cmd, args) = powershell_command(b).unwrap();
            assert_eq!(cmd, "powershell.exe");
            assert_eq!(&args[..3], ["-NoProfile", "-NonInteractive", "-EncodedCommand"]);
            assert_eq!(decode_command(&args[3]).unwrap(), b);
        }
        assert!(powershell_command(&"x".repeat(3100)).is_err());
        assert!(INTERACTIVE_BOOTSTRAP.contains(SCRIPT_END) && INTERACTIVE_BOOTSTRAP.contains(SCRIPT_DONE));
    }

    #[test]
    fn launches_are_classified_like_windows_would_run_them() {
        let enc = |s: &str| vec!["-NoProfile".to_string(), "-EncodedCommand".to_string(), encode_command(s)];
        assert!(matches!(classify_launch("powershell.exe", &enc(STDIN_BOOTSTRAP)), Launch::StdinScript));
        assert!(matches!(classify_launch("C:\\Windows\\powershell.exe", &enc(INTERACTIVE_BOOTSTRAP)), Launch::Interactive));
        assert!(
            matches!(classify_launch(&format!("PowerShell -enc {}", encode_command("echo x")), &[]), Launch::Script(s) if s == "echo x")
        );
        assert!(
            matches!(classify_launch("powershell", &["-NoProfile".into(), "Get-CsPool".into()]), Launch::Script(s) if s == "Get-CsPool")
        );
        assert!(matches!(classify_launch("powershell", &["-EncodedCommand".into(), "AAAA".into()]), Launch::BadEncoding(_)));
        assert!(matches!(classify_launch("echo", &["hi;".into(), "exit".into()]), Launch::Cmd(s) if s == "echo hi; exit"));
    }

    #[test]
    fn interactive_scripts_end_with_the_marker() {
        assert_eq!(interactive_script("a\r\nb"), "a\nb\n#LYNCDR-END\n");
    }
}
