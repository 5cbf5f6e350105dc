//! Authentication for the WinRM HTTP layer: the [`Authenticator`] trait the connection drives
//! (handshake legs, per-request headers, the sealing context), the credential types, NTLM through
//! `sspi` (initiator and acceptor), Basic (HTTPS only), and Kerberos, which is not supported yet.

pub mod acceptor;
pub mod basic;
pub mod credentials;
pub mod ntlm;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

pub use acceptor::{NtlmAcceptor, Users};
pub use basic::BasicAuth;
pub use credentials::{Account, Credentials, Password};
pub use ntlm::NtlmAuth;

use crate::winrm::encryption::Sealer;
use crate::winrm::error::WinrmError;

/// The next move of a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send an empty-body request with this `Authorization` header value.
    Send(String),
    /// The context is established (or the scheme has no handshake).
    Done,
}

/// A client authentication scheme, bound to one HTTP connection.
pub trait Authenticator: Send + Sync {
    /// Short name for logs (`ntlm`, `basic`).
    fn scheme(&self) -> &'static str;
    /// The scheme exposes the password on the wire and must only run over TLS.
    fn requires_tls(&self) -> bool;
    /// Starts a fresh handshake (a new connection): the first leg, or `Done` for none.
    fn start(&mut self) -> Result<Step, WinrmError>;
    /// Continues the handshake with the server's `WWW-Authenticate` values.
    fn next(&mut self, www_authenticate: &[String]) -> Result<Step, WinrmError>;
    /// The `Authorization` value for every request, for schemes without a handshake.
    fn request_header(&self) -> Option<String>;
    /// The established context's sealer, for message encryption.
    fn sealer(&mut self) -> Option<&mut dyn Sealer>;
}

/// Which scheme a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// NTLMv2 with message encryption (the default; works over HTTP 5985).
    Ntlm,
    /// Basic, HTTPS only.
    Basic,
    /// Kerberos: not supported yet.
    Kerberos,
}

impl AuthMethod {
    /// The authenticator for `creds` talking to `host`.
    pub fn authenticator(self, creds: Credentials, host: &str) -> Result<Box<dyn Authenticator>, WinrmError> {
        match self {
            AuthMethod::Ntlm => Ok(Box::new(NtlmAuth::new(creds, host))),
            AuthMethod::Basic => Ok(Box::new(BasicAuth::new(creds))),
            AuthMethod::Kerberos => Err(WinrmError::Unsupported(
                "Kerberos authentication is not supported yet (sspi's Kerberos client cannot delegate and no KDC is available to test it); use NTLM".into(),
            )),
        }
    }
}

/// Runs `f` with tracing switched off on this thread. `sspi` instruments its functions at debug
/// and trace level with their arguments: the plaintext of every sealed message (hex), NTLM tokens
/// (offline-guessable), so every call into it goes through here, whatever the log filter says.
pub(crate) fn quiet<T>(f: impl FnOnce() -> T) -> T {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), f)
}

/// The token of the first `WWW-Authenticate` value whose scheme is one of `schemes`.
pub fn challenge_token(www_authenticate: &[String], schemes: &[&str]) -> Option<Vec<u8>> {
    www_authenticate.iter().find_map(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            return None;
        }
        B64.decode(token.trim()).ok().filter(|t| !t.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_tokens_are_picked_by_scheme() {
        let hdrs = vec!["Basic realm=\"x\"".to_string(), "Negotiate TlRMTQ==".to_string()];
        assert_eq!(challenge_token(&hdrs, &["negotiate"]), Some(b"NTLM".to_vec()));
        assert_eq!(challenge_token(&hdrs, &["NTLM"]), None);
        assert_eq!(challenge_token(&["Negotiate".to_string()], &["Negotiate"]), None);
        assert_eq!(challenge_token(&["Negotiate !!".to_string()], &["Negotiate"]), None);
    }

    #[test]
    fn kerberos_says_not_supported() {
        let c = Credentials::new("u@R", "p").unwrap();
        assert!(matches!(AuthMethod::Kerberos.authenticator(c, "h"), Err(WinrmError::Unsupported(_))));
    }
}
