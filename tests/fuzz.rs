//! Bounded fuzzing (proptest) of what lyncdr reads from users (issue 9): the manifest loader,
//! the scenario loader, durations and the PowerShell line parser never panic, on random input
//! and on mutations of the examples; their errors never carry a raw control character (an
//! error quotes the input, and a terminal would act on it); and quoting round-trips: any text
//! without control characters, single-quoted by [`quote`], is read back exactly by the
//! rehearsal parser, while text with a control character is refused.
//!
//! Bounded so the whole file runs in a few seconds in release:
//! `cargo test --release --test fuzz`.

use lyncdr::api::manifests;
use lyncdr::model::Span;
use lyncdr::ps::{Input, Invocation, binder, parse_line, quote};
use lyncdr::scenario::Scenario;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

const DESIRED: &str = include_str!("../examples/two-site/desired.yaml");
const SCENARIO: &str = include_str!("../examples/two-site/scenario.yaml");

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// A message shown to a user has no control character but line breaks and tabs.
fn assert_printable(message: &str) {
    if let Some(c) = message.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
        panic!("the message holds the raw control character {c:?}: {message:?}");
    }
}

/// Characters that matter to YAML, to PowerShell and to terminals, and a few others.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ':', '-', ' ', '\n', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '\'', '"', '#', '%', '@', '`', '$', ';', '?',
            '\t', '\r', '\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{202e}', '\u{feff}', '\u{2018}', '\u{2019}',
            '\u{201a}', '\u{201b}', '\u{201c}', '\u{201d}', '\u{201e}', '\u{2013}', '0', '9', '.', '~', '<', '=',
        ]),
        1 => any::<char>(),
    ]
}

fn interesting_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(interesting_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// One edit of a text: delete a range, insert text, replace a character, duplicate or drop a line.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
    DuplicateLine(usize),
    DropLine(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), interesting_text(12)).prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), interesting_char()).prop_map(|(a, c)| Edit::Replace(a, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DropLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Delete(a, n) => {
                let start = at(*a, chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert(a, s) => {
                let start = at(*a, chars.len());
                chars.splice(start..start, s.chars());
            }
            Edit::Replace(a, c) => {
                if !chars.is_empty() {
                    let i = a % chars.len();
                    chars[i] = *c;
                }
            }
            Edit::DuplicateLine(a) | Edit::DropLine(a) | Edit::SwapLines(a, _) => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let i = a % lines.len();
                match e {
                    Edit::DuplicateLine(_) => lines.insert(i, lines[i]),
                    Edit::DropLine(_) => {
                        lines.remove(i);
                    }
                    Edit::SwapLines(_, b) => {
                        let j = b % lines.len();
                        lines.swap(i, j);
                    }
                    _ => {}
                }
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

fn check_manifests(text: &str) {
    if let Err(e) = manifests::parse(text, "fuzz.yaml") {
        assert_printable(&e.to_string());
    }
}

fn check_scenario(text: &str) {
    if let Err(e) = Scenario::from_yaml(text) {
        assert_printable(&e.to_string());
    }
}

fn check_line(line: &str) {
    // Whatever is accepted can be passed to PowerShell on one line.
    if let Ok(Some(inv)) = parse_line(line, &binder::is_switch) {
        assert_eq!(inv.check(), Ok(()), "{line:?} was accepted with a control character: {inv:?}");
    }
}

#[test]
fn the_examples_still_load() {
    assert!(manifests::parse(DESIRED, "desired.yaml").is_ok());
    assert!(Scenario::from_yaml(SCENARIO).is_ok());
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn the_manifest_loader_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_manifests(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_scenario_loader_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_scenario(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn durations_never_panic(s in prop_oneof![interesting_text(30), "[0-9.:]{0,40}", "([0-9]{1,25}(ms|s|m|h|d|x)?){0,4}"]) {
        if let Err(e) = Span::parse(&s) {
            assert_printable(&e.to_string());
        }
    }

    #[test]
    fn the_line_parser_survives_random_text(line in interesting_text(80)) {
        check_line(&line);
    }

    #[test]
    fn the_line_parser_survives_mutated_commands(
        base in prop::sample::select(vec![
            "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode -Confirm:$false",
            "Set-CsSite -Identity 'Dallas' -FederationRoute \"EdgeServer:edge01.sea.contoso.com\"",
            "Get-CsUser -Filter {RegistrarPool -eq \"pool01.dal.contoso.com\"} | Move-CsUser -Target pool01.sea.contoso.com",
            "'sip:a@contoso.com', 'sip:b@contoso.com' | Move-CsUser -Target pool01.sea.contoso.com",
            "& 'C:\\Program Files\\Microsoft Lync Server 2013\\Deployment\\Bootstrapper.exe'",
        ]),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        check_line(&mutate(base, &edits));
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn the_manifest_loader_survives_mutated_examples(edits in prop::collection::vec(edit(), 1..6)) {
        check_manifests(&mutate(DESIRED, &edits));
    }

    #[test]
    fn the_scenario_loader_survives_mutated_examples(edits in prop::collection::vec(edit(), 1..6)) {
        check_scenario(&mutate(SCENARIO, &edits));
    }
}

/// Text that PowerShell reads literally inside single quotes: no control characters, with the
/// characters that end or change strings elsewhere (all quote kinds, `$`, backticks, `;`, `|`).
fn printable_text() -> impl Strategy<Value = String> {
    interesting_text(40).prop_map(|s| s.chars().filter(|c| !c.is_control()).collect())
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn quoting_round_trips_through_the_parser(s in printable_text()) {
        let line = format!("Set-CsSite -Identity {}", quote(&s));
        let inv = parse_line(&line, &binder::is_switch)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .unwrap_or_else(|| panic!("{line:?} read as a blank line"));
        prop_assert_eq!(inv.cmdlet.as_str(), "Set-CsSite");
        prop_assert_eq!(inv.args.len(), 1);
        prop_assert_eq!(inv.get("Identity"), Some(&Value::String(s.clone())));
        prop_assert!(inv.input.is_none());
        prop_assert_eq!(inv.check(), Ok(()));
    }

    #[test]
    fn a_control_character_is_always_refused(
        before in printable_text(),
        c in prop_oneof![0u32..0x20, 0x7fu32..0xa0].prop_map(|n| char::from_u32(n).unwrap_or('\0')),
        after in printable_text(),
    ) {
        let s = format!("{before}{c}{after}");
        let inv = Invocation::new("Set-CsSite").arg("Identity", s.as_str());
        let refused = inv.check().expect_err("a control character is refused");
        assert_printable(&refused);
        let piped = Invocation::new("Move-CsUser").piped_from(Input::Values(vec![Value::String(s.clone())]));
        prop_assert!(piped.check().is_err());
        // The rehearsal parser refuses it too, rather than passing it on or dropping it.
        let line = format!("Set-CsSite -Identity {}", quote(&s));
        prop_assert!(!matches!(parse_line(&line, &binder::is_switch), Ok(Some(_))), "{:?} was accepted", line);
    }
}
