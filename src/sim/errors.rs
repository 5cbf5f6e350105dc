//! Error texts the simulated cmdlets produce. Where the domain document quotes Lync's own
//! message it is reproduced (marked VERBATIM with its source); elsewhere the text is the
//! simulator's wording of the documented precondition (marked with the rule or source it
//! enforces). Safe-order rules Lync itself does not enforce at the cmdlet are reported as
//! [`rule_violation`]s, clearly labelled as the simulator's, and only in strict mode.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Fqdn;

/// A cmdlet failure as PowerShell reports it: `<Cmdlet> : <message>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmdletError {
    pub cmdlet: String,
    pub message: String,
    /// The safe-order rule (domain document section 8) this error enforces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<u8>,
}

impl fmt::Display for CmdletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} : {}", self.cmdlet, self.message)
    }
}

impl std::error::Error for CmdletError {}

pub(crate) fn err(cmdlet: &str, message: impl Into<String>) -> CmdletError {
    CmdletError { cmdlet: cmdlet.to_string(), message: message.into(), rule: None }
}

pub(crate) fn rule_err(cmdlet: &str, rule: u8, message: impl Into<String>) -> CmdletError {
    CmdletError { cmdlet: cmdlet.to_string(), message: message.into(), rule: Some(rule) }
}

/// A safe-order rule broken in a way Lync would not refuse at the cmdlet (strict mode only).
pub(crate) fn rule_violation(cmdlet: &str, rule: u8, message: impl fmt::Display) -> CmdletError {
    rule_err(cmdlet, rule, format!("[lyncdr simulator, strict mode] safe-order rule {rule}: {message}"))
}

/// VERBATIM, JJ204678 (S3): the Edge next-hop refusal of `Invoke-CsPoolFailOver` (rule 11).
pub(crate) fn next_hop(pool: &Fqdn) -> String {
    format!(
        "This Front-end pool \"{pool}\" is specified in topology as the next hop for the Edge server. Failing over this pool may cause External access/Federation/Split-domain/XMPP features to stop working. Please use Topology Builder to change the Edge internal next hop setting to point to a different Front-end pool, before you proceed."
    )
}

/// Rule 12 (C1: "Pool failover can only be invoked if you have assigned a backup pool").
pub(crate) fn no_backup_pool(pool: &Fqdn) -> String {
    format!(
        "Pool \"{pool}\" has no backup pool assigned. Pool failover can only be invoked if you have assigned a backup pool to the failed pool."
    )
}

/// Rule 1 (JJ721939): cross-failover in the wrong order.
pub(crate) fn cross_failover(pool: &Fqdn, partner: &Fqdn) -> String {
    format!(
        "Cannot fail over pool \"{pool}\" because the users of its backup pool \"{partner}\" are currently failed over to it. To preserve pool integrity, first fail back \"{partner}\" with Invoke-CsPoolFailBack -PoolFqdn {partner}."
    )
}

/// Rule 3 (JJ204678, JJ205376): the CMS is hosted on the pool being failed over.
pub(crate) fn cms_on_pool(pool: &Fqdn) -> String {
    format!(
        "Pool \"{pool}\" hosts the active Central Management Server. Fail over the Central Management Server to its backup pool (Invoke-CsManagementServerFailover) before failing over this pool."
    )
}

/// Rules 3-4: the CMS is unavailable, or its replicas are not yet current.
pub(crate) fn cms_unavailable() -> String {
    "The Central Management Store is not available: ActiveMasterFqdn is empty. Fail over the Central Management Server before running this command.".to_string()
}

pub(crate) fn cms_not_replicated(server: &Fqdn) -> String {
    format!(
        "The Central Management Store replica on \"{server}\" is not up to date. Wait until Get-CsManagementStoreReplicationStatus reports UpToDate True for every replica, then run the command again."
    )
}

/// Rules 15 and 17: planned operations need the other pool and the Back End reachable.
pub(crate) fn pool_unreachable(pool: &Fqdn, hint: &str) -> String {
    format!("Unable to contact pool \"{pool}\". {hint}")
}

pub(crate) fn back_end_down(pool: &Fqdn) -> String {
    format!(
        "The Back End database of pool \"{pool}\" is not available. A pool whose Back End is unavailable can only be failed over with -DisasterMode."
    )
}

/// Rule 2: failback names a pool that is not failed over.
pub(crate) fn not_failed_over(pool: &Fqdn) -> String {
    format!(
        "Pool \"{pool}\" is not failed over. Invoke-CsPoolFailBack -PoolFqdn must name the pool that was failed over with Invoke-CsPoolFailOver."
    )
}

pub(crate) fn already_failed_over(pool: &Fqdn) -> String {
    format!("The users of pool \"{pool}\" are already failed over to its backup pool.")
}

pub(crate) fn in_progress(pool: &Fqdn) -> String {
    format!("A failover or failback operation is already in progress for pool \"{pool}\".")
}

pub(crate) fn backup_service_not_running(pool: &Fqdn) -> String {
    format!(
        "The Backup Service is not running on pool \"{pool}\", so it holds no usable backup data. Start it with Start-CsWindowsService -Name LYNCBACKUP."
    )
}

pub(crate) fn unknown_pool(pool: &str) -> String {
    format!("Pool \"{pool}\" was not found in the topology.")
}

pub(crate) fn unknown_identity(identity: &str) -> String {
    format!("Management object not found for identity \"{identity}\".")
}

/// Interrupted: the server running the command went away before it finished.
pub(crate) fn interrupted(server: &Fqdn) -> String {
    format!("The connection to \"{server}\" was lost before the command completed; its outcome is unknown.")
}
