//! Hostile input never panics the WinRM parsers: arbitrary and mutated XML through the envelope
//! parser and the response readers, arbitrary and mutated encrypted frames, CLIXML, and NTLM
//! tokens fed to the acceptor. Also: escaping round-trips any text, and sealing framing
//! round-trips any payload.

use lyncdr::winrm::WinrmError;
use lyncdr::winrm::auth::acceptor::Accepted;
use lyncdr::winrm::auth::acceptor::{authenticate_has_mic, message_type};
use lyncdr::winrm::auth::{Authenticator, Credentials, NtlmAcceptor, NtlmAuth, Step, Users};
use lyncdr::winrm::clixml;
use lyncdr::winrm::encryption::{self, Sealer};
use lyncdr::winrm::soap::{envelope, response, xml};
use proptest::prelude::*;

const RECEIVE: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action><a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C">aGkNCg==</rsp:Stream><rsp:Stream Name="stderr" CommandId="C" End="true"></rsp:Stream><rsp:CommandState CommandId="C" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse><x:ResourceCreated><a:ReferenceParameters><w:SelectorSet><w:Selector Name="ShellId">S</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="m"><f:Message>t</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"#;

/// Applies byte-level edits (delete, insert, overwrite) at the given positions.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(pos, op, byte) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let p = pos % v.len();
        match op % 3 {
            0 => {
                v.remove(p);
            }
            1 => v.insert(p, byte),
            _ => v[p] = byte,
        }
    }
    v
}

fn read_everything(bytes: &[u8]) {
    if let Ok(env) = envelope::parse(bytes, 1 << 20) {
        let _ = (env.action(), env.relates_to(), env.message_id(), env.selector("ShellId"), env.option("X"));
        let _ = (env.operation_timeout(), env.max_envelope_size(), env.fault());
        let _ = response::receive_output(&env);
        let _ = response::shell_id(&env);
        let _ = response::command_id(&env);
        let _ = env.body.canonical();
    }
}

struct Xor;

impl Sealer for Xor {
    fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinrmError> {
        Ok((vec![0xAA; 16], plain.iter().map(|b| b ^ 0x5C).collect()))
    }
    fn unseal(&mut self, _header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, WinrmError> {
        Ok(sealed.iter().map(|b| b ^ 0x5C).collect())
    }
}

type Finish = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A NEGOTIATE from our initiator, and the function that answers a CHALLENGE with its AUTHENTICATE.
fn real_handshake() -> (Vec<u8>, Finish) {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    let mut auth = NtlmAuth::new(Credentials::new("LAB\\alice", "pw").unwrap(), "localhost");
    let token = |step: Step| match step {
        Step::Send(h) => B64.decode(h.trim_start_matches("Negotiate ")).unwrap(),
        Step::Done => panic!("no token"),
    };
    let negotiate = token(auth.start().unwrap());
    let auth = std::sync::Mutex::new(auth);
    (
        negotiate,
        Box::new(move |challenge: &[u8]| token(auth.lock().unwrap().next(&[format!("Negotiate {}", B64.encode(challenge))]).unwrap())),
    )
}

#[test]
fn an_undamaged_handshake_is_accepted() {
    let users = Users::new().with("LAB\\alice", "pw").unwrap();
    let (negotiate, finish) = real_handshake();
    let (next, challenge) = NtlmAcceptor::new().step(&negotiate, &users).unwrap();
    let Accepted::Challenge(challenge) = challenge else { panic!("expected a challenge") };
    assert!(matches!(next.unwrap().step(&finish(&challenge), &users), Ok((None, Accepted::Done { .. }))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_everything(&bytes);
        let _ = encryption::split(&bytes);
        let _ = encryption::decrypt(&mut Xor, &bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = xml::parse(&text);
        let _ = clixml::decode_stderr(&text);
        let _ = clixml::decode_stderr(&format!("#< CLIXML\r\n{text}"));
        let _ = (message_type(&bytes), authenticate_has_mic(&bytes));
    }

    #[test]
    fn mutated_envelopes_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12)) {
        read_everything(&mutate(RECEIVE.as_bytes(), &edits));
    }

    #[test]
    fn mutated_frames_never_panic_and_intact_ones_round_trip(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6),
    ) {
        let frame = encryption::encrypt(&mut Xor, &payload).unwrap();
        prop_assert_eq!(encryption::decrypt(&mut Xor, &frame).unwrap(), payload);
        let _ = encryption::decrypt(&mut Xor, &mutate(&frame, &edits));
    }

    #[test]
    fn hostile_ntlm_tokens_never_panic_the_acceptor(
        kind in 0u8..5,
        body in proptest::collection::vec(any::<u8>(), 0..300),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let users = Users::new().with("LAB\\alice", "pw").unwrap();
        let mut token = b"NTLMSSP\0".to_vec();
        token.extend_from_slice(&u32::from(kind).to_le_bytes());
        token.extend_from_slice(&body);
        let _ = NtlmAcceptor::new().step(&token, &users);
        let _ = NtlmAcceptor::new().step(&body, &users);

        // A real handshake whose AUTHENTICATE (or NEGOTIATE) is then damaged.
        let (negotiate, challenge_to_authenticate) = real_handshake();
        let _ = NtlmAcceptor::new().step(&mutate(&negotiate, &edits), &users);
        let (next, challenge) = NtlmAcceptor::new().step(&negotiate, &users).unwrap();
        let Accepted::Challenge(challenge) = challenge else { panic!("expected a challenge") };
        let authenticate = challenge_to_authenticate(&challenge);
        // Refused or (for damage the MIC does not cover, such as trailing bytes) accepted, but
        // never a panic. Wrong passwords are refused: winrm_ntlm_interop and winrm_end_to_end.
        let _ = next.unwrap().step(&mutate(&authenticate, &edits), &users);
    }

    #[test]
    fn hostile_challenges_never_panic_the_initiator(
        kind in 0u8..4,
        body in proptest::collection::vec(any::<u8>(), 0..400),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD as B64;
        let users = Users::new().with("LAB\\alice", "pw").unwrap();
        let mut garbage = b"NTLMSSP\0".to_vec();
        garbage.extend_from_slice(&u32::from(kind).to_le_bytes());
        garbage.extend_from_slice(&body);
        // A real CHALLENGE, damaged.
        let (negotiate, _) = real_handshake();
        let (_, challenge) = NtlmAcceptor::new().step(&negotiate, &users).unwrap();
        let Accepted::Challenge(challenge) = challenge else { panic!("expected a challenge") };
        for hostile in [garbage, mutate(&challenge, &edits)] {
            let mut auth = NtlmAuth::new(Credentials::new("LAB\\alice", "pw").unwrap(), "localhost");
            auth.start().unwrap();
            let _ = auth.next(&[format!("Negotiate {}", B64.encode(&hostile))]);
        }
    }

    #[test]
    fn escaped_text_round_trips(s in "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,64}") {
        let doc = format!("<r k=\"{}\">{}</r>", xml::escape_attr(&s), xml::escape_text(&s));
        let el = xml::parse(&doc).unwrap();
        prop_assert_eq!(el.attr("k"), Some(s.as_str()));
        prop_assert_eq!(el.text, s);
    }
}
