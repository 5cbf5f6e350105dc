//! `System.TimeSpan` as PowerShell reads and writes it: ticks, `TimeSpan.Parse` and its .NET
//! error messages, and the `d.hh:mm:ss.fffffff` text form.

use serde_json::Value;

/// .NET ticks (100 ns) per millisecond and per second.
pub const TICKS_PER_MS: i64 = 10_000;
pub const TICKS_PER_SECOND: i64 = 10_000_000;

/// PowerShell's conversion of an argument to `System.TimeSpan`: an integer is a number of ticks
/// (`[TimeSpan]120` is 12 microseconds), a string is read by `TimeSpan.Parse` (`"10"` is ten
/// days, `"1:30"` ninety minutes, `"00:02:00"` two minutes). The error is .NET's message.
pub fn timespan_ticks(v: &Value) -> Result<i64, &'static str> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)).ok_or(NOT_A_TIMESPAN),
        Value::String(s) => parse_dotnet_timespan(s),
        _ => Err(NOT_A_TIMESPAN),
    }
}

const NOT_A_TIMESPAN: &str = "String was not recognized as a valid TimeSpan.";
const TIMESPAN_OVERFLOW: &str =
    "The TimeSpan could not be parsed because at least one of the numeric components is out of range or contains too many digits.";

/// `TimeSpan.Parse` (invariant culture): `[-]d`, or `[-][d.]hh:mm[:ss[.fffffff]]`, with hours
/// 0-23, minutes and seconds 0-59 and at most seven fraction digits.
pub fn parse_dotnet_timespan(input: &str) -> Result<i64, &'static str> {
    let s = input.trim();
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let number = |t: &str| -> Result<i64, &'static str> {
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
            return Err(NOT_A_TIMESPAN);
        }
        t.parse::<i64>().map_err(|_| TIMESPAN_OVERFLOW)
    };
    let ticks = if !body.contains(':') {
        // A bare number is a number of days.
        number(body)?.checked_mul(86_400 * TICKS_PER_SECOND).ok_or(TIMESPAN_OVERFLOW)?
    } else {
        let (days, clock) = match body.split_once(':') {
            Some((head, _)) if head.contains('.') => {
                let (d, _) = head.split_once('.').ok_or(NOT_A_TIMESPAN)?;
                (number(d)?, &body[d.len() + 1..])
            }
            _ => (0, body),
        };
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(NOT_A_TIMESPAN);
        }
        let (sec_text, fraction) = match parts.get(2) {
            Some(p) => match p.split_once('.') {
                Some((sec, frac)) => (sec, Some(frac)),
                None => (*p, None),
            },
            None => ("0", None),
        };
        let (h, m, sec) = (number(parts[0])?, number(parts[1])?, number(sec_text)?);
        if h > 23 || m > 59 || sec > 59 {
            return Err(TIMESPAN_OVERFLOW);
        }
        let frac = match fraction {
            None => 0,
            Some(f) if f.len() > 7 => return Err(TIMESPAN_OVERFLOW),
            Some(f) => number(f)? * 10i64.pow(7 - f.len() as u32),
        };
        days.checked_mul(86_400)
            .and_then(|d| d.checked_add(h * 3600 + m * 60 + sec))
            .and_then(|t| t.checked_mul(TICKS_PER_SECOND))
            .and_then(|t| t.checked_add(frac))
            .ok_or(TIMESPAN_OVERFLOW)?
    };
    Ok(if negative { -ticks } else { ticks })
}

/// A `TimeSpan` as .NET's constant ("c") format prints it: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_timespan(ticks: i64) -> String {
    let sign = if ticks < 0 { "-" } else { "" };
    let t = ticks.unsigned_abs();
    let per_sec = TICKS_PER_SECOND as u64;
    let (secs, frac) = (t / per_sec, t % per_sec);
    let (d, h, m, s) = (secs / 86_400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let mut out = if d > 0 { format!("{sign}{d}.{h:02}:{m:02}:{s:02}") } else { format!("{sign}{h:02}:{m:02}:{s:02}") };
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}
