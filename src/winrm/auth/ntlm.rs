//! NTLM (NTLMv2) initiator through `sspi`, with confidentiality so the context can seal WinRM
//! messages, plus the sealing adapter shared with the acceptor. The context never leaves this
//! module in `Debug` output (it holds keys).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, DataRepresentation, EncryptionFlags, Ntlm, SecurityBuffer,
    SecurityBufferRef, SecurityStatus, Sspi, SspiImpl, Username,
};

use super::credentials::{Account, Credentials};
use super::{Authenticator, Step, challenge_token, quiet};
use crate::winrm::encryption::Sealer;
use crate::winrm::error::WinrmError;

/// The HTTP auth scheme NTLM tokens travel under (Windows accepts raw NTLM in Negotiate).
pub const SCHEME: &str = "Negotiate";

fn sspi_err(context: &str, e: sspi::Error) -> WinrmError {
    // sspi's messages describe the failure (kind and text), never key material.
    WinrmError::Auth(format!("{context}: {:?}: {}", e.error_type, e.description))
}

/// An established NTLM context used to seal and unseal messages (either side).
pub struct NtlmSealer {
    ctx: Ntlm,
}

impl NtlmSealer {
    pub(crate) fn new(ctx: Ntlm) -> Self {
        NtlmSealer { ctx }
    }
}

impl fmt::Debug for NtlmSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtlmSealer(<session keys redacted>)")
    }
}

impl Sealer for NtlmSealer {
    fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinrmError> {
        quiet(|| {
            let mut token = [0u8; 16];
            let mut data = plain.to_vec();
            let mut bufs = [SecurityBufferRef::token_buf(&mut token), SecurityBufferRef::data_buf(&mut data)];
            self.ctx
                .encrypt_message(EncryptionFlags::empty(), &mut bufs)
                .map_err(|e| WinrmError::Crypto(format!("seal: {}", e.description)))?;
            let header = bufs[0].data().to_vec();
            let sealed = bufs[1].data().to_vec();
            Ok((header, sealed))
        })
    }

    fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, WinrmError> {
        if header.len() != 16 {
            return Err(WinrmError::Crypto(format!("NTLM signature of {} bytes, expected 16", header.len())));
        }
        quiet(|| {
            let mut token = header.to_vec();
            let mut data = sealed.to_vec();
            let mut bufs = [SecurityBufferRef::token_buf(&mut token), SecurityBufferRef::data_buf(&mut data)];
            self.ctx.decrypt_message(&mut bufs).map_err(|e| WinrmError::Crypto(format!("unseal: {}", e.description)))?;
            Ok(bufs[1].data().to_vec())
        })
    }
}

/// `sspi`'s identity for our credentials: `DOMAIN\user` keeps its domain; a UPN travels whole as
/// the user name with an empty domain (what Windows clients do).
pub(crate) fn identity(c: &Credentials) -> Result<AuthIdentity, WinrmError> {
    let username = match &c.account {
        Account::DownLevel { domain, user } => Username::new_down_level_logon_name(user, domain),
        Account::Upn { user, realm } => Username::new_upn(user, realm),
        Account::Local { user } => Username::new(user, None),
    }
    .map_err(|e| WinrmError::Config(format!("account {}: {e}", c.account)))?;
    Ok(AuthIdentity { username, password: c.password.expose().to_string().into() })
}

enum State {
    Initial,
    WaitingChallenge,
    Established,
}

/// NTLM initiator for one HTTP connection.
pub struct NtlmAuth {
    creds: Credentials,
    target: String,
    ctx: Option<Ntlm>,
    handle: Option<Option<sspi::AuthIdentityBuffers>>,
    state: State,
    sealer: Option<NtlmSealer>,
}

impl fmt::Debug for NtlmAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmAuth").field("account", &self.creds.account).field("target", &self.target).finish_non_exhaustive()
    }
}

impl NtlmAuth {
    /// An initiator for `creds` talking to `host` (SPN `HTTP/host`).
    pub fn new(creds: Credentials, host: &str) -> Self {
        NtlmAuth { creds, target: format!("HTTP/{host}"), ctx: None, handle: None, state: State::Initial, sealer: None }
    }

    fn init_step(&mut self, input: Option<Vec<u8>>) -> Result<(SecurityStatus, Vec<u8>), WinrmError> {
        let ctx = self.ctx.as_mut().ok_or_else(|| WinrmError::Auth("NTLM context missing".into()))?;
        let handle = self.handle.as_mut().ok_or_else(|| WinrmError::Auth("NTLM credentials missing".into()))?;
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input_bufs = input.map(|t| vec![SecurityBuffer::new(t, BufferType::Token)]);
        let flags = ClientRequestFlags::CONFIDENTIALITY | ClientRequestFlags::INTEGRITY | ClientRequestFlags::ALLOCATE_MEMORY;
        let mut builder = ctx
            .initialize_security_context()
            .with_credentials_handle(handle)
            .with_context_requirements(flags)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target)
            .with_output(&mut output);
        if let Some(bufs) = input_bufs.as_mut() {
            builder = builder.with_input(bufs);
        }
        let result = ctx.initialize_security_context_impl(&mut builder).and_then(|mut g| g.resolve_to_result());
        let result = result.map_err(|e| sspi_err("NTLM initiator", e))?;
        let token = output.pop().map(|b| b.buffer).unwrap_or_default();
        Ok((result.status, token))
    }
}

impl Authenticator for NtlmAuth {
    fn scheme(&self) -> &'static str {
        "ntlm"
    }

    fn requires_tls(&self) -> bool {
        false
    }

    fn start(&mut self) -> Result<Step, WinrmError> {
        quiet(|| self.start_inner())
    }

    fn next(&mut self, www_authenticate: &[String]) -> Result<Step, WinrmError> {
        quiet(|| self.next_inner(www_authenticate))
    }

    fn request_header(&self) -> Option<String> {
        None
    }

    fn sealer(&mut self) -> Option<&mut dyn Sealer> {
        self.sealer.as_mut().map(|s| s as &mut dyn Sealer)
    }
}

impl NtlmAuth {
    fn start_inner(&mut self) -> Result<Step, WinrmError> {
        let mut ctx = Ntlm::new();
        let id = identity(&self.creds)?;
        let acq = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&id)
            .execute(&mut ctx)
            .map_err(|e| sspi_err("NTLM credentials", e))?;
        self.ctx = Some(ctx);
        self.handle = Some(acq.credentials_handle);
        self.sealer = None;
        let (_, token) = self.init_step(None)?;
        self.state = State::WaitingChallenge;
        Ok(Step::Send(format!("{SCHEME} {}", B64.encode(token))))
    }

    fn next_inner(&mut self, www_authenticate: &[String]) -> Result<Step, WinrmError> {
        match self.state {
            State::Initial => Err(WinrmError::Auth("NTLM handshake not started".into())),
            State::Established => Ok(Step::Done),
            State::WaitingChallenge => {
                let challenge = challenge_token(www_authenticate, &[SCHEME, "NTLM"])
                    .ok_or_else(|| WinrmError::Auth("the server sent no NTLM challenge (wrong credentials or NTLM disabled)".into()))?;
                let (status, token) = self.init_step(Some(challenge))?;
                if matches!(status, SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue) {
                    let ctx = self.ctx.as_mut().ok_or_else(|| WinrmError::Auth("NTLM context missing".into()))?;
                    ctx.complete_auth_token(&mut []).map_err(|e| sspi_err("NTLM complete", e))?;
                }
                self.state = State::Established;
                let ctx = self.ctx.take().ok_or_else(|| WinrmError::Auth("NTLM context missing".into()))?;
                self.handle = None;
                self.sealer = Some(NtlmSealer::new(ctx));
                Ok(Step::Send(format!("{SCHEME} {}", B64.encode(token))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::winrm::auth::acceptor::{Accepted, NtlmAcceptor, Users};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn token(step: Step) -> Vec<u8> {
        match step {
            Step::Send(h) => B64.decode(h.trim_start_matches("Negotiate ")).unwrap(),
            Step::Done => panic!("no token"),
        }
    }

    #[test]
    fn handshake_and_sealing_log_no_plaintext_tokens_or_passwords_even_at_trace() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            let users = Users::new().with("LAB\\alice", "pw-Secret1").unwrap();
            let mut auth = NtlmAuth::new(Credentials::new("LAB\\alice", "pw-Secret1").unwrap(), "h");
            let negotiate = token(auth.start().unwrap());
            let (next, Accepted::Challenge(challenge)) = NtlmAcceptor::new().step(&negotiate, &users).unwrap() else { panic!() };
            let authenticate = token(auth.next(&[format!("Negotiate {}", B64.encode(challenge))]).unwrap());
            let (_, Accepted::Done { mut sealer, .. }) = next.unwrap().step(&authenticate, &users).unwrap() else { panic!() };
            tracing::trace!("capture-check");
            let (h, d) = auth.sealer().unwrap().seal(b"PLAINTEXT-PAYLOAD").unwrap();
            assert_eq!(sealer.unseal(&h, &d).unwrap(), b"PLAINTEXT-PAYLOAD");
        });
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("capture-check"), "the subscriber must capture: {log}");
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
        assert!(!log.contains(&hex(b"PLAINTEXT-PAYLOAD")), "plaintext in the log");
        assert!(!log.contains(&hex(b"NTLMSSP\0")), "NTLM token in the log");
        assert!(!log.contains("pw-Secret1"));
    }
}
