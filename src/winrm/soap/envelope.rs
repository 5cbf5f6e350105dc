//! A parsed SOAP envelope (either direction): size-capped parsing, the WS-Addressing and
//! WS-Management headers both sides read (Action, MessageID, RelatesTo, selectors, options,
//! timeouts), and SOAP faults mapped to [`WsmanFault`].

use std::time::Duration;

use super::ns;
use super::xml::{self, Element};
use crate::winrm::error::{WinrmError, WsmanFault};

/// A SOAP envelope split into its header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub header: Element,
    pub body: Element,
}

/// Parses an envelope of at most `max_bytes` bytes.
pub fn parse(bytes: &[u8], max_bytes: usize) -> Result<Envelope, WinrmError> {
    if bytes.len() > max_bytes {
        return Err(WinrmError::Protocol(format!("envelope of {} bytes exceeds the {max_bytes}-byte limit", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| WinrmError::Protocol(format!("envelope is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = xml::parse(text).map_err(|e| WinrmError::Protocol(e.to_string()))?;
    if !root.is(ns::SOAP, "Envelope") {
        return Err(WinrmError::Protocol(format!("root element is {{{}}}{}, not a SOAP 1.2 envelope", root.ns, root.name)));
    }
    let header = root.child(ns::SOAP, "Header").cloned().unwrap_or_default();
    let body = root.child(ns::SOAP, "Body").cloned().ok_or_else(|| WinrmError::Protocol("envelope has no s:Body".into()))?;
    Ok(Envelope { header, body })
}

impl Envelope {
    fn header_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.header.child(ns, name).map(Element::trimmed_text)
    }

    /// `a:Action`.
    pub fn action(&self) -> Option<&str> {
        self.header_text(ns::ADDRESSING, "Action")
    }

    /// `a:MessageID`.
    pub fn message_id(&self) -> Option<&str> {
        self.header_text(ns::ADDRESSING, "MessageID")
    }

    /// `a:RelatesTo`.
    pub fn relates_to(&self) -> Option<&str> {
        self.header_text(ns::ADDRESSING, "RelatesTo")
    }

    /// `w:ResourceURI`.
    pub fn resource_uri(&self) -> Option<&str> {
        self.header_text(ns::WSMAN, "ResourceURI")
    }

    /// `w:SelectorSet/w:Selector[@Name=name]`.
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.header
            .child(ns::WSMAN, "SelectorSet")?
            .children_named(ns::WSMAN, "Selector")
            .find(|s| s.attr("Name") == Some(name))
            .map(Element::trimmed_text)
    }

    /// `w:OptionSet/w:Option[@Name=name]`.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.header
            .child(ns::WSMAN, "OptionSet")?
            .children_named(ns::WSMAN, "Option")
            .find(|s| s.attr("Name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map(Element::trimmed_text)
    }

    /// `w:OperationTimeout`, if present and valid.
    pub fn operation_timeout(&self) -> Option<Duration> {
        self.header_text(ns::WSMAN, "OperationTimeout").and_then(parse_xs_duration)
    }

    /// `w:MaxEnvelopeSize`, if present and valid.
    pub fn max_envelope_size(&self) -> Option<u32> {
        self.header_text(ns::WSMAN, "MaxEnvelopeSize").and_then(|t| t.parse().ok())
    }

    /// The first element of the body.
    pub fn body_element(&self) -> Option<&Element> {
        self.body.children.first()
    }

    /// The SOAP fault in the body, if any.
    pub fn fault(&self) -> Option<WsmanFault> {
        self.body.child(ns::SOAP, "Fault").map(fault_from)
    }

    /// `Err(Fault)` if the body is a fault, else the envelope.
    pub fn into_result(self) -> Result<Envelope, WinrmError> {
        match self.fault() {
            Some(f) => Err(WinrmError::Fault(f)),
            None => Ok(self),
        }
    }
}

fn fault_from(f: &Element) -> WsmanFault {
    let code_el = f.child(ns::SOAP, "Code");
    let code = code_el.and_then(|c| c.child(ns::SOAP, "Value")).map(|v| v.trimmed_text().to_string()).unwrap_or_default();
    let subcode = code_el
        .and_then(|c| c.path(&[(ns::SOAP, "Subcode"), (ns::SOAP, "Value")]))
        .map(|v| v.trimmed_text().to_string())
        .filter(|s| !s.is_empty());
    let detail = f.child(ns::SOAP, "Detail");
    let wsman = detail.and_then(|d| d.descendant(ns::WSMAN_FAULT, "WSManFault"));
    let wsman_code = wsman.and_then(|w| w.attr("Code")).and_then(|c| c.trim().parse().ok());
    let machine = wsman.and_then(|w| w.attr("Machine")).map(str::to_string);
    let message = wsman
        .and_then(|w| w.child(ns::WSMAN_FAULT, "Message"))
        .map(|m| m.deep_text().trim().to_string())
        .filter(|m| !m.is_empty())
        .or_else(|| f.path(&[(ns::SOAP, "Reason"), (ns::SOAP, "Text")]).map(|t| t.trimmed_text().to_string()))
        .unwrap_or_default();
    WsmanFault { code, subcode, wsman_code, machine, message }
}

/// Parses the `xs:duration` subset WS-Management uses (`PnDTnHnMn.nS`, any part optional).
pub fn parse_xs_duration(s: &str) -> Option<Duration> {
    let s = s.trim().strip_prefix('P')?;
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut total = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, factor) = units.iter().find(|(u, _)| *u == c)?;
                let v: f64 = num.parse().ok()?;
                total += v * factor;
                any = true;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('Y', 365.0 * 86400.0), ('M', 30.0 * 86400.0), ('D', 86400.0)])?;
    if let Some(t) = time {
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (any && total.is_finite() && total < 1e12).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULT: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:InvalidParameter</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The parameter is incorrect. </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="87" Machine="127.0.0.1"><f:Message><f:ProviderFault provider="Shell cmd plugin">Provider says no. </f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn faults_become_typed_errors() {
        let env = parse(FAULT.as_bytes(), 1 << 20).unwrap();
        assert_eq!(env.relates_to(), Some("uuid:1"));
        let f = env.fault().unwrap();
        assert_eq!(f.code, "s:Sender");
        assert_eq!(f.subcode.as_deref(), Some("w:InvalidParameter"));
        assert_eq!(f.wsman_code, Some(87));
        assert_eq!(f.machine.as_deref(), Some("127.0.0.1"));
        assert_eq!(f.message, "Provider says no.");
        assert!(!f.is_timed_out());
    }

    #[test]
    fn oversized_and_non_soap_documents_are_rejected() {
        assert!(matches!(parse(FAULT.as_bytes(), 100), Err(WinrmError::Protocol(_))));
        assert!(parse(b"<a/>", 100).is_err());
        assert!(parse(b"\xff\xfe", 100).is_err());
        assert!(parse(br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#, 100).is_err());
    }

    #[test]
    fn xs_durations_parse() {
        assert_eq!(parse_xs_duration("PT20S"), Some(Duration::from_secs(20)));
        assert_eq!(parse_xs_duration("PT7200.000S"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_xs_duration("P0DT0H1M0.5S"), Some(Duration::from_millis(60_500)));
        assert_eq!(parse_xs_duration("P1D"), Some(Duration::from_secs(86400)));
        for bad in ["", "PT", "20S", "PTxS", "PT1X", "PT1", "P1e400DT"] {
            assert_eq!(parse_xs_duration(bad), None, "{bad}");
        }
    }
}
