//! Parses PowerShell command lines as a Lync admin types them (`lyncdr sim run` scripts) into
//! [`Invocation`]s: named and positional parameters, `-Switch:$false`, quoted strings, comma
//! lists, script blocks, `&` calls of programs and pipelines. Variables, loops and expressions
//! are not PowerShell this tool interprets; they are rejected with a clear message.

use serde_json::Value;

use super::invocation::{DOUBLE_QUOTES, SINGLE_QUOTES};
use super::{Input, Invocation};

fn is_single(c: char) -> bool {
    SINGLE_QUOTES.contains(&c)
}

fn is_double(c: char) -> bool {
    DOUBLE_QUOTES.contains(&c)
}

fn is_quote(c: char) -> bool {
    is_single(c) || is_double(c)
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word { text: String, quoted: bool },
    Param { name: String, inline: Option<Value> },
    Block(String),
    Comma,
    Pipe,
    Amp,
}

/// Prefix under which positional arguments are kept until the cmdlet binds them.
pub const POSITIONAL: &str = "#";

/// Parses one line. `is_switch(cmdlet, param)` tells whether a parameter is a switch (takes no
/// value); the cmdlet catalogue provides it. Returns `None` for blank and comment lines.
pub fn parse_line(line: &str, is_switch: &dyn Fn(&str, &str) -> bool) -> Result<Option<Invocation>, ParseError> {
    let toks = tokenize(line)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut segments: Vec<Vec<Tok>> = vec![Vec::new()];
    for t in toks {
        if t == Tok::Pipe {
            segments.push(Vec::new());
        } else if let Some(last) = segments.last_mut() {
            last.push(t);
        }
    }
    if segments.iter().any(Vec::is_empty) {
        return Err(ParseError("An empty pipe element is not allowed.".into()));
    }
    let mut input: Option<Input> = None;
    let mut result: Option<Invocation> = None;
    let count = segments.len();
    for (i, seg) in segments.into_iter().enumerate() {
        let starts_with_command = matches!(seg.first(), Some(Tok::Amp))
            || matches!(seg.first(), Some(Tok::Word { quoted: false, text }) if looks_like_command(text));
        if i == 0 && !starts_with_command && count > 1 {
            let (vals, rest) = take_value(&seg, 0)?;
            if rest != seg.len() {
                return Err(ParseError("Unexpected token after the pipeline input values.".into()));
            }
            input = Some(Input::Values(match vals {
                Value::Array(v) => v,
                v => vec![v],
            }));
            continue;
        }
        let mut inv = parse_command(&seg, is_switch)?;
        if let Some(inp) = input.take() {
            inv.input = Some(inp);
        }
        if i + 1 < count {
            input = Some(Input::Command(Box::new(inv)));
        } else {
            result = Some(inv);
        }
    }
    result.map(Some).ok_or_else(|| ParseError("A pipeline must end with a command.".into()))
}

fn looks_like_command(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    (text.contains('-') && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())) || lower.ends_with(".exe")
}

fn parse_command(seg: &[Tok], is_switch: &dyn Fn(&str, &str) -> bool) -> Result<Invocation, ParseError> {
    let mut idx = 0;
    let name = match &seg[0] {
        Tok::Amp => {
            idx = 1;
            match seg.get(1) {
                Some(Tok::Word { text, .. }) => text.clone(),
                _ => return Err(ParseError("The call operator & must be followed by a command name or path.".into())),
            }
        }
        Tok::Word { text, .. } => text.clone(),
        _ => return Err(ParseError("A command line must start with a cmdlet name.".into())),
    };
    if name.starts_with('$') {
        return Err(ParseError(format!(
            "Variables and assignments such as {name} are not supported by lyncdr sim run; write one command per line."
        )));
    }
    idx += 1;
    let mut inv = Invocation::new(name.clone());
    let mut positional = 0usize;
    while idx < seg.len() {
        match &seg[idx] {
            Tok::Param { name: p, inline } => {
                if let Some(v) = inline {
                    insert_arg(&mut inv, p, v.clone())?;
                    idx += 1;
                } else if is_switch(&name, p) {
                    insert_arg(&mut inv, p, Value::Bool(true))?;
                    idx += 1;
                } else {
                    match seg.get(idx + 1) {
                        Some(Tok::Param { .. }) | None => {
                            return Err(ParseError(format!(
                                "Missing an argument for parameter '{p}'. Specify a parameter of the required type and try again."
                            )));
                        }
                        _ => {
                            let (v, next) = take_value(seg, idx + 1)?;
                            insert_arg(&mut inv, p, v)?;
                            idx = next;
                        }
                    }
                }
            }
            _ => {
                let (v, next) = take_value(seg, idx)?;
                inv.args.insert(format!("{POSITIONAL}{positional}"), v);
                positional += 1;
                idx = next;
            }
        }
    }
    Ok(inv)
}

fn insert_arg(inv: &mut Invocation, name: &str, v: Value) -> Result<(), ParseError> {
    if inv.args.keys().any(|k| k.eq_ignore_ascii_case(name)) {
        return Err(ParseError(format!("Cannot bind parameter because parameter '{name}' is specified more than once.")));
    }
    inv.args.insert(name.to_string(), v);
    Ok(())
}

/// Reads one value, or a comma-separated list of values, starting at `idx`.
fn take_value(seg: &[Tok], mut idx: usize) -> Result<(Value, usize), ParseError> {
    let mut items = Vec::new();
    loop {
        let v = match seg.get(idx) {
            Some(Tok::Word { text, quoted }) => word_value(text, *quoted)?,
            Some(Tok::Block(b)) => super::script_block(b.trim()),
            _ => return Err(ParseError("Expected a value.".into())),
        };
        items.push(v);
        idx += 1;
        if matches!(seg.get(idx), Some(Tok::Comma)) {
            idx += 1;
            continue;
        }
        break;
    }
    let v = if items.len() == 1 { items.pop().unwrap_or(Value::Null) } else { Value::Array(items) };
    Ok((v, idx))
}

fn word_value(text: &str, quoted: bool) -> Result<Value, ParseError> {
    if quoted {
        return Ok(Value::String(text.to_string()));
    }
    match text.to_ascii_lowercase().as_str() {
        "$true" => return Ok(Value::Bool(true)),
        "$false" => return Ok(Value::Bool(false)),
        "$null" => return Ok(Value::Null),
        _ => {}
    }
    if text.starts_with('$') {
        return Err(ParseError(format!("Variables such as {text} are not supported by lyncdr sim run; write the value itself.")));
    }
    if text.starts_with('(') || text.starts_with("@(") {
        return Err(ParseError("Sub-expressions are not supported by lyncdr sim run; write the value itself.".into()));
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Value::from(n));
    }
    Ok(Value::String(text.to_string()))
}

fn tokenize(line: &str) -> Result<Vec<Tok>, ParseError> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '#' => break,
            ';' => return Err(ParseError("Write one command per line; ';' is not supported by lyncdr sim run.".into())),
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '&' => {
                out.push(Tok::Amp);
                i += 1;
            }
            '{' => {
                let (body, next) = read_block(&chars, i)?;
                out.push(Tok::Block(body));
                i = next;
            }
            c if is_quote(c) => {
                // PowerShell also opens and closes strings with typographic quotes.
                let (s, next) = read_quoted(&chars, i)?;
                out.push(Tok::Word { text: s, quoted: true });
                i = next;
            }
            '-' | '\u{2013}' | '\u{2014}' if chars.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic()) => {
                // A parameter name (en/em dashes from copied documentation count as '-').
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                if chars.get(j) == Some(&':') {
                    let k = j + 1;
                    let (val, next) = if chars.get(k).is_some_and(|c| is_quote(*c)) {
                        let (s, n) = read_quoted(&chars, k)?;
                        (Value::String(s), n)
                    } else {
                        let (w, n) = read_word(&chars, k);
                        (word_value(&w, false)?, n)
                    };
                    out.push(Tok::Param { name, inline: Some(val) });
                    i = next;
                } else {
                    out.push(Tok::Param { name, inline: None });
                    i = j;
                }
            }
            _ => {
                let (w, next) = read_word(&chars, i);
                out.push(Tok::Word { text: w, quoted: false });
                i = next;
            }
        }
    }
    Ok(out)
}

fn read_word(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && !matches!(chars[i], ' ' | '\t' | '\r' | '\n' | '|' | ',' | ';') {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

/// Reads a quoted string as PowerShell does: any character of the opening quote's class (single:
/// `'` and U+2018–U+201B; double: `"` and U+201C–U+201E) ends it, and two in a row stand for the
/// second one.
fn read_quoted(chars: &[char], i: usize) -> Result<(String, usize), ParseError> {
    let double = is_double(chars[i]);
    let same = |c: char| if double { is_double(c) } else { is_single(c) };
    let mut j = i + 1;
    let mut s = String::new();
    while j < chars.len() {
        let c = chars[j];
        if same(c) {
            if let Some(&n) = chars.get(j + 1).filter(|n| same(**n)) {
                s.push(n);
                j += 2;
                continue;
            }
            return Ok((s, j + 1));
        }
        if double
            && c == '`'
            && let Some(&n) = chars.get(j + 1)
        {
            s.push(match n {
                'n' => '\n',
                't' => '\t',
                other => other,
            });
            j += 2;
            continue;
        }
        if double && c == '$' && chars.get(j + 1).is_some_and(|n| n.is_ascii_alphabetic() || *n == '(' || *n == '{') {
            return Err(ParseError(
                "Variables inside double-quoted strings are not supported by lyncdr sim run; use single quotes or write the value.".into(),
            ));
        }
        s.push(c);
        j += 1;
    }
    let q = if double { '"' } else { '\'' };
    Err(ParseError(format!("The string is missing the terminator: {q}.")))
}

fn read_block(chars: &[char], i: usize) -> Result<(String, usize), ParseError> {
    let mut depth = 0;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((chars[i + 1..j].iter().collect(), j + 1));
                }
            }
            c if is_quote(c) => {
                let (_, next) = read_quoted(chars, j)?;
                j = next;
                continue;
            }
            _ => {}
        }
        j += 1;
    }
    Err(ParseError("Missing closing '}' in statement block.".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(_: &str, p: &str) -> bool {
        ["DisasterMode", "Verbose", "Force", "CentralManagementStoreStatus", "WhatIf"].iter().any(|s| s.eq_ignore_ascii_case(p))
    }

    fn parse(line: &str) -> Invocation {
        parse_line(line, &sw).unwrap().unwrap()
    }

    #[test]
    fn named_switch_and_inline_values() {
        let inv = parse("Invoke-CsPoolFailOver -PoolFqdn \"pool01.dal.contoso.com\" -DisasterMode -Verbose -Confirm:$false");
        assert_eq!(inv.cmdlet, "Invoke-CsPoolFailOver");
        assert_eq!(inv.get_str("PoolFqdn"), Some("pool01.dal.contoso.com"));
        assert!(inv.has_switch("DisasterMode"));
        assert_eq!(inv.get("Confirm"), Some(&Value::Bool(false)));
    }

    #[test]
    fn positional_lists_blocks_and_pipelines() {
        let inv = parse("Set-CsSite Seattle -XmppFederationRoute EdgeServer:edge01.sea.contoso.com");
        assert_eq!(inv.get_str("#0"), Some("Seattle"));
        let inv = parse("'sip:a@contoso.com', 'sip:b@contoso.com' | Move-CsUser -Target pool01.sea.contoso.com");
        assert_eq!(inv.input, Some(Input::Values(vec!["sip:a@contoso.com".into(), "sip:b@contoso.com".into()])));
        let inv = parse("Get-CsUser -Filter {RegistrarPool -eq \"pool01.dal.contoso.com\"} | Measure-Object");
        match inv.input {
            Some(Input::Command(q)) => assert_eq!(
                q.get("Filter").and_then(|v| v.get("ScriptBlock")).and_then(Value::as_str),
                Some("RegistrarPool -eq \"pool01.dal.contoso.com\"")
            ),
            other => panic!("{other:?}"),
        }
        let inv = parse(r"& 'C:\Program Files\Microsoft Lync Server 2013\Deployment\Bootstrapper.exe'");
        assert!(inv.cmdlet.ends_with("Bootstrapper.exe"));
        let inv = parse("Invoke-CsDatabaseFailover -PoolFqdn p.contoso.com -DatabaseType User -NewPrincipal mirror # comment");
        assert_eq!(inv.get_str("NewPrincipal"), Some("mirror"));
    }

    #[test]
    fn documentation_dashes_and_rejections() {
        let inv = parse("Get-CsPoolBackupRelationship \u{2013}PoolFqdn pool01.dal.contoso.com");
        assert_eq!(inv.get_str("PoolFqdn"), Some("pool01.dal.contoso.com"));
        assert!(parse_line("   # just a comment", &sw).unwrap().is_none());
        assert!(parse_line("$p = Get-CsPool", &sw).is_err());
        assert!(parse_line("Get-CsPool; Get-CsSite", &sw).is_err());
        assert!(parse_line("Set-CsSite -Identity", &sw).unwrap_err().0.contains("Missing an argument"));
        assert!(parse_line("Get-CsPool -Identity 'x", &sw).unwrap_err().0.contains("terminator"));
        assert!(parse_line("Get-CsPool -Identity a -identity b", &sw).unwrap_err().0.contains("more than once"));
    }
}
