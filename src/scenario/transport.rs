//! The `transportFaults` section of a scenario (and the body of `POST /v1/transport-faults`):
//! a seeded schedule of transport faults the simulator's endpoints inject on the way to the
//! simulated servers, as written and validated. Each rule has a kind (a refused connection, a
//! connection dropped before or after the request was taken, a lost or truncated reply, a 401
//! mid-session, a 5xx, a slow reply), a target (`any`, a pool or a server; optionally one cmdlet
//! or only state-changing calls) and when it fires (a simulated-time window, the n-th matching
//! call, a count, a probability drawn from the seed). Errors name the field as written
//! (`transportFaults.rules[2].status`). Applying the schedule is [`crate::sim::transport_faults`]'s.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{Fqdn, RunOn, Span, Topology};

/// The section as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransportFaultsFile {
    /// Seed of the draws of rules with a `probability` (same seed, same faults).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub rules: Vec<TransportRuleFile>,
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransportRuleFile {
    /// `refuse`, `timeoutBeforeSend`, `dropAfterSend`, `loseReply`, `unauthorized`, `status`,
    /// `slow` or `truncate`.
    pub kind: String,
    /// `any` (the default), or the FQDN of a pool (its servers too) or of a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Only calls of this cmdlet (`Invoke-CsPoolFailOver`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdlet: Option<String>,
    /// Only state-changing calls (those that carry a request).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mutating_only: bool,
    /// Simulated time from which the rule applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Span>,
    /// Simulated time until which the rule applies (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Span>,
    /// Fire from the n-th matching call on (1: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u32>,
    /// Fire at most this many times (default: once with `nth`, else without limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Fire on a matching call with this probability (drawn from the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// `status`: the HTTP status answered (500 to 599).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `slow`: how long the reply is held back; `timeoutBeforeSend`: how long the connection
    /// hangs before it is closed (simulated time, default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Span>,
    /// `truncate`: how many bytes of the reply are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
}

/// What a rule does to a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TransportFaultKind {
    /// The connection to the target is refused: nothing is sent, nothing runs.
    Refuse,
    /// The connection hangs, then closes before the request is taken: nothing runs, but the
    /// client cannot tell (it had written the request).
    TimeoutBeforeSend { delay: Span },
    /// The request is received, not processed, and the connection closed.
    DropAfterSend,
    /// The request is processed (the cmdlet runs), then the connection closes unanswered.
    LoseReply,
    /// HTTP 401 mid-session, before processing: nothing runs.
    Unauthorized,
    /// This HTTP status (5xx), without processing; the client cannot tell whether it ran.
    Status { status: u16 },
    /// The reply is held back this long (simulated time), then sent.
    Slow { delay: Span },
    /// The request is processed; only the first `bytes` bytes of the reply are sent.
    Truncate { bytes: usize },
}

impl TransportFaultKind {
    /// The kind's name as written in a rule.
    pub fn name(&self) -> &'static str {
        match self {
            TransportFaultKind::Refuse => "refuse",
            TransportFaultKind::TimeoutBeforeSend { .. } => "timeoutBeforeSend",
            TransportFaultKind::DropAfterSend => "dropAfterSend",
            TransportFaultKind::LoseReply => "loseReply",
            TransportFaultKind::Unauthorized => "unauthorized",
            TransportFaultKind::Status { .. } => "status",
            TransportFaultKind::Slow { .. } => "slow",
            TransportFaultKind::Truncate { .. } => "truncate",
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportRule {
    pub kind: TransportFaultKind,
    /// As written (`any` or an FQDN).
    pub target: String,
    /// The names a call's `runOn` may carry to match (empty: any call).
    #[serde(skip)]
    pub names: BTreeSet<Fqdn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdlet: Option<String>,
    pub mutating_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Span>,
    pub nth: u32,
    /// `None`: without limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

impl TransportRule {
    /// Whether a call (where it runs, its cmdlet, whether it changes something) is one this
    /// rule is about; the time window and counts are the schedule's.
    pub fn matches(&self, run_on: &RunOn, cmdlet: &str, mutating: bool) -> bool {
        if self.mutating_only && !mutating {
            return false;
        }
        if self.cmdlet.as_deref().is_some_and(|c| !c.eq_ignore_ascii_case(cmdlet)) {
            return false;
        }
        if self.names.is_empty() {
            return true;
        }
        match run_on {
            RunOn::Any => false,
            RunOn::Pool(f) | RunOn::Server(f) => self.names.contains(f),
        }
    }
}

/// A validated schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportSchedule {
    pub seed: u64,
    pub rules: Vec<TransportRule>,
}

/// The kinds a rule may have.
pub const KINDS: &str = "refuse, timeoutBeforeSend, dropAfterSend, loseReply, unauthorized, status, slow, truncate";

impl TransportFaultsFile {
    /// Checks every rule against the topology; an error is `(field, message)`, the field
    /// relative to the section (`rules[1].target`).
    pub fn validate(&self, topology: &Topology) -> Result<TransportSchedule, (String, String)> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            rules.push(rule(r, topology).map_err(|(f, m)| (format!("rules[{i}].{f}"), m))?);
        }
        Ok(TransportSchedule { seed: self.seed, rules })
    }
}

fn rule(r: &TransportRuleFile, topology: &Topology) -> Result<TransportRule, (String, String)> {
    let bad = |f: &str, m: String| (f.to_string(), m);
    let unused = |f: &str, set: bool| if set { Err(bad(f, format!("is not used by a rule of kind {}", r.kind))) } else { Ok(()) };
    let kind = match r.kind.as_str() {
        "refuse" => TransportFaultKind::Refuse,
        "timeoutBeforeSend" => TransportFaultKind::TimeoutBeforeSend { delay: r.delay.unwrap_or(Span::secs(30)) },
        "dropAfterSend" => TransportFaultKind::DropAfterSend,
        "loseReply" => TransportFaultKind::LoseReply,
        "unauthorized" => TransportFaultKind::Unauthorized,
        "status" => match r.status {
            Some(s) if (500..=599).contains(&s) => TransportFaultKind::Status { status: s },
            Some(s) => return Err(bad("status", format!("{s} is not a server error; use 500 to 599 (401 is the kind unauthorized)"))),
            None => return Err(bad("status", "a rule of kind status needs the HTTP status (500 to 599)".into())),
        },
        "slow" => match r.delay {
            Some(d) if d > Span(0) => TransportFaultKind::Slow { delay: d },
            _ => return Err(bad("delay", "a rule of kind slow needs a delay greater than 0 (for example 20s)".into())),
        },
        "truncate" => {
            TransportFaultKind::Truncate { bytes: r.bytes.ok_or_else(|| bad("bytes", "a rule of kind truncate needs bytes".into()))? }
        }
        other => return Err(bad("kind", format!("unknown kind {:?}; use one of {KINDS}", crate::model::text::shown(other)))),
    };
    unused("status", r.status.is_some() && !matches!(kind, TransportFaultKind::Status { .. }))?;
    unused("delay", r.delay.is_some() && !matches!(kind, TransportFaultKind::Slow { .. } | TransportFaultKind::TimeoutBeforeSend { .. }))?;
    unused("bytes", r.bytes.is_some() && !matches!(kind, TransportFaultKind::Truncate { .. }))?;
    let target = r.target.clone().unwrap_or_else(|| "any".into());
    let names =
        if target.eq_ignore_ascii_case("any") { BTreeSet::new() } else { names_of(&target, topology).map_err(|m| bad("target", m))? };
    if let Some(c) = &r.cmdlet
        && (c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'))
    {
        return Err(bad("cmdlet", format!("{:?} is not a cmdlet name", crate::model::text::shown(c))));
    }
    if let (Some(f), Some(u)) = (r.from, r.until)
        && u <= f
    {
        return Err(bad("until", format!("{u} is not after from ({f})")));
    }
    if r.nth == Some(0) {
        return Err(bad("nth", "counts from 1 (the first matching call)".into()));
    }
    if r.count == Some(0) {
        return Err(bad("count", "must be at least 1 (leave it out for no limit)".into()));
    }
    if let Some(p) = r.probability
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(bad("probability", format!("{p} is not in (0, 1]")));
    }
    Ok(TransportRule {
        kind,
        target,
        names,
        cmdlet: r.cmdlet.clone(),
        mutating_only: r.mutating_only,
        from: r.from,
        until: r.until,
        nth: r.nth.unwrap_or(1),
        count: r.count.or(r.nth.map(|_| 1)),
        probability: r.probability,
    })
}

/// The names a target stands for: a pool and its servers, an Edge pool and its servers, or one
/// server of the topology.
fn names_of(target: &str, topology: &Topology) -> Result<BTreeSet<Fqdn>, String> {
    let shown = crate::model::text::shown(target);
    let fqdn = Fqdn::parse(target).map_err(|e| format!("{shown:?} is neither any nor an FQDN: {e}"))?;
    if let Some(p) = topology.pools.get(&fqdn) {
        return Ok(std::iter::once(fqdn.clone()).chain(p.front_ends.iter().cloned()).collect());
    }
    if let Some(e) = topology.edges.get(&fqdn) {
        return Ok(std::iter::once(fqdn.clone()).chain(e.servers.iter().cloned()).collect());
    }
    let server =
        topology.pools.values().any(|p| p.front_ends.contains(&fqdn)) || topology.edges.values().any(|e| e.servers.contains(&fqdn));
    if server {
        return Ok(BTreeSet::from([fqdn]));
    }
    Err(format!("{shown} is not a pool or server of this deployment"))
}
