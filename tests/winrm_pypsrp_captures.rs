//! Golden tests on real WinRM traffic captured against Windows by pypsrp's test suite
//! (`tests/tests_pypsrp/responses/*.yml` of the pypsrp 0.9.1 sdist, downloaded at test time by
//! scripts/winrm-fixtures.sh, never committed). Every captured WinRS response (and the
//! `test_wsman_update_envelope_size_*` ones) parses, with `RelatesTo` naming its request; and for
//! every captured WinRS request, our builder given the same inputs produces the same envelope
//! once UUIDs are zeroed and the XML is canonicalised (prefix-independent), as pypsrp's own
//! harness compares them. Skips without `LYNCDR_PYPSRP_RESPONSES` unless `LYNCDR_REQUIRE_WINRM=1`.

#[path = "winrm/support.rs"]
mod support;

use std::path::{Path, PathBuf};

use lyncdr::winrm::WinrmError;
use lyncdr::winrm::soap::envelope::{self, Envelope, parse_xs_duration};
use lyncdr::winrm::soap::ns;
use lyncdr::winrm::soap::request::{self, Headers, ShellOptions};
use lyncdr::winrm::soap::response;
use lyncdr::winrm::soap::{Action, Signal, xml};

#[derive(serde::Deserialize)]
struct Capture {
    messages: Vec<Message>,
}

#[derive(serde::Deserialize)]
struct Message {
    request: String,
    response: String,
}

fn captures(dir: &Path) -> Vec<(String, Capture)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".yml")
                && (n.starts_with("test_winrs_")
                    || n.starts_with("test_wsman_update_envelope_size_")
                    || n.starts_with("test_client_execute_cmd"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let cap: Capture = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, cap)
        })
        .collect()
}

/// Every UUID (8-4-4-4-12 hex digits, any case) replaced by zeros, as pypsrp's conftest does.
fn zero_uuids(s: &str) -> String {
    let shape = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'outer: while i < b.len() {
        let mut j = i;
        for (k, n) in shape.iter().enumerate() {
            if b.len() < j + n || !b[j..j + n].iter().all(u8::is_ascii_hexdigit) {
                break;
            }
            j += n;
            if k < 4 {
                if b.get(j) != Some(&b'-') {
                    break;
                }
                j += 1;
            } else {
                out.push_str("00000000-0000-0000-0000-000000000000");
                i = j;
                continue 'outer;
            }
        }
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn canonical(xml_text: &str) -> String {
    zero_uuids(&xml::parse(xml_text).unwrap().canonical())
}

fn headers_of(req: &Envelope) -> Headers {
    Headers {
        to: req.header.child(ns::ADDRESSING, "To").unwrap().trimmed_text().to_string(),
        max_envelope_size: req.max_envelope_size().unwrap(),
        locale: req.header.child(ns::WSMAN, "Locale").and_then(|l| l.attr_ns(ns::XML, "lang")).unwrap().to_string(),
        operation_timeout: req.operation_timeout().unwrap(),
        session_id: req.header.child(ns::WSMV, "SessionId").map(|s| s.trimmed_text().to_string()),
    }
}

/// Our request for the same inputs as the captured one (`None` for non-WinRS actions).
fn rebuild(req: &Envelope) -> Option<String> {
    let action = Action::from_uri(req.action()?)?;
    let h = headers_of(req);
    let shell = || req.selector("ShellId").unwrap().to_string();
    let body = req.body_element();
    let built = match action {
        Action::Create => {
            let s = body.unwrap();
            let text = |n: &str| s.child(ns::SHELL, n).map(|e| e.text.clone());
            let opts = ShellOptions {
                codepage: req.option("WINRS_CODEPAGE").map(|c| c.parse().unwrap()),
                no_profile: req.option("WINRS_NOPROFILE").is_some(),
                environment: s
                    .child(ns::SHELL, "Environment")
                    .map(|e| {
                        e.children_named(ns::SHELL, "Variable").map(|v| (v.attr("Name").unwrap().to_string(), v.text.clone())).collect()
                    })
                    .unwrap_or_default(),
                working_directory: text("WorkingDirectory"),
                idle_timeout: text("IdleTimeOut").map(|t| parse_xs_duration(&t).unwrap()),
                lifetime: text("Lifetime").map(|t| parse_xs_duration(&t).unwrap()),
                name: text("Name"),
                input_streams: text("InputStreams").unwrap(),
                output_streams: text("OutputStreams").unwrap(),
            };
            request::create_shell(&h, &opts)
        }
        Action::Command => {
            let line = body.unwrap();
            let cmd = line.child(ns::SHELL, "Command").unwrap().text.clone();
            let args: Vec<String> = line.children_named(ns::SHELL, "Arguments").map(|a| a.text.clone()).collect();
            let skip = req.option("WINRS_SKIP_CMD_SHELL").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            request::command(&h, &shell(), &cmd, &args, skip)
        }
        Action::Send => {
            let st = body.unwrap().child(ns::SHELL, "Stream").unwrap();
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD.decode(st.trimmed_text()).unwrap();
            let end = st.attr("End").is_some_and(|e| e.eq_ignore_ascii_case("true"));
            request::send(&h, &shell(), st.attr("CommandId").unwrap(), st.attr("Name").unwrap(), &data, end)
        }
        Action::Receive => {
            let d = body.unwrap().child(ns::SHELL, "DesiredStream").unwrap();
            request::receive(&h, &shell(), d.attr("CommandId"), d.trimmed_text())
        }
        Action::Signal => {
            let s = body.unwrap();
            let code = Signal::from_uri(s.child(ns::SHELL, "Code").unwrap().trimmed_text()).unwrap();
            request::signal(&h, &shell(), s.attr("CommandId").unwrap(), code)
        }
        Action::Delete => request::delete(&h, &shell()),
    };
    assert_eq!(built.action, action);
    Some(built.xml)
}

#[test]
fn zero_uuids_matches_pypsrp_normalisation() {
    assert_eq!(zero_uuids("uuid:FC40E3CD-53E9-4315-b486-6D538B25D1F5<"), "uuid:00000000-0000-0000-0000-000000000000<");
    assert_eq!(zero_uuids("FC40E3CD-53E9-4315-B486"), "FC40E3CD-53E9-4315-B486");
    assert_eq!(zero_uuids("é"), "é");
}

#[test]
fn our_requests_match_the_captured_ones() {
    let Some(dir) = support::pypsrp_responses("our_requests_match_the_captured_ones") else { return };
    let mut compared = 0;
    for (name, cap) in captures(&dir) {
        for (i, m) in cap.messages.iter().enumerate() {
            let req = envelope::parse(m.request.as_bytes(), 1 << 22).unwrap_or_else(|e| panic!("{name}[{i}] request: {e}"));
            let Some(ours) = rebuild(&req) else { continue };
            assert_eq!(canonical(&ours), canonical(&m.request), "{name}[{i}]: our request differs from the captured one");
            compared += 1;
        }
    }
    eprintln!("compared {compared} WinRS requests");
    assert!(compared >= 70, "only {compared} requests compared");
}

#[test]
fn every_captured_response_parses() {
    let Some(dir) = support::pypsrp_responses("every_captured_response_parses") else { return };
    let (mut parsed, mut faults, mut timed_out) = (0, 0, 0);
    let mut mismatched: Vec<String> = Vec::new();
    for (name, cap) in captures(&dir) {
        let mut shell_id: Option<String> = None;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut exit_code = None;
        for (i, m) in cap.messages.iter().enumerate() {
            let ctx = format!("{name}[{i}]");
            let req = envelope::parse(m.request.as_bytes(), 1 << 22).unwrap();
            let env = envelope::parse(m.response.as_bytes(), 1 << 22).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let rel = env.relates_to().unwrap_or_else(|| panic!("{ctx}: no RelatesTo"));
            if Some(rel) != req.message_id() {
                // The captures were edited by hand in places; count, report and bound these.
                mismatched.push(ctx.clone());
            }
            parsed += 1;
            let env = match env.into_result() {
                Ok(env) => env,
                Err(WinrmError::Fault(f)) => {
                    faults += 1;
                    assert!(!f.code.is_empty() && f.subcode.is_some() && f.wsman_code.is_some() && !f.message.is_empty(), "{ctx}: {f:?}");
                    if f.is_timed_out() {
                        timed_out += 1;
                        assert_eq!(f.wsman_code, Some(2150858793));
                    }
                    continue;
                }
                Err(e) => panic!("{ctx}: {e}"),
            };
            match req.action().and_then(Action::from_uri) {
                Some(Action::Create) => shell_id = Some(response::shell_id(&env).unwrap()),
                Some(Action::Command) => {
                    assert_eq!(req.selector("ShellId"), shell_id.as_deref(), "{ctx}: the shell id the server gave");
                    assert!(!response::command_id(&env).unwrap().is_empty());
                }
                Some(Action::Receive) => {
                    let out = response::receive_output(&env).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    stdout.extend(out.stream("stdout"));
                    stderr.extend(out.stream("stderr"));
                    if out.done() {
                        exit_code = out.exit_code();
                    }
                }
                Some(a @ (Action::Send | Action::Signal | Action::Delete)) => response::acknowledged(&env, a).unwrap(),
                // WS-Transfer Get of the WinRM configuration (envelope size tests): parse only.
                None => assert!(env.body_element().is_some(), "{ctx}: empty Get response"),
            }
        }
        match name.as_str() {
            "test_winrs_standard" => {
                assert_eq!(stdout, b"hi\r\n");
                assert_eq!(exit_code, Some(0));
            }
            "test_winrs_stderr_rc" => {
                assert_eq!(String::from_utf8_lossy(&stdout).trim(), "out");
                assert_eq!(String::from_utf8_lossy(&stderr).trim(), "err");
                assert_eq!(exit_code, Some(1));
            }
            "test_winrs_send" => assert_eq!(exit_code, Some(0)),
            "test_winrs_operation_timeout" => assert!(String::from_utf8_lossy(&stdout).contains("hi again"), "{stdout:?}"),
            "test_winrs_unicode" => assert!(String::from_utf8_lossy(&stdout).contains("こんにちは"), "{stdout:?}"),
            _ => {}
        }
    }
    eprintln!(
        "parsed {parsed} captured responses, {faults} faults ({timed_out} w:TimedOut); RelatesTo differs from the request's MessageID in {mismatched:?}"
    );
    assert!(mismatched.len() * 20 <= parsed, "too many RelatesTo mismatches: {mismatched:?}");
    assert!(parsed >= 70 && timed_out >= 2, "parsed {parsed}, timed out {timed_out}");
}
