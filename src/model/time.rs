//! Durations and points in time, in milliseconds.
//!
//! The simulator counts time from the start of its scenario; the operator counts from the Unix
//! epoch. Both use [`Stamp`] so the planner, which only compares and subtracts, works on either.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A length of time in milliseconds.
///
/// Parses the compact form (`90s`, `2m`, `1h30m`, `500ms`) and PowerShell's TimeSpan form
/// (`00:02:00`, `1.00:00:00`); prints the compact form. [`Span::to_timespan`] gives the form a
/// cmdlet argument such as `-SyncInterval` takes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub u64);

/// A point in time: milliseconds since the clock's epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Stamp(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("'{0}' is not a duration: use e.g. 90s, 2m, 1h30m, 500ms or a TimeSpan such as 00:02:00")]
    Syntax(String),
    #[error("'{0}' is too long a duration: it does not fit in 64-bit milliseconds (about 584 million years)")]
    TooLong(String),
}

impl Span {
    pub const ZERO: Span = Span(0);

    pub const fn ms(ms: u64) -> Span {
        Span(ms)
    }
    /// Seconds (saturating: for constants; input goes through [`Span::parse`], which checks).
    pub const fn secs(s: u64) -> Span {
        Span(s.saturating_mul(1000))
    }
    pub const fn mins(m: u64) -> Span {
        Span(m.saturating_mul(60_000))
    }
    pub const fn hours(h: u64) -> Span {
        Span(h.saturating_mul(3_600_000))
    }
    /// Seconds, or `None` if the span does not fit in milliseconds.
    pub fn checked_secs(s: u64) -> Option<Span> {
        s.checked_mul(1000).map(Span)
    }
    /// A span from (possibly fractional) seconds, saturating at the ends (never a panic).
    pub fn from_secs_f64(s: f64) -> Span {
        if s.is_nan() || s <= 0.0 {
            return Span::ZERO;
        }
        let ms = s * 1000.0;
        if ms >= u64::MAX as f64 { Span(u64::MAX) } else { Span(ms as u64) }
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
    pub fn from_std(d: std::time::Duration) -> Span {
        Span(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Multiplies by a ratio, rounding to the millisecond.
    pub fn scale(self, num: u64, den: u64) -> Span {
        if den == 0 {
            return self;
        }
        Span(((self.0 as u128 * num as u128) / den as u128) as u64)
    }

    /// PowerShell TimeSpan text, e.g. `00:02:00` or `1.02:00:00`.
    pub fn to_timespan(self) -> String {
        let total = self.0 / 1000;
        let (d, h, m, s) = (total / 86_400, (total / 3600) % 24, (total / 60) % 60, total % 60);
        let ms = self.0 % 1000;
        let mut out = if d > 0 { format!("{d}.{h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}") };
        if ms > 0 {
            out.push_str(&format!(".{ms:03}"));
        }
        out
    }

    pub fn parse(input: &str) -> Result<Span, SpanError> {
        let s = input.trim();
        let shown: String = input.chars().take(64).collect::<String>().escape_debug().to_string();
        let err = || SpanError::Syntax(shown.clone());
        let too_long = || SpanError::TooLong(shown.clone());
        if s.is_empty() {
            return Err(err());
        }
        if s.contains(':') {
            return parse_timespan(s).map_err(|overflow| if overflow { too_long() } else { err() });
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = s.parse().map_err(|_| too_long())?;
            return Span::checked_secs(secs).ok_or_else(too_long);
        }
        let mut total: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(err());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
            rest = &rest[digits..];
            let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let factor = match unit {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(err()),
            };
            total = n.checked_mul(factor).and_then(|v| total.checked_add(v)).ok_or_else(too_long)?;
        }
        Ok(Span(total))
    }
}

/// `[d.]hh:mm:ss[.fff]`; `Err(true)` when the value does not fit, `Err(false)` when it is not
/// a TimeSpan.
fn parse_timespan(s: &str) -> Result<Span, bool> {
    let num = |t: &str| -> Result<u64, bool> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(false);
        }
        t.parse::<u64>().map_err(|_| true)
    };
    let (days, clock) = match s.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (num(d)?, rest),
        _ => (0, s),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.len() != 3 {
        return Err(false);
    }
    let h = num(parts[0])?;
    let m = num(parts[1])?;
    let (sec, frac) = match parts[2].split_once('.') {
        Some((a, b)) => (num(a)?, b),
        None => (num(parts[2])?, ""),
    };
    if m >= 60 || sec >= 60 || (days > 0 && h >= 24) {
        return Err(false);
    }
    let ms: u64 = if frac.is_empty() {
        0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(false);
        }
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse().map_err(|_| false)?
    };
    let total = days
        .checked_mul(24)
        .and_then(|x| x.checked_add(h))
        .and_then(|x| x.checked_mul(3600))
        .and_then(|x| x.checked_add(m * 60 + sec))
        .and_then(|x| x.checked_mul(1000))
        .and_then(|x| x.checked_add(ms))
        .ok_or(true)?;
    Ok(Span(total))
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut ms = self.0;
        let mut out = String::new();
        for (unit, size) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
            if ms >= size {
                out.push_str(&format!("{}{}", ms / size, unit));
                ms %= size;
            }
        }
        if ms > 0 {
            out.push_str(&format!("{ms}ms"));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::ops::Add for Span {
    type Output = Span;
    fn add(self, o: Span) -> Span {
        Span(self.0.saturating_add(o.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Span::checked_secs(n).ok_or_else(|| serde::de::Error::custom(SpanError::TooLong(format!("{n}s")))),
            Raw::Text(t) => Span::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl schemars::JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Span".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^(([0-9]+(ms|s|m|h|d))+|([0-9]+\.)?[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?)$",
        })
    }
    fn inline_schema() -> bool {
        true
    }
}

impl Stamp {
    pub fn plus(self, d: Span) -> Stamp {
        Stamp(self.0.saturating_add(d.0))
    }
    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Stamp) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Stamp {
    /// Prints as an offset (`+12m30s`); the simulator's epoch is the scenario start.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", Span(self.0))
    }
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compact_and_timespan_forms() {
        assert_eq!(Span::parse("2m").unwrap(), Span::mins(2));
        assert_eq!(Span::parse("1h30m").unwrap(), Span::mins(90));
        assert_eq!(Span::parse("500ms").unwrap(), Span::ms(500));
        assert_eq!(Span::parse("45").unwrap(), Span::secs(45));
        assert_eq!(Span::parse("00:02:00").unwrap(), Span::mins(2));
        assert_eq!(Span::parse("1.00:00:00").unwrap(), Span::hours(24));
        assert_eq!(Span::parse("00:00:05.5").unwrap(), Span::ms(5500));
        assert!(Span::parse("2 minutes").is_err());
        assert!(Span::parse("00:61:00").is_err());
        assert!(Span::parse("").is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert!(matches!(Span::parse("18446744073709552"), Err(SpanError::TooLong(_))));
        assert!(matches!(Span::parse("18446744073709557s"), Err(SpanError::TooLong(_))));
        assert!(matches!(Span::parse("13450750887080.00:00:05"), Err(SpanError::TooLong(_))));
        assert!(matches!(Span::parse("99999999999999999999999h"), Err(SpanError::TooLong(_))));
        assert!(matches!(Span::parse("213503982336d"), Err(SpanError::TooLong(_))));
        let e: Result<Span, _> = serde_json::from_value(serde_json::json!(18446744073709552u64));
        assert!(e.unwrap_err().to_string().contains("too long"));
        assert_eq!(Span::parse("213503982d").unwrap(), Span(213_503_982 * 86_400_000));
        assert_eq!(Span::from_secs_f64(f64::INFINITY), Span(u64::MAX));
        assert_eq!(Span::from_secs_f64(-1.0), Span::ZERO);
    }

    #[test]
    fn prints_both_forms() {
        assert_eq!(Span::mins(90).to_string(), "1h30m");
        assert_eq!(Span::mins(2).to_timespan(), "00:02:00");
        assert_eq!(Span::hours(27).to_timespan(), "1.03:00:00");
        assert_eq!(Span::ms(1500).to_string(), "1s500ms");
    }

    #[test]
    fn round_trips_through_text() {
        for ms in [0u64, 1, 999, 1000, 61_000, 3_600_000, 90_061_001] {
            let s = Span(ms);
            assert_eq!(Span::parse(&s.to_string()).unwrap(), s);
            assert_eq!(Span::parse(&s.to_timespan()).unwrap(), s);
        }
    }
}
