//! Assembles a plan: collects steps (ids unique), resolves dependencies (dropping those on
//! steps not in the plan), orders the steps topologically and stably, and computes the hash.

use std::collections::{BTreeMap, BTreeSet};

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
    blockers: Vec<Blocker>,
    notices: Vec<String>,
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
        self.steps.iter().find(|s| s.id == id).map(|s| s.after.clone()).unwrap_or_default()
    }

    /// Ids of the steps added so far.
    pub fn ids(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.id.clone()).collect()
    }

    pub fn has(&self, id: &str) -> bool {
        self.steps.iter().any(|s| s.id == id)
    }

    pub fn block(&mut self, resource: impl Into<String>, reason: impl Into<String>) {
        let b = Blocker { resource: resource.into(), reason: reason.into() };
        if !self.blockers.contains(&b) {
            self.blockers.push(b);
        }
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        let t = text.into();
        if !self.notices.contains(&t) {
            self.notices.push(t);
        }
    }

    /// The steps added so far that depend, directly or not, on one of `ids`.
    fn dependents(&self, ids: &[String]) -> BTreeSet<String> {
        let mut dependents: BTreeSet<String> = BTreeSet::new();
        let mut frontier: Vec<String> = ids.to_vec();
        while let Some(x) = frontier.pop() {
            for s in &self.steps {
                if s.after.contains(&x) && dependents.insert(s.id.clone()) {
                    frontier.push(s.id.clone());
                }
            }
        }
        dependents
    }

    /// The configuration changes added so far that are not `ids` and do not come after them.
    pub fn writers_independent_of(&self, ids: &[String]) -> Vec<String> {
        let dependents = self.dependents(ids);
        self.steps
            .iter()
            .filter(|s| !ids.contains(&s.id) && !dependents.contains(&s.id) && writes_configuration(s))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Rule 4 across the whole plan: every wait for CMS replication that guards a pool failover
    /// also waits for each configuration change of the plan that does not itself come after it,
    /// so no change can slip in between the replication check and the failover.
    pub fn config_barriers(&mut self) {
        let waits: Vec<String> =
            self.steps.iter().filter(|s| s.id.starts_with("wait-cms-replication/failover/")).map(|s| s.id.clone()).collect();
        for w in waits {
            let writers = self.writers_independent_of(std::slice::from_ref(&w));
            if let Some(step) = self.steps.iter_mut().find(|s| s.id == w) {
                for id in writers {
                    if !step.after.contains(&id) {
                        step.after.push(id);
                    }
                }
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
        let ids: BTreeSet<String> = self.steps.iter().map(|s| s.id.clone()).collect();
        let mut steps: Vec<Step> = self
            .steps
            .into_iter()
            .map(|mut s| {
                s.after.retain(|a| ids.contains(a));
                s.after.sort();
                s.after.dedup();
                s
            })
            .collect();
        steps = topo_order(steps);
        let hash = hash(&steps);
        Plan { hash, steps, blockers: self.blockers, notices: self.notices, recheck_after: self.recheck }
    }
}

impl Draft<'_> {
    pub fn after(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        for id in ids {
            let id = id.into();
            if !self.step.after.contains(&id) {
                self.step.after.push(id);
            }
        }
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

/// Kahn's algorithm, always taking the earliest-added ready step: deterministic, and close to
/// the order the planner emitted. Cycles cannot occur (dependencies point to earlier
/// concerns), but if one did, the remaining steps keep their order.
fn topo_order(steps: Vec<Step>) -> Vec<Step> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(steps.len());
    let mut rest: Vec<Step> = steps;
    while !rest.is_empty() {
        let pos = rest.iter().position(|s| s.after.iter().all(|a| placed.contains(a)));
        match pos {
            Some(i) => {
                let s = rest.remove(i);
                placed.insert(s.id.clone());
                out.push(s);
            }
            None => {
                out.append(&mut rest);
            }
        }
    }
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
