//! Assembles a plan: collects steps (ids unique), resolves dependencies (dropping those on
//! steps not in the plan), orders the steps topologically and stably, and computes the hash.
//!
//! Every look-up goes through an index (steps by id, steps by the ids they come after, blockers
//! and notices already given), so assembling a plan takes time in proportion to its steps and
//! dependencies, not to their square.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use indexmap::IndexMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Plan;
use super::step::{Blocker, Expect, Remember, Step, StepKind};
use crate::model::{Fqdn, Span};
use crate::ps::{Input, Invocation};

#[derive(Default)]
pub(crate) struct Builder {
    steps: Vec<Step>,
    /// Where each step is in `steps`, by id.
    position: HashMap<String, usize>,
    /// The steps (positions in `steps`) that name an id in their `after`: the reverse edges of
    /// the DAG, kept as steps are added. The id need not be a step of the plan (yet).
    named_by: HashMap<String, Vec<usize>>,
    blockers: Vec<Blocker>,
    /// `blockers`, for the duplicate check.
    blocked: HashSet<Blocker>,
    notices: Vec<String>,
    /// `notices`, for the duplicate check.
    noticed: HashSet<String>,
    recheck: Option<Span>,
}

/// A step under construction.
pub(crate) struct Draft<'a> {
    b: &'a mut Builder,
    step: Step,
}

impl Builder {
    /// Starts a step. Ids are unique: a second step with the same id is ignored.
    pub fn step(&mut self, id: impl Into<String>, inv: Invocation, run_on: &Fqdn, resource: impl Into<String>) -> Draft<'_> {
        Draft {
            b: self,
            step: Step {
                id: id.into(),
                cmdlet: inv.cmdlet,
                args: inv.args,
                input: inv.input,
                run_on: run_on.clone(),
                after: vec![],
                data_loss: false,
                reason: String::new(),
                resource: resource.into(),
                kind: StepKind::Change,
                rules: vec![],
                expect: Expect::Succeeded,
                remember: vec![],
            },
        }
    }

    pub fn blockers(&self) -> &[Blocker] {
        &self.blockers
    }

    /// The dependencies of a step added so far (none if the plan does not have it).
    pub fn after_of(&self, id: &str) -> Vec<String> {
        self.position.get(id).map(|&i| self.steps[i].after.clone()).unwrap_or_default()
    }

    /// Ids of the steps added so far.
    pub fn ids(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.id.clone()).collect()
    }

    pub fn has(&self, id: &str) -> bool {
        self.position.contains_key(id)
    }

    pub fn block(&mut self, resource: impl Into<String>, reason: impl Into<String>) {
        let b = Blocker { resource: resource.into(), reason: reason.into() };
        if self.blocked.insert(b.clone()) {
            self.blockers.push(b);
        }
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        let t = text.into();
        if self.noticed.insert(t.clone()) {
            self.notices.push(t);
        }
    }

    /// The steps added so far that depend, directly or not, on one of `ids` (positions in
    /// `steps`).
    fn dependents(&self, ids: &[String]) -> HashSet<usize> {
        let mut dependents: HashSet<usize> = HashSet::new();
        let mut frontier: Vec<&str> = ids.iter().map(String::as_str).collect();
        while let Some(x) = frontier.pop() {
            for &i in self.named_by.get(x).into_iter().flatten() {
                if dependents.insert(i) {
                    frontier.push(&self.steps[i].id);
                }
            }
        }
        dependents
    }

    /// The configuration changes among `writers` (positions in `steps`) that are not `ids` and
    /// do not come after them.
    fn independent(&self, writers: &[usize], ids: &[String]) -> Vec<String> {
        let dependents = self.dependents(ids);
        writers
            .iter()
            .filter(|i| !dependents.contains(i) && !ids.contains(&self.steps[**i].id))
            .map(|&i| self.steps[i].id.clone())
            .collect()
    }

    /// The positions of the configuration changes added so far, in the order they were added.
    fn writers(&self) -> Vec<usize> {
        (0..self.steps.len()).filter(|&i| writes_configuration(&self.steps[i])).collect()
    }

    /// The configuration changes added so far that are not `ids` and do not come after them.
    pub fn writers_independent_of(&self, ids: &[String]) -> Vec<String> {
        self.independent(&self.writers(), ids)
    }

    /// Rule 4 across the whole plan: every wait for CMS replication that guards a pool failover
    /// also waits for each configuration change of the plan that does not itself come after it,
    /// so no change can slip in between the replication check and the failover. The waits are
    /// taken in the order they were added, each seeing the dependencies given to those before.
    pub fn config_barriers(&mut self) {
        let writers = self.writers();
        let waits: Vec<usize> = (0..self.steps.len()).filter(|&i| self.steps[i].id.starts_with("wait-cms-replication/failover/")).collect();
        for w in waits {
            let id = self.steps[w].id.clone();
            let writers = self.independent(&writers, std::slice::from_ref(&id));
            let present: HashSet<&String> = self.steps[w].after.iter().collect();
            let new: Vec<String> = writers.into_iter().filter(|x| !present.contains(x)).collect();
            for x in new {
                self.named_by.entry(x.clone()).or_default().push(w);
                self.steps[w].after.push(x);
            }
        }
    }

    /// Takes over the blockers, notices and recheck time of another builder.
    pub fn merge(&mut self, other: Builder) {
        for b in other.blockers {
            self.block(b.resource, b.reason);
        }
        for n in other.notices {
            self.notice(n);
        }
        if let Some(r) = other.recheck {
            self.recheck_after(r);
        }
    }

    /// Asks to be planned again after `d` (a grace or stability period is running).
    pub fn recheck_after(&mut self, d: Span) {
        self.recheck = Some(self.recheck.map_or(d, |r| r.min(d)));
    }

    pub fn finish(self) -> Plan {
        let Builder { steps, position, blockers, notices, recheck, .. } = self;
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|mut s| {
                s.after.retain(|a| position.contains_key(a));
                s.after.sort();
                s.after.dedup();
                s
            })
            .collect();
        let steps = topo_order(steps);
        let hash = hash(&steps);
        Plan { hash, steps, blockers, notices, recheck_after: recheck }
    }
}

impl Draft<'_> {
    /// Adds dependencies. A repeated one is kept until the plan is finished, which sorts each
    /// step's dependencies and drops repeats.
    pub fn after(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.step.after.extend(ids.into_iter().map(Into::into));
        self
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.step.reason = r.into();
        self
    }
    pub fn rules(mut self, rules: &[u8]) -> Self {
        self.step.rules = rules.to_vec();
        self
    }
    pub fn data_loss(mut self, yes: bool) -> Self {
        self.step.data_loss = yes;
        self
    }
    pub fn wait(mut self) -> Self {
        self.step.kind = StepKind::Wait;
        self
    }
    pub fn expect(mut self, e: Expect) -> Self {
        self.step.expect = e;
        self
    }
    pub fn remember(mut self, r: Remember) -> Self {
        self.step.remember.push(r);
        self
    }
    /// Adds the step; returns its id.
    pub fn add(self) -> String {
        let id = self.step.id.clone();
        if !self.b.has(&id) {
            let at = self.b.steps.len();
            for a in &self.step.after {
                self.b.named_by.entry(a.clone()).or_default().push(at);
            }
            self.b.position.insert(id.clone(), at);
            self.b.steps.push(self.step);
        }
        id
    }
}

/// Steps that write to the CMS (so replicas are stale until replication catches up).
fn writes_configuration(s: &Step) -> bool {
    matches!(
        s.cmdlet.as_str(),
        "Set-CsEdgeServer"
            | "Set-CsSite"
            | "Set-CsConferenceServer"
            | "Set-CsMediationServer"
            | "Set-CsBackupServiceConfiguration"
            | "Invoke-CsManagementServerFailover"
            | "Publish-CsTopology"
            | "Enable-CsTopology"
    ) || (s.cmdlet == "Invoke-CsDatabaseFailover" && s.args.get("DatabaseType").and_then(Value::as_str) == Some("CentralMgmt"))
}

/// Kahn's algorithm, always taking the earliest-added ready step (a min-heap of positions):
/// deterministic, and close to the order the planner emitted. Cycles cannot occur (dependencies
/// point to earlier concerns), but if one did, the remaining steps keep their order. A step
/// whose dependency is not in the plan is never ready, like one in a cycle.
fn topo_order(steps: Vec<Step>) -> Vec<Step> {
    let position: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    // Per step, how many of its dependencies are not placed yet; per step, the steps after it.
    let mut unplaced: Vec<usize> = steps.iter().map(|s| s.after.len()).collect();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for a in &s.after {
            if let Some(&j) = position.get(a.as_str()) {
                next[j].push(i);
            }
        }
    }
    drop(position);
    let mut ready: BinaryHeap<Reverse<usize>> = (0..steps.len()).filter(|&i| unplaced[i] == 0).map(Reverse).collect();
    let mut rest: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(rest.len());
    while let Some(Reverse(i)) = ready.pop() {
        out.extend(rest[i].take());
        for &j in &next[i] {
            unplaced[j] -= 1;
            if unplaced[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    out.extend(rest.into_iter().flatten());
    out
}

/// A stable hash of what the plan would execute: ids, calls, places, dependencies and data
/// loss (not the explanatory text).
pub(crate) fn hash(steps: &[Step]) -> String {
    let canon: Vec<Value> = steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "cmdlet": s.cmdlet,
                "args": canonical_args(&s.args),
                "input": s.input,
                "runOn": s.run_on,
                "after": s.after,
                "dataLoss": s.data_loss,
            })
        })
        .collect();
    let bytes = serde_json::to_vec(&canon).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn canonical_args(a: &IndexMap<String, Value>) -> BTreeMap<String, Value> {
    a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Convenience for steps piping literal values.
pub(crate) fn piped(inv: Invocation, values: Vec<String>) -> Invocation {
    inv.piped_from(Input::Values(values.into_iter().map(Value::String).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(b: &mut Builder, id: &str, after: &[&str]) {
        let on = Fqdn::parse("pool01.contoso.com").expect("fqdn");
        b.step(id, Invocation::new("Get-CsPool"), &on, "test").after(after.iter().copied()).add();
    }

    /// The earliest-added ready step goes first; steps caught in a cycle follow in the order
    /// they were added; a dependency on a step not in the plan is dropped; repeats are dropped.
    #[test]
    fn order_takes_the_earliest_ready_step_and_keeps_a_cycle_in_order() {
        let mut b = Builder::default();
        add(&mut b, "a", &["b", "b", "not-in-the-plan"]);
        add(&mut b, "b", &[]);
        add(&mut b, "c", &["d"]);
        add(&mut b, "d", &["c"]);
        add(&mut b, "e", &[]);
        add(&mut b, "a", &[]);
        let p = b.finish();
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "e", "c", "d"]);
        assert_eq!(p.steps[1].after, ["b"]);
    }
}
