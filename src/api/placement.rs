//! `UserPlacement`: which pool users are homed on.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StepStatus;
use crate::model::Fqdn;

/// Users who should be homed on `targetPool` (rehomed with `Move-CsUser`), chosen by SIP
/// address or as every user currently homed on `fromPool`. Failover never rehomes users; use
/// this for a pool lost for good, or to rebalance.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "lyncdr.io",
    version = "v1alpha1",
    kind = "UserPlacement",
    doc = "Users who should be homed on a target pool.",
    namespaced,
    derive = "PartialEq",
    status = "UserPlacementStatus",
    shortname = "up",
    category = "lyncdr",
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.targetPool"),
    printcolumn(name = "Remaining", type_ = "integer", json_path = ".status.remaining"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.users) != has(self.fromPool)").message("set exactly one of users and fromPool"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.fromPool) || self.fromPool != self.targetPool").message("fromPool and targetPool must differ"))]
pub struct UserPlacementSpec {
    /// Name of the LyncDeployment (same namespace).
    pub deployment: String,
    /// Users by SIP address (`sip:alice@contoso.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// Every user currently homed on this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_pool: Option<Fqdn>,
    /// Pool the users should be homed on.
    pub target_pool: Fqdn,
    /// Users per `Move-CsUser` step.
    #[serde(default = "default_batch")]
    #[schemars(range(min = 1, max = 5000))]
    pub batch_size: i32,
    /// Consent to `Move-CsUser -Force` when the source pool is unavailable: the users' contacts
    /// and meetings are not moved and cannot be recovered.
    #[serde(default)]
    pub allow_data_loss: bool,
}

fn default_batch() -> i32 {
    100
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserPlacementStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Users not yet on the target pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
}
