//! Values quoted in messages. A value read from an input (a manifest, a scenario, a script) may
//! hold control characters: echoed as they are, an escape sequence moves the cursor or clears the
//! screen, and a line break forges a log line. Every value quoted in an error goes through
//! [`shown`], and the CLI passes the whole message through [`shown_lines`] before printing it.

/// The value with control and invisible formatting characters escaped as Rust writes them
/// (`\u{1b}`, `\n`, `\u{202e}`); every other character, quotes and backslashes included, is kept.
pub fn shown(s: &str) -> String {
    escape(s, false)
}

/// Like [`shown`], but real line breaks and tabs are kept: for whole messages that have several
/// lines (a YAML error with its snippet).
pub fn shown_lines(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if keep_lines && matches!(c, '\n' | '\t') {
            out.push(c);
        } else if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Control characters (C0, DEL, C1) and the bidirectional and zero-width formatting characters
/// that make a terminal show text other than the bytes it holds.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown("line\nforged"), "line\\nforged");
        assert_eq!(shown("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(shown("C:\\rgs 'it' \"q\" é ’"), "C:\\rgs 'it' \"q\" é ’");
        assert_eq!(shown_lines("a\n\tb\r\u{7}"), "a\n\tb\\r\\u{7}");
    }
}
