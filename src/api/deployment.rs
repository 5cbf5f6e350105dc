//! `LyncDeployment`: one per Lync deployment.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BlockerStatus, StepStatus};
use crate::model::{Fqdn, Role, Span};

/// A Lync Server 2013 or Skype for Business Server deployment whose disaster recovery lyncdr
/// manages: how to reach it, where the Central Management store should be active, how Edge
/// pools route federation and media, which Back End server is principal, the Backup Service
/// interval, and the policy that governs what lyncdr may do on its own.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "lyncdr.io",
    version = "v1alpha1",
    kind = "LyncDeployment",
    doc = "A Lync Server 2013 / Skype for Business Server deployment whose disaster recovery lyncdr manages.",
    namespaced,
    derive = "PartialEq",
    status = "LyncDeploymentStatus",
    shortname = "lyncdep",
    category = "lyncdr",
    printcolumn(name = "Transport", type_ = "string", json_path = ".spec.connection.transport"),
    printcolumn(name = "CMS", type_ = "string", json_path = ".status.observed.cmsPool", description = "Pool hosting the active CMS"),
    printcolumn(name = "Steps", type_ = "string", json_path = ".status.plan.progress", description = "Plan progress"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct LyncDeploymentSpec {
    /// How lyncdr reaches the deployment's servers. Required by the operator; the standalone
    /// front ends (`lyncdr plan`, `lyncdr demo`) ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
    /// Where the Central Management store should be active. Omit to leave it where it is
    /// (lyncdr still fails it over when a pool failover requires it, with consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub central_management_store: Option<CentralManagementStore>,
    /// Edge routing: next hops, the federation Edge pools and Front End media associations.
    #[serde(default)]
    pub edge: EdgeSpec,
    /// Which server of each mirrored Back End should be principal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub back_ends: Vec<BackEndSpec>,
    /// Backup Service settings (global to the deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_service: Option<BackupServiceSpec>,
    /// Response Group export and import around failover and failback (not replicated by the
    /// Backup Service in Lync 2013 / SfB 2015).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_groups: Option<ResponseGroupsSpec>,
    /// What lyncdr may do on its own.
    #[serde(default)]
    pub policy: PolicySpec,
}

/// How to reach the deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.transport != 'Simulator' || has(self.simulatorUrl)").message("transport Simulator needs simulatorUrl (the address of `lyncdr sim serve`)"))]
#[x_kube(validation = kube::core::Rule::new("self.transport != 'WinRM' || (has(self.endpoints) && size(self.endpoints) > 0)").message("transport WinRM needs at least one endpoint"))]
pub struct Connection {
    /// `Simulator` (a `lyncdr sim serve` process) or `WinRM` (PowerShell on the Lync servers).
    #[serde(default)]
    pub transport: Transport,
    /// URL of `lyncdr sim serve`, e.g. `http://lyncdr-sim:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator_url: Option<String>,
    /// WinRM: the Front End servers (FQDNs) on which cmdlets that may run anywhere run, tried
    /// in order; list at least one per site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// WinRM: the WS-Management URL of a server, `{server}` replaced by its FQDN. Default
    /// `https://{server}:5986/wsman`; `http://{server}:5985/wsman` uses NTLM message encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_template: Option<String>,
    /// WinRM authentication: `Negotiate`, `Kerberos`, `Ntlm`, `CredSSP` or `Basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<String>,
    /// Secret with keys `username` and `password` (a member of RTCUniversalServerAdmins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// WinRM: the double hop. Each script runs as the account of this scheduled task on the
    /// server (docs/real-deployment.md, "The double hop"); absent, scripts run in the WinRM
    /// session itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_task: Option<RunAsTaskSpec>,
}

/// A scheduled task on every Front End that runs lyncdr's scripts as its own account.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunAsTaskSpec {
    /// The task's name (default `lyncdr-runas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// The spool directory the task reads scripts from (default `C:\ProgramData\lyncdr\spool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool: Option<String>,
    /// How long to wait for the task's answer (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 86400))]
    pub timeout_seconds: Option<u64>,
}

impl RunAsTaskSpec {
    /// The driver's settings, defaults filled in.
    pub fn task(&self) -> crate::driver::script::RunAsTask {
        let d = crate::driver::script::RunAsTask::default();
        crate::driver::script::RunAsTask {
            task_name: self.task_name.clone().unwrap_or(d.task_name),
            spool: self.spool.clone().unwrap_or(d.spool),
            timeout_secs: self.timeout_seconds.unwrap_or(d.timeout_secs),
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Simulator,
    WinRM,
}

/// The desired location of the Central Management store.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!self.automaticFailover || self.allowDataLoss").message("automaticFailover of the CMS requires allowDataLoss: a CMS failover from an unreachable pool uses -Force and may lose changes"))]
pub struct CentralManagementStore {
    /// Front End pool whose Back End should host the active CMS.
    pub active_pool: Fqdn,
    /// Consent to a forced CMS failover (`Invoke-CsManagementServerFailover -Force`) when the
    /// active CMS is unreachable; it may lose changes not yet replicated to the standby.
    #[serde(default)]
    pub allow_data_loss: bool,
    /// Fail the CMS over to its standby on its own when the active CMS pool is confirmed down.
    #[serde(default)]
    pub automatic_failover: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EdgeSpec {
    /// Edge pool that should carry SIP federation (only one at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_federation_pool: Option<Fqdn>,
    /// Edge pool that should carry XMPP federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp_federation_pool: Option<Fqdn>,
    /// Each Edge pool's internal next hop. While that pool's users are failed over, the Edge
    /// points at the pool serving them (required before failover, rule 11).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_pools: Vec<EdgePoolSpec>,
    /// Each Front End pool's Edge pool for media (A/V conferencing and Mediation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_associations: Vec<MediaAssociation>,
    /// When an Edge pool is down, move federation and media associations to the first running
    /// pool of `fallbackPools` (no data is at risk), and back when it returns.
    #[serde(default)]
    pub automatic_failover: bool,
    /// Edge pools to fall back to, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_pools: Vec<Fqdn>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgePoolSpec {
    /// The Edge pool.
    pub fqdn: Fqdn,
    /// Front End (or Director) pool the Edge pool forwards to.
    pub next_hop: Fqdn,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MediaAssociation {
    /// The Front End pool.
    pub pool: Fqdn,
    /// The Edge pool its A/V conferencing and Mediation use for media.
    pub edge_pool: Fqdn,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackEndSpec {
    /// Front End pool whose Back End this is.
    pub pool: Fqdn,
    /// `Primary` or `Mirror`: the SQL server that should hold the principal databases.
    pub principal: Role,
    /// Fail the databases over to the other server (lossless with synchronous mirroring) when
    /// the desired principal's server is down, and back when it returns.
    #[serde(default = "default_true")]
    pub automatic_failover: bool,
}

fn default_true() -> bool {
    true
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupServiceSpec {
    /// Backup Service sync interval, 5s to 3h (e.g. `2m`). Change it only when necessary: it
    /// drives Backup Service load and the recovery point (rule 32).
    #[schemars(schema_with = "go_duration_schema")]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('5s') && duration(self) <= duration('3h')").message("syncInterval must be between 5s and 3h"))]
    pub sync_interval: Span,
}

/// An object lyncdr writes and reads back itself (the memory, a journal record): its shape is
/// lyncdr's, versioned with it, so the apiserver keeps it as it is.
fn record_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn go_duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(ms|s|m|h))+$",
        "description": "A duration such as 90s, 2m or 1h30m."
    })
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseGroupsSpec {
    /// Folder (a file share every Front End reaches) for Response Group exports, e.g.
    /// `\\fs01\lyncdr\rgs`.
    pub export_path: String,
    /// Workflow names must be unique deployment-wide, or importing a pool's Response Groups into
    /// its backup pool fails (rule 26), so lyncdr blocks the failover. `true`: import them with
    /// `-ResolveNameConflicts`, which gives the clashing copies new names.
    #[serde(default)]
    pub resolve_name_conflicts: bool,
}

/// What lyncdr may do on its own.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// `Automatic`: run plans as computed. `Manual`: publish each plan with its hash and wait for
    /// the annotation `lyncdr.io/approve: <hash>` on this LyncDeployment.
    #[serde(default)]
    pub approval: Approval,
    /// `Full`: observe and act. `ObserveOnly`: observe, plan and report, never act.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// When the deployment drifts from the spec without a spec change: `Correct` it or only
    /// `Report` it.
    #[serde(default)]
    pub drift: DriftPolicy,
    /// How often to observe the deployment when nothing is running (drift detection).
    #[serde(default = "default_poll")]
    pub poll_interval: Span,
    /// How many independent steps may run at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 16))]
    pub concurrency: i32,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            approval: Approval::default(),
            management_policy: ManagementPolicy::default(),
            drift: DriftPolicy::default(),
            poll_interval: default_poll(),
            concurrency: default_concurrency(),
        }
    }
}

fn default_poll() -> Span {
    Span::mins(1)
}
fn default_concurrency() -> i32 {
    4
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Approval {
    #[default]
    Automatic,
    Manual,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManagementPolicy {
    #[default]
    Full,
    ObserveOnly,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DriftPolicy {
    #[default]
    Correct,
    Report,
}

/// What lyncdr observes and does for a deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LyncDeploymentStatus {
    /// The generation of the spec this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, and the domain conditions (AwaitingApproval, DriftDetected,
    /// Paused, DataAtRisk, Conflict).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// A summary of the observed deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedSummary>,
    /// The current plan and its progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanStatus>,
    /// What people must do outside Lync (restore the LIS database, change DNS records, re-apply
    /// cumulative updates, ...), for as long as the condition that asks for it holds, whether or
    /// not a plan is running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// Steps started recently, written before each cmdlet runs and again when its outcome is
    /// known, so a restart knows what may have happened. `Pending` entries have no known outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalStatus>,
    /// The generation whose desired state was last reached: a plan while it equals
    /// `metadata.generation` corrects drift rather than applying a spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// The operator's memory: since when pools have been down or out of sync, which failovers
    /// were automatic, what local setup is pending. Written with the journal, read back after a
    /// restart. (Versions before 0.2 wrote it as a JSON string; that is still read.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "record_schema")]
    pub history: Option<serde_json::Value>,
    /// Echo of the `lyncdr.io/reconcile-requested-at` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The `lyncdr.io/resolve` annotation value last acted upon: the same value is not applied
    /// again to a later entry of the same step (give a new value, e.g. `<step id>@2`, for that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_resolve: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cms_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_federation_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp_federation_pool: Option<String>,
    /// One line per Front End pool: health, who serves its users, Backup Service state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    /// One line per Edge pool: health and next hop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    /// Stable hash of the plan; approve it with `lyncdr.io/approve: <hash>` in Manual mode.
    pub hash: String,
    /// `done/total` steps.
    pub progress: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<BlockerStatus>,
    /// Actions outside Lync a person must take (e.g. DNS records), from the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JournalStatus {
    /// The step id.
    pub step: String,
    pub plan_hash: String,
    pub command: String,
    pub run_on: String,
    pub started_at: String,
    /// The operator instance that started it.
    pub by: String,
    /// `Pending` until the outcome is known, then `Succeeded` or `Failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The full journal record, for resolving it after a restart. (Versions before 0.2 wrote it
    /// as a JSON string; that is still read.)
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(schema_with = "record_schema")]
    pub record: serde_json::Value,
}
