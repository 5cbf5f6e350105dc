//! The PowerShell scripts the driver runs on Lync servers, and the framed lines they answer
//! with. One script per call, for Windows PowerShell 3.0 (Lync Server 2013's) and later:
//!
//! * a header the simulator's WS-Man endpoint reads (`# lyncdr driver <kind> v1`), and where the
//!   call runs (`# run-on: any | pool <fqdn> | server <fqdn>`) and, for a state-changing call,
//!   its request (`# request: <id> <not-after ms>`); PowerShell ignores these comment lines;
//! * `$ErrorActionPreference = 'Stop'`, no confirmation prompts, the Skype for Business Server
//!   module (or Lync's) imported once per session;
//! * the cmdlet line as [`Invocation::to_powershell`] renders it (quoting that no argument can
//!   escape), with `-Confirm:$false` where the cmdlet would ask, its output turned into plain
//!   data in the simulator's shapes (enum names, not PowerShell 3.0's integers; dates as
//!   milliseconds; identities as their text) and converted to compressed JSON;
//! * one framed line on stdout: `#LYNCDR-RESULT <base64 of UTF-8 JSON>` or `#LYNCDR-ERROR
//!   <base64 JSON {message, category, errorId}>`. Base64 keeps the frame on one line whatever
//!   the output holds, and away from anything else the session prints.
//!
//! A real server never prints `#LYNCDR-UNREACHABLE`: it does not answer at all. The simulator's
//! single endpoint stands in for every server, so it says with that frame that the server a
//! script names is down or cut off; the driver treats both the same way.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Request, RunOn};
use crate::ps::Invocation;

/// The first line of a script that runs one cmdlet.
pub const INVOKE_HEADER: &str = "# lyncdr driver invoke v1";
/// The first line of a script that runs several read-only cmdlets, one frame each, in order.
pub const BATCH_HEADER: &str = "# lyncdr driver batch v1";
/// The first line of a wrapper that runs a driver script as another account through a
/// scheduled task ([`run_as`]).
pub const RUN_AS_HEADER: &str = "# lyncdr driver run-as v1";
/// The wrapper's line holding the script it runs (base64 of UTF-8).
pub const RUN_AS_INNER_PREFIX: &str = "$lyncdrInner = '";
/// The error id of a wrapped script that certainly did not run (the task could not start, or
/// the script was withdrawn unclaimed).
pub const NOT_RUN: &str = "LyncdrRunAsNotRun";
/// The first line of a script that reads the server's clock.
pub const CLOCK_HEADER: &str = "# lyncdr driver clock v1";
/// The comment line naming where a call runs.
pub const RUN_ON_PREFIX: &str = "# run-on: ";
/// The comment line naming a state-changing call's request.
pub const REQUEST_PREFIX: &str = "# request: ";
/// The line holding the cmdlet.
pub const COMMAND_PREFIX: &str = "    $lyncdrOut = ";

/// Frame prefixes on stdout.
pub const RESULT_FRAME: &str = "#LYNCDR-RESULT ";
pub const ERROR_FRAME: &str = "#LYNCDR-ERROR ";
pub const UNREACHABLE_FRAME: &str = "#LYNCDR-UNREACHABLE ";

/// Writes one frame: the value as compressed JSON, base64 of its UTF-8 bytes. `-Depth 8`: the
/// default depth (2) would flatten nested objects to type names.
const FRAME_FUNCTION: &str = "function Write-LyncdrFrame([string]$Kind, $Value) {\n    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress\n    if ($json -eq $null) { $json = 'null' }\n    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))\n}";

/// Turns a cmdlet's output into plain data before `ConvertTo-Json`, the same shapes the
/// simulator answers with: Windows PowerShell 3.0-5.1 write enums as integers, `DateTime` as
/// `\/Date(ms)\/` and `TimeSpan` as objects, and expand every nested object. Here enums
/// become their names, `DateTime` milliseconds since 1970 (UTC), `TimeSpan` its `hh:mm:ss`
/// text, a nested object whose type has its own `ToString()` (Lync's identities, such as
/// `Site:Dallas`) that text, collections lists, and other objects their properties.
const DATA_FUNCTION: &str = r#"function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}"#;

/// Imports the management module once per session: Skype for Business Server's where it is
/// installed, otherwise Lync Server 2013's.
const IMPORT_MODULE: &str = "if (-not (Get-Module -Name SkypeForBusiness, Lync)) {\n    if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }\n}";

/// `# run-on:` text for a target.
pub fn run_on_text(run_on: &RunOn) -> String {
    match run_on {
        RunOn::Any => "any".into(),
        RunOn::Pool(p) => format!("pool {p}"),
        RunOn::Server(s) => format!("server {s}"),
    }
}

/// Reads a `# run-on:` value back.
pub fn parse_run_on(text: &str) -> Option<RunOn> {
    let text = text.trim();
    if text == "any" {
        return Some(RunOn::Any);
    }
    let (kind, name) = text.split_once(' ')?;
    let f = crate::model::Fqdn::parse(name.trim()).ok()?;
    match kind {
        "pool" => Some(RunOn::Pool(f)),
        "server" => Some(RunOn::Server(f)),
        _ => None,
    }
}

/// The script that runs `inv` where `run_on` says, under `request` for a state-changing call.
pub fn invoke(run_on: &RunOn, inv: &Invocation, request: Option<&Request>) -> String {
    let mut s = head(INVOKE_HEADER, run_on);
    if let Some(r) = request {
        s.push_str(&format!("{REQUEST_PREFIX}{} {}\n", r.id, r.not_after.0));
    }
    s.push_str(&preamble());
    s.push_str(&call_block(inv));
    s
}

/// One script for several read-only calls on the same server: one round trip instead of one
/// per call. Each call has its own `try`, so each answers with its own frame, in order.
pub fn batch(run_on: &RunOn, invs: &[Invocation]) -> String {
    let mut s = head(BATCH_HEADER, run_on);
    s.push_str(&preamble());
    for inv in invs {
        s.push_str(&call_block(inv));
    }
    s
}

fn head(header: &str, run_on: &RunOn) -> String {
    format!("{header}\n{RUN_ON_PREFIX}{}\n", run_on_text(run_on))
}

fn preamble() -> String {
    format!(
        "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n$ConfirmPreference = 'None'\n{FRAME_FUNCTION}\n{DATA_FUNCTION}\n"
    )
}

fn call_block(inv: &Invocation) -> String {
    let mut s = String::from("try {\n");
    for line in IMPORT_MODULE.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    let newer = version_dependent(inv);
    if !newer.is_empty() {
        // The planner sends these only to product versions that have them; the server itself
        // confirms it before anything runs.
        let list = newer.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ");
        s.push_str(&format!(
            "    $lyncdrCommand = Get-Command -Name '{}'\n    foreach ($p in @({list})) {{ if (-not $lyncdrCommand.Parameters.ContainsKey($p)) {{ throw \"{} on this server has no parameter -$p; nothing was run\" }} }}\n",
            inv.cmdlet, inv.cmdlet
        ));
    }
    s.push_str(COMMAND_PREFIX);
    s.push_str(&unattended(inv).to_powershell());
    s.push('\n');
    s.push_str("    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)\n} catch {\n    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }\n}\n");
    s
}

/// The parameters of the call that not every product version has (per the catalogue).
pub fn version_dependent(inv: &Invocation) -> Vec<&'static str> {
    let Some(spec) = crate::ps::catalog::lookup(&inv.cmdlet) else { return vec![] };
    inv.args
        .keys()
        .filter_map(|name| spec.params.iter().find(|p| p.name.eq_ignore_ascii_case(name)))
        .filter(|p| p.avail != crate::ps::catalog::Avail::All)
        .map(|p| p.name)
        .collect()
}

/// The call as run unattended: a cmdlet that asks for confirmation (`SupportsShouldProcess`)
/// gets `-Confirm:$false`, nobody being there to answer.
pub fn unattended(inv: &Invocation) -> Invocation {
    match crate::ps::catalog::lookup(&inv.cmdlet) {
        Some(spec) if spec.should_process && inv.get("Confirm").is_none() => inv.clone().arg("Confirm", false),
        _ => inv.clone(),
    }
}

/// Where the run-as wrapper leaves scripts for the scheduled task, and which task runs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAsTask {
    /// The scheduled task (registered by an administrator, running as the Lync service
    /// account, its action [`runner`]).
    pub task_name: String,
    /// The spool directory on every Front End: the WinRM account may write there, the task's
    /// account reads there. Whoever can write to it runs scripts as the task's account.
    pub spool: String,
    /// How long the wrapper waits for the task's answer, in seconds.
    pub timeout_secs: u64,
}

impl Default for RunAsTask {
    fn default() -> Self {
        RunAsTask { task_name: "lyncdr-runas".into(), spool: r"C:\ProgramData\lyncdr\spool".into(), timeout_secs: 3600 }
    }
}

/// Wraps a driver script to run as the account of a scheduled task (the double hop: a WinRM
/// session authenticated with NTLM has no network credentials, a task's account has). The
/// wrapper writes the script into the spool under a fresh id (atomically: written aside, then
/// renamed), starts the task, waits for its answer and prints it: the same frames as the script
/// run directly. The task's [`runner`] claims a script by renaming it, so a script is run at
/// most once. A script the wrapper can withdraw unclaimed (the task did not start, or did not
/// come in time) certainly did not run ([`NOT_RUN`]); a claimed script that has not answered in
/// time may still run ([`OUTCOME_UNKNOWN`](super::winrm::OUTCOME_UNKNOWN)).
pub fn run_as(inner: &str, task: &RunAsTask) -> String {
    let mut s = format!(
        "{RUN_AS_HEADER}
$ErrorActionPreference = 'Stop'
{FRAME_FUNCTION}
"
    );
    s.push_str(&format!(
        "$lyncdrSpool = {}
$lyncdrTask = {}
$lyncdrTimeout = {}
",
        crate::ps::quote(&task.spool),
        crate::ps::quote(&task.task_name),
        task.timeout_secs
    ));
    s.push_str(RUN_AS_INNER_PREFIX);
    s.push_str(&B64.encode(inner.as_bytes()));
    s.push_str(
        "'
",
    );
    s.push_str(RUN_AS_BODY);
    s
}

/// The wrapper's work, after its parameters.
const RUN_AS_BODY: &str = r#"$id = [guid]::NewGuid().ToString('N')
$script = Join-Path $lyncdrSpool ($id + '.ps1')
$out = Join-Path $lyncdrSpool ($id + '.out')
$done = Join-Path $lyncdrSpool ($id + '.done')
function Withdraw-LyncdrScript([string]$Why) {
    # Unclaimed, it never ran; claimed (renamed by the runner), it may be running.
    try { Remove-Item -LiteralPath $script -ErrorAction Stop } catch { return $false }
    Write-LyncdrFrame 'ERROR' @{ message = $Why + '; the script was withdrawn unrun'; category = 'ResourceUnavailable'; errorId = 'LyncdrRunAsNotRun' }
    return $true
}
try {
    [IO.File]::WriteAllBytes($script + '.tmp', [Convert]::FromBase64String($lyncdrInner))
    Move-Item -LiteralPath ($script + '.tmp') -Destination $script
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = 'cannot write to the run-as spool ' + $lyncdrSpool + ': ' + $_.Exception.Message; category = 'PermissionDenied'; errorId = 'LyncdrRunAsNotRun' }
    return
}
try {
    # Windows Server 2008 R2 (Lync 2013) has no ScheduledTasks module: schtasks.exe there.
    if (Get-Command -Name Start-ScheduledTask -ErrorAction SilentlyContinue) { Start-ScheduledTask -TaskName $lyncdrTask }
    else { schtasks.exe /Run /TN $lyncdrTask | Out-Null; if ($LASTEXITCODE -ne 0) { throw ('schtasks.exe /Run exited with ' + $LASTEXITCODE) } }
} catch {
    if (Withdraw-LyncdrScript ('the scheduled task ' + $lyncdrTask + ' could not be started: ' + $_.Exception.Message)) { return }
}
$deadline = [DateTime]::UtcNow.AddSeconds($lyncdrTimeout)
while (-not (Test-Path -LiteralPath $done)) {
    if ([DateTime]::UtcNow -gt $deadline) {
        if (Withdraw-LyncdrScript ('the scheduled task ' + $lyncdrTask + ' did not take the script within ' + $lyncdrTimeout + ' s')) { return }
        Write-LyncdrFrame 'ERROR' @{ message = 'the scheduled task ' + $lyncdrTask + ' took script ' + $id + ' and has not answered within ' + $lyncdrTimeout + ' s: it may still run'; category = 'OperationTimeout'; errorId = 'LyncdrOutcomeUnknown' }
        return
    }
    Start-Sleep -Milliseconds 200
}
[Console]::Out.Write([IO.File]::ReadAllText($out, [Text.Encoding]::UTF8))
Remove-Item -LiteralPath $out, $done -ErrorAction SilentlyContinue
"#;

/// The scheduled task's action, installed once per Front End by an administrator (see
/// docs/real-deployment.md): runs every script waiting in the spool, each at most once (claimed
/// by renaming it), each in a fresh `powershell.exe` whose standard output becomes the answer
/// the wrapper prints. Register the task to run as the Lync service account whether or not it
/// is logged on, with `MultipleInstances` set to `Parallel`.
pub fn runner(task: &RunAsTask) -> String {
    format!(
        "# lyncdr run-as runner v1: the action of the scheduled task {}
# powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File <this file>
$ErrorActionPreference = 'Stop'
$lyncdrSpool = {}
{RUNNER_BODY}",
        crate::ps::quote(&task.task_name),
        crate::ps::quote(&task.spool)
    )
}

const RUNNER_BODY: &str = r#"foreach ($f in @(Get-ChildItem -LiteralPath $lyncdrSpool -Filter '*.ps1' | Where-Object { $_.Name -notlike '*.running.ps1' })) {
    $id = $f.BaseName
    $claimed = Join-Path $lyncdrSpool ($id + '.running.ps1')
    # Another instance may have claimed it first: then it is theirs.
    try { Move-Item -LiteralPath $f.FullName -Destination $claimed -ErrorAction Stop } catch { continue }
    $out = Join-Path $lyncdrSpool ($id + '.out')
    $p = Start-Process -FilePath powershell.exe -ArgumentList @('-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', $claimed) -RedirectStandardOutput ($out + '.tmp') -RedirectStandardError ($out + '.err') -NoNewWindow -Wait -PassThru
    Move-Item -LiteralPath ($out + '.tmp') -Destination $out -Force
    Set-Content -LiteralPath (Join-Path $lyncdrSpool ($id + '.done')) -Value $p.ExitCode
    Remove-Item -LiteralPath $claimed, ($out + '.err') -ErrorAction SilentlyContinue
}
"#;

/// The script that reads the server's clock: milliseconds since 1970 (UTC), at speed 1 (the
/// simulator's endpoint answers with its simulated clock and its speed).
pub fn clock() -> String {
    format!(
        "{CLOCK_HEADER}\n$ErrorActionPreference = 'Stop'\n{FRAME_FUNCTION}\n$epoch = New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc)\nWrite-LyncdrFrame 'RESULT' @{{ nowMs = [long]([DateTime]::UtcNow - $epoch).TotalMilliseconds; speed = 1 }}\n"
    )
}

/// The error a script reports (a terminating PowerShell error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptError {
    pub message: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub error_id: String,
    /// The simulator's strict-mode rule, when it refused a call Lync would let through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<u8>,
}

/// What the simulator's endpoint says of a server it stands in for that is down or cut off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreachable {
    pub target: String,
    pub detail: String,
}

/// The clock script's answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockFrame {
    pub now_ms: u64,
    pub speed: f64,
}

/// What one script answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Result(Value),
    Error(ScriptError),
    Unreachable(Unreachable),
}

/// Why a script's output holds no usable frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the script printed no lyncdr frame")]
    Missing,
    #[error("the script printed {0} lyncdr frames; one was expected")]
    Several(usize),
    #[error("a lyncdr frame is not base64 of UTF-8 JSON of the expected shape: {0}")]
    Malformed(String),
}

/// Writes a frame (what the simulator's endpoint prints; PowerShell's function does the same).
pub fn frame(prefix: &str, value: &Value) -> String {
    format!("{prefix}{}", B64.encode(value.to_string().as_bytes()))
}

/// Reads the one frame of a script's stdout; other lines (warnings, banners) are ignored.
pub fn parse_frame(stdout: &str) -> Result<Frame, FrameError> {
    let mut frames = parse_frames(stdout)?;
    match frames.len() {
        0 => Err(FrameError::Missing),
        1 => Ok(frames.remove(0)),
        n => Err(FrameError::Several(n)),
    }
}

/// Reads every frame of a script's stdout, in order (a batch answers one per call).
pub fn parse_frames(stdout: &str) -> Result<Vec<Frame>, FrameError> {
    let decode = |payload: &str| -> Result<Value, FrameError> {
        let bytes = B64.decode(payload.trim()).map_err(|e| FrameError::Malformed(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| FrameError::Malformed(e.to_string()))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| FrameError::Malformed(e.to_string()))
    };
    stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("#LYNCDR-"))
        .map(|line| {
            if let Some(p) = line.strip_prefix(RESULT_FRAME) {
                Ok(Frame::Result(decode(p)?))
            } else if let Some(p) = line.strip_prefix(ERROR_FRAME) {
                Ok(Frame::Error(typed(decode(p)?)?))
            } else if let Some(p) = line.strip_prefix(UNREACHABLE_FRAME) {
                Ok(Frame::Unreachable(typed(decode(p)?)?))
            } else {
                Err(FrameError::Malformed(format!(
                    "unknown frame {}",
                    crate::model::text::shown(line.split(' ').next().unwrap_or_default())
                )))
            }
        })
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, FrameError> {
    serde_json::from_value(v).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// A script's parts as the simulator's endpoint reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Invoke { run_on: RunOn, request: Option<Request>, command: String },
    Batch { run_on: RunOn, commands: Vec<String> },
    Clock,
}

/// Reads a driver script back: its header, where it runs, its request and its cmdlet line.
/// `None` if it is not a lyncdr driver script.
pub fn parse_script(script: &str) -> Option<Parsed> {
    let mut lines = script.lines().map(|l| l.trim_end_matches('\r'));
    let header = lines.next()?;
    if header == CLOCK_HEADER {
        return Some(Parsed::Clock);
    }
    if header == RUN_AS_HEADER {
        // What the scheduled task would run.
        let inner = lines.find_map(|l| l.strip_prefix(RUN_AS_INNER_PREFIX))?.strip_suffix('\'')?;
        let inner = String::from_utf8(B64.decode(inner).ok()?).ok()?;
        return match parse_script(&inner)? {
            Parsed::Clock => None,
            parsed => Some(parsed),
        };
    }
    if header != INVOKE_HEADER && header != BATCH_HEADER {
        return None;
    }
    let (mut run_on, mut request, mut commands) = (None, None, Vec::new());
    for l in lines {
        if let Some(r) = l.strip_prefix(RUN_ON_PREFIX) {
            run_on = parse_run_on(r);
        } else if let Some(r) = l.strip_prefix(REQUEST_PREFIX) {
            let (id, at) = r.trim().split_once(' ')?;
            request = Some(Request { id: id.to_string(), not_after: crate::model::Stamp(at.trim().parse().ok()?) });
        } else if let Some(c) = l.strip_prefix(COMMAND_PREFIX) {
            commands.push(c.to_string());
        }
    }
    let run_on = run_on?;
    if header == BATCH_HEADER {
        return Some(Parsed::Batch { run_on, commands });
    }
    // One call per invoke script.
    match <[String; 1]>::try_from(commands) {
        Ok([command]) => Some(Parsed::Invoke { run_on, request, command }),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Fqdn, Stamp};

    fn fq(s: &str) -> Fqdn {
        Fqdn::parse(s).expect("fqdn")
    }

    #[test]
    fn a_wrapped_script_reads_back_as_the_script_it_wraps() {
        let inv = Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "pool01.dal.contoso.com").switch("DisasterMode");
        let req = Request { id: "op-1/pool-failover/1".into(), not_after: Stamp(120_000) };
        let inner = invoke(&RunOn::Pool(fq("pool01.sea.contoso.com")), &inv, Some(&req));
        let task = RunAsTask { task_name: "it's ’ours’".into(), ..RunAsTask::default() };
        let wrapped = run_as(&inner, &task);
        assert!(wrapped.starts_with(RUN_AS_HEADER));
        assert_eq!(parse_script(&wrapped), parse_script(&inner));
        // Names are quoted as every other argument: no quote of any kind ends the string.
        assert!(wrapped.contains("$lyncdrTask = 'it''s ’’ours’’'"), "{wrapped}");
        // A wrapped clock script is not a driver call.
        assert_eq!(parse_script(&run_as(&clock(), &task)), None);
    }

    #[test]
    fn a_script_reads_back_as_written() {
        let inv = Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "pool01.dal.contoso.com").switch("DisasterMode");
        let req = Request { id: "op-1/pool-failover/1".into(), not_after: Stamp(120_000) };
        let s = invoke(&RunOn::Pool(fq("pool01.sea.contoso.com")), &inv, Some(&req));
        assert_eq!(
            parse_script(&s),
            Some(Parsed::Invoke {
                run_on: RunOn::Pool(fq("pool01.sea.contoso.com")),
                request: Some(req),
                command: format!("{} -Confirm:$false", inv.to_powershell())
            })
        );
        assert_eq!(parse_script(&clock()), Some(Parsed::Clock));
        let (a, b) = (Invocation::new("Get-CsPool"), Invocation::new("Get-CsSite"));
        assert_eq!(
            parse_script(&batch(&RunOn::Any, &[a.clone(), b.clone()])),
            Some(Parsed::Batch { run_on: RunOn::Any, commands: vec![a.to_powershell(), b.to_powershell()] })
        );
        assert_eq!(parse_script("Get-Process"), None);
        for r in [RunOn::Any, RunOn::Server(fq("fe01.pool01.dal.contoso.com"))] {
            assert_eq!(parse_run_on(&run_on_text(&r)), Some(r));
        }
    }

    #[test]
    fn parameters_not_every_version_has_are_confirmed_with_get_command_first() {
        let plain = Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "pool01.dal.contoso.com");
        assert!(!invoke(&RunOn::Any, &plain, None).contains("Get-Command"));
        let newer = plain.clone().arg("DatabaseCommandTimeoutInSeconds", 60);
        assert_eq!(version_dependent(&newer), vec!["DatabaseCommandTimeoutInSeconds"]);
        let text = invoke(&RunOn::Any, &newer, None);
        let check = text.find("$lyncdrCommand = Get-Command -Name 'Invoke-CsPoolFailOver'").expect("the check");
        assert!(check < text.find(COMMAND_PREFIX).expect("the call"), "checked before the call:\n{text}");
        assert!(text.contains("@('DatabaseCommandTimeoutInSeconds')"), "{text}");
        // The simulator's endpoint still reads the call.
        assert!(matches!(parse_script(&text), Some(Parsed::Invoke { .. })));
    }

    #[test]
    fn frames_round_trip_and_noise_is_ignored() {
        let v = json!([{"Fqdn": "pool01.dal.contoso.com", "Note": "line\nbreak #LYNCDR-RESULT x"}]);
        let out = format!("WARNING: something\r\n{}\r\n#LYNCDR-DONE-not-ours\n", frame(RESULT_FRAME, &v));
        // `#LYNCDR-DONE` of the session is not a frame of this script: the session strips it.
        let out = out.replace("#LYNCDR-DONE-not-ours\n", "");
        assert_eq!(parse_frame(&out), Ok(Frame::Result(v)));
        let e = json!({"message": "Cannot find pool.", "category": "InvalidOperation", "errorId": "X"});
        assert_eq!(
            parse_frame(&frame(ERROR_FRAME, &e)),
            Ok(Frame::Error(ScriptError {
                message: "Cannot find pool.".into(),
                category: "InvalidOperation".into(),
                error_id: "X".into(),
                rule: None
            }))
        );
        assert_eq!(parse_frame("nothing"), Err(FrameError::Missing));
        assert!(matches!(parse_frame("#LYNCDR-RESULT !!!"), Err(FrameError::Malformed(_))));
        assert_eq!(
            parse_frame(&format!("{}\n{}", frame(RESULT_FRAME, &json!(1)), frame(RESULT_FRAME, &json!(2)))),
            Err(FrameError::Several(2))
        );
        // PowerShell 3.0 prints nothing for ConvertTo-Json of $null; the function sends 'null'.
        assert_eq!(parse_frame(&format!("{RESULT_FRAME}{}", B64.encode(""))), Ok(Frame::Result(Value::Null)));
    }
}
