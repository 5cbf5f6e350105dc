//! SIP addresses: normalising what people write, and the addresses of the users a scenario
//! generates for each pool (shared by the desired state, the scenario and the simulator).

use super::Fqdn;

/// Normalises a SIP address to `sip:user@domain` (lower-case), or `None` if it is not one.
pub fn normalize_sip(s: &str) -> Option<String> {
    let t = s.trim();
    let body = t.strip_prefix("sip:").or_else(|| t.strip_prefix("SIP:")).unwrap_or(t);
    let (user, domain) = body.split_once('@')?;
    // The user part of a SIP URI (RFC 3261): unreserved, escaped and user-unreserved characters.
    let legal = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/%".contains(c);
    if user.is_empty() || !user.chars().all(legal) || Fqdn::parse(domain).is_err() {
        return None;
    }
    Some(format!("sip:{}@{}", user.to_ascii_lowercase(), domain.to_ascii_lowercase()))
}

/// The SIP address of the `index`-th (1-based) generated user of a pool.
pub fn generated_user(pool: &Fqdn, index: u32) -> String {
    format!("sip:u{index:05}.{}@{}", pool.host(), pool.parent())
}

/// Which pool generated a user address, and its index, if it is a generated address.
pub fn parse_generated_user(sip: &str) -> Option<(String, u32)> {
    let body = sip.strip_prefix("sip:")?;
    let (user, domain) = body.split_once('@')?;
    let rest = user.strip_prefix('u')?;
    let (idx, host) = rest.split_once('.')?;
    if idx.len() != 5 {
        return None;
    }
    let index: u32 = idx.parse().ok()?;
    Some((format!("{host}.{domain}"), index))
}
