//! `PoolPair`: a pairing of two Front End pools and which pool serves each pool's users.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StepStatus;
use crate::model::{Fqdn, Span};

/// Two paired Front End pools (each the other's backup) and whose users each serves. With
/// `failedOver: []` each pool serves its own users; `failedOver: [A]` means A's users are
/// served by its partner (A is the pool hit by the disaster, as in `Invoke-CsPoolFailOver
/// -PoolFqdn A`). lyncdr plans and runs the procedure that makes it true.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "lyncdr.io",
    version = "v1alpha1",
    kind = "PoolPair",
    doc = "Two paired Front End pools and which pool serves each pool's users.",
    namespaced,
    derive = "PartialEq",
    status = "PoolPairStatus",
    shortname = "pp",
    category = "lyncdr",
    printcolumn(name = "Pool A", type_ = "string", json_path = ".spec.pools[0]"),
    printcolumn(name = "Pool B", type_ = "string", json_path = ".spec.pools[1]"),
    printcolumn(
        name = "Pairing",
        type_ = "string",
        json_path = ".status.pairing",
        description = "Whether the pools back each other up in Lync"
    ),
    printcolumn(name = "Serving", type_ = "string", json_path = ".status.serving", description = "Who serves each pool's users"),
    printcolumn(
        name = "Backup Sync",
        type_ = "string",
        json_path = ".status.backupSync",
        description = "Backup Service state, A to B / B to A"
    ),
    printcolumn(
        name = "Data At Risk",
        type_ = "string",
        json_path = ".status.dataAtRisk",
        description = "Changes not yet at the partner (live RPO)"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.failedOver.all(p, p in self.pools)").message("failedOver must name one of the pair's pools"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.automaticFailover) || !self.automaticFailover.enabled || self.allowDataLoss").message("automaticFailover requires allowDataLoss: failing over an unreachable pool uses -DisasterMode, which loses changes not yet replicated"))]
pub struct PoolPairSpec {
    /// Name of the LyncDeployment (same namespace) the pools belong to.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("deployment is immutable"))]
    pub deployment: String,
    /// The two pools, by FQDN. The pair's identity: immutable.
    #[schemars(length(min = 2, max = 2))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("pools are immutable: the pair's identity cannot change; create a new PoolPair"))]
    #[x_kube(validation = kube::core::Rule::new("self[0] != self[1]").message("the two pools of a pair must differ"))]
    pub pools: Vec<Fqdn>,
    /// Zero or one of the two pools: the pool whose users its partner serves.
    #[serde(default)]
    #[schemars(length(max = 1))]
    pub failed_over: Vec<Fqdn>,
    /// Consent to `-DisasterMode` for this pair: failing over a pool that cannot be reached (or
    /// failing back while the backup pool is down) loses changes not yet replicated.
    #[serde(default)]
    pub allow_data_loss: bool,
    /// Consent to re-pair: if a pool of this pair is paired with another pool, change the
    /// topology so these two back each other up, leaving the former partners without a backup
    /// pool until they are paired again.
    #[serde(default)]
    pub allow_repair: bool,
    /// Consent to fail over (or back) between pools whose pairing, already in place, breaks a
    /// supported-pairing rule (e.g. Enterprise Edition with Standard Edition). Lync still
    /// performs it; Microsoft does not support the result. lyncdr never creates such a pairing.
    #[serde(default)]
    pub allow_unsupported_pairing: bool,
    /// Fail a pool's users over to its partner, without a spec change, when the pool is
    /// confirmed down (by the operator and from the partner) for the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_failover: Option<AutomaticFailover>,
    /// Fail back on its own after an automatic failover once the pool has been up for the
    /// stability period. Without it, failback waits for a human: a spec change or the
    /// annotation `lyncdr.io/approve-failback: "true"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_failback: Option<AutomaticFailback>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticFailover {
    /// Turn automatic failover on.
    #[serde(default)]
    pub enabled: bool,
    /// How long a pool must be confirmed down before its users are failed over.
    #[serde(default = "default_grace")]
    pub grace_period: Span,
}

fn default_grace() -> Span {
    Span::mins(5)
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticFailback {
    /// Turn automatic failback on.
    #[serde(default)]
    pub enabled: bool,
    /// How long the pool must have been up before failing back.
    #[serde(default = "default_stability")]
    pub stability_period: Span,
}

fn default_stability() -> Span {
    Span::mins(30)
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PoolPairStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Whether the pools back each other up in Lync: `Paired`, or what differs (`NotPaired`,
    /// `BackupServiceNotInstalled`, `BackupServiceNotRunning`, `NotInSync`, `NotObserved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing: Option<String>,
    /// Who serves each pool's users now, e.g. `A:A B:B` or `A:B B:B`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
    /// Backup Service state per direction, e.g. `SteadyState/SteadyState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_sync: Option<String>,
    /// Changes not yet at the partner: at most one sync interval when in sync, otherwise the
    /// time since the last observed sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_at_risk: Option<String>,
    /// Plan steps that concern this pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
}
