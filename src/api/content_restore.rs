//! `ConferenceContentRestore`: restore a pool's conference content from its partner.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StepStatus;
use crate::model::Fqdn;

/// Restores the conference content (uploaded presentations, whiteboards) of `pool` from the
/// copy its partner keeps, with `Invoke-CsBackupServiceSync -BackupModule
/// ConfServices.DataConf` run on the partner, then waits for steady state (JJ688030). Runs once
/// per generation: change the spec (e.g. `requestedAt`) to restore again.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "lyncdr.io",
    version = "v1alpha1",
    kind = "ConferenceContentRestore",
    doc = "A restore of a pool's conference content from its partner.",
    namespaced,
    derive = "PartialEq",
    status = "ConferenceContentRestoreStatus",
    shortname = "ccr",
    category = "lyncdr",
    printcolumn(name = "Pool", type_ = "string", json_path = ".spec.pool"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceContentRestoreSpec {
    /// Name of the LyncDeployment (same namespace).
    pub deployment: String,
    /// The pool whose conference content was lost.
    pub pool: Fqdn,
    /// Free text (e.g. a timestamp); changing it requests another restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceContentRestoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation whose restore completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
}
