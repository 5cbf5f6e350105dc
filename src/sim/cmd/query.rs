//! The read-only cmdlets lyncdr observes a deployment with, returning objects shaped like the
//! ones Lync's cmdlets return (as `ConvertTo-Json` would render them): topology (`Get-CsPool`,
//! `Get-CsSite`, `Get-CsService`), pairing (`Get-CsPoolBackupRelationship`), the Backup Service
//! (`Get-CsBackupServiceStatus`, `Get-CsBackupServiceConfiguration`), the CMS
//! (`Get-CsManagementStoreReplicationStatus`), Back End mirroring (`Get-CsDatabaseMirrorState`),
//! pool health and failover state (`Get-CsPoolFabricState`), users (`Get-CsUserPoolInfo`) and
//! host facts (`Get-CsServerVersion`, `Get-CimInstance`, `Get-Command`).

use serde_json::{Value, json};

use super::{Ctx, Started};
use crate::model::{BackupModule, DbType, ExportStatus, FailoverState, Fqdn, Product, Role, Virtualization};
use crate::ps::{Bound, catalog};
use crate::sim::errors::{self, CmdletError, err};
use crate::sim::{Simulator, replication};

pub(crate) fn run(sim: &mut Simulator, ctx: &Ctx, b: &Bound) -> Result<Started, CmdletError> {
    let cmd = b.spec.name;
    let out = match cmd {
        "Get-CsPool" => pools(sim, b),
        "Get-CsSite" => sites(sim, b),
        "Get-CsService" => services(sim, b),
        "Get-CsPoolBackupRelationship" => {
            let pool = sim.pool_fqdn(cmd, b, "PoolFqdn")?;
            json!({
                "PoolFqdn": pool.to_string(),
                "BackupPoolFqdn": sim.topo.partner(&pool).map(ToString::to_string),
                // [INFERRED] Lync keeps the pool failover state in the CMS; the real driver reads it
                // there (docs/architecture.md, "Observation"). The simulator reports it with the pairing.
                "FailoverState": failover_state(sim.w.pools[&pool].state),
            })
        }
        "Get-CsBackupServiceConfiguration" => json!({
            "Identity": "Global",
            "SyncInterval": sim.w.sync_interval.to_timespan(),
            "MaxBatchesPerCmsSync": 500,
            "MaxBatchesPerUserStoreSync": 500,
            "MaxConcurrentCalls": 10,
            "MaxDataConfPackageSizeKB": 102400,
        }),
        "Get-CsBackupServiceStatus" => backup_status(sim, ctx, b)?,
        "Get-CsManagementStoreReplicationStatus" => cms_status(sim, b)?,
        "Get-CsDatabaseMirrorState" => mirror_state(sim, ctx, b)?,
        "Get-CsPoolFabricState" => fabric_state(sim, ctx, b)?,
        "Get-CsUserPoolInfo" => user_pool_info(sim, b)?,
        "Get-CsSipDomain" => json!([{ "Identity": sip_domain(sim), "Name": sip_domain(sim), "IsDefault": true }]),
        "Resolve-DnsName" => resolve_dns(sim, b)?,
        "Get-CsServerPatchVersion" => patch_version(sim, ctx)?,
        "Get-CsServerVersion" => {
            let product = sim.pool_of(&ctx.server).map(|p| p.traits.product).unwrap_or(ctx.product);
            Value::String(server_version(product))
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
    Ok(Value::Array(
        sim.w
            .xmpp_dns
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({ "Name": srv, "Type": "SRV", "TTL": 3600, "Section": "Answer", "NameTarget": e.to_string(), "Priority": 10 * (i + 1), "Weight": 0, "Port": 5269 })
            })
            .collect(),
    ))
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
    let mut rows = vec![
        json!({ "ComponentName": format!("{name}, Core Components"), "Version": update }),
        json!({ "ComponentName": format!("{name}, Front End Server"), "Version": update }),
    ];
    if sim.w.fe_backup.get(&ctx.server).is_some_and(|b| b.installed) {
        let v = if sim.w.behind_on_updates.contains(&ctx.server) { release } else { update };
        rows.push(json!({ "ComponentName": format!("{name}, Backup Service"), "Version": v }));
    }
    Ok(Value::Array(rows))
}

fn server_version(product: Product) -> String {
    match product {
        Product::Lync2013 => "Microsoft Lync Server 2013 (5.0.8308.0): Volume license key installed.".into(),
        Product::SfB2015 => "Skype for Business Server 2015 (6.0.9319.0): Volume license key installed.".into(),
        Product::SfB2019 => "Skype for Business Server 2019 (7.0.2046.0): Volume license key installed.".into(),
    }
}

fn pools(sim: &Simulator, b: &Bound) -> Value {
    let id = b.str("Identity").and_then(|i| Fqdn::parse(i).ok());
    let mut out = Vec::new();
    for p in sim.topo.pools.values() {
        if id.as_ref().is_some_and(|i| i != &p.fqdn) {
            continue;
        }
        let mut services = vec![
            format!("Registrar:{}", p.fqdn),
            format!("UserServer:{}", p.fqdn),
            format!("WebServer:{}", p.fqdn),
            format!("ConferencingServer:{}", p.fqdn),
            format!("MediationServer:{}", p.fqdn),
            format!("ApplicationServer:{}", p.fqdn),
            format!("UserDatabase:{}", p.back_end.primary),
        ];
        if p.back_end.primary == p.front_ends[0] && p.front_ends.len() == 1 {
            services.push(format!("UserStore:{}", p.fqdn));
        }
        out.push(json!({
            "Identity": p.fqdn.to_string(),
            "Fqdn": p.fqdn.to_string(),
            "Site": format!("Site:{}", p.site),
            "Computers": p.front_ends.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "Services": services,
        }));
    }
    for e in sim.topo.edges.values() {
        if id.as_ref().is_some_and(|i| i != &e.fqdn) {
            continue;
        }
        out.push(json!({
            "Identity": e.fqdn.to_string(),
            "Fqdn": e.fqdn.to_string(),
            "Site": format!("Site:{}", e.site),
            "Computers": e.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "Services": [format!("EdgeServer:{}", e.fqdn)],
        }));
    }
    Value::Array(out)
}

fn route(edge: &Option<Fqdn>) -> Value {
    edge.as_ref().map(|e| Value::String(format!("EdgeServer:{e}"))).unwrap_or(Value::Null)
}

fn sites(sim: &Simulator, b: &Bound) -> Value {
    let id = b.str("Identity").map(|i| super::strip_identity(i, &["site"]));
    let out: Vec<Value> = sim
        .topo
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
            json!({
                "Identity": format!("Site:{s}"),
                "SiteId": i + 1,
                "DisplayName": s,
                "FederationRoute": route(&sim.w.sip_federation),
                "XmppFederationRoute": route(&sim.w.xmpp_federation),
                "Pools": pools,
            })
        })
        .collect();
    Value::Array(out)
}

fn services(sim: &Simulator, b: &Bound) -> Value {
    let pool_filter = b.str("PoolFqdn").and_then(|p| Fqdn::parse(p).ok());
    let keep = |f: &Fqdn| pool_filter.as_ref().is_none_or(|p| p == f);
    let mut out = Vec::new();
    if b.switch("EdgeServer") {
        for (e, rt) in &sim.w.edges {
            if keep(e) {
                out.push(json!({ "Identity": format!("EdgeServer:{e}"), "PoolFqdn": e.to_string(), "Registrar": rt.next_hop.as_ref().map(|n| format!("Registrar:{n}")) }));
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
                    out.push(json!({ "Identity": format!("{prefix}:{p}"), "PoolFqdn": p.to_string(), "EdgeServer": route(edge) }));
                }
            }
        }
    }
    if b.switch("CentralManagement") {
        for (pool, active) in [(&sim.w.cms.master, true), (&sim.w.cms.standby, false)] {
            if let Some(p) = pool.as_ref().filter(|p| keep(p)) {
                out.push(json!({ "Identity": format!("CentralManagement:{p}"), "PoolFqdn": p.to_string(), "Active": active }));
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
            out.push(json!({
                "Identity": format!("UserDatabase:{}", p.back_end.primary),
                "PoolFqdn": p.back_end.primary.to_string(),
                "SqlInstanceName": "rtc",
                "MirrorSqlServer": p.back_end.mirror.as_ref().map(ToString::to_string),
                "HasWitness": p.back_end.witness,
                "IsClustered": p.back_end.clustered,
                "DependentServiceList": [format!("UserServer:{}", p.fqdn)],
            }));
        }
    }
    if b.switch("UserServer") || b.switch("BackupServer") {
        let prefix = if b.switch("UserServer") { "UserServer" } else { "BackupServer" };
        for p in sim.topo.pools.keys().filter(|p| keep(p)) {
            out.push(json!({ "Identity": format!("{prefix}:{p}"), "PoolFqdn": p.to_string() }));
        }
    }
    Value::Array(out)
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
    let import_error = statuses.iter().any(|(_, s)| s.import == crate::model::ImportStatus::ErrorState);
    Ok(json!({
        "PoolFqdn": pool.to_string(),
        "OverallExportStatus": overall,
        "OverallImportStatus": if import_error { "ErrorState" } else { "NormalState" },
        "BackupModules": statuses.iter().map(|(m, s)| json!({ "Identity": m.as_str(), "ExportStatus": s.export, "ImportStatus": s.import })).collect::<Vec<_>>(),
    }))
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
        return Ok(json!({
            "ActiveMasterFqdn": fes.first(),
            "ActiveFileTransferAgents": fes,
            "ActiveReplicas": if available { replicas } else { vec![] },
            "DeletedReplicas": [],
        }));
    }
    if !available {
        return Err(err(CMD, "Cannot connect to the Central Management store. The active master is not available."));
    }
    let filter = b.str("ReplicaFqdn").and_then(|r| Fqdn::parse(r).ok());
    let rows: Vec<Value> = sim
        .w
        .cms
        .replica_epoch
        .iter()
        .filter(|(s, _)| filter.as_ref().is_none_or(|f| f == *s))
        .map(|(s, e)| {
            // Replicas report to the master; one it cannot reach keeps its last report time
            // (milliseconds on the simulator's clock; the real driver converts LastStatusReport).
            let last = if sim.master_reaches(s) { Some(sim.now) } else { sim.w.cms.last_contact.get(s).copied() };
            json!({ "ReplicaFqdn": s.to_string(), "UpToDate": *e >= sim.w.cms.epoch && net.host_up(s), "LastStatusReport": last.map(|t| t.0) })
        })
        .collect();
    Ok(Value::Array(rows))
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
        rows.push(json!({
            "DatabaseName": name,
            "DatabaseType": db.as_str(),
            "StateOnPrimary": state(Role::Primary),
            "StateOnMirror": state(Role::Mirror),
            "MirroringStatusOnPrimary": status(Role::Primary),
            "MirroringStatusOnMirror": status(Role::Mirror),
        }));
    }
    Ok(Value::Array(rows))
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
        "PoolFailoverState": failover_state(state),
        "FrontEnds": running,
        "BackEndAvailable": be_ok,
        "HealthState": if be_ok { "Healthy" } else { "Degraded" },
    }))
}

fn failover_state(state: FailoverState) -> &'static str {
    match state {
        FailoverState::Normal => "Normal",
        FailoverState::FailedOver => "FailedOver",
        FailoverState::FailingOver => "FailingOver",
        FailoverState::FailingBack => "FailingBack",
    }
}

fn windows_services(sim: &Simulator, ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    let server = match b.str("ComputerName") {
        Some(c) => Fqdn::parse(c).map_err(|_| err("Get-CsWindowsService", format!("Cannot find computer \"{c}\".")))?,
        None => ctx.server.clone(),
    };
    let net = sim.net_ref();
    // Another computer's services are read over the network from the server running the cmdlet.
    if !net.reaches(Some(&ctx.server), &server) {
        return Err(err("Get-CsWindowsService", format!("Cannot open Service Control Manager on computer '{server}'.")));
    }
    let status = |running: bool| if running { "Running" } else { "Stopped" };
    let mut rows = Vec::new();
    if let Some(e) = sim.edge_of(&server) {
        let running = sim.w.edges[&e.fqdn].services.get(&server).copied().unwrap_or(false);
        for name in ["RTCSRV", "RTCMRAUTH", "RTCMEDIARELAY", "RTCDATAPROXY", "REPLICA"] {
            rows.push(json!({ "Name": name, "Status": status(running), "ComputerName": server.to_string() }));
        }
    } else if sim.pool_of(&server).is_some() {
        rows.push(json!({ "Name": "RTCSRV", "Status": "Running", "ComputerName": server.to_string() }));
        // LYNCBACKUP exists only once local setup installed the pairing components.
        if let Some(b) = sim.w.fe_backup.get(&server).filter(|b| b.installed) {
            rows.push(json!({ "Name": "LYNCBACKUP", "Status": status(b.running), "ComputerName": server.to_string() }));
        }
    }
    if let Some(n) = b.str("Name") {
        rows.retain(|r| r["Name"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(n)));
        if rows.is_empty() {
            return Err(err("Get-CsWindowsService", format!("Cannot find any service with service name '{n}'.")));
        }
    }
    Ok(Value::Array(rows))
}

fn user_pool_info(sim: &Simulator, b: &Bound) -> Result<Value, CmdletError> {
    let id = b.str("Identity").unwrap_or_default();
    let Some(home) = super::users::home_of(sim, id) else {
        return Err(err("Get-CsUserPoolInfo", errors::unknown_identity(id)));
    };
    let backup = sim.topo.partner(&home).cloned();
    let first = |p: &Fqdn| sim.topo.pools.get(p).and_then(|x| x.front_ends.first()).map(ToString::to_string);
    Ok(json!({
        "Identity": crate::model::sip::normalize_sip(id),
        "PrimaryPoolFqdn": home.to_string(),
        "BackupPoolFqdn": backup.as_ref().map(ToString::to_string),
        "UserServicesPoolFqdn": home.to_string(),
        "PrimaryPoolPrimaryRegistrar": first(&home),
        "BackupPoolPrimaryRegistrar": backup.as_ref().and_then(first),
        "PrimaryPoolMachinesInPreferredOrder": sim.topo.pools[&home].front_ends.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

fn cim(sim: &Simulator, ctx: &Ctx, b: &Bound) -> Result<Value, CmdletError> {
    let class = b.str("ClassName").unwrap_or_default();
    let pool = sim.pool_of(&ctx.server);
    match class.to_ascii_lowercase().as_str() {
        "win32_operatingsystem" => {
            let os = pool.map(|p| p.traits.os.clone()).unwrap_or_else(|| "Windows Server 2012 R2".into());
            Ok(json!({ "Caption": format!("Microsoft {os} Datacenter"), "CSName": ctx.server.host().to_ascii_uppercase() }))
        }
        "win32_computersystem" => {
            let virt = pool.map(|p| p.traits.virtualization).unwrap_or_default();
            let (maker, model) = match virt {
                Virtualization::Virtual => ("Microsoft Corporation", "Virtual Machine"),
                Virtualization::Physical => ("HP", "ProLiant DL380 Gen9"),
            };
            Ok(json!({ "Manufacturer": maker, "Model": model, "Name": ctx.server.host().to_ascii_uppercase() }))
        }
        other => Err(err("Get-CimInstance", format!("Invalid class \"{other}\"."))),
    }
}
