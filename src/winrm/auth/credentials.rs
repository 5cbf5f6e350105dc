//! Account credentials for WinRM: `DOMAIN\user`, `user@REALM` or a bare `user`, with a password
//! that never appears in `Debug`, `Display` or errors.

use std::fmt;

use crate::winrm::error::WinrmError;

/// How the account was written.
#[derive(Clone, PartialEq, Eq)]
pub enum Account {
    /// `DOMAIN\user` (down-level logon name).
    DownLevel { domain: String, user: String },
    /// `user@REALM` (user principal name).
    Upn { user: String, realm: String },
    /// A bare user name (local account, or the server's default domain).
    Local { user: String },
}

impl Account {
    /// Parses `DOMAIN\user`, `user@REALM` or `user`.
    pub fn parse(account: &str) -> Result<Account, WinrmError> {
        let a = account.trim();
        let bad = |why: &str| WinrmError::Config(format!("invalid account name {a:?}: {why}"));
        if a.is_empty() {
            return Err(bad("empty"));
        }
        if a.chars().any(|c| c.is_control()) {
            return Err(bad("control characters"));
        }
        if let Some((domain, user)) = a.split_once('\\') {
            if domain.is_empty() || user.is_empty() || user.contains('\\') || user.contains('@') {
                return Err(bad("expected DOMAIN\\user"));
            }
            return Ok(Account::DownLevel { domain: domain.into(), user: user.into() });
        }
        if let Some((user, realm)) = a.rsplit_once('@') {
            if user.is_empty() || realm.is_empty() || user.contains('@') {
                return Err(bad("expected user@REALM"));
            }
            return Ok(Account::Upn { user: user.into(), realm: realm.into() });
        }
        Ok(Account::Local { user: a.into() })
    }

    /// The user part.
    pub fn user(&self) -> &str {
        match self {
            Account::DownLevel { user, .. } | Account::Upn { user, .. } | Account::Local { user } => user,
        }
    }

    /// The NetBIOS domain or the realm, if any.
    pub fn domain(&self) -> Option<&str> {
        match self {
            Account::DownLevel { domain, .. } => Some(domain),
            Account::Upn { realm, .. } => Some(realm),
            Account::Local { .. } => None,
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::DownLevel { domain, user } => write!(f, "{domain}\\{user}"),
            Account::Upn { user, realm } => write!(f, "{user}@{realm}"),
            Account::Local { user } => f.write_str(user),
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Account({self})")
    }
}

/// A password: readable only through [`Password::expose`], redacted everywhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(p: impl Into<String>) -> Self {
        Password(p.into())
    }

    /// The secret itself, for the authentication code only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An account and its password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub account: Account,
    pub password: Password,
}

impl Credentials {
    /// Parses the account (`DOMAIN\user`, `user@REALM`, `user`) and keeps the password.
    pub fn new(account: &str, password: impl Into<String>) -> Result<Self, WinrmError> {
        Ok(Credentials { account: Account::parse(account)?, password: Password::new(password) })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("account", &self.account).field("password", &"<redacted>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_forms_parse() {
        assert_eq!(Account::parse("CONTOSO\\svc-lync").unwrap(), Account::DownLevel { domain: "CONTOSO".into(), user: "svc-lync".into() });
        assert_eq!(Account::parse("svc@LAB.TEST").unwrap(), Account::Upn { user: "svc".into(), realm: "LAB.TEST".into() });
        assert_eq!(Account::parse(" admin ").unwrap(), Account::Local { user: "admin".into() });
        assert_eq!(Account::parse("D\\u").unwrap().to_string(), "D\\u");
        for bad in ["", "\\u", "D\\", "@R", "u@", "D\\u\\v", "a@b@c", "u\u{7}v"] {
            assert!(Account::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn password_is_never_printed() {
        let c = Credentials::new("D\\u", "s3cr3t-P@ss").unwrap();
        let dbg = format!("{c:?} {:?} {:#?}", c.password, c);
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("D\\\\u") || dbg.contains("D\\u"));
        assert_eq!(c.password.expose(), "s3cr3t-P@ss");
    }
}
