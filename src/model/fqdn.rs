//! Fully qualified domain names as Lync uses them for pools, servers and Edge pools.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated, lower-cased DNS name such as `pool01.dal.contoso.com`.
///
/// Lync compares FQDNs case-insensitively; storing them lower-cased makes equality, ordering and
/// hashing agree with Lync.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fqdn(String);

/// Why a string is not a usable FQDN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FqdnError {
    #[error("'{0}' is not a fully qualified domain name: it needs at least two dot-separated labels, e.g. pool01.contoso.com")]
    TooFewLabels(String),
    #[error("'{0}' is not a valid FQDN: labels use letters, digits and '-', 1 to 63 characters, not starting or ending with '-'")]
    BadLabel(String),
    #[error("'{0}' is longer than the 253 characters DNS allows")]
    TooLong(String),
}

/// Regular expression equivalent of [`Fqdn::parse`], used in CRD schemas and CEL rules.
pub const FQDN_PATTERN: &str = r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$";

impl Fqdn {
    /// Parses and normalises an FQDN. A trailing dot is accepted and dropped.
    pub fn parse(s: &str) -> Result<Self, FqdnError> {
        let trimmed = s.trim().trim_end_matches('.');
        if trimmed.len() > 253 {
            return Err(FqdnError::TooLong(super::text::shown(s)));
        }
        let labels: Vec<&str> = trimmed.split('.').collect();
        if labels.len() < 2 {
            return Err(FqdnError::TooFewLabels(super::text::shown(s)));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(FqdnError::BadLabel(super::text::shown(s)));
            }
        }
        Ok(Fqdn(trimmed.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first label, e.g. `pool01` for `pool01.dal.contoso.com`.
    pub fn host(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// Everything after the first label, e.g. `dal.contoso.com`.
    pub fn parent(&self) -> &str {
        self.0.split_once('.').map(|(_, rest)| rest).unwrap_or("")
    }

    /// Builds the FQDN of a member server: `<host>-<suffix>.<parent>`.
    pub fn member(&self, suffix: &str) -> Fqdn {
        Fqdn(format!("{}-{}.{}", self.host(), suffix, self.parent()))
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for Fqdn {
    type Err = FqdnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fqdn::parse(s)
    }
}

impl AsRef<str> for Fqdn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Fqdn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Fqdn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Fqdn::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Fqdn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fqdn".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "maxLength": 253,
            "pattern": FQDN_PATTERN,
        })
    }
    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trailing_dot() {
        let f = Fqdn::parse("Pool01.DAL.contoso.com.").unwrap();
        assert_eq!(f.as_str(), "pool01.dal.contoso.com");
        assert_eq!(f.host(), "pool01");
        assert_eq!(f.parent(), "dal.contoso.com");
        assert_eq!(f.member("fe01").as_str(), "pool01-fe01.dal.contoso.com");
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(Fqdn::parse("pool01"), Err(FqdnError::TooFewLabels(_))));
        assert!(matches!(Fqdn::parse("pool_01.contoso.com"), Err(FqdnError::BadLabel(_))));
        assert!(matches!(Fqdn::parse("-pool.contoso.com"), Err(FqdnError::BadLabel(_))));
        assert!(matches!(Fqdn::parse("pool..contoso.com"), Err(FqdnError::BadLabel(_))));
        assert!(matches!(Fqdn::parse(&format!("{}.com", "a".repeat(64))), Err(FqdnError::BadLabel(_))));
    }
}
