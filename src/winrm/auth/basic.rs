//! HTTP Basic authentication for WinRM: the account and password in every request, so only ever
//! over HTTPS (local accounts only on Windows; disabled there by default).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::credentials::Credentials;
use super::{Authenticator, Step};
use crate::winrm::encryption::Sealer;
use crate::winrm::error::WinrmError;

/// Basic authentication (requires TLS).
pub struct BasicAuth {
    creds: Credentials,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth").field("account", &self.creds.account).finish_non_exhaustive()
    }
}

impl BasicAuth {
    pub fn new(creds: Credentials) -> Self {
        BasicAuth { creds }
    }
}

impl Authenticator for BasicAuth {
    fn scheme(&self) -> &'static str {
        "basic"
    }

    fn requires_tls(&self) -> bool {
        true
    }

    fn start(&mut self) -> Result<Step, WinrmError> {
        Ok(Step::Done)
    }

    fn next(&mut self, _www_authenticate: &[String]) -> Result<Step, WinrmError> {
        Ok(Step::Done)
    }

    fn request_header(&self) -> Option<String> {
        let pair = format!("{}:{}", self.creds.account, self.creds.password.expose());
        Some(format!("Basic {}", B64.encode(pair)))
    }

    fn sealer(&mut self) -> Option<&mut dyn Sealer> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_rfc7617_and_debug_is_redacted() {
        let b = BasicAuth::new(Credentials::new("u", "p:w").unwrap());
        assert_eq!(b.request_header().unwrap(), format!("Basic {}", B64.encode("u:p:w")));
        assert!(b.requires_tls());
        assert!(!format!("{b:?}").contains("p:w"));
    }
}
