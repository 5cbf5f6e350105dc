//! Types shared by the custom resources: status conditions, step progress and the journal.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Progress of one plan step, as shown in status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Stable step id, e.g. `pool-failover/pool01.dal.contoso.com`.
    pub id: String,
    /// The cmdlet and its arguments as PowerShell text.
    pub command: String,
    /// Server or pool the cmdlet runs on.
    pub run_on: String,
    pub state: StepState,
    /// Why the step is in the plan.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The step may lose data (consented in the spec).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_loss: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a plan step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum StepState {
    /// Not started (or stopped before it started: the message says why).
    #[default]
    Pending,
    Running,
    Succeeded,
    /// Its effect already held; nothing ran.
    Skipped,
    /// The cmdlet failed; nothing else is known to have changed.
    Failed,
    /// Its outcome cannot be established; a person must look.
    Unknown,
}

impl StepState {
    /// The step needs nothing more.
    pub fn is_done(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Skipped)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "Pending",
            StepState::Running => "Running",
            StepState::Succeeded => "Succeeded",
            StepState::Skipped => "Skipped",
            StepState::Failed => "Failed",
            StepState::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that keeps the desired state from being reached safely.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockerStatus {
    /// `Kind/name` of the resource concerned.
    pub resource: String,
    pub reason: String,
}

/// Sets or updates a condition; `lastTransitionTime` moves only when the status flips.
pub fn set_condition(conditions: &mut Vec<Condition>, mut c: Condition) {
    if let Some(old) = conditions.iter_mut().find(|x| x.type_ == c.type_) {
        if old.status == c.status {
            c.last_transition_time = old.last_transition_time.clone();
        }
        *old = c;
    } else {
        conditions.push(c);
    }
}
