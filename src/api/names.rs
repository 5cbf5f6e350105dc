//! Kubernetes object names, checked as the apiserver checks them. The standalone front end
//! uses names as file names in its state directory, so a name that the apiserver would refuse
//! (`../../x`, `/abs/x`) must be refused before it names a file.

/// Why a name is not a valid object name.
pub fn check_subdomain(name: &str) -> Result<(), String> {
    const HINT: &str = "use a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters (e.g. contoso or dal-sea)";
    if name.is_empty() {
        return Err(format!("is empty; {HINT}"));
    }
    if name.len() > 253 {
        return Err(format!("is {} characters long; {HINT}", name.len()));
    }
    for label in name.split('.') {
        if !is_label(label) {
            return Err(format!("'{}' is not a valid name; {HINT}", printable(name)));
        }
    }
    Ok(())
}

/// Why a namespace is not a valid DNS-1123 label.
pub fn check_label(name: &str) -> Result<(), String> {
    if name.len() <= 63 && is_label(name) {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid namespace; use a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
            printable(name)
        ))
    }
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// The name with control characters escaped, so an error message cannot be used to forge
/// terminal output or log lines.
pub fn printable(s: &str) -> String {
    let short: String = s.chars().take(80).collect();
    let mut out = short.escape_debug().to_string();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_apiserver_accepts() {
        for ok in ["contoso", "dal-sea", "a", "pool01.dal", "0x"] {
            assert!(check_subdomain(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../../x", "/abs/x", "Contoso", "a..b", "-a", "a-", "a/b", "a b", ".", "..", "a_b", &"x".repeat(254)] {
            assert!(check_subdomain(bad).is_err(), "{bad}");
        }
        assert!(check_label("lync").is_ok());
        assert!(check_label("a.b").is_err());
    }
}
