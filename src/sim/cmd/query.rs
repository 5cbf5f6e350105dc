//! The read-only cmdlets lyncdr observes a deployment with, returning objects shaped like the
//! ones Lync's cmdlets return (as `ConvertTo-Json` would render them): topology (`Get-CsPool`,
//! `Get-CsSite`, `Get-CsService`), pairing (`Get-CsPoolBackupRelationship`), the Backup Service
//! (`Get-CsBackupServiceStatus`, `Get-CsBackupServiceConfiguration`), the CMS
//! (`Get-CsManagementStoreReplicationStatus`), Back End mirroring (`Get-CsDatabaseMirrorState`),
//! pool health and failover state (`Get-CsPoolFabricState`), users (`Get-CsUserPoolInfo`) and
//! host facts (`Get-CsServerVersion`, `Get-CimInstance`, `Get-Command`). What the observer reads
//! is built from the types of `backend::records`, the ones it reads the output back through.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Ctx, Started};
use crate::backend::records::{
    BackupModuleStatus, BackupServiceConfiguration, BackupServiceStatus, CentralManagementService, CmsReplicaStatus, CmsStoreStatus,
    ComputerSystem, DatabaseMirrorState, DnsRecord, EdgeServerService, MediaService, OperatingSystem, PoolBackupRelationship, PoolRecord,
    ServerPatchVersion, ServerVersion, SipDomain, SiteRecord, UserDatabaseService, UserPoolInfo, WindowsService, service_id,
};
use crate::model::{BackupModule, DbType, ExportStatus, Fqdn, ImportStatus, Product, Role, Virtualization};
use crate::ps::{Bound, catalog};
use crate::sim::errors::{self, CmdletError, err};
use crate::sim::{Simulator, replication};

pub(crate) fn run(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let cmd = b.spec.name;
    let out = match cmd {
        "Get-CsPool" => render(cmd, &pools(sim, b))?,
        "Get-CsSite" => render(cmd, &sites(sim, b))?,
        "Get-CsService" => services(sim, b)?,
        "Get-CsPoolBackupRelationship" => {
            let pool = sim.pool_fqdn(cmd, b, "PoolFqdn")?;
            let relationship = PoolBackupRelationship {
                pool_fqdn: pool.to_string(),
                backup_pool_fqdn: sim.topo.partner(&pool).map(ToString::to_string),
                // [INFERRED] Lync keeps the pool failover state in the CMS; the real driver reads it
                // there (docs/architecture.md, "Observation"). The simulator reports it with the pairing.
                failover_state: sim.w.pools[&pool].state,
            };
            render(cmd, &relationship)?
        }
        "Get-CsBackupServiceConfiguration" => {
            let config = BackupServiceConfiguration {
                identity: "Global".into(),
                sync_interval: Some(sim.w.sync_interval.to_timespan()),
                max_batches_per_cms_sync: 500,
                max_batches_per_user_store_sync: 500,
                max_concurrent_calls: 10,
                max_data_conf_package_size_kb: 102400,
            };
            render(cmd, &config)?
        }
        "Get-CsBackupServiceStatus" => backup_status(sim, ctx, b)?,
        "Get-CsManagementStoreReplicationStatus" => cms_status(sim, b)?,
        "Get-CsDatabaseMirrorState" => mirror_state(sim, ctx, b)?,
        "Get-CsPoolFabricState" => fabric_state(sim, ctx, b)?,
        "Get-CsUserPoolInfo" => user_pool_info(sim, b)?,
        "Get-CsSipDomain" => render(cmd, &[SipDomain { identity: sip_domain(sim), name: sip_domain(sim), is_default: true }])?,
        "Resolve-DnsName" => resolve_dns(sim, b)?,
        "Get-CsServerPatchVersion" => patch_version(sim, ctx)?,
        "Get-CsServerVersion" => {
            let product = sim.pool_of(&ctx.server).map(|p| p.traits.product).unwrap_or(ctx.product);
            render(cmd, &ServerVersion(server_version(product)))?
        }
        "Get-CimInstance" => cim(sim, ctx, b)?,
        "Get-CsWindowsService" => windows_services(sim, ctx, b)?,
        "Get-Command" => {
            let name = b.str("Name").unwrap_or_default();
            let spec = catalog::lookup(name).ok_or_else(|| err(cmd, crate::ps::binder::not_recognized(name).0))?;
            if b.switch("Syntax") {
                Value::String(spec.syntax(ctx.product))
            } else {
                let params: Vec<&str> = spec.available_params(ctx.product).map(|p| p.name).collect();
                json!({ "Name": spec.name, "CommandType": "Cmdlet", "Parameters": params })
            }
        }
        other => return Err(err(other, format!("lyncdr simulator does not implement {other}."))),
    };
    Ok(Started::output(sim.timings.query, out))
}

/// A query's output: the records (`backend::records`) serialized as `ConvertTo-Json` renders them.
pub(crate) fn render<T: Serialize + ?Sized>(cmd: &str, records: &T) -> Result<Value, CmdletError> {
    serde_json::to_value(records).map_err(|e| err(cmd, format!("lyncdr simulator cannot render its output: {e}")))
}

/// The deployment's SIP domain: the longest domain (of at least two labels) every Front End pool
/// is in, e.g. `contoso.com` for `pool01.dal.contoso.com` and `pool01.sea.contoso.com`.
pub(crate) fn sip_domain(sim: &Simulator) -> String {
    let labels: Vec<Vec<&str>> = sim.topo.pools.keys().map(|p| p.as_str().rsplit('.').collect()).collect();
    let Some(first) = labels.first() else { return "contoso.com".into() };
    let mut common = first.len().saturating_sub(1);
    for l in &labels[1..] {
        common = common.min(first.iter().zip(l.iter()).take_while(|(a, b)| a.eq_ignore_ascii_case(b)).count()).min(l.len() - 1);
    }
    let n = common.max(2).min(first.len());
    first[..n].iter().rev().copied().collect::<Vec<_>>().join(".")
}

/// `Resolve-DnsName -Name _xmpp-server._tcp.<SIP domain> -Type SRV`: the XMPP federation
/// records. [INFERRED] `NameTarget` is the Edge pool's FQDN (a real record names its external
/// Access Edge FQDN; the driver maps it to the Edge pool).
fn resolve_dns(sim: &Simulator, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Resolve-DnsName";
    let name = b.str("Name").unwrap_or_default();
    let srv = format!("_xmpp-server._tcp.{}", sip_domain(sim));
    let ty = b.str("Type").unwrap_or("A_AAAA");
    if !name.trim_end_matches('.').eq_ignore_ascii_case(&srv) || !ty.eq_ignore_ascii_case("SRV") || sim.w.xmpp_dns.is_empty() {
        return Err(err(CMD, format!("{name} : DNS name does not exist")));
    }
    let records: Vec<DnsRecord> = (1..)
        .zip(&sim.w.xmpp_dns)
        .map(|(i, e)| DnsRecord {
            name: srv.clone(),
            record_type: "SRV".into(),
            ttl: 3600,
            section: "Answer".into(),
            name_target: Some(e.to_string()),
            priority: Some(10 * i),
            weight: Some(0),
            port: Some(5269),
        })
        .collect();
    render(CMD, &records)
}

/// `Get-CsServerPatchVersion` (SfB 2015 November 2015 CU and later) on the local server: each
/// installed component and its version. Components that local setup installed after the
/// cumulative update (the pairing components, SfB 2019) report the release version until the
/// update is re-applied. The version numbers are the simulator's.
fn patch_version(sim: &Simulator, ctx: &Ctx) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsServerPatchVersion";
    let product = sim.pool_of(&ctx.server).map(|p| p.traits.product).unwrap_or(ctx.product);
    let (name, release, update) = match product {
        Product::Lync2013 => return Err(err(CMD, crate::ps::binder::not_recognized(CMD).0)),
        Product::SfB2015 => ("Skype for Business Server 2015", "6.0.9319.0", "6.0.9319.606"),
        Product::SfB2019 => ("Skype for Business Server 2019", "7.0.2046.0", "7.0.2046.530"),
    };
    let component = |part: &str, version: &str| ServerPatchVersion { component_name: format!("{name}, {part}"), version: version.into() };
    let mut rows = vec![component("Core Components", update), component("Front End Server", update)];
    if sim.w.fe_backup.get(&ctx.server).is_some_and(|b| b.installed) {
        let v = if sim.w.behind_on_updates.contains(&ctx.server) { release } else { update };
        rows.push(component("Backup Service", v));
    }
    render(CMD, &rows)
}

fn server_version(product: Product) -> String {
    match product {
        Product::Lync2013 => "Microsoft Lync Server 2013 (5.0.8308.0): Volume license key installed.".into(),
        Product::SfB2015 => "Skype for Business Server 2015 (6.0.9319.0): Volume license key installed.".into(),
        Product::SfB2019 => "Skype for Business Server 2019 (7.0.2046.0): Volume license key installed.".into(),
    }
}

fn pools(sim: &Simulator, b: &Bound) -> Vec<PoolRecord> {
    let id = b.str("Identity").and_then(|i| Fqdn::parse(i).ok());
    let mut out = Vec::new();
    for p in sim.topo.pools.values() {
        if id.as_ref().is_some_and(|i| i != &p.fqdn) {
            continue;
        }
        let mut services: Vec<String> =
            ["Registrar", "UserServer", "WebServer", "ConferencingServer", "MediationServer", "ApplicationServer"]
                .iter()
                .map(|role| service_id(role, &p.fqdn))
                .collect();
        services.push(service_id("UserDatabase", &p.back_end.primary));
        if p.back_end.primary == p.front_ends[0] && p.front_ends.len() == 1 {
            services.push(service_id("UserStore", &p.fqdn));
        }
        out.push(PoolRecord {
            identity: p.fqdn.to_string(),
            fqdn: p.fqdn.clone(),
            site: format!("Site:{}", p.site),
            computers: p.front_ends.iter().map(ToString::to_string).collect(),
            services,
        });
    }
    for e in sim.topo.edges.values() {
        if id.as_ref().is_some_and(|i| i != &e.fqdn) {
            continue;
        }
        out.push(PoolRecord {
            identity: e.fqdn.to_string(),
            fqdn: e.fqdn.clone(),
            site: format!("Site:{}", e.site),
            computers: e.servers.iter().map(ToString::to_string).collect(),
            services: vec![service_id("EdgeServer", &e.fqdn)],
        });
    }
    out
}

/// `EdgeServer:<pool>`: how a federation route or a media association names its Edge pool.
fn route(edge: &Option<Fqdn>) -> Option<String> {
    edge.as_ref().map(|e| service_id("EdgeServer", e))
}

fn sites(sim: &Simulator, b: &Bound) -> Vec<SiteRecord> {
    let id = b.str("Identity").map(|i| super::strip_identity(i, &["site"]));
    sim.topo
        .sites
        .iter()
        .enumerate()
        .filter(|(_, s)| id.as_ref().is_none_or(|i| i.eq_ignore_ascii_case(s)))
        .map(|(i, s)| {
            let pools: Vec<String> = sim
                .topo
                .pools
                .values()
                .filter(|p| &p.site == s)
                .map(|p| p.fqdn.to_string())
                .chain(sim.topo.edges.values().filter(|e| &e.site == s).map(|e| e.fqdn.to_string()))
                .collect();
            SiteRecord {
                identity: format!("Site:{s}"),
                site_id: i as u64 + 1,
                display_name: s.clone(),
                federation_route: route(&sim.w.sip_federation),
                xmpp_federation_route: route(&sim.w.xmpp_federation),
                pools,
            }
        })
        .collect()
}

fn services(sim: &Simulator, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsService";
    let pool_filter = b.str("PoolFqdn").and_then(|p| Fqdn::parse(p).ok());
    let keep = |f: &Fqdn| pool_filter.as_ref().is_none_or(|p| p == f);
    let mut out = Vec::new();
    if b.switch("EdgeServer") {
        for (e, rt) in &sim.w.edges {
            if keep(e) {
                let service = EdgeServerService {
                    identity: service_id("EdgeServer", e),
                    pool_fqdn: e.clone(),
                    registrar: rt.next_hop.as_ref().map(|n| service_id("Registrar", n)),
                };
                out.push(render(CMD, &service)?);
            }
        }
    }
    if b.switch("Registrar") {
        for p in sim.topo.pools.keys().filter(|p| keep(p)) {
            out.push(json!({ "Identity": format!("Registrar:{p}"), "PoolFqdn": p.to_string(), "BackupRegistrar": sim.topo.partner(p).map(|q| format!("Registrar:{q}")) }));
        }
    }
    for (switch, prefix) in [("ConferencingServer", "ConferencingServer"), ("MediationServer", "MediationServer")] {
        if b.switch(switch) {
            for (p, rt) in &sim.w.pools {
                if keep(p) {
                    let edge = if switch == "MediationServer" { &rt.mediation_edge } else { &rt.conferencing_edge };
                    out.push(render(
                        CMD,
                        &MediaService { identity: service_id(prefix, p), pool_fqdn: p.clone(), edge_server: route(edge) },
                    )?);
                }
            }
        }
    }
    if b.switch("CentralManagement") {
        for (pool, active) in [(&sim.w.cms.master, true), (&sim.w.cms.standby, false)] {
            if let Some(p) = pool.as_ref().filter(|p| keep(p)) {
                let service = CentralManagementService { identity: service_id("CentralManagement", p), pool_fqdn: p.to_string(), active };
                out.push(render(CMD, &service)?);
            }
        }
    }
    if b.switch("CentralManagementDatabase") {
        for (pool, active) in [(&sim.w.cms.master, true), (&sim.w.cms.standby, false)] {
            if let Some(p) = pool.as_ref().filter(|p| keep(p)) {
                let be = &sim.topo.pools[p].back_end;
                out.push(json!({ "Identity": format!("CentralManagementDatabase:{}", be.primary), "PoolFqdn": be.primary.to_string(), "DependentPool": p.to_string(), "Active": active }));
            }
        }
    }
    if b.switch("UserDatabase") {
        for p in sim.topo.pools.values().filter(|p| keep(&p.fqdn)) {
            let service = UserDatabaseService {
                identity: service_id("UserDatabase", &p.back_end.primary),
                pool_fqdn: p.back_end.primary.clone(),
                sql_instance_name: Some("rtc".into()),
                mirror_sql_server: p.back_end.mirror.as_ref().map(ToString::to_string),
                has_witness: p.back_end.witness,
                is_clustered: p.back_end.clustered,
                dependent_service_list: vec![service_id("UserServer", &p.fqdn)],
            };
            out.push(render(CMD, &service)?);
        }
    }
    if b.switch("UserServer") || b.switch("BackupServer") {
        let prefix = if b.switch("UserServer") { "UserServer" } else { "BackupServer" };
        for p in sim.topo.pools.keys().filter(|p| keep(p)) {
            out.push(json!({ "Identity": format!("{prefix}:{p}"), "PoolFqdn": p.to_string() }));
        }
    }
    Ok(Value::Array(out))
}

fn backup_status(sim: &Simulator, ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsBackupServiceStatus";
    let pool = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    let net = sim.net_ref();
    if !net.reaches(Some(&ctx.server), &pool) {
        return Err(err(CMD, errors::pool_unreachable(&pool, "The Backup Service status cannot be read.")));
    }
    let modules: Vec<BackupModule> = match b.str("Category") {
        Some("CMS") => vec![BackupModule::CmsMaster],
        Some("UserData") => vec![BackupModule::PresenceFocus, BackupModule::DataConf],
        Some("RGS") => vec![],
        _ => BackupModule::ALL.to_vec(),
    };
    let statuses: Vec<_> =
        modules.iter().map(|m| (m, replication::module_status(&sim.w, &sim.topo, &net, &pool, *m, sim.timings.sync_capacity))).collect();
    let rank = |e: ExportStatus| match e {
        ExportStatus::ErrorState => 4,
        ExportStatus::NonSteadyState => 3,
        ExportStatus::NotInitialized => 0,
        ExportStatus::SteadyState => 2,
        ExportStatus::FinalState => 1,
    };
    let overall = statuses
        .iter()
        .map(|(_, s)| s.export)
        .filter(|e| *e != ExportStatus::NotInitialized)
        .max_by_key(|e| rank(*e))
        .unwrap_or(ExportStatus::NotInitialized);
    let import_error = statuses.iter().any(|(_, s)| s.import == ImportStatus::ErrorState);
    let status = BackupServiceStatus {
        pool_fqdn: pool.to_string(),
        overall_export_status: overall,
        overall_import_status: if import_error { ImportStatus::ErrorState } else { ImportStatus::NormalState },
        backup_modules: statuses
            .iter()
            .map(|(m, s)| BackupModuleStatus { identity: m.as_str().into(), export_status: s.export, import_status: s.import })
            .collect(),
    };
    render(CMD, &status)
}

fn cms_status(sim: &Simulator, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsManagementStoreReplicationStatus";
    let net = sim.net_ref();
    let available = sim.cms_available();
    if b.switch("CentralManagementStoreStatus") {
        let fes: Vec<String> = match (&sim.w.cms.master, available) {
            (Some(m), true) => sim.topo.pools[m].front_ends.iter().filter(|s| net.host_up(s)).map(ToString::to_string).collect(),
            _ => vec![],
        };
        let replicas: Vec<String> = sim.w.cms.replica_epoch.keys().filter(|s| net.host_up(s)).map(ToString::to_string).collect();
        let status = CmsStoreStatus {
            active_master_fqdn: fes.first().cloned(),
            active_file_transfer_agents: fes,
            active_replicas: if available { replicas } else { vec![] },
            deleted_replicas: vec![],
        };
        return render(CMD, &status);
    }
    if !available {
        return Err(err(CMD, "Cannot connect to the Central Management store. The active master is not available."));
    }
    let filter = b.str("ReplicaFqdn").and_then(|r| Fqdn::parse(r).ok());
    let rows: Vec<CmsReplicaStatus> = sim
        .w
        .cms
        .replica_epoch
        .iter()
        .filter(|(s, _)| filter.as_ref().is_none_or(|f| f == *s))
        .map(|(s, e)| {
            // Replicas report to the master; one it cannot reach keeps its last report time
            // (milliseconds on the simulator's clock; the real driver converts LastStatusReport).
            let last = if sim.master_reaches(s) { Some(sim.now) } else { sim.w.cms.last_contact.get(s).copied() };
            CmsReplicaStatus {
                replica_fqdn: s.clone(),
                up_to_date: *e >= sim.w.cms.epoch && net.host_up(s),
                last_status_report: last.map(|t| t.0),
            }
        })
        .collect();
    render(CMD, &rows)
}

fn mirror_state(sim: &Simulator, _ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsDatabaseMirrorState";
    let pool = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    let be = &sim.topo.pools[&pool].back_end;
    let rt = &sim.w.pools[&pool];
    let net = sim.net_ref();
    let wanted = b.str("DatabaseType").map(|t| match t {
        "CMS" | "CentralMgmt" => Some(DbType::CentralMgmt),
        "App" | "Application" => Some(DbType::Application),
        "User" => Some(DbType::User),
        _ => None,
    });
    let mut rows = Vec::new();
    for (db, role) in &rt.principal {
        if let Some(w) = &wanted
            && *w != Some(*db)
        {
            continue;
        }
        let state = |r: Role| -> &'static str {
            match be.server(r) {
                None => "DatabaseInaccessibleOrMirroringNotEnabled",
                Some(s) if !net.sql_up(s) => "DatabaseUnavailable",
                Some(_) if r == *role => "Principal",
                Some(_) => "Mirror",
            }
        };
        let status = |r: Role| -> &'static str {
            match (be.server(r), be.mirror.is_some()) {
                (_, false) => "NotMirrored",
                (Some(s), true) if net.sql_up(s) && be.server(r.other()).is_some_and(|o| net.sql_up(o)) => "Synchronized",
                _ => "Disconnected",
            }
        };
        let name = match db {
            DbType::User => "rtcxds",
            DbType::CentralMgmt => "xds",
            DbType::Application => "rgsconfig",
        };
        rows.push(DatabaseMirrorState {
            database_name: name.into(),
            database_type: db.as_str().into(),
            state_on_primary: state(Role::Primary).into(),
            state_on_mirror: state(Role::Mirror).into(),
            mirroring_status_on_primary: status(Role::Primary).into(),
            mirroring_status_on_mirror: status(Role::Mirror).into(),
        });
    }
    render(CMD, &rows)
}

fn fabric_state(sim: &Simulator, ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsPoolFabricState";
    let pool = sim.pool_fqdn(CMD, b, "PoolFqdn")?;
    let net = sim.net_ref();
    if !net.reaches(Some(&ctx.server), &pool) {
        return Err(err(CMD, errors::pool_unreachable(&pool, "The Windows Fabric state of the pool cannot be read.")));
    }
    let p = &sim.topo.pools[&pool];
    let state = sim.w.pools[&pool].state;
    let running: Vec<Value> = p.front_ends.iter().map(|s| json!({ "Fqdn": s.to_string(), "Running": net.host_up(s) })).collect();
    let be_ok = replication::back_end_available(&sim.w, &sim.topo, &net, &pool);
    Ok(json!({
        "PoolFqdn": pool.to_string(),
        "PoolFailoverState": state,
        "FrontEnds": running,
        "BackEndAvailable": be_ok,
        "HealthState": if be_ok { "Healthy" } else { "Degraded" },
    }))
}

fn windows_services(sim: &Simulator, ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsWindowsService";
    let server = match b.str("ComputerName") {
        Some(c) => Fqdn::parse(c).map_err(|_| err(CMD, format!("Cannot find computer \"{c}\".")))?,
        None => ctx.server.clone(),
    };
    let net = sim.net_ref();
    // Another computer's services are read over the network from the server running the cmdlet.
    if !net.reaches(Some(&ctx.server), &server) {
        return Err(err(CMD, format!("Cannot open Service Control Manager on computer '{server}'.")));
    }
    let service = |name: &str, running: bool| WindowsService {
        name: name.into(),
        status: if running { "Running" } else { "Stopped" }.into(),
        computer_name: server.to_string(),
    };
    let mut rows = Vec::new();
    if let Some(e) = sim.edge_of(&server) {
        let running = sim.w.edges[&e.fqdn].services.get(&server).copied().unwrap_or(false);
        for name in ["RTCSRV", "RTCMRAUTH", "RTCMEDIARELAY", "RTCDATAPROXY", "REPLICA"] {
            rows.push(service(name, running));
        }
    } else if sim.pool_of(&server).is_some() {
        rows.push(service("RTCSRV", true));
        // LYNCBACKUP exists only once local setup installed the pairing components.
        if let Some(b) = sim.w.fe_backup.get(&server).filter(|b| b.installed) {
            rows.push(service("LYNCBACKUP", b.running));
        }
    }
    if let Some(n) = b.str("Name") {
        rows.retain(|r| r.name.eq_ignore_ascii_case(n));
        if rows.is_empty() {
            return Err(err(CMD, format!("Cannot find any service with service name '{n}'.")));
        }
    }
    render(CMD, &rows)
}

fn user_pool_info(sim: &Simulator, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CsUserPoolInfo";
    let id = b.str("Identity").unwrap_or_default();
    let Some(home) = super::users::home_of(sim, id) else {
        return Err(err(CMD, errors::unknown_identity(id)));
    };
    let backup = sim.topo.partner(&home).cloned();
    let first = |p: &Fqdn| sim.topo.pools.get(p).and_then(|x| x.front_ends.first()).map(ToString::to_string);
    let info = UserPoolInfo {
        identity: crate::model::sip::normalize_sip(id),
        primary_pool_fqdn: Some(home.to_string()),
        backup_pool_fqdn: backup.as_ref().map(ToString::to_string),
        user_services_pool_fqdn: Some(home.to_string()),
        primary_pool_primary_registrar: first(&home),
        backup_pool_primary_registrar: backup.as_ref().and_then(first),
        primary_pool_machines_in_preferred_order: sim.topo.pools[&home].front_ends.iter().map(ToString::to_string).collect(),
    };
    render(CMD, &info)
}

fn cim(sim: &Simulator, ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    const CMD: &str = "Get-CimInstance";
    let class = b.str("ClassName").unwrap_or_default();
    let pool = sim.pool_of(&ctx.server);
    match class.to_ascii_lowercase().as_str() {
        "win32_operatingsystem" => {
            let os = pool.map(|p| p.traits.os.clone()).unwrap_or_else(|| "Windows Server 2012 R2".into());
            render(CMD, &OperatingSystem { caption: format!("Microsoft {os} Datacenter"), cs_name: ctx.server.host().to_ascii_uppercase() })
        }
        "win32_computersystem" => {
            let virt = pool.map(|p| p.traits.virtualization).unwrap_or_default();
            let (maker, model) = match virt {
                Virtualization::Virtual => ("Microsoft Corporation", "Virtual Machine"),
                Virtualization::Physical => ("HP", "ProLiant DL380 Gen9"),
            };
            render(CMD, &ComputerSystem { manufacturer: maker.into(), model: model.into(), name: ctx.server.host().to_ascii_uppercase() })
        }
        other => Err(err(CMD, format!("Invalid class \"{other}\"."))),
    }
}
