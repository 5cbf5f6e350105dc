//! Decoding of the CLIXML that Windows PowerShell writes to stderr under `-EncodedCommand`
//! (`#< CLIXML` followed by `<Objs>` documents with `<S S="Error">` records and `_xHHHH_`
//! escapes) into readable text. Decode the concatenated stderr of all Receive responses: a large
//! document arrives split across several.

use crate::winrm::soap::xml::{self, Element};

/// The marker PowerShell puts before serialized stderr.
pub const CLIXML_MARKER: &str = "#< CLIXML";

/// Decodes `_xHHHH_` escapes (UTF-16 code units, surrogate pairs joined); malformed escapes stay
/// as they are.
pub fn decode_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut units: Vec<u16> = Vec::new();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        if !units.is_empty() {
            out.extend(char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
            units.clear();
        }
    };
    while i < bytes.len() {
        if bytes[i] == b'_'
            && bytes.get(i + 1) == Some(&b'x')
            && bytes.get(i + 6) == Some(&b'_')
            && let Some(hex) = s.get(i + 2..i + 6)
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(unit) = u16::from_str_radix(hex, 16)
        {
            units.push(unit);
            i += 7;
            continue;
        }
        flush(&mut units, &mut out);
        // Copy one whole UTF-8 character.
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    flush(&mut units, &mut out);
    out
}

fn collect_errors(el: &Element, out: &mut String) {
    if el.name == "S" && el.attr("S").is_some_and(|k| k.eq_ignore_ascii_case("Error")) {
        out.push_str(&decode_escapes(&el.text));
    }
    for c in &el.children {
        collect_errors(c, out);
    }
}

/// The error records of a CLIXML stderr as text, or `None` if `raw` is not CLIXML or cannot be
/// parsed.
pub fn error_text(raw: &str) -> Option<String> {
    let trimmed = raw.trim_start();
    if !trimmed.starts_with(CLIXML_MARKER) {
        return None;
    }
    // One or more `#< CLIXML` headers, each followed by an <Objs> document.
    let docs: String = trimmed.lines().filter(|l| !l.trim_start().starts_with(CLIXML_MARKER)).collect::<Vec<_>>().join("\n");
    let root = xml::parse(&format!("<clixml>{docs}</clixml>")).ok()?;
    let mut out = String::new();
    collect_errors(&root, &mut out);
    Some(out.trim_end().to_string())
}

/// Readable stderr: the CLIXML error records if `raw` is CLIXML, else `raw` unchanged.
pub fn decode_stderr(raw: &str) -> String {
    error_text(raw).unwrap_or_else(|| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN><MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>Preparing modules for first use.</AV></PR></MS></Obj><S S=\"Error\">Get-CsPool : Pool _x0022_pool1_x0022_ not found_x000D__x000A_</S><S S=\"Error\">At line:1 char:1_x000D__x000A_</S><S S=\"Verbose\">noise</S></Objs>";

    #[test]
    fn error_records_are_extracted_and_unescaped() {
        assert_eq!(decode_stderr(SAMPLE), "Get-CsPool : Pool \"pool1\" not found\r\nAt line:1 char:1");
    }

    #[test]
    fn several_documents_and_plain_text() {
        let two = format!(
            "{SAMPLE}\r\n#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">second_x000A_</S></Objs>"
        );
        assert!(decode_stderr(&two).ends_with("At line:1 char:1\r\nsecond"));
        assert_eq!(decode_stderr("plain error\r\n"), "plain error\r\n");
        // A document cut in the middle (a missing Receive) falls back to the raw text.
        let cut = &SAMPLE[..SAMPLE.len() - 20];
        assert_eq!(decode_stderr(cut), cut);
    }

    #[test]
    fn escapes_decode_including_surrogates_and_leave_garbage() {
        assert_eq!(decode_escapes("a_x0041_b"), "aAb");
        assert_eq!(decode_escapes("_xD83D__xDE00_"), "😀");
        assert_eq!(decode_escapes("_x00_ _xZZZZ_ _x0041"), "_x00_ _xZZZZ_ _x0041");
        assert_eq!(decode_escapes("é_x00E9_"), "éé");
    }
}
