//! NTLM with message sealing interoperates with pyspnego (the library pywinrm and pypsrp use
//! against real Windows) in both directions: our initiator against a pyspnego acceptor, and a
//! pyspnego initiator against our acceptor, each authenticating and then sealing and unsealing
//! several messages both ways (sequence numbers advance), plus wrong-password refusals.
//! Needs `LYNCDR_WINRM_PYTHON` (scripts/winrm-fixtures.sh); skips without it unless
//! `LYNCDR_REQUIRE_WINRM=1`.

#[path = "winrm/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use lyncdr::winrm::WinrmError;
use lyncdr::winrm::auth::acceptor::Accepted;
use lyncdr::winrm::auth::{Authenticator, Credentials, NtlmAcceptor, NtlmAuth, Step, Users};
use lyncdr::winrm::encryption::Sealer;

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(python: &std::path::Path, args: &[&str], user_file: Option<&std::path::Path>) -> Peer {
        let mut cmd = Command::new(python);
        cmd.arg(support::script("ntlm_peer.py")).args(args).stdin(Stdio::piped()).stdout(Stdio::piped());
        if let Some(f) = user_file {
            cmd.env("NTLM_USER_FILE", f);
        }
        let mut child = cmd.spawn().expect("start ntlm_peer.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer { child, stdin, stdout }
    }

    fn send(&mut self, kind: &str, parts: &[&[u8]]) {
        let mut line = kind.to_string();
        for p in parts {
            line.push(' ');
            line.push_str(&B64.encode(p));
        }
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn line(&mut self) -> Vec<String> {
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        l.split_whitespace().map(str::to_string).collect()
    }

    fn recv(&mut self, kind: &str) -> Vec<Vec<u8>> {
        let l = self.line();
        assert_eq!(l.first().map(String::as_str), Some(kind), "peer said {l:?}");
        l[1..].iter().map(|p| B64.decode(p).unwrap()).collect()
    }

    fn finish(mut self) {
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "ntlm_peer.py failed: {status}");
    }
}

fn token_of(step: Step) -> Vec<u8> {
    match step {
        Step::Send(h) => B64.decode(h.strip_prefix("Negotiate ").expect("Negotiate scheme")).unwrap(),
        Step::Done => panic!("handshake ended early"),
    }
}

fn user_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("users");
    std::fs::write(&path, "LAB:alice:Correct-H0rse\n").unwrap();
    path
}

/// Our initiator authenticates to pyspnego's acceptor and seals/unseals `rounds` messages.
fn our_client_against_pyspnego(python: &std::path::Path, password: &str, rounds: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let users = user_file(&dir);
    let mut peer = Peer::start(python, &["accept", &rounds.to_string()], Some(&users));
    let mut auth = NtlmAuth::new(Credentials::new("LAB\\alice", password).unwrap(), "localhost");
    let negotiate = token_of(auth.start().unwrap());
    peer.send("TOKEN", &[&negotiate]);
    let challenge = peer.recv("TOKEN").remove(0);
    let authenticate = token_of(auth.next(&[format!("Negotiate {}", B64.encode(&challenge))]).unwrap());
    peer.send("TOKEN", &[&authenticate]);
    let verdict = peer.line();
    if verdict.first().map(String::as_str) != Some("OK") {
        peer.finish();
        return Err(verdict.join(" "));
    }
    let sealer = auth.sealer().expect("sealing context");
    for i in 0..rounds {
        let msg = format!("<s:Envelope n=\"{i}\">naïve {}</s:Envelope>", "y".repeat(i * 101));
        let (header, sealed) = sealer.seal(msg.as_bytes()).unwrap();
        assert_eq!(header.len(), 16, "NTLM signature");
        assert_ne!(sealed, msg.as_bytes(), "sealed text must not be the plaintext");
        peer.send("SEALED", &[&header, &sealed]);
        let reply = peer.recv("SEALED");
        let plain = sealer.unseal(&reply[0], &reply[1]).unwrap();
        assert_eq!(plain, format!("echo:{msg}").into_bytes());
    }
    peer.finish();
    Ok(())
}

/// pyspnego's initiator authenticates to our acceptor and exchanges `rounds` sealed messages.
fn pyspnego_against_our_acceptor(python: &std::path::Path, password: &str, rounds: usize) -> Result<String, WinrmError> {
    let users = Users::new().with("LAB\\alice", "Correct-H0rse").unwrap();
    let mut peer = Peer::start(python, &["initiate", "LAB\\alice", password, &rounds.to_string()], None);
    let negotiate = peer.recv("TOKEN").remove(0);
    let (acceptor, step) = NtlmAcceptor::new().step(&negotiate, &users).unwrap();
    let Accepted::Challenge(challenge) = step else { panic!("expected a challenge") };
    peer.send("TOKEN", &[&challenge]);
    let authenticate = peer.recv("TOKEN").remove(0);
    let result = acceptor.unwrap().step(&authenticate, &users);
    let (account, mut sealer) = match result {
        Ok((_, Accepted::Done { account, sealer })) => (account, sealer),
        Ok((_, other)) => panic!("unexpected {other:?}"),
        Err(e) => {
            writeln!(peer.stdin, "DENIED").unwrap();
            peer.finish();
            return Err(e);
        }
    };
    writeln!(peer.stdin, "OK").unwrap();
    for i in 0..rounds {
        let sealed = peer.recv("SEALED");
        let plain = sealer.unseal(&sealed[0], &sealed[1]).unwrap();
        let text = String::from_utf8(plain.clone()).unwrap();
        assert!(text.starts_with(&format!("<request n='{i}'>héllo from pyspnego")), "{text}");
        let (h, d) = sealer.seal(format!("reply {i}: {text}").as_bytes()).unwrap();
        peer.send("SEALED", &[&h, &d]);
        let back = peer.recv("PLAIN").remove(0);
        assert_eq!(back, format!("reply {i}: {text}").into_bytes());
    }
    peer.finish();
    Ok(account)
}

#[test]
fn our_initiator_seals_with_a_pyspnego_acceptor() {
    let Some(python) = support::python("our_initiator_seals_with_a_pyspnego_acceptor") else { return };
    our_client_against_pyspnego(&python, "Correct-H0rse", 5).unwrap();
}

#[test]
fn pyspnego_acceptor_refuses_our_wrong_password() {
    let Some(python) = support::python("pyspnego_acceptor_refuses_our_wrong_password") else { return };
    let err = our_client_against_pyspnego(&python, "wrong", 1).unwrap_err();
    assert!(err.starts_with("DENIED"), "{err}");
}

#[test]
fn pyspnego_initiator_seals_with_our_acceptor() {
    let Some(python) = support::python("pyspnego_initiator_seals_with_our_acceptor") else { return };
    let account = pyspnego_against_our_acceptor(&python, "Correct-H0rse", 5).unwrap();
    assert_eq!(account.to_ascii_lowercase(), "lab\\alice");
}

#[test]
fn our_acceptor_refuses_a_wrong_password_from_pyspnego() {
    let Some(python) = support::python("our_acceptor_refuses_a_wrong_password_from_pyspnego") else { return };
    let err = pyspnego_against_our_acceptor(&python, "not-the-password", 1).unwrap_err();
    assert!(matches!(err, WinrmError::Auth(ref m) if m.contains("wrong password")), "{err:?}");
    assert!(!format!("{err:?}").contains("Correct-H0rse"));
}
