//! The planner: a pure function from the desired state, an observation and a policy to a plan
//! (a DAG of steps, one cmdlet each) plus blockers. Every Lync ordering rule (the 32 safe-order
//! rules of the domain document that apply) is encoded here, once. No I/O; the same inputs
//! always give the same plan and the same hash. An observation that already matches the
//! desired state gives an empty plan.
//!
//! It works in two passes: `targets` decides the effective desired state (which pool serves
//! each pair's users, where the CMS must be, which Edge pools route federation and media,
//! which Back End server is principal), applying automatic-failover policy and consent; then
//! one emitter per concern adds the steps that reach it, with the dependencies the rules
//! demand (CMS before pool, next hop before failover, failback before cross-failover, Edge
//! failback before Front End failback, conference content after failback, Response Groups
//! around failover and failback).

mod ancillary;
mod backend;
mod builder;
mod cms;
mod ctx;
mod dot;
mod edge;
mod pairing;
mod pools;
mod step;
mod targets;
mod users;

use serde::{Deserialize, Serialize};

pub use step::{Blocker, Expect, Remember, Servers, Step, StepKind};

use crate::desired::Desired;
use crate::model::{Observed, Span};

/// Knobs of the planner that are not desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Grace period before an automatic CMS failover when the CMS pool is confirmed down.
    pub cms_grace: Span,
    /// Most `Move-CsUser` batches one plan holds per placement (the rest come in later plans).
    pub max_user_batches: usize,
    /// How long a mirrored Back End with a witness is left to fail over on its own after its
    /// principal's server went down, before lyncdr fails it over itself (JJ205248: about 5
    /// minutes, plus a margin).
    #[serde(default = "default_witness_grace")]
    pub witness_grace: Span,
}

fn default_witness_grace() -> Span {
    Span::mins(6)
}

impl Default for Policy {
    fn default() -> Self {
        Policy { cms_grace: Span::mins(5), max_user_batches: 20, witness_grace: default_witness_grace() }
    }
}

/// A plan: steps in a valid execution order, blockers, and notices for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub hash: String,
    pub steps: Vec<Step>,
    pub blockers: Vec<Blocker>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// Plan again after this long even if nothing changes (a grace period is running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_after: Option<Span>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    /// Graphviz rendering of the step DAG.
    pub fn to_dot(&self) -> String {
        dot::render(self)
    }
}

/// Computes the plan that moves the observed deployment to the desired state.
pub fn plan(desired: &Desired, observed: &Observed, policy: &Policy) -> Plan {
    let mut b = builder::Builder::default();
    let t = targets::compute(desired, observed, policy, &mut b);
    let c = ctx::Ctx::new(desired, observed, policy, t);
    backend::emit(&c, &mut b);
    cms::emit(&c, &mut b, false);
    edge::emit(&c, &mut b);
    pairing::emit(&c, &mut b);
    pools::emit(&c, &mut b);
    ancillary::emit(&c, &mut b);
    users::emit(&c, &mut b);
    cms::emit(&c, &mut b, true);
    b.config_barriers();
    b.finish()
}
