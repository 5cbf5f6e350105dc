//! The simulated cmdlets: for each, the preconditions checked when it starts (with Lync's error
//! texts), the transitional state it enters, its duration, and the effect applied when it
//! completes. Grouped by area: pools, CMS, Back End databases, Edge and sites, Backup Service,
//! users, Response Groups, and the read-only queries.

mod backup;
mod cms;
mod database;
mod edge;
mod pool;
mod query;
mod rgs;
mod topology;
mod users;

use std::collections::BTreeMap;

use serde_json::Value;

use super::Simulator;
use super::errors::{self, CmdletError};
use super::world::Net;
use crate::model::{BackupModule, DbType, Fqdn, Product, Role, Span};
use crate::ps::Bound;

pub(crate) use database::{witness_due, witness_failover};

/// Where and on what a call runs.
pub(crate) struct Ctx {
    /// The server executing the cmdlet.
    pub server: Fqdn,
    pub product: Product,
}

/// A started call: how long it takes and what it does when it completes.
pub(crate) struct Started {
    pub duration: Span,
    pub output: Value,
    pub effect: Option<Effect>,
}

impl Started {
    pub fn output(duration: Span, output: Value) -> Started {
        Started { duration, output, effect: None }
    }
    pub fn effect(duration: Span, effect: Effect) -> Started {
        Started { duration, output: Value::Null, effect: Some(effect) }
    }
}

/// Deferred effects, applied at completion (or reverted if the executing server dies first).
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    PoolFailover {
        pool: Fqdn,
        partner: Fqdn,
        disaster: bool,
    },
    PoolFailback {
        pool: Fqdn,
        disaster: bool,
    },
    CmsFailover {
        from: Fqdn,
        to: Fqdn,
        force: bool,
    },
    DbFailover {
        pool: Fqdn,
        db: DbType,
        role: Role,
    },
    NextHop {
        edge: Fqdn,
        pool: Fqdn,
    },
    Federation {
        xmpp: bool,
        edge: Option<Fqdn>,
        /// The Edge pool the route leaves could not be used by the server that ran the
        /// cmdlet (down, or cut off from it): moving back to it later is a failback.
        from_lost: bool,
    },
    MediaEdge {
        pool: Fqdn,
        mediation: bool,
        edge: Option<Fqdn>,
    },
    /// `epoch` and `enabled`: the replica's configuration epoch and the enabled topology's
    /// epoch when setup started.
    Bootstrap {
        server: Fqdn,
        epoch: u64,
        enabled: u64,
    },
    Service {
        server: Fqdn,
        running: bool,
        backup_only: bool,
    },
    BackupSync {
        pool: Fqdn,
        module: Option<BackupModule>,
    },
    SyncInterval(Span),
    MoveUsers {
        users: Vec<String>,
        target: Fqdn,
        force: bool,
    },
    RgsExport {
        file: String,
        owner: Fqdn,
        workflows: Vec<String>,
        remove_from: Option<Fqdn>,
    },
    RgsImport {
        dest: Fqdn,
        file: String,
        overwrite_owner: bool,
        rename: bool,
    },
    ConfigExport {
        file: String,
        lis: bool,
    },
    TopologyDraft {
        file: String,
        backup: BTreeMap<Fqdn, Option<Fqdn>>,
    },
    Publish {
        file: String,
    },
    Enable,
    RemoveBackupData {
        pool: Fqdn,
    },
}

pub(crate) fn start(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    match b.spec.name {
        "Invoke-CsPoolFailOver" => pool::failover(sim, ctx, b),
        "Invoke-CsPoolFailBack" => pool::failback(sim, ctx, b),
        "Invoke-CsManagementServerFailover" => cms::failover(sim, ctx, b),
        "Export-CsConfiguration" | "Export-CsLisConfiguration" => cms::export(sim, ctx, b),
        "Invoke-CsDatabaseFailover" => database::failover(sim, ctx, b),
        "Set-CsEdgeServer" => edge::set_edge_server(sim, ctx, b),
        "Set-CsSite" => edge::set_site(sim, ctx, b),
        "Set-CsConferenceServer" | "Set-CsMediationServer" => edge::set_media_edge(sim, ctx, b),
        crate::ps::catalog::BOOTSTRAPPER => edge::bootstrapper(sim, ctx, b),
        "Start-CsWindowsService" | "Stop-CsWindowsService" => edge::service(sim, ctx, b),
        "Invoke-CsBackupServiceSync" => backup::sync(sim, ctx, b),
        "Set-CsBackupServiceConfiguration" => backup::set_config(sim, ctx, b),
        "Move-CsUser" => users::move_user(sim, ctx, b),
        "Get-CsUser" | "Measure-Object" => users::query(sim, ctx, b),
        "Export-CsRgsConfiguration" => rgs::export(sim, ctx, b),
        "Import-CsRgsConfiguration" => rgs::import(sim, ctx, b),
        "Get-CsRgsWorkflow" => rgs::get(sim, ctx, b),
        "Set-LyncdrBackupPool" => topology::set_backup_pool(sim, ctx, b),
        "Publish-CsTopology" => topology::publish(sim, ctx, b),
        "Enable-CsTopology" => topology::enable(sim, ctx, b),
        "Remove-CsUserStoreBackupData" => topology::remove_backup_data(sim, ctx, b),
        "Get-CsTopology" => topology::get(sim, ctx, b),
        _ => query::run(sim, ctx, b),
    }
}

pub(crate) fn apply(sim: &mut Simulator, e: &Effect) -> Result<Value, CmdletError> {
    match e {
        Effect::PoolFailover { .. } | Effect::PoolFailback { .. } => pool::apply(sim, e),
        Effect::CmsFailover { .. } | Effect::ConfigExport { .. } => cms::apply(sim, e),
        Effect::DbFailover { .. } => database::apply(sim, e),
        Effect::NextHop { .. }
        | Effect::Federation { .. }
        | Effect::MediaEdge { .. }
        | Effect::Bootstrap { .. }
        | Effect::Service { .. } => edge::apply(sim, e),
        Effect::BackupSync { .. } | Effect::SyncInterval(_) => backup::apply(sim, e),
        Effect::MoveUsers { .. } => users::apply(sim, e),
        Effect::RgsExport { .. } | Effect::RgsImport { .. } => rgs::apply(sim, e),
        Effect::TopologyDraft { .. } | Effect::Publish { .. } | Effect::Enable | Effect::RemoveBackupData { .. } => topology::apply(sim, e),
    }
}

/// Undoes the transitional state of a call whose server died before it completed.
pub(crate) fn revert(sim: &mut Simulator, e: &Effect) {
    match e {
        Effect::PoolFailover { .. } | Effect::PoolFailback { .. } => pool::revert(sim, e),
        Effect::CmsFailover { .. } => cms::revert(sim),
        _ => {}
    }
}

/// A person re-applies the cumulative update on a Front End server (`update:server/<fqdn>`):
/// every component is at the server's update level again.
pub(crate) fn apply_cumulative_update(sim: &mut Simulator, server: &Fqdn) {
    sim.w.behind_on_updates.remove(server);
}

impl Simulator {
    /// A safe-order rule Lync does not enforce: refused in strict mode, recorded otherwise.
    pub(crate) fn rule(&mut self, cmdlet: &str, rule: u8, message: impl std::fmt::Display) -> Result<(), CmdletError> {
        if self.strict {
            Err(errors::rule_violation(cmdlet, rule, message))
        } else {
            self.stats.hazards.push(format!("{} rule {rule}: {message}", self.now));
            Ok(())
        }
    }

    pub(crate) fn net_ref(&self) -> Net<'_> {
        Net { topo: &self.topo, hosts: &self.hosts, faults: &self.w.faults }
    }

    /// Topology and configuration changes are written to the CMS: it must be available.
    pub(crate) fn require_cms(&self, cmdlet: &str) -> Result<(), CmdletError> {
        if self.cms_available() && !self.cms_moving() { Ok(()) } else { Err(errors::err(cmdlet, errors::cms_unavailable())) }
    }

    pub(crate) fn cms_moving(&self) -> bool {
        self.ops.values().any(|o| {
            o.result.is_none() && o.aborted.is_none() && matches!(&o.completion, super::Completion::Effect(Effect::CmsFailover { .. }))
        })
    }

    pub(crate) fn pool_fqdn(&self, cmdlet: &str, b: &Bound, param: &str) -> Result<Fqdn, CmdletError> {
        let raw = b.str(param).unwrap_or_default();
        match Fqdn::parse(raw) {
            Ok(f) if self.topo.pools.contains_key(&f) => Ok(f),
            _ => Err(errors::err(cmdlet, errors::unknown_pool(raw))),
        }
    }
}

/// Strips a service-identity prefix: `EdgeServer:edge01.contoso.com` → `edge01.contoso.com`.
pub(crate) fn strip_identity(value: &str, prefixes: &[&str]) -> String {
    let mut v = value.trim();
    if let Some(rest) = v.strip_prefix("service:").or_else(|| v.strip_prefix("Service:")) {
        v = rest;
    }
    for p in prefixes {
        if v.len() > p.len() && v[..p.len()].eq_ignore_ascii_case(p) && v.as_bytes()[p.len()] == b':' {
            return v[p.len() + 1..].to_string();
        }
    }
    v.to_string()
}
