//! The site-loss recovery measured against its limits: two sites of N pairs, the CMS and both
//! federation routes at the failing site, automatic failover on. One run of the engine against the
//! in-process simulator (the demo's story) gives the RTO; the same run's steps, with their own
//! simulated durations (a cmdlet's time in the simulator; a replication wait's `cmsReplication`),
//! give the lower bound (detection plus the longest chain of the steps every user's service
//! needed) and the sequential runbook (detection plus the same steps one after another, as a
//! person runs them). The gap between RTO and bound is split along the run's critical path into
//! detection beyond the grace period, time between steps (observing and planning before each
//! step) and time inside steps beyond the cmdlet's own (checks and verification).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::api::manifests;
use crate::cli::demo::{CmdletRecord, DemoReport};
use crate::desired::{self, Desired};
use crate::engine::executor::{Event, StepResult};
use crate::model::{Span, Stamp};
use crate::planner::StepKind;
use crate::scenario::{Scenario, Timings};
use crate::sim::TimedFault;

use super::BenchError;

/// When the site is lost and when it returns, in simulated time.
pub const LOSS_AT: Span = Span::mins(5);
pub const RETURN_AT: Span = Span::mins(65);
/// The grace period before an automatic failover (the pairs' and the CMS's).
pub const GRACE: Span = Span::mins(5);

/// Two sites (Dallas, Seattle) of `n` paired Enterprise pools (3 Front Ends, mirrored Back End;
/// 20,000 users per Dallas pool, 15,000 per Seattle pool), one Edge pool of two servers per site;
/// the CMS and SIP and XMPP federation in Dallas. Lync 2013 timings (a pool failover of 20,000
/// users: 15 minutes).
pub fn scenario(n: usize) -> Result<Scenario, BenchError> {
    let pools = |site: &str, users: u32| {
        (1..=n)
            .map(|i| {
                format!(
                    "      - {{fqdn: pool{i:02}.{site}.contoso.com, edition: Enterprise, frontEnds: 3, users: {users}, backEnd: {{primary: sql{i:02}a.{site}.contoso.com, mirror: sql{i:02}b.{site}.contoso.com, witness: false}}}}\n"
                )
            })
            .collect::<String>()
    };
    let pairs: String = (1..=n).map(|i| format!("  - [pool{i:02}.dal.contoso.com, pool{i:02}.sea.contoso.com]\n")).collect();
    let media: String = (1..=n)
        .flat_map(|i| {
            [
                format!("  - {{pool: pool{i:02}.dal.contoso.com, edgePool: edge01.dal.contoso.com}}\n"),
                format!("  - {{pool: pool{i:02}.sea.contoso.com, edgePool: edge01.sea.contoso.com}}\n"),
            ]
        })
        .collect();
    let yaml = format!(
        "name: site-loss-{n}\nproduct: Lync2013\nsites:\n  - name: Dallas\n    frontEndPools:\n{}    edgePools:\n      - {{fqdn: edge01.dal.contoso.com, nextHop: pool01.dal.contoso.com, servers: 2}}\n  - name: Seattle\n    frontEndPools:\n{}    edgePools:\n      - {{fqdn: edge01.sea.contoso.com, nextHop: pool01.sea.contoso.com, servers: 2}}\npairs:\n{pairs}cms: {{activePool: pool01.dal.contoso.com}}\nfederation: {{sipEdgePool: edge01.dal.contoso.com, xmppEdgePool: edge01.dal.contoso.com, xmppDns: [edge01.dal.contoso.com, edge01.sea.contoso.com]}}\nmediaEdge:\n{media}backupService: {{syncInterval: 2m}}\n",
        pools("dal", 20_000),
        pools("sea", 15_000)
    );
    Scenario::from_yaml(&yaml).map_err(|e| BenchError(format!("site-loss scenario with {n} pairs: {e}")))
}

/// Everything at home; a pool confirmed down for [`GRACE`] fails over to its partner (with
/// consent to data loss), the CMS and federation follow, failback 10 minutes after the site is
/// back. Steps run up to `min(n, 16)` at once.
pub fn desired_state(n: usize) -> Result<Desired, BenchError> {
    let media: String = (1..=n)
        .flat_map(|i| {
            [
                format!("      - {{pool: pool{i:02}.dal.contoso.com, edgePool: edge01.dal.contoso.com}}\n"),
                format!("      - {{pool: pool{i:02}.sea.contoso.com, edgePool: edge01.sea.contoso.com}}\n"),
            ]
        })
        .collect();
    let grace = GRACE.0 / 60_000;
    let mut text = format!(
        "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: contoso, namespace: lync}}\nspec:\n  centralManagementStore: {{activePool: pool01.dal.contoso.com, allowDataLoss: true, automaticFailover: true}}\n  edge:\n    sipFederationPool: edge01.dal.contoso.com\n    xmppFederationPool: edge01.dal.contoso.com\n    automaticFailover: true\n    fallbackPools: [edge01.sea.contoso.com]\n    edgePools:\n      - {{fqdn: edge01.dal.contoso.com, nextHop: pool01.dal.contoso.com}}\n      - {{fqdn: edge01.sea.contoso.com, nextHop: pool01.sea.contoso.com}}\n    mediaAssociations:\n{media}  backupService: {{syncInterval: 2m}}\n  policy: {{approval: Automatic, concurrency: {}}}\n",
        n.clamp(1, 16)
    );
    for i in 1..=n {
        text.push_str(&format!(
            "---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: pair{i:02}, namespace: lync}}\nspec:\n  deployment: contoso\n  pools: [pool{i:02}.dal.contoso.com, pool{i:02}.sea.contoso.com]\n  failedOver: []\n  allowDataLoss: true\n  automaticFailover: {{enabled: true, gracePeriod: {grace}m}}\n  automaticFailback: {{enabled: true, stabilityPeriod: 10m}}\n"
        ));
    }
    let m = manifests::parse(&text, "bench desired state").map_err(|e| BenchError(format!("bench desired state: {e}")))?;
    desired::compile(&m)
        .map_err(|e| BenchError(format!("bench desired state: {e}")))?
        .into_iter()
        .next()
        .ok_or_else(|| BenchError("bench desired state has no deployment".into()))
}

/// The story's faults: Dallas lost at [`LOSS_AT`], back at [`RETURN_AT`].
pub fn faults() -> Result<Vec<TimedFault>, BenchError> {
    [format!("{}s:down:site/Dallas", LOSS_AT.0 / 1000), format!("{}s:up:site/Dallas", RETURN_AT.0 / 1000)]
        .iter()
        .map(|f| TimedFault::parse(f).map_err(|e| BenchError(format!("bench fault {f}: {e}"))))
        .collect()
}

/// One step of the run: when it ran, what it ran after, and its own duration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTime {
    pub id: String,
    pub kind: StepKind,
    pub start: Stamp,
    pub end: Stamp,
    pub after: Vec<String>,
    /// The step's own simulated duration: its cmdlet's time in the simulator (a change), the
    /// replication time (a CMS replication wait), or as measured (any other wait).
    pub own: Span,
}

/// Where the time between the lower bound and the RTO went, along the run's critical path.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// From the fault to the first step on the path, beyond the grace period (observing until
    /// the pool is confirmed down, then planning).
    pub detection_s: f64,
    /// Between a step's dependency finishing and the step starting: the observation (and plan
    /// check) the executor makes before each step.
    pub between_steps_s: f64,
    /// Inside steps beyond their own duration: the pre-checks and the verification by
    /// observation after a change; a wait's polling granularity.
    pub in_steps_s: f64,
    /// From the path's last step to every user being served (negative: users were served before
    /// the step's verification finished).
    pub tail_s: f64,
    /// The run's critical path against the longest chain of own durations (non-zero when the
    /// order or the concurrency limit put a shorter chain last).
    pub ordering_s: f64,
}

/// One row of the site-loss table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryRow {
    pub pairs: usize,
    pub steps: usize,
    pub observations: usize,
    /// Fault to every user served, in the simulator.
    pub rto_s: f64,
    /// Detection plus the longest chain of the required steps' own durations.
    pub lower_bound_s: f64,
    pub ratio: f64,
    /// Detection plus the required steps' own durations one after another.
    pub runbook_s: f64,
    pub speed_up: f64,
    pub gap: Gap,
    /// The run's critical path, step ids from the fault on.
    pub critical_path: Vec<String>,
    /// Site back to every pool home again (the failback), in the simulator.
    pub failback_s: Option<f64>,
    pub converged: bool,
    pub data_lost: u64,
}

/// Steps of a run paired with their own durations from the simulator's log.
pub fn step_times(r: &DemoReport, timings: &Timings) -> Vec<StepTime> {
    let mut started: BTreeMap<&str, (Stamp, &str)> = BTreeMap::new();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::new();
    for e in &r.timeline {
        match e {
            Event::StepStarted { id, command, at, .. } => {
                started.insert(id, (*at, command));
            }
            Event::StepFinished { id, at, result, kind, after } => {
                let Some(&(start, command)) = started.get(id.as_str()) else { continue };
                if !matches!(result, StepResult::Succeeded) {
                    continue;
                }
                let measured = at.since(start);
                let own = match kind {
                    StepKind::Change => cmdlet_time(&r.cmdlets, command, start, *at, &mut used),
                    StepKind::Wait if id.starts_with("wait-cms-replication") => timings.cms_replication.min(measured),
                    StepKind::Wait => measured,
                };
                out.push(StepTime { id: id.clone(), kind: *kind, start, end: *at, after: after.clone(), own });
            }
            _ => {}
        }
    }
    out
}

/// The simulated duration of the state-changing cmdlet a step ran: the first unused record of
/// the same cmdlet that started during the step and whose arguments the command names.
fn cmdlet_time(cmdlets: &[CmdletRecord], command: &str, start: Stamp, end: Stamp, used: &mut BTreeSet<usize>) -> Span {
    let name = command.split_whitespace().next().unwrap_or_default();
    let (lo, hi) = (start.0 as f64 / 1000.0, end.0 as f64 / 1000.0);
    let found = cmdlets.iter().enumerate().find(|(i, c)| {
        !used.contains(i)
            && c.cmdlet.eq_ignore_ascii_case(name)
            && c.start >= lo
            && c.start <= hi
            && c.args.values().filter_map(|v| v.as_str()).all(|v| command.contains(v))
    });
    match found {
        Some((i, c)) => {
            used.insert(i);
            Span::from_secs_f64((c.end.unwrap_or(hi) - c.start).max(0.0))
        }
        None => Span(0),
    }
}

/// The steps every user's service needed: the pool failovers that started after the fault and
/// by the time every user was served, and every step they ran after, transitively.
fn required(steps: &[StepTime], fault: Stamp, served: Stamp) -> Vec<&StepTime> {
    let by_id: BTreeMap<&str, &StepTime> =
        steps.iter().filter(|s| s.start >= fault && s.start <= served).map(|s| (s.id.as_str(), s)).collect();
    let mut need: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = by_id.keys().copied().filter(|id| id.starts_with("pool-failover/")).collect();
    while let Some(id) = todo.pop() {
        if need.insert(id)
            && let Some(s) = by_id.get(id)
        {
            todo.extend(s.after.iter().map(String::as_str).filter(|a| by_id.contains_key(a)));
        }
    }
    need.iter().filter_map(|id| by_id.get(id).copied()).collect()
}

/// The sequential runbook's time for the required steps: every change one after another; a
/// person waits once for what several steps wait for (the same kind of wait after the same
/// steps, e.g. replication after the CMS move).
fn runbook(steps: &[&StepTime]) -> Span {
    let mut waits: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    let mut total = 0;
    for s in steps {
        if s.kind == StepKind::Wait {
            let kind = s.id.split('/').next().unwrap_or_default().to_string();
            let mut after = s.after.clone();
            after.sort();
            if !waits.insert((kind, after)) {
                continue;
            }
        }
        total += s.own.0;
    }
    Span(total)
}

/// The longest chain of own durations through the plan's dependency edges.
fn longest_chain(steps: &[&StepTime]) -> Span {
    let mut order: Vec<&StepTime> = steps.to_vec();
    order.sort_by_key(|s| (s.start, s.end));
    let mut best: BTreeMap<&str, Span> = BTreeMap::new();
    let mut longest = Span(0);
    for s in order {
        let before = s.after.iter().filter_map(|a| best.get(a.as_str())).max().copied().unwrap_or(Span(0));
        let total = Span(before.0 + s.own.0);
        longest = longest.max(total);
        best.insert(&s.id, total);
    }
    longest
}

/// The run's critical path: walked back from the required step that finished last, each time
/// through the dependency that finished last.
fn critical_path<'a>(steps: &[&'a StepTime]) -> Vec<&'a StepTime> {
    let Some(mut cur) = steps.iter().copied().max_by_key(|s| (s.end, s.start)) else { return vec![] };
    let mut path = vec![cur];
    while let Some(dep) = steps.iter().copied().filter(|d| cur.after.contains(&d.id) && d.end <= cur.start).max_by_key(|d| d.end) {
        path.push(dep);
        cur = dep;
    }
    path.reverse();
    path
}

fn secs(s: Span) -> f64 {
    s.0 as f64 / 1000.0
}

/// Measures one run of the site-loss story.
pub fn measure(pairs: usize, r: &DemoReport, timings: &Timings) -> Result<RecoveryRow, BenchError> {
    let fault = Stamp(LOSS_AT.0);
    let back = Stamp(RETURN_AT.0);
    let rto = r.rto_seconds.ok_or_else(|| BenchError(format!("{pairs} pairs: some users were never served again ({})", r.outcome)))?;
    let served = fault.plus(Span::from_secs_f64(rto));
    let steps = step_times(r, timings);
    let req = required(&steps, fault, served);
    if req.is_empty() {
        return Err(BenchError(format!("{pairs} pairs: no step ran between the fault and every user being served")));
    }
    let chain = longest_chain(&req);
    let lower = secs(GRACE) + secs(chain);
    let runbook = secs(GRACE) + secs(runbook(&req));
    let path = critical_path(&req);
    let mut gap = Gap::default();
    if let (Some(first), Some(last)) = (path.first(), path.last()) {
        gap.detection_s = secs(first.start.since(fault)) - secs(GRACE);
        gap.between_steps_s = path.windows(2).map(|w| secs(w[1].start.since(w[0].end))).sum();
        gap.in_steps_s = path.iter().map(|s| secs(s.end.since(s.start)) - secs(s.own)).sum();
        gap.tail_s = (served.0 as f64 - last.end.0 as f64) / 1000.0;
        gap.ordering_s = path.iter().map(|s| secs(s.own)).sum::<f64>() - secs(chain);
    }
    // The failback: from the site's return to the last pool failback finishing.
    let failback = steps
        .iter()
        .filter(|s| s.start >= back && s.id.starts_with("pool-failback/"))
        .map(|s| s.end)
        .max()
        .map(|end| secs(end.since(back)));
    Ok(RecoveryRow {
        pairs,
        steps: req.len(),
        observations: r.observations,
        rto_s: rto,
        lower_bound_s: lower,
        ratio: rto / lower,
        runbook_s: runbook,
        speed_up: runbook / rto,
        gap,
        critical_path: path.iter().map(|s| s.id.clone()).collect(),
        failback_s: failback,
        converged: r.converged,
        data_lost: r.lost_changes + r.lost_cms_changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, start: u64, end: u64, own: u64, after: &[&str]) -> StepTime {
        StepTime {
            id: id.into(),
            kind: StepKind::Change,
            start: Stamp(start * 1000),
            end: Stamp(end * 1000),
            after: after.iter().map(|a| a.to_string()).collect(),
            own: Span::secs(own),
        }
    }

    #[test]
    fn the_bound_follows_the_longest_chain_of_own_durations_not_the_run() {
        // a (30 s) then b (300 s) then c (100 s); d (500 s) alone, started late.
        let steps = [
            step("a", 310, 345, 30, &[]),
            step("b", 350, 660, 300, &["a"]),
            step("c", 665, 770, 100, &["b"]),
            step("d", 400, 905, 500, &[]),
        ];
        let req: Vec<&StepTime> = steps.iter().collect();
        assert_eq!(longest_chain(&req), Span::secs(500));
        let path: Vec<&str> = critical_path(&req).iter().map(|s| s.id.as_str()).collect();
        assert_eq!(path, ["d"]);
        let steps = [step("a", 310, 345, 30, &[]), step("b", 350, 660, 300, &["a"]), step("c", 665, 770, 100, &["b"])];
        let req: Vec<&StepTime> = steps.iter().collect();
        assert_eq!(longest_chain(&req), Span::secs(430));
        let path: Vec<&str> = critical_path(&req).iter().map(|s| s.id.as_str()).collect();
        assert_eq!(path, ["a", "b", "c"]);
    }

    #[test]
    fn generated_story_loads_for_every_size() {
        for n in [1, 4, 16] {
            let s = scenario(n).unwrap();
            let d = desired_state(n).unwrap();
            d.check_against(&s.topology).unwrap();
            assert_eq!(d.pairs.len(), n);
        }
    }
}
