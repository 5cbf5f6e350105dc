//! Faults the simulator can inject: whole sites, pools, Edge pools, SQL servers or single servers
//! going down and up; network partitions between the operator and a site or between two sites;
//! Backup Service errors; loss of a pool's conference content. Written `ACTION:TARGET`, e.g.
//! `down:site/Dallas`, `up:link/operator:Dallas`, `lose:content/pool01.dal.contoso.com`, and with a
//! time for `demo --fault`: `40m:up:site/Dallas`.
//!
//! The same notation plays the people a procedure asks to act outside Lync:
//! `point:xmpp-dns/<edge pool>` points the external XMPP federation DNS records (the A record
//! and the `_xmpp-server._tcp` SRV record, port 5269) at an Edge pool (JJ688065 steps 4-6), and
//! `update:server/<front end>` re-applies the cumulative update on a Front End server after local
//! setup installed new components (SfB 2019 pairing, JJ204773).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::text::shown;
use crate::model::{Fqdn, Span, Topology};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FaultTarget {
    Site(String),
    Pool(Fqdn),
    Edge(Fqdn),
    Sql(Fqdn),
    Server(Fqdn),
    /// Network link between two ends; an end is a site name or `operator`. Stored sorted.
    Link(String, String),
    /// The Backup Service of a pool reports errors.
    Backup(Fqdn),
    /// A pool's conference content (file store).
    Content(Fqdn),
    /// The external XMPP federation DNS records, pointed at an Edge pool.
    XmppDns(Fqdn),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    Down,
    Up,
    /// Only for `content/<pool>`: the pool's conference content is lost.
    Lose,
    /// Only for `xmpp-dns/<edge pool>`: a person points the XMPP federation DNS records at it.
    Point,
    /// Only for `server/<front end>`: a person re-applies the cumulative update on the server.
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub action: FaultAction,
    pub target: FaultTarget,
}

/// A fault at a simulated time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedFault {
    pub at: Span,
    pub fault: Fault,
}

pub const OPERATOR: &str = "operator";

impl FaultTarget {
    pub fn parse(s: &str) -> Result<FaultTarget, String> {
        if s.chars().any(char::is_control) {
            return Err(format!("'{}' is not a valid fault target: it contains a control character", shown(s)));
        }
        let (kind, name) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a fault target; write kind/name: site/<name>, pool/<fqdn>, edge/<fqdn>, sql/<fqdn>, server/<fqdn>, link/<end>:<end>, backup/<pool>, content/<pool>, xmpp-dns/<edge pool>"))?;
        let f = |n: &str| Fqdn::parse(n).map_err(|e| e.to_string());
        Ok(match kind {
            "site" if !name.is_empty() => FaultTarget::Site(name.to_string()),
            "pool" => FaultTarget::Pool(f(name)?),
            "edge" => FaultTarget::Edge(f(name)?),
            "sql" => FaultTarget::Sql(f(name)?),
            "server" => FaultTarget::Server(f(name)?),
            "backup" => FaultTarget::Backup(f(name)?),
            "content" => FaultTarget::Content(f(name)?),
            "xmpp-dns" => FaultTarget::XmppDns(f(name)?),
            "link" => {
                let (a, b) = name.split_once(':').ok_or_else(|| {
                    format!("'{s}': a link is written link/<end>:<end>, e.g. link/operator:Dallas or link/Dallas:Seattle")
                })?;
                if a.is_empty() || b.is_empty() || a == b {
                    return Err(format!("'{s}': a link needs two different ends"));
                }
                let (x, y) = if a <= b { (a, b) } else { (b, a) };
                FaultTarget::Link(x.to_string(), y.to_string())
            }
            other => {
                return Err(format!(
                    "'{}' is not a fault kind; use site, pool, edge, sql, server, link, backup, content or xmpp-dns",
                    shown(other)
                ));
            }
        })
    }
}

impl fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultTarget::Site(s) => write!(f, "site/{s}"),
            FaultTarget::Pool(p) => write!(f, "pool/{p}"),
            FaultTarget::Edge(p) => write!(f, "edge/{p}"),
            FaultTarget::Sql(p) => write!(f, "sql/{p}"),
            FaultTarget::Server(p) => write!(f, "server/{p}"),
            FaultTarget::Link(a, b) => write!(f, "link/{a}:{b}"),
            FaultTarget::Backup(p) => write!(f, "backup/{p}"),
            FaultTarget::Content(p) => write!(f, "content/{p}"),
            FaultTarget::XmppDns(e) => write!(f, "xmpp-dns/{e}"),
        }
    }
}

impl Fault {
    pub fn parse(s: &str) -> Result<Fault, String> {
        let (action, target) =
            s.split_once(':').ok_or_else(|| format!("'{s}' is not a fault; write ACTION:TARGET, e.g. down:site/Dallas"))?;
        let action = match action {
            "down" => FaultAction::Down,
            "up" => FaultAction::Up,
            "lose" => FaultAction::Lose,
            "point" => FaultAction::Point,
            "update" => FaultAction::Update,
            other => return Err(format!("'{}' is not a fault action; use down, up, lose, point or update", shown(other))),
        };
        let fault = Fault { action, target: FaultTarget::parse(target)? };
        fault.combination().map_err(|m| format!("'{s}': {m}"))?;
        Ok(fault)
    }

    /// Whether the action applies to the target.
    fn combination(&self) -> Result<(), String> {
        let ok = match (&self.action, &self.target) {
            (FaultAction::Lose, t) => matches!(t, FaultTarget::Content(_)),
            (FaultAction::Point, t) => matches!(t, FaultTarget::XmppDns(_)),
            (FaultAction::Update, t) => matches!(t, FaultTarget::Server(_)),
            (FaultAction::Down | FaultAction::Up, t) => !matches!(t, FaultTarget::Content(_) | FaultTarget::XmppDns(_)),
        };
        if ok {
            Ok(())
        } else {
            Err("use lose with content/<pool>, point with xmpp-dns/<edge pool>, update with server/<front end>, and down or up with every other target".into())
        }
    }

    /// Checks that the action applies to the target and that the target exists in the topology.
    pub fn check(&self, topo: &Topology) -> Result<(), String> {
        self.combination().map_err(|m| format!("{self}: {m}"))?;
        if self.action == FaultAction::Update && !matches!(&self.target, FaultTarget::Server(s) if topo.pool_of_server(s).is_some()) {
            return Err(format!("{self}: cumulative updates are re-applied on a Front End server"));
        }
        let site = |s: &str| s == OPERATOR || topo.sites.iter().any(|x| x == s);
        let ok = match &self.target {
            FaultTarget::Site(s) => topo.sites.iter().any(|x| x == s),
            FaultTarget::Pool(p) | FaultTarget::Backup(p) | FaultTarget::Content(p) => topo.pools.contains_key(p),
            FaultTarget::Edge(e) | FaultTarget::XmppDns(e) => topo.edges.contains_key(e),
            FaultTarget::Sql(s) => topo.pools.values().any(|p| p.back_end.primary == *s || p.back_end.mirror.as_ref() == Some(s)),
            FaultTarget::Server(s) => topo.pool_of_server(s).is_some() || topo.edge_of_server(s).is_some(),
            FaultTarget::Link(a, b) => site(a) && site(b),
        };
        if ok { Ok(()) } else { Err(format!("{} does not exist in this deployment", self.target)) }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = match self.action {
            FaultAction::Down => "down",
            FaultAction::Up => "up",
            FaultAction::Lose => "lose",
            FaultAction::Point => "point",
            FaultAction::Update => "update",
        };
        write!(f, "{a}:{}", self.target)
    }
}

impl TimedFault {
    /// Parses `TIME:ACTION:TARGET`, e.g. `40m:up:site/Dallas` or `00:40:00:up:site/Dallas` (a
    /// TimeSpan holds colons: the time ends before the first `:ACTION:`).
    pub fn parse(s: &str) -> Result<TimedFault, String> {
        let action_at = s.match_indices(':').map(|(i, _)| i).find(|&i| {
            let rest = &s[i + 1..];
            ["down:", "up:", "lose:", "point:", "update:"].iter().any(|a| rest.starts_with(a))
        });
        let (at, rest) = match action_at {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => s
                .split_once(':')
                .ok_or_else(|| format!("'{}' is not a timed fault; write TIME:ACTION:TARGET, e.g. 0s:down:site/Dallas", shown(s)))?,
        };
        let at = Span::parse(at).map_err(|e| e.to_string())?;
        Ok(TimedFault { at, fault: Fault::parse(rest)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let t = TimedFault::parse("40m:up:site/Dallas").unwrap();
        assert_eq!(t.at, Span::mins(40));
        assert_eq!(t.fault, Fault { action: FaultAction::Up, target: FaultTarget::Site("Dallas".into()) });
        let f = Fault::parse("down:link/Seattle:operator").unwrap();
        assert_eq!(f.target, FaultTarget::Link("Seattle".into(), "operator".into()));
        assert_eq!(f.to_string(), "down:link/Seattle:operator");
        assert!(Fault::parse("lose:content/pool01.dal.contoso.com").is_ok());
        assert!(Fault::parse("down:content/pool01.dal.contoso.com").is_err());
        assert!(Fault::parse("lose:pool/pool01.dal.contoso.com").is_err());
        assert!(Fault::parse("explode:site/Dallas").is_err());
        assert!(TimedFault::parse("soon:down:site/Dallas").is_err());
        assert!(Fault::parse("down:link/Dallas").is_err());
        let t = TimedFault::parse("00:01:00:point:xmpp-dns/edge01.sea.contoso.com").unwrap();
        assert_eq!((t.at, t.fault.action), (Span::mins(1), FaultAction::Point));
        let t = TimedFault::parse("1.00:02:00:down:link/operator:Dallas").unwrap();
        assert_eq!(t.at, Span::hours(24) + Span::mins(2));
        assert_eq!(t.fault.target, FaultTarget::Link("Dallas".into(), "operator".into()));
        let e = TimedFault::parse("13450750887080.00:00:05:down:site/Dallas").unwrap_err();
        assert!(e.contains("too long a duration"), "{e}");
        assert!(Fault::parse("down:site/Dal\u{1b}[2Jlas").unwrap_err().contains("\\u{1b}"));
        let f = Fault::parse("point:xmpp-dns/edge01.sea.contoso.com").unwrap();
        assert_eq!(f.to_string(), "point:xmpp-dns/edge01.sea.contoso.com");
        assert!(Fault::parse("down:xmpp-dns/edge01.sea.contoso.com").is_err());
        assert!(Fault::parse("point:edge/edge01.sea.contoso.com").is_err());
        assert_eq!(Fault::parse("update:server/pool01-fe01.sea.contoso.com").unwrap().action, FaultAction::Update);
        assert!(Fault::parse("update:pool/pool01.sea.contoso.com").is_err());
    }
}
