//! NTLM acceptor through `sspi` for the WS-Man server: one per TCP connection, checking the
//! client's NTLMv2 proof against a configurable user list, and yielding a sealing context.
//! AUTHENTICATE messages without a MIC are refused: `sspi` only verifies the password through
//! the MIC, so a MIC-less message would otherwise be accepted whatever the password.

use std::fmt;

use sspi::{
    AuthIdentity, BufferType, CredentialUse, DataRepresentation, Ntlm, SecurityBuffer, SecurityStatus, ServerRequestFlags, Sspi, SspiEx,
    SspiImpl, UsernameParts,
};

use super::credentials::{Account, Password};
use super::ntlm::NtlmSealer;
use super::quiet;
use crate::winrm::error::WinrmError;

/// One account the server accepts.
#[derive(Clone)]
pub struct User {
    /// `None`: any domain.
    pub domain: Option<String>,
    pub user: String,
    pub password: Password,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User").field("domain", &self.domain).field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// The accounts the server accepts.
#[derive(Clone, Debug, Default)]
pub struct Users {
    users: Vec<User>,
}

impl Users {
    pub fn new() -> Self {
        Users::default()
    }

    /// Adds `account` (`DOMAIN\user`, `user@REALM` or `user`, the last matching any domain).
    pub fn with(mut self, account: &str, password: &str) -> Result<Self, WinrmError> {
        let account = Account::parse(account)?;
        self.users.push(User {
            domain: account.domain().map(str::to_string),
            user: account.user().to_string(),
            password: Password::new(password),
        });
        Ok(self)
    }

    /// Reads `DOMAIN:USER:PASSWORD` lines (the format of pyspnego's `NTLM_USER_FILE`; an empty
    /// DOMAIN matches any domain); blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, WinrmError> {
        let mut users = Users::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, ':');
            let (Some(domain), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(WinrmError::Config(format!("user list line {}: expected DOMAIN:USER:PASSWORD", n + 1)));
            };
            if user.is_empty() {
                return Err(WinrmError::Config(format!("user list line {}: empty user", n + 1)));
            }
            let domain = (!domain.is_empty()).then(|| domain.to_string());
            users.users.push(User { domain, user: user.to_string(), password: Password::new(password) });
        }
        Ok(users)
    }

    /// The entry for a user name and domain as they came on the wire.
    pub fn find(&self, user: &str, domain: &str) -> Option<&User> {
        let (user, domain) = match user.split_once('@') {
            Some((u, realm)) if domain.is_empty() => (u, realm),
            _ => (user, domain),
        };
        self.users.iter().find(|u| {
            u.user.eq_ignore_ascii_case(user) && u.domain.as_deref().is_none_or(|d| d.eq_ignore_ascii_case(domain) || domain.is_empty())
        })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// What the acceptor answers to one client token.
pub enum Accepted {
    /// Send this CHALLENGE back (HTTP 401 with `WWW-Authenticate`).
    Challenge(Vec<u8>),
    /// The client proved its password: the authenticated account and the sealing context.
    Done { account: String, sealer: Box<NtlmSealer> },
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accepted::Challenge(t) => write!(f, "Challenge({} bytes)", t.len()),
            Accepted::Done { account, .. } => write!(f, "Done({account})"),
        }
    }
}

/// The NTLM acceptor of one connection.
pub struct NtlmAcceptor {
    ctx: Ntlm,
    handle: Option<sspi::AuthIdentityBuffers>,
    challenged: bool,
}

impl fmt::Debug for NtlmAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmAcceptor").field("challenged", &self.challenged).finish_non_exhaustive()
    }
}

impl Default for NtlmAcceptor {
    fn default() -> Self {
        Self::new()
    }
}

fn denied(why: impl fmt::Display) -> WinrmError {
    WinrmError::Auth(why.to_string())
}

/// NTLM message type (1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE), if `msg` is an NTLMSSP message.
pub fn message_type(msg: &[u8]) -> Option<u32> {
    if msg.len() < 12 || &msg[..8] != b"NTLMSSP\0" {
        return None;
    }
    Some(u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]))
}

/// True if an AUTHENTICATE message's NTLMv2 response announces a MIC (MsvAvFlags bit 0x2).
pub fn authenticate_has_mic(msg: &[u8]) -> bool {
    let field = |off: usize| -> Option<(usize, usize)> {
        let len = u16::from_le_bytes(msg.get(off..off + 2)?.try_into().ok()?) as usize;
        let start = u32::from_le_bytes(msg.get(off + 4..off + 8)?.try_into().ok()?) as usize;
        Some((start, len))
    };
    let Some((start, len)) = field(20) else { return false };
    let Some(nt) = start.checked_add(len).and_then(|end| msg.get(start..end)) else { return false };
    // NTProofStr (16) + blob header (28) before the AV pairs.
    let mut pos = 44usize;
    while let Some(pair) = nt.get(pos..pos + 4) {
        let id = u16::from_le_bytes([pair[0], pair[1]]);
        let alen = u16::from_le_bytes([pair[2], pair[3]]) as usize;
        let Some(value) = nt.get(pos + 4..pos + 4 + alen) else { return false };
        match id {
            0 => return false,
            6 if alen == 4 => return u32::from_le_bytes([value[0], value[1], value[2], value[3]]) & 0x2 != 0,
            _ => pos += 4 + alen,
        }
    }
    false
}

impl NtlmAcceptor {
    pub fn new() -> Self {
        NtlmAcceptor { ctx: Ntlm::new(), handle: None, challenged: false }
    }

    fn accept(&mut self, token: &[u8]) -> Result<(SecurityStatus, Vec<u8>), WinrmError> {
        let mut input = vec![SecurityBuffer::new(token.to_vec(), BufferType::Token)];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut handle = self.handle.clone();
        let builder = self
            .ctx
            .accept_security_context()
            .with_credentials_handle(&mut handle)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        let result = self.ctx.accept_security_context_impl(builder).and_then(|mut g| g.resolve_to_result());
        let result = result.map_err(|e| denied(format!("NTLM acceptor: {:?}", e.error_type)))?;
        Ok((result.status, output.pop().map(|b| b.buffer).unwrap_or_default()))
    }

    /// Feeds one client token (NEGOTIATE, then AUTHENTICATE).
    pub fn step(self, token: &[u8], users: &Users) -> Result<(Option<Self>, Accepted), WinrmError> {
        quiet(move || self.step_inner(token, users))
    }

    fn step_inner(mut self, token: &[u8], users: &Users) -> Result<(Option<Self>, Accepted), WinrmError> {
        match (message_type(token), self.challenged) {
            (Some(1), false) => {
                let acq = self
                    .ctx
                    .acquire_credentials_handle()
                    .with_credential_use(CredentialUse::Inbound)
                    .execute(&mut self.ctx)
                    .map_err(|e| denied(format!("NTLM acceptor credentials: {:?}", e.error_type)))?;
                self.handle = acq.credentials_handle;
                let (_, challenge) = self.accept(token)?;
                self.challenged = true;
                Ok((Some(self), Accepted::Challenge(challenge)))
            }
            (Some(3), true) => {
                if !authenticate_has_mic(token) {
                    return Err(denied("NTLM AUTHENTICATE without a MIC is refused"));
                }
                let (status, _) = self.accept(token)?;
                if status != SecurityStatus::CompleteNeeded && status != SecurityStatus::CompleteAndContinue && status != SecurityStatus::Ok
                {
                    return Err(denied(format!("NTLM acceptor: unexpected status {status:?}")));
                }
                let names = self.ctx.query_context_names().map_err(|e| denied(format!("NTLM acceptor: {:?}", e.error_type)))?;
                let (wire_user, wire_domain) = match names.username.parts() {
                    UsernameParts::UserPrincipalName(p) => (p.account_name().to_string(), p.suffix().to_string()),
                    UsernameParts::DownLevelLogonName(p) => {
                        (p.account_name().to_string(), p.netbios_domain().unwrap_or_default().to_string())
                    }
                };
                let account = if wire_domain.is_empty() { wire_user.clone() } else { format!("{wire_domain}\\{wire_user}") };
                let entry = users.find(&wire_user, &wire_domain).ok_or_else(|| denied(format!("unknown user {account}")))?;
                let id = AuthIdentity { username: names.username.clone(), password: entry.password.expose().to_string().into() };
                self.ctx.custom_set_auth_identity(id).map_err(|e| denied(format!("NTLM acceptor: {:?}", e.error_type)))?;
                self.ctx.complete_auth_token(&mut []).map_err(|_| denied(format!("wrong password for {account}")))?;
                Ok((None, Accepted::Done { account, sealer: Box::new(NtlmSealer::new(self.ctx)) }))
            }
            (Some(t), _) => Err(denied(format!("unexpected NTLM message type {t}"))),
            (None, _) => Err(denied("not an NTLM token (SPNEGO/Kerberos is not supported by this server)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_list_lines_parse_and_match() {
        let users = Users::parse("# comment\nLAB:alice:pa:ss\n:bob:x\r\n\n").unwrap();
        assert_eq!(users.find("ALICE", "lab").unwrap().password.expose(), "pa:ss");
        assert!(users.find("alice", "OTHER").is_none());
        assert!(users.find("bob", "ANY").is_some());
        assert!(users.find("bob@lab.test", "").is_some());
        assert!(users.find("carol", "").is_none());
        assert!(Users::parse("nocolons").is_err());
        assert!(Users::parse("D::p").is_err());
        assert!(!format!("{users:?}").contains("pa:ss"));
    }

    #[test]
    fn message_type_and_mic_detection_never_panic() {
        assert_eq!(message_type(b"NTLMSSP\0\x01\0\0\0"), Some(1));
        assert_eq!(message_type(b"NTLMSSP\0"), None);
        assert_eq!(message_type(b"\x60\x82"), None);
        let mut msg = b"NTLMSSP\0\x03\0\0\0".to_vec();
        msg.resize(64, 0);
        // NtChallengeResponse at offset 64, 60 bytes: 44 bytes of proof+blob header then AV pairs.
        let mut nt = vec![0u8; 44];
        nt.extend_from_slice(&[6, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        msg[20..22].copy_from_slice(&(nt.len() as u16).to_le_bytes());
        msg[24..28].copy_from_slice(&64u32.to_le_bytes());
        msg.extend_from_slice(&nt);
        assert!(authenticate_has_mic(&msg));
        let mut no_mic = msg.clone();
        let flags_at = 64 + 44 + 4;
        no_mic[flags_at] = 0;
        assert!(!authenticate_has_mic(&no_mic));
        for cut in 0..msg.len() {
            let _ = authenticate_has_mic(&msg[..cut]);
        }
        let mut huge = msg.clone();
        huge[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!authenticate_has_mic(&huge));
    }
}
