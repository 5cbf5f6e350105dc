//! Simulated durations of Lync operations and data-change rates, with the documented defaults
//! (domain document section 9) and per-scenario overrides (`timings:` in the scenario).

use serde::{Deserialize, Serialize};

use crate::model::{Product, Span};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Timings {
    /// A read-only query (`Get-*`).
    pub query: Span,
    /// One script over WinRM in a warm PowerShell session, on top of its cmdlets' own time
    /// (the WS-Man Command, Send and Receive exchanges, the pipeline's start, the JSON).
    /// Charged by the simulator's WS-Man endpoint (`sim serve --winrm`).
    pub round_trip: Span,
    /// A new PowerShell session over WinRM: the shell, `powershell.exe` and
    /// `Import-Module Lync` (5 to 15 s on a Front End). Charged once per session by the
    /// simulator's WS-Man endpoint.
    pub session_start: Span,
    /// Time for a caller to notice that the server running its call went away (power, site or
    /// network lost): its next WS-Man Receive poll finds no server, within the client's read
    /// timeout (pywinrm: 30 s above a 20 s OperationTimeout). The call ends then, interrupted,
    /// instead of at its planned completion.
    pub session_loss: Span,
    /// Pool failover time per 1,000 users; default from the RTO targets at 40,000 users:
    /// 30 min (Lync 2013, JJ205079) or 15 min (SfB, disaster-recovery topic).
    pub pool_failover_per_1000_users: Option<Span>,
    /// Pool failback time per 1,000 users: 60 min for 20,000 users (JJ204945) = 3 min.
    pub pool_failback_per_1000_users: Span,
    /// Floor for any pool failover or failback.
    pub minimum_pool_operation: Span,
    /// CMS failover (RTO 5 min, JJ205376).
    pub cms_failover: Span,
    /// Time for a configuration change to reach every replica (forced replication: 2-3 min).
    pub cms_replication: Span,
    /// Manual `Invoke-CsDatabaseFailover`.
    pub database_failover: Span,
    /// Automatic mirror failover with a witness (RTO 5 min, JJ205248).
    pub witness_failover: Span,
    /// A topology or configuration change through a `Set-Cs*` cmdlet.
    pub topology_change: Span,
    /// `Publish-CsTopology` / `Enable-CsTopology`.
    pub topology_publish: Span,
    /// Local setup (Bootstrapper.exe) on one server.
    pub bootstrapper: Span,
    pub service_start: Span,
    pub service_stop: Span,
    /// `Move-CsUser`, per user.
    pub move_user: Span,
    /// `Export-CsRgsConfiguration` / `Import-CsRgsConfiguration`.
    pub rgs_transfer: Span,
    /// `Export-CsConfiguration` / `Export-CsLisConfiguration`.
    pub config_export: Span,
    /// `Invoke-CsBackupServiceSync`.
    pub backup_sync: Span,
    /// User-data changes (contacts, settings) per user per hour.
    pub user_changes_per_hour: f64,
    /// Conference-content changes per user per hour.
    pub conference_changes_per_hour: f64,
    /// CMS configuration changes per hour (whole deployment).
    pub cms_changes_per_hour: f64,
    /// Changes one Backup Service sync cycle moves per direction (MaxBatchesPerUserStoreSync 500 x 100).
    pub sync_capacity: u64,
}

/// Longest duration of one simulated operation (or per 1,000 users).
pub const MAX_TIMING: Span = Span::hours(24 * 7);

impl Default for Timings {
    fn default() -> Self {
        Timings {
            query: Span::ms(500),
            round_trip: Span::secs(1),
            session_start: Span::secs(10),
            session_loss: Span::secs(30),
            pool_failover_per_1000_users: None,
            pool_failback_per_1000_users: Span::mins(3),
            minimum_pool_operation: Span::mins(2),
            cms_failover: Span::mins(5),
            cms_replication: Span::mins(2),
            database_failover: Span::mins(1),
            witness_failover: Span::mins(5),
            topology_change: Span::secs(15),
            topology_publish: Span::mins(1),
            bootstrapper: Span::mins(5),
            service_start: Span::mins(1),
            service_stop: Span::secs(30),
            move_user: Span::secs(2),
            rgs_transfer: Span::mins(1),
            config_export: Span::secs(30),
            backup_sync: Span::secs(30),
            user_changes_per_hour: 1.0,
            conference_changes_per_hour: 0.1,
            cms_changes_per_hour: 2.0,
            sync_capacity: 50_000,
        }
    }
}

impl Timings {
    pub fn pool_failover(&self, product: Product, users: u64) -> Span {
        let per = self.pool_failover_per_1000_users.unwrap_or(match product {
            Product::Lync2013 => Span::secs(45),
            Product::SfB2015 | Product::SfB2019 => Span::ms(22_500),
        });
        per.scale(users, 1000).max(self.minimum_pool_operation)
    }

    pub fn pool_failback(&self, users: u64) -> Span {
        self.pool_failback_per_1000_users.scale(users, 1000).max(self.minimum_pool_operation)
    }

    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (name, v) in [
            ("userChangesPerHour", self.user_changes_per_hour),
            ("conferenceChangesPerHour", self.conference_changes_per_hour),
            ("cmsChangesPerHour", self.cms_changes_per_hour),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err((name.to_string(), format!("{v} must be a non-negative number")));
            }
        }
        if self.sync_capacity == 0 {
            return Err(("syncCapacity".into(), "must be at least 1".into()));
        }
        if self.query.0 == 0 {
            return Err(("query".into(), "must be longer than 0s".into()));
        }
        // The simulator moves time in steps: an operation lasting years would keep `plan` and
        // `demo` stepping for days of real time. A week is far beyond any Lync operation.
        let spans = [
            ("query", Some(self.query)),
            ("roundTrip", Some(self.round_trip)),
            ("sessionStart", Some(self.session_start)),
            ("sessionLoss", Some(self.session_loss)),
            ("poolFailoverPer1000Users", self.pool_failover_per_1000_users),
            ("poolFailbackPer1000Users", Some(self.pool_failback_per_1000_users)),
            ("minimumPoolOperation", Some(self.minimum_pool_operation)),
            ("cmsFailover", Some(self.cms_failover)),
            ("cmsReplication", Some(self.cms_replication)),
            ("databaseFailover", Some(self.database_failover)),
            ("witnessFailover", Some(self.witness_failover)),
            ("topologyChange", Some(self.topology_change)),
            ("topologyPublish", Some(self.topology_publish)),
            ("bootstrapper", Some(self.bootstrapper)),
            ("serviceStart", Some(self.service_start)),
            ("serviceStop", Some(self.service_stop)),
            ("moveUser", Some(self.move_user)),
            ("rgsTransfer", Some(self.rgs_transfer)),
            ("configExport", Some(self.config_export)),
            ("backupSync", Some(self.backup_sync)),
        ];
        for (name, v) in spans {
            if let Some(v) = v
                && v > MAX_TIMING
            {
                return Err((name.to_string(), format!("{v} is longer than the limit of {MAX_TIMING}")));
            }
        }
        Ok(())
    }
}
