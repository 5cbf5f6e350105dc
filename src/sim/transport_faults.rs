//! Transport faults of `lyncdr sim serve`: the schedule of a scenario's `transportFaults`
//! section (or of `POST /v1/transport-faults`) applied to the calls that reach the simulator,
//! the same on both endpoints. [`TransportFaults`] decides, per call, whether a rule fires
//! (target, cmdlet, state-changing or not, simulated-time window, n-th matching call, count,
//! probability drawn from a seeded generator of its own, so a schedule replays identically) and
//! logs every fault it applies. The HTTP API applies the decision in its `/v1/invoke` handler
//! ([`super::server`]); the WS-Man endpoint through [`TransportHook`], a
//! [`FaultHook`] that reads which driver script a Send carries. A refused connection is the
//! exception on both: the endpoint stands in for every server of the deployment, so refusing
//! the connection to one server is answered as that server being unreachable (nothing ran), in
//! [`super::server::SimServer::invoke_via`].

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::server::SimServer;
use crate::backend::http::real_time;
use crate::driver::script::{Parsed, parse_script};
use crate::model::{RunOn, Stamp};
use crate::scenario::transport::{TransportFaultKind, TransportRule, TransportSchedule};
use crate::winrm::powershell::SCRIPT_END;
use crate::winrm::server::{FaultAction, FaultHook, RequestInfo};
use crate::winrm::soap::Action;

/// Which endpoint a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Transport {
    Http,
    Winrm,
    /// A caller in the same process ([`SimServer::invoke`]).
    Direct,
}

/// A call as the endpoint sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub run_on: &'a RunOn,
    pub cmdlet: &'a str,
    /// It carries a request (a state-changing call).
    pub mutating: bool,
    pub transport: Transport,
}

/// A fault applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fired {
    pub at: Stamp,
    /// Index of the rule in the schedule.
    pub rule: usize,
    pub kind: TransportFaultKind,
    pub transport: Transport,
    pub run_on: String,
    pub cmdlet: String,
    pub mutating: bool,
}

/// A rule and what it did so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    #[serde(flatten)]
    pub rule: TransportRule,
    /// Matching calls seen (in its window).
    pub matched: u32,
    /// Times it fired.
    pub fired: u32,
}

/// What `GET /v1/transport-faults` answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub seed: u64,
    pub rules: Vec<RuleState>,
    pub fired: Vec<Fired>,
}

/// The schedule in force and its log.
#[derive(Debug, Default)]
pub struct TransportFaults {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    listing: Listing,
    rng: SplitMix64,
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, seedable, and the same on every platform.
/// Also the simulated week's generator (tests/week.rs), so a seed means the same week everywhere.
#[derive(Debug, Default, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

impl TransportFaults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the schedule (and forgets what the previous one did).
    pub fn set(&self, schedule: TransportSchedule) {
        let mut s = self.lock();
        s.rng = SplitMix64(schedule.seed);
        s.listing = Listing {
            seed: schedule.seed,
            rules: schedule.rules.into_iter().map(|rule| RuleState { rule, matched: 0, fired: 0 }).collect(),
            fired: Vec::new(),
        };
    }

    /// The rules, their counters, and every fault applied.
    pub fn listing(&self) -> Listing {
        self.lock().listing.clone()
    }

    /// The fault to apply to a call, if a rule among those `kinds` accepts fires; the first
    /// rule that fires wins. Every matching rule counts the call.
    pub fn decide(&self, now: Stamp, call: &Call<'_>, kinds: impl Fn(&TransportFaultKind) -> bool) -> Option<TransportFaultKind> {
        let mut guard = self.lock();
        let State { listing, rng } = &mut *guard;
        let mut chosen = None;
        for (i, r) in listing.rules.iter_mut().enumerate() {
            if !kinds(&r.rule.kind) || !r.rule.matches(call.run_on, call.cmdlet, call.mutating) {
                continue;
            }
            let in_window = r.rule.from.is_none_or(|f| now.0 >= f.0) && r.rule.until.is_none_or(|u| now.0 < u.0);
            if !in_window {
                continue;
            }
            r.matched += 1;
            if chosen.is_some() || r.matched < r.rule.nth || r.rule.count.is_some_and(|c| r.fired >= c) {
                continue;
            }
            // A draw only for rules with a probability, so adding one does not shift the others.
            if let Some(p) = r.rule.probability
                && rng.unit() >= p
            {
                continue;
            }
            r.fired += 1;
            chosen = Some((i, r.rule.kind.clone()));
        }
        let (rule, kind) = chosen?;
        listing.fired.push(Fired {
            at: now,
            rule,
            kind: kind.clone(),
            transport: call.transport,
            run_on: call.run_on.to_string(),
            cmdlet: call.cmdlet.to_string(),
            mutating: call.mutating,
        });
        tracing::info!(rule, kind = kind.name(), cmdlet = call.cmdlet, run_on = %call.run_on, "transport fault injected");
        Some(kind)
    }
}

/// The cmdlet name of a driver command line (`$lyncdrOut = Invoke-CsPoolFailOver -PoolFqdn …`).
pub fn cmdlet_of(command: &str) -> String {
    crate::ps::parse_line(command, &crate::ps::binder::is_switch).ok().flatten().map(|inv| inv.cmdlet).unwrap_or_default()
}

/// The WS-Man endpoint's side: a Send that carries a driver script of a state-changing or
/// read-only call meets the schedule (every kind but `refuse`, which [`SimServer::invoke_via`]
/// answers), and the fault becomes the transport action on that Send.
pub struct TransportHook {
    pub server: Arc<SimServer>,
}

impl TransportHook {
    fn action(&self, kind: TransportFaultKind) -> FaultAction {
        let speed = self.server.clock.speed();
        match kind {
            TransportFaultKind::Refuse => FaultAction::Proceed,
            TransportFaultKind::TimeoutBeforeSend { delay } => FaultAction::StallThenDrop(real_time(delay, speed)),
            TransportFaultKind::DropAfterSend => FaultAction::DropBeforeProcessing,
            TransportFaultKind::LoseReply => FaultAction::LoseReply,
            TransportFaultKind::Unauthorized => FaultAction::Unauthorized,
            TransportFaultKind::Status { status } => FaultAction::Status(status),
            TransportFaultKind::Slow { delay } => FaultAction::Delay(real_time(delay, speed)),
            TransportFaultKind::Truncate { bytes } => FaultAction::Truncate(bytes),
        }
    }
}

impl FaultHook for TransportHook {
    fn on_request(&self, info: &RequestInfo) -> FaultAction {
        if info.action != Some(Action::Send) || info.input.is_empty() {
            return FaultAction::Proceed;
        }
        let text = String::from_utf8_lossy(&info.input);
        // The script before its end marker (a warm session's framing), or all of it.
        let script = match text.find(&format!("\n{SCRIPT_END}")) {
            Some(n) => &text[..n],
            None => &text[..],
        };
        let (run_on, cmdlet, mutating) = match parse_script(script) {
            Some(Parsed::Invoke { run_on, request, command }) => (run_on, cmdlet_of(&command), request.is_some()),
            Some(Parsed::Batch { run_on, commands }) => (run_on, commands.first().map(|c| cmdlet_of(c)).unwrap_or_default(), false),
            Some(Parsed::Clock) | None => return FaultAction::Proceed,
        };
        let call = Call { run_on: &run_on, cmdlet: &cmdlet, mutating, transport: Transport::Winrm };
        match self.server.transport.decide(self.server.clock.now(), &call, |k| *k != TransportFaultKind::Refuse) {
            Some(kind) => self.action(kind),
            None => FaultAction::Proceed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fqdn, Span};
    use crate::scenario::transport::TransportFaultsFile;

    fn schedule(yaml: &str) -> TransportSchedule {
        let file: TransportFaultsFile = serde_saphyr::from_str(yaml).unwrap();
        let topology = crate::scenario::Scenario::from_yaml(crate::scenario::DEMO_SCENARIO).unwrap().topology;
        file.validate(&topology).unwrap()
    }

    fn fire(t: &TransportFaults, at: u64, run_on: &RunOn, cmdlet: &str, mutating: bool) -> Option<&'static str> {
        t.decide(Stamp(at), &Call { run_on, cmdlet, mutating, transport: Transport::Http }, |_| true).map(|k| k.name())
    }

    #[test]
    fn nth_count_window_target_and_cmdlet_select_the_calls() {
        let t = TransportFaults::default();
        t.set(schedule(
            "seed: 1\nrules:\n- {kind: refuse, target: pool01.sea.contoso.com, cmdlet: Invoke-CsPoolFailOver, nth: 2, count: 2}\n- {kind: status, status: 503, mutatingOnly: true, from: 1h, until: 2h}\n",
        ));
        let sea = RunOn::Pool(Fqdn::parse("pool01.sea.contoso.com").unwrap());
        let sea_fe = RunOn::Server(Fqdn::parse("pool01-fe01.sea.contoso.com").unwrap());
        let dal = RunOn::Pool(Fqdn::parse("pool01.dal.contoso.com").unwrap());
        assert_eq!(fire(&t, 0, &sea, "Invoke-CsPoolFailOver", true), None, "the first matching call passes");
        assert_eq!(fire(&t, 0, &dal, "Invoke-CsPoolFailOver", true), None, "another target");
        assert_eq!(fire(&t, 0, &sea, "Get-CsPool", false), None, "another cmdlet");
        assert_eq!(fire(&t, 0, &sea_fe, "invoke-cspoolfailover", true), Some("refuse"), "a server of the pool, second call");
        assert_eq!(fire(&t, 0, &sea, "Invoke-CsPoolFailOver", true), Some("refuse"));
        assert_eq!(fire(&t, 0, &sea, "Invoke-CsPoolFailOver", true), None, "count reached");
        let hour = Span::hours(1).0;
        assert_eq!(fire(&t, hour - 1, &dal, "Set-CsX", true), None, "before the window");
        assert_eq!(fire(&t, hour, &dal, "Get-CsPool", false), None, "read-only");
        assert_eq!(fire(&t, hour, &dal, "Set-CsX", true), Some("status"));
        assert_eq!(fire(&t, 2 * hour, &dal, "Set-CsX", true), None, "after the window");
        let l = t.listing();
        assert_eq!(l.fired.len(), 3);
        assert_eq!((l.rules[0].matched, l.rules[0].fired, l.rules[1].fired), (4, 2, 1));
    }

    #[test]
    fn probabilities_replay_with_the_seed() {
        let draws = |seed: u64| {
            let t = TransportFaults::default();
            t.set(schedule(&format!("seed: {seed}\nrules:\n- {{kind: loseReply, probability: 0.5}}\n")));
            (0..64).map(|_| fire(&t, 0, &RunOn::Any, "Get-CsPool", false).is_some()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let n = draws(7).iter().filter(|f| **f).count();
        assert!((16..=48).contains(&n), "about half fire: {n}");
    }

    #[test]
    fn rules_name_the_field_of_a_mistake() {
        let topology = crate::scenario::Scenario::from_yaml(crate::scenario::DEMO_SCENARIO).unwrap().topology;
        let err = |yaml: &str| {
            let file: TransportFaultsFile = serde_saphyr::from_str(yaml).unwrap();
            file.validate(&topology).unwrap_err().0
        };
        assert_eq!(err("rules:\n- {kind: boom}\n"), "rules[0].kind");
        assert_eq!(err("rules:\n- {kind: refuse}\n- {kind: status, status: 404}\n"), "rules[1].status");
        assert_eq!(err("rules:\n- {kind: status}\n"), "rules[0].status");
        assert_eq!(err("rules:\n- {kind: slow}\n"), "rules[0].delay");
        assert_eq!(err("rules:\n- {kind: refuse, bytes: 3}\n"), "rules[0].bytes");
        assert_eq!(err("rules:\n- {kind: refuse, target: pool09.nowhere.com}\n"), "rules[0].target");
        assert_eq!(err("rules:\n- {kind: refuse, from: 2h, until: 1h}\n"), "rules[0].until");
        assert_eq!(err("rules:\n- {kind: refuse, nth: 0}\n"), "rules[0].nth");
        assert_eq!(err("rules:\n- {kind: refuse, probability: 1.5}\n"), "rules[0].probability");
        assert_eq!(err("rules:\n- {kind: refuse, cmdlet: 'a;b'}\n"), "rules[0].cmdlet");
    }
}
