//! A small namespace-resolved XML tree for SOAP envelopes, read with quick-xml: every element and
//! attribute carries its namespace URI, never its prefix. Bounded (depth, element count) and
//! panic-free on hostile input; unknown entities are rejected (no expansion). Also escaping for
//! the writers and a canonical form used to compare envelopes regardless of prefixes.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Deepest element nesting accepted (SOAP envelopes are shallow).
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 100_000;

/// One attribute: namespace URI (empty for none), local name, unescaped value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// One element: namespace URI (empty for none), local name, attributes, child elements and the
/// concatenation of its direct text (mixed content is not kept in order; SOAP has none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    pub text: String,
}

/// Why a document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

impl Element {
    /// True if this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`, in document order.
    pub fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Follows a path of `(ns, name)` steps through first children.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        steps.iter().try_fold(self, |el, (ns, name)| el.child(ns, name))
    }

    /// The first descendant (depth first, self excluded) `{ns}name`.
    pub fn descendant(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| if c.is(ns, name) { Some(c) } else { c.descendant(ns, name) })
    }

    /// The value of an attribute without namespace.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attr_ns("", name)
    }

    /// The value of an attribute `{ns}name`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns == ns && a.name == name).map(|a| a.value.as_str())
    }

    /// Direct text, trimmed.
    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }

    /// All text of this element and its descendants, in document order of elements.
    pub fn deep_text(&self) -> String {
        let mut out = self.text.clone();
        for c in &self.children {
            out.push_str(&c.deep_text());
        }
        out
    }

    /// A prefix-independent canonical rendering: `{ns}name` tags, attributes sorted (namespace
    /// declarations dropped), text trimmed, whitespace-only text dropped. Two envelopes that mean
    /// the same have the same canonical form.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, out: &mut String) {
        out.push_str(&format!("<{{{}}}{}", self.ns, self.name));
        let mut attrs: Vec<&Attr> = self.attrs.iter().collect();
        attrs.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
        for a in attrs {
            out.push_str(&format!(" {{{}}}{}=\"{}\"", a.ns, a.name, escape_attr(&a.value)));
        }
        out.push('>');
        out.push_str(&escape_text(self.text.trim()));
        for c in &self.children {
            c.write_canonical(out);
        }
        out.push_str("</>");
    }
}

/// Parses a whole document into its root element.
pub fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| XmlError(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError(format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!("nesting deeper than {MAX_DEPTH}")));
                }
                let (ns, local) = reader.resolver().resolve_element(e.name());
                let ns = namespace_of(ns)?;
                let name = utf8(local.as_ref())?;
                let mut attrs = Vec::new();
                for attr in e.attributes() {
                    let attr = attr.map_err(|err| XmlError(err.to_string()))?;
                    let key = attr.key;
                    if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                        continue;
                    }
                    let (ans, alocal) = reader.resolver().resolve_attribute(key);
                    let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|err| XmlError(err.to_string()))?;
                    attrs.push(Attr { ns: namespace_of(ans)?, name: utf8(alocal.as_ref())?, value: value.into_owned() });
                }
                let el = Element { ns, name, attrs, children: Vec::new(), text: String::new() };
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| XmlError("unexpected closing tag".into()))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                push_text(&mut stack, &text)?;
            }
            Event::CData(c) => {
                let text = c.as_ref().to_string();
                push_text(&mut stack, &text)?;
            }
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| XmlError(e.to_string()))?
                } else {
                    match r.as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        other => return Err(XmlError(format!("unknown entity &{other};"))),
                    }
                };
                let ch = ch.ok_or_else(|| XmlError("invalid character reference".into()))?;
                push_text(&mut stack, ch.encode_utf8(&mut [0u8; 4]))?;
            }
            Event::DocType(_) => return Err(XmlError("DTDs are not accepted".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("unclosed element".into()));
    }
    root.ok_or_else(|| XmlError("no root element".into()))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError("text outside the root element".into())),
    }
}

fn namespace_of(r: ResolveResult<'_>) -> Result<String, XmlError> {
    match r {
        ResolveResult::Bound(ns) => utf8(ns.as_ref()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(XmlError(format!("undeclared namespace prefix {}", p))),
    }
}

fn utf8(s: &str) -> Result<String, XmlError> {
    Ok(s.to_string())
}

/// Escapes text content (`&`, `<`, `>`, and `\r`, which parsers would fold into `\n`).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value in double quotes (`&`, `<`, `>`, `"`, and the whitespace
/// characters attribute normalisation would otherwise fold).
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_whatever_the_prefix() {
        let a = parse(r#"<a:x xmlns:a="urn:1" b:k="v" xmlns:b="urn:2"><a:y>t</a:y></a:x>"#).unwrap();
        let b = parse(r#"<x xmlns="urn:1"><q:y xmlns:q="urn:1"> t </q:y><!-- c --></x>"#).unwrap();
        assert_eq!(a.ns, "urn:1");
        assert_eq!(a.attr_ns("urn:2", "k"), Some("v"));
        assert_eq!(a.child("urn:1", "y").unwrap().text, "t");
        assert_eq!(b.child("urn:1", "y").unwrap().trimmed_text(), "t");
        assert_ne!(a.canonical(), b.canonical(), "the attribute differs");
        let c = parse(r#"<p:x xmlns:p="urn:1" xmlns:z="urn:2" z:k="v"><p:y>t</p:y></p:x>"#).unwrap();
        assert_eq!(a.canonical(), c.canonical());
    }

    #[test]
    fn entities_and_char_refs_are_unescaped() {
        let el = parse("<a k=\"&quot;1&amp;\">&lt;&#65;&#x42;&gt;<![CDATA[<c>]]></a>").unwrap();
        assert_eq!(el.text, "<AB><c>");
        assert_eq!(el.attr("k"), Some("\"1&"));
    }

    #[test]
    fn hostile_documents_are_errors_not_panics() {
        for bad in [
            "",
            "<a>",
            "</a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<p:a/>",
            "<a>&ext;</a>",
            "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
            "<a>&#0;</a>",
            "<a k='1' k='2'/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn escaping_round_trips() {
        let nasty = "a&b<c>d\"e'f\n\tg\r\nh";
        let doc = format!("<r k=\"{}\">{}</r>", escape_attr(nasty), escape_text(nasty));
        let el = parse(&doc).unwrap();
        assert_eq!(el.attr("k"), Some(nasty));
        assert_eq!(el.text, nasty);
    }
}
