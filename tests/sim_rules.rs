//! The simulator rejects every out-of-order sequence the domain document forbids
//! (`lync-dr-domain.md`, section 8, "Safe-order rules"): one test per rule that applies to the
//! simulator. Each test builds a small scenario, runs the out-of-order sequence and checks that
//! it is refused (the rule the cmdlet error carries, the documented text where the document
//! quotes Lync verbatim), then runs the in-order sequence from the same starting state and checks
//! that every step succeeds and the end state is right. Where Lync enforces a rule only through
//! its consequences (federation that does not work, content left behind, data lost), the test
//! checks the consequence and says so. Refusals of Lync's own are plain cmdlet errors; refusals
//! of rules Lync lets through come only in strict mode and start with
//! `[lyncdr simulator, strict mode]`.
//!
//! | Rule | Test, or why the rule does not apply |
//! |---|---|
//! | 1 | `rule_01_fail_back_before_cross_failover` |
//! | 2 | `rule_02_same_pool_fqdn_for_failover_and_failback` |
//! | 3 | `rule_03_cms_before_pool` |
//! | 4 | `rule_04_cms_replicated_before_pool_failover` |
//! | 5 | `rule_05_principal_found_before_cms_failover` |
//! | 6 | does not apply: a Lync 2010-hosted CMS; the model has no Lync 2010 pools, `Install-CsDatabase` or `Move-CsManagementServer` |
//! | 7 | does not apply: `Move-CsManagementServer` (Lync 2010 CMS move), for the same reason |
//! | 8 | `rule_08_configuration_backed_up_before_cms_move` (strict mode) |
//! | 9 | `rule_09_no_force_outside_disaster_recovery` (strict mode) |
//! | 10 | `rule_10_cms_failover_runs_in_target_pool` |
//! | 11 | `rule_11_edge_next_hop_before_pool_failover` (verbatim JJ204678 text) |
//! | 12 | `rule_12_backup_pool_must_exist` |
//! | 13 | `rule_13_pairing_procedure_in_order` (publish, local setup, LYNCBACKUP, sync) and `rule_13_backup_service_started_before_failover` |
//! | 14 | `rule_14_pairing_one_to_one_and_reciprocal` (consequence: the scenario format refuses it; the topology edit pairs both ways) and `rule_31_backup_data_removed_after_repairing` (former partner unpaired) |
//! | 15 | `rule_15_failback_only_when_pool_back_online` |
//! | 16 | `rule_16_cms_may_stay_in_backup_pool` (a permission: nothing to refuse) |
//! | 17 | `rule_17_disaster_mode_when_back_end_down` |
//! | 18 | `rule_18_user_database_before_centralmgmt` (strict mode) |
//! | 19 | `rule_19_federation_needs_setup_rerun` (consequence: federation does not work until setup re-runs) |
//! | 20 | `rule_20_one_federation_edge_pool` (consequence: a second route replaces the first) |
//! | 21 | `rule_21_xmpp_edge_failover_order` (strict mode) |
//! | 22 | `rule_22_front_end_uses_running_remote_edge` (strict mode) |
//! | 23 | `rule_23_edge_failback_before_pool_failback` (strict mode) |
//! | 24 | `rule_24_conference_content_synced_after_failback` (consequence: content stays behind) |
//! | 25 | `rule_25_response_groups_exported_and_imported` (consequence: no export, nothing to import) |
//! | 26 | `rule_26_response_group_names_unique` |
//! | 27 | does not apply: the LIS database is not modelled and its restore has no order to violate |
//! | 28 | `rule_28_call_park_in_both_pools` (strict mode) |
//! | 29 | `rule_29_final_state_only_once_read_only` (consequence: the status readings) |
//! | 30 | `rule_30_no_move_conference_data_in_dr` (strict mode) |
//! | 31 | `rule_31_backup_data_removed_after_repairing` (strict mode) |
//! | 32 | does not apply: changing SyncInterval has no order to violate |
//!
//! Also covered: lenient mode records hazards instead of refusing
//! (`lenient_mode_records_hazards_instead_of_refusing`); PowerShell binding rejects the
//! documentation's wrong parameter names exactly as PowerShell does
//! (`powershell_rejects_the_documented_wrong_parameter_names`); data loss accounting
//! (`data_loss_of_disaster_mode_failover_and_failback`, `data_loss_none_in_planned_failover`).

use lyncdr::model::{BackupModule, FailoverState, Fqdn, Product, RunOn};
use lyncdr::ps::{bind, binder, parse_line};
use lyncdr::scenario::Scenario;
use lyncdr::sim::script::{LineResult, run_script};
use lyncdr::sim::{CmdletError, Failure, Outcome, Simulator};
use serde_json::{Value, json};

const DAL: &str = "pool01.dal.contoso.com";
const SEA: &str = "pool01.sea.contoso.com";
const CHI: &str = "pool01.chi.contoso.com";
const EDGE_DAL: &str = "edge01.dal.contoso.com";
const EDGE_SEA: &str = "edge01.sea.contoso.com";
const STRICT: &str = "[lyncdr simulator, strict mode]";

/// Local setup on an Edge server (rule 19: "rerun setup on the Edge server(s)").
const SETUP: &str = r"& 'C:\Program Files\Microsoft Lync Server 2013\Deployment\Bootstrapper.exe'";

/// Dallas and Seattle: paired Enterprise pools with mirrored Back Ends (no witness), each with a
/// two-server Edge pool whose next hop is the local pool. Chicago: an unpaired Standard Edition
/// pool, which can host the CMS away from the pair. Each test appends `cms:`, `federation:`
/// and `state:`.
const SITES: &str = "
name: sim-rules
product: Lync2013
sites:
  - name: Dallas
    frontEndPools:
      - fqdn: pool01.dal.contoso.com
        edition: Enterprise
        users: 1000
        namedUsers: [sip:alice@contoso.com]
        backEnd: {primary: sql01.dal.contoso.com, mirror: sql02.dal.contoso.com}
        responseGroups: [Helpdesk, Payroll]
    edgePools:
      - {fqdn: edge01.dal.contoso.com, nextHop: pool01.dal.contoso.com, servers: 2}
  - name: Seattle
    frontEndPools:
      - fqdn: pool01.sea.contoso.com
        edition: Enterprise
        users: 1000
        backEnd: {primary: sql01.sea.contoso.com, mirror: sql02.sea.contoso.com}
        responseGroups: [Facilities]
    edgePools:
      - {fqdn: edge01.sea.contoso.com, nextHop: pool01.sea.contoso.com, servers: 2}
  - name: Chicago
    frontEndPools:
      - {fqdn: pool01.chi.contoso.com, edition: Standard, users: 100}
pairs:
  - [pool01.dal.contoso.com, pool01.sea.contoso.com]
";

fn f(s: &str) -> Fqdn {
    Fqdn::parse(s).expect("valid FQDN")
}

fn simulator(yaml: &str) -> Simulator {
    let s = Scenario::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    Simulator::new(&s)
}

/// The base deployment plus `tail` (CMS, federation, state).
fn deployment(tail: &str) -> Simulator {
    simulator(&format!("{SITES}{tail}"))
}

/// The base sites with one edit (`from` must occur exactly once).
fn sites_with(from: &str, to: &str) -> String {
    assert_eq!(SITES.matches(from).count(), 1, "`{from}` must occur once in SITES");
    SITES.replace(from, to)
}

fn run_on(sim: &Simulator, on: &str) -> RunOn {
    let target = f(on);
    let topo = sim.topology();
    if topo.pools.contains_key(&target) || topo.edges.contains_key(&target) { RunOn::Pool(target) } else { RunOn::Server(target) }
}

/// Runs one PowerShell line on `on` (a pool, an Edge pool or a server), as `#! on` would.
fn invoke(sim: &mut Simulator, on: &str, line: &str) -> Result<Value, Failure> {
    let inv = parse_line(line, &binder::is_switch).unwrap_or_else(|e| panic!("`{line}` does not parse: {e}")).expect("a command");
    let on = run_on(sim, on);
    sim.run(&on, &inv)
}

/// Runs a rehearsal script; every line must succeed.
#[track_caller]
fn run_ok(sim: &mut Simulator, script: &str) -> Vec<LineResult> {
    let out = run_script(sim, script);
    for l in &out {
        assert!(l.ok, "line {} `{}` failed at {}: {}", l.number, l.line, l.at, l.error.as_deref().unwrap_or_default());
    }
    out
}

/// The output of the last script line starting with `command`.
#[track_caller]
fn output<'a>(lines: &'a [LineResult], command: &str) -> &'a Value {
    lines
        .iter()
        .rev()
        .find(|l| l.line.starts_with(command))
        .and_then(|l| l.output.as_ref())
        .unwrap_or_else(|| panic!("no output from `{command}`"))
}

/// The call is refused with a cmdlet error that carries `rule`, logged as an error.
#[track_caller]
fn refused(sim: &mut Simulator, on: &str, line: &str, rule: u8) -> CmdletError {
    match invoke(sim, on, line) {
        Err(Failure::Cmdlet(e)) => {
            assert_eq!(e.rule, Some(rule), "`{line}` was refused, but not for rule {rule}: {e}");
            assert_eq!(sim.log().last().map(|r| r.outcome), Some(Outcome::Error));
            e
        }
        other => panic!("`{line}` should have been refused (rule {rule}), got {other:?}"),
    }
}

/// Refused by Lync itself (the simulator reproduces Lync's refusal in every mode).
#[track_caller]
fn refused_by_lync(sim: &mut Simulator, on: &str, line: &str, rule: u8) -> CmdletError {
    let e = refused(sim, on, line, rule);
    assert!(!e.message.starts_with(STRICT), "Lync refuses this itself: {e}");
    e
}

/// Refused by the simulator's strict mode (Lync would let it through).
#[track_caller]
fn refused_strictly(sim: &mut Simulator, on: &str, line: &str, rule: u8) -> CmdletError {
    let e = refused(sim, on, line, rule);
    assert!(e.message.starts_with(&format!("{STRICT} safe-order rule {rule}: ")), "{e}");
    e
}

/// The call fails as a consequence of the state, with no rule attached.
#[track_caller]
fn fails(sim: &mut Simulator, on: &str, line: &str) -> CmdletError {
    match invoke(sim, on, line) {
        Err(Failure::Cmdlet(e)) => {
            assert_eq!(e.rule, None, "{e}");
            e
        }
        other => panic!("`{line}` should have failed, got {other:?}"),
    }
}

fn state(sim: &Simulator, pool: &str) -> FailoverState {
    sim.snapshot().pools[&f(pool)].state
}

fn served_by(sim: &Simulator, pool: &str) -> String {
    sim.snapshot().pools[&f(pool)].served_by.to_string()
}

fn cms_pool(sim: &Simulator) -> Option<String> {
    sim.snapshot().cms.active_pool.map(|p| p.to_string())
}

/// The cmdlets that changed the deployment, in order.
fn mutations(sim: &Simulator) -> Vec<&str> {
    sim.log().iter().filter(|r| r.mutating && r.outcome == Outcome::Ok).map(|r| r.cmdlet.as_str()).collect()
}

/// `(Get-CsBackupServiceStatus -PoolFqdn <pool>).BackupModules` → ExportStatus of one module.
fn export_status(sim: &mut Simulator, on: &str, pool: &str, module: &str) -> String {
    let v = invoke(sim, on, &format!("Get-CsBackupServiceStatus -PoolFqdn {pool}")).expect("status");
    let row = v["BackupModules"].as_array().and_then(|m| m.iter().find(|m| m["Identity"] == module)).cloned().unwrap_or_default();
    row["ExportStatus"].as_str().unwrap_or("missing").to_string()
}

/// Changes of `pool`'s users the partner has not imported: (in the home store, in the backup store).
fn unreplicated(sim: &Simulator, pool: &str) -> (f64, f64) {
    let mut home = 0.0;
    let mut backup = 0.0;
    for m in [BackupModule::PresenceFocus, BackupModule::DataConf] {
        let r = &sim.world().data[&(f(pool), m)];
        home += r.home_ahead;
        backup += r.backup_ahead + r.restore;
    }
    (home, backup)
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
}

// ----------------------------------------------------------------------------------------------

/// Rule 1 (JJ721939): while Dallas's users are failed over to Seattle, Seattle's users can move
/// to Dallas only after Dallas's own users are failed back; the reverse order makes
/// `Invoke-CsPoolFailOver` fail.
#[test]
fn rule_01_fail_back_before_cross_failover() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\nstate: {failedOver: [pool01.dal.contoso.com]}\n");

    let e = refused_by_lync(&mut sim, DAL, "Invoke-CsPoolFailOver -PoolFqdn pool01.sea.contoso.com", 1);
    assert!(e.message.contains("first fail back \"pool01.dal.contoso.com\""), "{e}");
    assert_eq!((state(&sim, DAL), state(&sim, SEA)), (FailoverState::FailedOver, FailoverState::Normal), "nothing changed");

    run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com
        # Seattle's Edge must not use Seattle as its next hop when Seattle fails over (rule 11).
        Set-CsEdgeServer -Identity EdgeServer:edge01.sea.contoso.com -Registrar Registrar:pool01.dal.contoso.com
        #! wait 3m
        Invoke-CsPoolFailOver -PoolFqdn pool01.sea.contoso.com
        ",
    );
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::Normal, DAL.to_string()));
    assert_eq!((state(&sim, SEA), served_by(&sim, SEA)), (FailoverState::FailedOver, DAL.to_string()));
    assert!(sim.snapshot().all_users_served);
    assert_eq!(mutations(&sim), ["Invoke-CsPoolFailBack", "Set-CsEdgeServer", "Invoke-CsPoolFailOver"]);
}

/// Rule 2 (JJ721939, C2): failover and failback name the same pool, the users' home pool.
/// Failing back with the partner's FQDN is refused with rule 2 ("is not failed over"). Failing
/// over with the partner's FQDN is refused only as a consequence: it would send the surviving
/// pool's users to the pool that is down.
#[test]
fn rule_02_same_pool_fqdn_for_failover_and_failback() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\nstate: {down: [site/Dallas]}\n");

    let e = fails(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.sea.contoso.com -DisasterMode");
    assert!(e.message.contains("Unable to contact pool \"pool01.dal.contoso.com\""), "{e}");
    assert_eq!(state(&sim, SEA), FailoverState::Normal);

    run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        #! fault up:site/Dallas
        ",
    );
    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailBack -PoolFqdn pool01.sea.contoso.com", 2);
    assert!(e.message.contains("Pool \"pool01.sea.contoso.com\" is not failed over"), "{e}");
    assert_eq!(served_by(&sim, DAL), SEA, "Dallas's users stay on Seattle");

    run_ok(&mut sim, "#! on pool01.dal.contoso.com\nInvoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com");
    for pool in [DAL, SEA] {
        assert_eq!((state(&sim, pool), served_by(&sim, pool)), (FailoverState::Normal, pool.to_string()));
    }
    assert!(sim.snapshot().all_users_served);
}

/// Rule 3 (JJ204678, JJ205376): the CMS hosted on the failed pool is failed over (and validated)
/// before the pool.
#[test]
fn rule_03_cms_before_pool() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nstate: {down: [site/Dallas]}\n");

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", 3);
    assert!(e.message.contains("hosts the active Central Management Server"), "{e}");
    assert_eq!(state(&sim, DAL), FailoverState::Normal);

    let out = run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Invoke-CsManagementServerFailover -WhatIf
        Get-CsPoolBackupRelationship -PoolFqdn pool01.dal.contoso.com
        Get-CsDatabaseMirrorState -DatabaseType CentralMgmt -PoolFqdn pool01.sea.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip' -LocalStore
        Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -Force
        Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus
        #! wait 3m
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        ",
    );
    assert_eq!(output(&out, "Invoke-CsManagementServerFailover -WhatIf")["CentralManagementStorePool"], DAL);
    assert_eq!(output(&out, "Get-CsPoolBackupRelationship")["BackupPoolFqdn"], SEA);
    let master = output(&out, "Get-CsManagementStoreReplicationStatus")["ActiveMasterFqdn"].as_str().unwrap_or_default().to_string();
    assert!(master.ends_with(".sea.contoso.com"), "the validated CMS master is in Seattle: {master}");
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
    assert!(sim.snapshot().cms.available);
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
    assert!(sim.snapshot().all_users_served);
}

/// Rule 4 (JJ204678): after the CMS failover, every replica must be up to date before users are
/// failed over; until the change has replicated, the pool failover is refused.
#[test]
fn rule_04_cms_replicated_before_pool_failover() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nstate: {down: [site/Dallas]}\n");
    run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip' -LocalStore
        Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -Force
        ",
    );

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", 4);
    assert!(e.message.contains("is not up to date"), "{e}");
    assert_eq!(state(&sim, DAL), FailoverState::Normal);

    let out = run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        #! wait 3m
        Get-CsManagementStoreReplicationStatus
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        ",
    );
    let replicas = output(&out, "Get-CsManagementStoreReplicationStatus").as_array().cloned().unwrap_or_default();
    let seattle: Vec<&Value> =
        replicas.iter().filter(|r| r["ReplicaFqdn"].as_str().is_some_and(|s| s.ends_with(".sea.contoso.com"))).collect();
    assert_eq!(seattle.len(), 4, "two Front Ends and two Edge servers in Seattle");
    assert!(seattle.iter().all(|r| r["UpToDate"] == true), "{seattle:?}");
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
}

/// Rule 5 (JJ204678): find the principal of the standby CMS database before failing the CMS
/// over. With the Seattle mirror as principal, the procedure's primary-server form is refused;
/// after `Get-CsDatabaseMirrorState`, the mirror parameters of the reference make it work.
#[test]
fn rule_05_principal_found_before_cms_failover() {
    let mut sim = deployment(
        "cms: {activePool: pool01.dal.contoso.com}
state:
  down: [site/Dallas]
  backEndPrincipal: [{pool: pool01.sea.contoso.com, principal: Mirror}]
",
    );
    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nExport-CsConfiguration -FileName 'C:\\lyncdr\\CsConfiguration.zip' -LocalStore");

    let e = refused_by_lync(
        &mut sim,
        SEA,
        "Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -Force",
        5,
    );
    assert!(e.message.contains("it is the mirror copy") && e.message.contains("-BackupMirrorSqlServerFqdn sql02.sea.contoso.com"), "{e}");
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));

    let out = run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Get-CsDatabaseMirrorState -DatabaseType CentralMgmt -PoolFqdn pool01.sea.contoso.com
        Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -BackupMirrorSqlServerFqdn sql02.sea.contoso.com -BackupMirrorSqlInstanceName rtc -Force
        ",
    );
    let mirror_state = &output(&out, "Get-CsDatabaseMirrorState")[0];
    assert_eq!((&mirror_state["StateOnPrimary"], &mirror_state["StateOnMirror"]), (&json!("Mirror"), &json!("Principal")));
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
    assert!(sim.snapshot().cms.available);
}

/// Rule 8 (C19, T4): `Export-CsConfiguration` (and, while the CMS is reachable,
/// `Export-CsLisConfiguration`) before every CMS move. Lync does not check this: strict mode.
#[test]
fn rule_08_configuration_backed_up_before_cms_move() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\n");

    refused_strictly(&mut sim, SEA, "Invoke-CsManagementServerFailover", 8);
    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nExport-CsConfiguration -FileName 'C:\\lyncdr\\CsConfiguration.zip'");
    let e = refused_strictly(&mut sim, SEA, "Invoke-CsManagementServerFailover", 8);
    assert!(e.message.contains("Export-CsLisConfiguration"), "the CMS is reachable, so the LIS backup is due too: {e}");
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));

    run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Export-CsLisConfiguration -FileName 'C:\lyncdr\CsLisConfiguration.zip'
        Invoke-CsManagementServerFailover
        ",
    );
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
    assert_eq!(sim.stats().lost_cms_changes, 0.0);

    // The backups predate the move, so moving the CMS back needs fresh ones.
    refused_strictly(&mut sim, DAL, "Invoke-CsManagementServerFailover", 8);
    run_ok(
        &mut sim,
        r"
        #! on pool01.dal.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration-2.zip'
        Export-CsLisConfiguration -FileName 'C:\lyncdr\CsLisConfiguration-2.zip'
        Invoke-CsManagementServerFailover
        ",
    );
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));
}

/// Rule 9 (C3): while the active CMS is reachable, fail it over without `-Force` (which ignores
/// replication). Lync accepts `-Force`: strict mode.
#[test]
fn rule_09_no_force_outside_disaster_recovery() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\n");
    run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip'
        Export-CsLisConfiguration -FileName 'C:\lyncdr\CsLisConfiguration.zip'
        #! wait 1m
        ",
    );

    refused_strictly(
        &mut sim,
        SEA,
        "Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -Force",
        9,
    );
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));

    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsManagementServerFailover");
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
    assert_eq!(sim.stats().lost_cms_changes, 0.0, "a planned CMS failover waits for replication");
}

/// Rule 10 (C3, JJ204678): `Invoke-CsManagementServerFailover` runs on a Front End of the pool
/// that receives the CMS.
#[test]
fn rule_10_cms_failover_runs_in_target_pool() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\n");
    run_ok(
        &mut sim,
        r"
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip'
        Export-CsLisConfiguration -FileName 'C:\lyncdr\CsLisConfiguration.zip'
        ",
    );

    let e = refused_by_lync(&mut sim, DAL, "Invoke-CsManagementServerFailover", 10);
    assert!(e.message.contains("pool that will host the Central Management store (\"pool01.sea.contoso.com\")"), "{e}");
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));

    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsManagementServerFailover");
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
}

/// Rule 11 (JJ204678): a running Edge pool that uses the failed pool as its next hop is
/// repointed before the pool fails over; otherwise Lync refuses with the text the document
/// quotes. A whole-site failure needs no repointing (T2): that Edge pool is down too.
#[test]
fn rule_11_edge_next_hop_before_pool_failover() {
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {down: [pool/pool01.dal.contoso.com]}\n");

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", 11);
    assert_eq!(
        e.to_string(),
        "Invoke-CsPoolFailOver : This Front-end pool \"pool01.dal.contoso.com\" is specified in topology as the next hop for the \
         Edge server. Failing over this pool may cause External access/Federation/Split-domain/XMPP features to stop working. \
         Please use Topology Builder to change the Edge internal next hop setting to point to a different Front-end pool, before \
         you proceed."
    );
    assert_eq!(state(&sim, DAL), FailoverState::Normal);

    run_ok(
        &mut sim,
        "#! on pool01.sea.contoso.com\nSet-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com",
    );
    // The next-hop change is a CMS change: the failover waits until it has replicated (rule 4).
    refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", 4);
    run_ok(&mut sim, "#! on pool01.sea.contoso.com\n#! wait 3m\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    let snap = sim.snapshot();
    assert_eq!(snap.edges[&f(EDGE_DAL)].next_hop.as_ref().map(Fqdn::as_str), Some(SEA));
    assert_eq!((snap.pools[&f(DAL)].state, snap.pools[&f(DAL)].served_by.as_str()), (FailoverState::FailedOver, SEA));
    assert!(snap.all_users_served);

    let mut site_lost = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {down: [site/Dallas]}\n");
    run_ok(&mut site_lost, "#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_eq!(site_lost.snapshot().edges[&f(EDGE_DAL)].next_hop.as_ref().map(Fqdn::as_str), Some(DAL));
    assert_eq!(served_by(&site_lost, DAL), SEA);
}

/// Rule 12 (C1, C10): a pool fails over only if a backup pool is assigned, and assignment is
/// Topology Builder's (there is no cmdlet). The unpaired Chicago pool cannot fail over; the
/// paired Dallas pool of the same deployment can.
#[test]
fn rule_12_backup_pool_must_exist() {
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {down: [pool/pool01.chi.contoso.com, site/Dallas]}\n");

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.chi.contoso.com -DisasterMode", 12);
    assert!(e.message.contains("Pool failover can only be invoked if you have assigned a backup pool to the failed pool."), "{e}");
    refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailBack -PoolFqdn pool01.chi.contoso.com", 12);
    let e = fails(&mut sim, SEA, "Set-CsPoolBackupRelationship -PoolFqdn pool01.chi.contoso.com -BackupPoolFqdn pool01.sea.contoso.com");
    assert!(e.message.starts_with("The term 'Set-CsPoolBackupRelationship' is not recognized"), "{e}");
    let rel = invoke(&mut sim, SEA, "Get-CsPoolBackupRelationship -PoolFqdn pool01.chi.contoso.com").expect("query");
    assert_eq!(rel["BackupPoolFqdn"], Value::Null);

    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
    assert_eq!((state(&sim, CHI), served_by(&sim, CHI)), (FailoverState::Normal, CHI.to_string()));
}

/// Rule 13 (JJ204773), the part the simulator models: a backup pool whose Backup Service
/// (LYNCBACKUP) does not run holds no usable backup, so failover to it is refused; starting the
/// service and syncing both pools to steady state comes first. Pairing itself is a later issue.
#[test]
fn rule_13_backup_service_started_before_failover() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    // As on freshly paired pools before step 7 of the pairing procedure.
    // LYNCBACKUP runs on every Front End; it is stopped on both of Seattle's.
    run_ok(
        &mut sim,
        "#! on pool01.sea.contoso.com
        Stop-CsWindowsService -Name LYNCBACKUP -ComputerName pool01-fe01.sea.contoso.com
        Stop-CsWindowsService -Name LYNCBACKUP -ComputerName pool01-fe02.sea.contoso.com
        ",
    );
    assert_eq!(export_status(&mut sim, SEA, SEA, "UserServices.PresenceFocus"), "NotInitialized");

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com", 13);
    assert!(e.message.contains("Start-CsWindowsService -Name LYNCBACKUP"), "{e}");

    let out = run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Start-CsWindowsService -Name LYNCBACKUP
        Invoke-CsBackupServiceSync -PoolFqdn pool01.dal.contoso.com
        Invoke-CsBackupServiceSync -PoolFqdn pool01.sea.contoso.com
        Get-CsBackupServiceStatus -PoolFqdn pool01.dal.contoso.com
        Get-CsBackupServiceStatus -PoolFqdn pool01.sea.contoso.com
        Set-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com
        #! wait 3m
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com
        ",
    );
    for pool in [DAL, SEA] {
        let status = output(&out, &format!("Get-CsBackupServiceStatus -PoolFqdn {pool}"));
        assert_eq!(status["OverallExportStatus"], "SteadyState", "{pool}: {status}");
    }
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
}

/// Rule 13 (JJ204773, S23): pairing is a topology change (publish, enable), then local setup on
/// every Front End of both pools installs the pairing components, then LYNCBACKUP starts, then
/// both pools sync to steady state. Out of order, each step fails as it would in Lync: setup that
/// runs before the Front End has the published topology installs nothing, so LYNCBACKUP does not
/// exist; failover to a pool that is not (yet) a backup pool is refused.
#[test]
fn rule_13_pairing_procedure_in_order() {
    let unpaired = sites_with("pairs:\n  - [pool01.dal.contoso.com, pool01.sea.contoso.com]\n", "pairs: []\n");
    let mut sim = simulator(&format!("{unpaired}cms: {{activePool: pool01.chi.contoso.com}}\n"));
    let draft = "Set-LyncdrBackupPool -PoolFqdn pool01.dal.contoso.com -BackupPoolFqdn pool01.sea.contoso.com -FileName C:\\lyncdr\\t.xml";
    let fes = ["pool01-fe01.dal.contoso.com", "pool01-fe02.dal.contoso.com", "pool01-fe01.sea.contoso.com", "pool01-fe02.sea.contoso.com"];

    // Setup before anything is published: nothing to install, so no LYNCBACKUP.
    run_ok(&mut sim, &format!("#! on {}\n{SETUP}", fes[0]));
    let e = fails(&mut sim, fes[0], "Start-CsWindowsService -Name LYNCBACKUP");
    assert_eq!(e.message, "Cannot find any service with service name 'LYNCBACKUP'.");
    refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", 12);

    // Published but setup ran before the Front End received the new topology: still nothing.
    run_ok(
        &mut sim,
        &format!(
            "#! on pool01.chi.contoso.com\n{draft}\nPublish-CsTopology -FileName C:\\lyncdr\\t.xml\nEnable-CsTopology\n#! on {}\n{SETUP}",
            fes[0]
        ),
    );
    fails(&mut sim, fes[0], "Start-CsWindowsService -Name LYNCBACKUP");
    // Paired in the topology, but without the Backup Service there is no usable backup.
    refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com", 13);

    // In order: wait for CMS replication, set up every Front End, start LYNCBACKUP, sync.
    let mut script = String::from("#! wait 5m\n");
    for fe in fes {
        script.push_str(&format!("#! on {fe}\n{SETUP}\nStart-CsWindowsService -Name LYNCBACKUP\n"));
    }
    script.push_str(
        "#! on pool01.sea.contoso.com
        Invoke-CsBackupServiceSync -PoolFqdn pool01.dal.contoso.com
        Invoke-CsBackupServiceSync -PoolFqdn pool01.sea.contoso.com
        Get-CsBackupServiceStatus -PoolFqdn pool01.dal.contoso.com
        Get-CsBackupServiceStatus -PoolFqdn pool01.sea.contoso.com
        Get-CsPoolBackupRelationship -PoolFqdn pool01.sea.contoso.com
        Set-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com
        #! wait 3m
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com
        ",
    );
    let out = run_ok(&mut sim, &script);
    for pool in [DAL, SEA] {
        let status = output(&out, &format!("Get-CsBackupServiceStatus -PoolFqdn {pool}"));
        assert_eq!(status["OverallExportStatus"], "SteadyState", "{pool}: {status}");
    }
    assert_eq!(output(&out, "Get-CsPoolBackupRelationship")["BackupPoolFqdn"], json!(DAL));
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
}

/// Rule 31 (Remove-CsUserStoreBackupData): after re-pairing Dallas from Seattle to Chicago, the
/// stale Seattle data in Dallas is removed, but only once the new pairing is published; before
/// that the data in Dallas is Seattle's live backup. Lync lets the early removal through, so the
/// refusal is strict mode's.
#[test]
fn rule_31_backup_data_removed_after_repairing() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    refused_strictly(&mut sim, CHI, "Remove-CsUserStoreBackupData -PoolFqdn pool01.dal.contoso.com", 31);
    run_ok(
        &mut sim,
        "#! on pool01.chi.contoso.com
        Set-LyncdrBackupPool -PoolFqdn pool01.dal.contoso.com -BackupPoolFqdn pool01.chi.contoso.com -FileName C:\\lyncdr\\t.xml
        Publish-CsTopology -FileName C:\\lyncdr\\t.xml
        Enable-CsTopology
        Remove-CsUserStoreBackupData -PoolFqdn pool01.dal.contoso.com
        Remove-CsUserStoreBackupData -PoolFqdn pool01.sea.contoso.com
        ",
    );
    let topo = sim.topology();
    assert_eq!(topo.partner(&f(DAL)), Some(&f(CHI)));
    assert_eq!(topo.partner(&f(SEA)), None, "the former partner is left without a backup pool");
    // Removing twice: nothing stale is left, so it is the early case again.
    refused_strictly(&mut sim, CHI, "Remove-CsUserStoreBackupData -PoolFqdn pool01.dal.contoso.com", 31);
}

/// Rule 14 (JJ205033): pairing is 1:1 and reciprocal. Enforced as a consequence: the scenario
/// format refuses a pool with two partners, the pairing it accepts reads back reciprocally, and
/// the topology edit (`Set-LyncdrBackupPool`) pairs both ways and unpairs the former partners.
#[test]
fn rule_14_pairing_one_to_one_and_reciprocal() {
    let yaml = format!("{SITES}  - [pool01.sea.contoso.com, pool01.chi.contoso.com]\n");
    let e = Scenario::from_yaml(&yaml).expect_err("a second partner for Seattle").to_string();
    assert!(e.contains("pairs[1][0]") && e.contains("1:1 and reciprocal"), "{e}");

    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    for (pool, backup) in [(DAL, json!(SEA)), (SEA, json!(DAL)), (CHI, Value::Null)] {
        let rel = invoke(&mut sim, SEA, &format!("Get-CsPoolBackupRelationship -PoolFqdn {pool}")).expect("query");
        assert_eq!(rel["BackupPoolFqdn"], backup, "{pool}");
    }
    let user = invoke(&mut sim, SEA, "Get-CsUserPoolInfo -Identity sip:alice@contoso.com").expect("query");
    assert_eq!((&user["PrimaryPoolFqdn"], &user["BackupPoolFqdn"]), (&json!(DAL), &json!(SEA)));
}

/// Rule 15 (JJ204945, C2): fail back only once the failed pool is back online; `-DisasterMode`
/// is for an unavailable *backup* pool and does not lift that.
#[test]
fn rule_15_failback_only_when_pool_back_online() {
    let mut sim =
        deployment("cms: {activePool: pool01.chi.contoso.com}\nstate: {failedOver: [pool01.dal.contoso.com], down: [site/Dallas]}\n");

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com", 15);
    assert!(e.message.contains("Fail back a pool only when it is back online"), "{e}");
    refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com -DisasterMode", 15);
    assert_eq!(state(&sim, DAL), FailoverState::FailedOver);

    run_ok(&mut sim, "#! fault up:site/Dallas\n#! on pool01.dal.contoso.com\nInvoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com");
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::Normal, DAL.to_string()));
    assert!(sim.snapshot().all_users_served);

    // The backup pool is the one that is down: only -DisasterMode fails back.
    let mut sim =
        deployment("cms: {activePool: pool01.chi.contoso.com}\nstate: {failedOver: [pool01.dal.contoso.com], down: [site/Seattle]}\n");
    let e = refused_by_lync(&mut sim, DAL, "Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com", 15);
    assert!(e.message.contains("use -DisasterMode"), "{e}");
    run_ok(&mut sim, "#! on pool01.dal.contoso.com\nInvoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::Normal, DAL.to_string()));
}

/// Rule 16 (JJ204945, JJ205376): the CMS need not follow the failback. A permission, so nothing
/// is refused: failback succeeds with the CMS left in the former backup pool.
#[test]
fn rule_16_cms_may_stay_in_backup_pool() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nstate: {down: [site/Dallas]}\n");
    run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip' -LocalStore
        Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -Force
        #! wait 3m
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        #! fault up:site/Dallas
        #! on pool01.dal.contoso.com
        Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com
        ",
    );
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::Normal, DAL.to_string()));
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
    assert!(sim.snapshot().cms.available && sim.snapshot().all_users_served);
    let last = mutations(&sim);
    assert_eq!(last.last(), Some(&"Invoke-CsPoolFailBack"));
    assert_eq!(last.iter().filter(|c| **c == "Invoke-CsManagementServerFailover").count(), 1);
}

/// Rule 17 (C1, T6): an Enterprise pool whose Back End is down but whose Front Ends run is failed
/// over with `-DisasterMode`; the planned form is refused.
#[test]
fn rule_17_disaster_mode_when_back_end_down() {
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {down: [sql/sql01.dal.contoso.com]}\n");
    // Dallas's Edge still runs: repoint it first (rule 11).
    run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Set-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com
        #! wait 3m
        ",
    );

    let e = refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com", 17);
    assert!(e.message.contains("can only be failed over with -DisasterMode"), "{e}");
    assert_eq!(state(&sim, DAL), FailoverState::Normal);

    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
    assert!(sim.snapshot().all_users_served);
}

/// Rule 18 (JJ204991): query the mirror state, fail over the User database, then the CentralMgmt
/// database of the pool hosting the CMS. Lync accepts either order: strict mode.
#[test]
fn rule_18_user_database_before_centralmgmt() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nstate: {down: [sql/sql01.dal.contoso.com]}\n");
    assert!(!sim.snapshot().cms.available);

    refused_strictly(
        &mut sim,
        DAL,
        "Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType CentralMgmt -NewPrincipal Mirror -Force",
        18,
    );
    assert!(!sim.snapshot().cms.available);

    let out = run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com -DatabaseType User
        Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com -DatabaseType CentralMgmt
        Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType User -NewPrincipal Mirror -Force
        Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType CentralMgmt -NewPrincipal Mirror -Force
        Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com
        ",
    );
    let before = &output(&out, "Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com -DatabaseType User")[0];
    assert_eq!(before["StateOnPrimary"], "DatabaseUnavailable");
    let after = output(&out, "Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com").as_array().cloned().unwrap_or_default();
    let moved: Vec<&Value> = after.iter().filter(|db| db["DatabaseType"] == "User" || db["DatabaseType"] == "CentralMgmt").collect();
    assert_eq!(moved.len(), 2, "{after:?}");
    assert!(moved.iter().all(|db| db["StateOnMirror"] == "Principal"), "{after:?}");
    assert!(sim.snapshot().cms.available && sim.snapshot().all_users_served);
}

/// Rule 19 (JJ688071): disable federation on the old Edge pool, enable it on the new one,
/// publish, re-run setup on the new Edge servers, re-associate media. Lync refuses none of
/// this; the consequence is that federation does not work until setup has re-run, with the
/// published change, on every running server of the new federation Edge pool.
#[test]
fn rule_19_federation_needs_setup_rerun() {
    let mut sim = deployment(
        "cms: {activePool: pool01.dal.contoso.com}\nfederation: {sipEdgePool: edge01.dal.contoso.com}\nstate: {down: [edge/edge01.dal.contoso.com]}\n",
    );
    assert!(!sim.sip_federation_working(), "its Edge pool is down");

    // Out of order: the route is published, but setup is not re-run on the Edge servers.
    run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Set-CsSite -Identity Seattle -FederationRoute EdgeServer:edge01.sea.contoso.com
        #! wait 10m
        ",
    );
    assert_eq!(sim.snapshot().federation.sip_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_SEA));
    assert!(!sim.sip_federation_working(), "no setup re-run yet");
    run_ok(&mut sim, &format!("#! on edge01-es01.sea.contoso.com\n{SETUP}"));
    assert!(!sim.sip_federation_working(), "setup has re-run on one of the two Edge servers only");

    // In order: setup on the other server, then the media association of Dallas's pool.
    let out = run_ok(
        &mut sim,
        &format!(
            "
            #! on edge01-es02.sea.contoso.com
            {SETUP}
            #! on pool01.sea.contoso.com
            Set-CsConferenceServer -Identity ConferencingServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.sea.contoso.com
            Set-CsMediationServer -Identity MediationServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.sea.contoso.com
            Get-CsService -ConferencingServer -PoolFqdn pool01.dal.contoso.com
            "
        ),
    );
    assert!(sim.sip_federation_working());
    assert_eq!(output(&out, "Get-CsService")[0]["EdgeServer"], "EdgeServer:edge01.sea.contoso.com");

    // In order from the start: publish, wait for replication, re-run setup everywhere.
    let mut sim = deployment(
        "cms: {activePool: pool01.dal.contoso.com}\nfederation: {sipEdgePool: edge01.dal.contoso.com}\nstate: {down: [edge/edge01.dal.contoso.com]}\n",
    );
    run_ok(
        &mut sim,
        &format!(
            "
            #! on pool01.sea.contoso.com
            Set-CsSite -Identity Seattle -FederationRoute EdgeServer:edge01.sea.contoso.com
            #! wait 3m
            #! on edge01-es01.sea.contoso.com
            {SETUP}
            #! on edge01-es02.sea.contoso.com
            {SETUP}
            "
        ),
    );
    assert!(sim.sip_federation_working());
}

/// Rule 20 (JJ687960, C17, T7): one federation Edge pool at a time. A consequence of the model:
/// the federation route is one value, so routing federation through a second Edge pool takes it
/// away from the first, in every site's view.
#[test]
fn rule_20_one_federation_edge_pool() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nfederation: {sipEdgePool: edge01.dal.contoso.com}\n");
    let out = run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Set-CsSite -Identity Seattle -FederationRoute EdgeServer:edge01.sea.contoso.com
        Get-CsSite
        ",
    );
    let sites = output(&out, "Get-CsSite").as_array().cloned().unwrap_or_default();
    assert_eq!(sites.len(), 3);
    assert!(sites.iter().all(|s| s["FederationRoute"] == "EdgeServer:edge01.sea.contoso.com"), "{sites:?}");
    assert_eq!(sim.snapshot().federation.sip_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_SEA));
}

/// Rule 21 (JJ688065): stop the services on the new XMPP Edge servers, repoint the XMPP route,
/// start the services once the DNS records point at the new pool (a person changes them:
/// `#! fault point:xmpp-dns/<edge pool>`). Lync accepts repointing while the services run, and
/// starting them before DNS: strict mode.
#[test]
fn rule_21_xmpp_edge_failover_order() {
    let mut sim = deployment(
        "cms: {activePool: pool01.dal.contoso.com}\nfederation: {xmppEdgePool: edge01.dal.contoso.com}\nstate: {down: [edge/edge01.dal.contoso.com]}\n",
    );

    let e = refused_strictly(&mut sim, SEA, "Set-CsSite -Identity Seattle -XmppFederationRoute EdgeServer:edge01.sea.contoso.com", 21);
    assert!(e.message.contains("edge01-es01.sea.contoso.com, edge01-es02.sea.contoso.com"), "{e}");
    assert_eq!(sim.snapshot().federation.xmpp_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_DAL));

    run_ok(
        &mut sim,
        "
        #! on edge01-es01.sea.contoso.com
        Stop-CsWindowsService
        #! on edge01-es02.sea.contoso.com
        Stop-CsWindowsService
        #! on pool01.sea.contoso.com
        Set-CsSite -Identity Seattle -XmppFederationRoute EdgeServer:edge01.sea.contoso.com
        ",
    );
    // The services start only once the DNS records point at Seattle's Edge pool (steps 4-6).
    let e = refused_strictly(&mut sim, "edge01-es01.sea.contoso.com", "Start-CsWindowsService", 21);
    assert!(e.message.contains("_xmpp-server._tcp SRV record (port 5269)"), "{e}");
    let out = run_ok(
        &mut sim,
        "
        #! fault point:xmpp-dns/edge01.sea.contoso.com
        #! on pool01.sea.contoso.com
        Resolve-DnsName -Name _xmpp-server._tcp.contoso.com -Type SRV
        #! on edge01-es01.sea.contoso.com
        Start-CsWindowsService
        #! on edge01-es02.sea.contoso.com
        Start-CsWindowsService
        #! on pool01.sea.contoso.com
        Get-CsSite -Identity Seattle
        Get-CsWindowsService -ComputerName edge01-es02.sea.contoso.com
        ",
    );
    let srv = output(&out, "Resolve-DnsName");
    assert_eq!((srv[0]["NameTarget"].as_str(), srv[0]["Port"].as_u64()), (Some(EDGE_SEA), Some(5269)), "{srv}");
    assert_eq!(output(&out, "Get-CsSite")[0]["XmppFederationRoute"], "EdgeServer:edge01.sea.contoso.com");
    let services = output(&out, "Get-CsWindowsService").as_array().cloned().unwrap_or_default();
    assert!(!services.is_empty() && services.iter().all(|s| s["Status"] == "Running"), "{services:?}");
    assert_eq!(sim.snapshot().federation.xmpp_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_SEA));
}

/// Rule 22 (JJ688023, JJ687960): with the local Edge pool down and the Front End pool up, the
/// Front End pool is associated with a running remote Edge pool. Lync accepts an association
/// with an Edge pool that does not run: strict mode.
#[test]
fn rule_22_front_end_uses_running_remote_edge() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nstate: {down: [edge/edge01.dal.contoso.com]}\n");

    for line in [
        "Set-CsConferenceServer -Identity ConferencingServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.dal.contoso.com",
        "Set-CsMediationServer -Identity MediationServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.dal.contoso.com",
    ] {
        let e = refused_strictly(&mut sim, DAL, line, 22);
        assert!(e.message.contains("edge01.dal.contoso.com is not running"), "{e}");
    }

    let out = run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Set-CsConferenceServer -Identity ConferencingServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.sea.contoso.com
        Set-CsMediationServer -Identity MediationServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.sea.contoso.com
        Get-CsService -ConferencingServer -MediationServer -PoolFqdn pool01.dal.contoso.com
        ",
    );
    let services = output(&out, "Get-CsService").as_array().cloned().unwrap_or_default();
    assert_eq!(services.len(), 2);
    assert!(services.iter().all(|s| s["EdgeServer"] == "EdgeServer:edge01.sea.contoso.com"), "{services:?}");
}

/// Rule 23 (JJ721897): after a site returns, its Edge pool is failed back first (federation moved
/// back, setup re-run, local Front End pools re-associated with it), and only then the Front End
/// pool. Lync accepts the failback earlier: strict mode, one refusal per missing step.
#[test]
fn rule_23_edge_failback_before_pool_failback() {
    let mut sim = deployment(
        "cms: {activePool: pool01.sea.contoso.com}\nfederation: {sipEdgePool: edge01.dal.contoso.com}\nstate: {down: [site/Dallas]}\n",
    );
    run_ok(
        &mut sim,
        &format!(
            "
            #! on pool01.sea.contoso.com
            Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
            Set-CsSite -Identity Seattle -FederationRoute EdgeServer:edge01.sea.contoso.com
            Set-CsConferenceServer -Identity ConferencingServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.sea.contoso.com
            #! wait 3m
            #! on edge01-es01.sea.contoso.com
            {SETUP}
            #! on edge01-es02.sea.contoso.com
            {SETUP}
            #! fault up:site/Dallas
            "
        ),
    );

    let e = refused_strictly(&mut sim, DAL, "Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com", 23);
    assert!(e.message.contains("move federation back to it before failing back"), "{e}");
    run_ok(
        &mut sim,
        &format!(
            "
            #! on pool01.dal.contoso.com
            Set-CsSite -Identity Dallas -FederationRoute EdgeServer:edge01.dal.contoso.com
            #! wait 3m
            #! on edge01-es01.dal.contoso.com
            {SETUP}
            #! on edge01-es02.dal.contoso.com
            {SETUP}
            "
        ),
    );
    let e = refused_strictly(&mut sim, DAL, "Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com", 23);
    assert!(e.message.contains("still associated with the remote Edge pool edge01.sea.contoso.com"), "{e}");
    assert_eq!(state(&sim, DAL), FailoverState::FailedOver);

    run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Set-CsConferenceServer -Identity ConferencingServer:pool01.dal.contoso.com -EdgeServer EdgeServer:edge01.dal.contoso.com
        Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com
        ",
    );
    let snap = sim.snapshot();
    assert_eq!((snap.pools[&f(DAL)].state, snap.pools[&f(DAL)].served_by.as_str()), (FailoverState::Normal, DAL));
    assert_eq!(snap.federation.sip_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_DAL));
    assert!(sim.sip_federation_working() && snap.all_users_served);
}

/// Rule 24 (JJ688030): after failing users back, their conference content made on the backup
/// pool is copied home with `Invoke-CsBackupServiceSync -PoolFqdn <partner> -BackupModule
/// ConfServices.DataConf`. Nothing refuses skipping it; the consequence is that the content stays
/// behind (the module is not in steady state) until the sync runs.
#[test]
fn rule_24_conference_content_synced_after_failback() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    run_ok(
        &mut sim,
        "
        #! fault down:site/Dallas
        #! on pool01.sea.contoso.com
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        #! wait 1h
        #! fault up:site/Dallas
        Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com
        ",
    );
    assert_eq!(state(&sim, DAL), FailoverState::Normal);
    assert_eq!(export_status(&mut sim, SEA, SEA, "UserServices.PresenceFocus"), "SteadyState", "user data came home with the failback");
    assert_eq!(export_status(&mut sim, SEA, SEA, "ConfServices.DataConf"), "NonSteadyState");

    // Out of order: no sync. The content stays on Seattle however long one waits.
    run_ok(&mut sim, "#! wait 30m");
    assert_eq!(export_status(&mut sim, SEA, SEA, "ConfServices.DataConf"), "NonSteadyState");
    assert!(sim.world().data[&(f(DAL), BackupModule::DataConf)].restore > 50.0);

    run_ok(
        &mut sim,
        "#! on pool01.sea.contoso.com\nInvoke-CsBackupServiceSync -PoolFqdn pool01.sea.contoso.com -BackupModule ConfServices.DataConf",
    );
    assert_eq!(export_status(&mut sim, SEA, SEA, "ConfServices.DataConf"), "SteadyState");
    assert_eq!(sim.world().data[&(f(DAL), BackupModule::DataConf)].restore, 0.0);
    assert_eq!(sim.stats().lost_changes, 0.0);
}

/// Rule 25 (JJ204699, JJ205186): Response Groups are not replicated: export them routinely
/// before an outage, import into the backup pool after failover, export the primary-owned copies
/// from the backup pool before failback, import them home with `-OverwriteOwner` after. Nothing
/// refuses skipping the routine export; the consequence is that once the pool is down there is
/// nothing to export or import.
#[test]
fn rule_25_response_groups_exported_and_imported() {
    let tail = "cms: {activePool: pool01.chi.contoso.com}\n";
    let dallas_groups_on_seattle = "Get-CsRgsWorkflow -Identity service:ApplicationServer:pool01.sea.contoso.com -Owner service:ApplicationServer:pool01.dal.contoso.com";

    let mut sim = deployment(tail);
    run_ok(
        &mut sim,
        "#! fault down:site/Dallas\n#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode",
    );
    let e = fails(&mut sim, SEA, r"Export-CsRgsConfiguration -Source ApplicationServer:pool01.dal.contoso.com -FileName 'C:\rgs\dal.zip'");
    assert!(e.message.contains("Cannot connect to the Response Group service on \"pool01.dal.contoso.com\""), "{e}");
    let e =
        fails(&mut sim, SEA, r"Import-CsRgsConfiguration -Destination ApplicationServer:pool01.sea.contoso.com -FileName 'C:\rgs\dal.zip'");
    assert!(e.message.contains("Could not find file"), "{e}");
    assert_eq!(invoke(&mut sim, SEA, dallas_groups_on_seattle).expect("query"), json!([]));

    let mut sim = deployment(tail);
    let out = run_ok(
        &mut sim,
        &format!(
            r"
            #! on pool01.dal.contoso.com
            Export-CsRgsConfiguration -Source ApplicationServer:pool01.dal.contoso.com -FileName 'C:\rgs\dal.zip'
            #! fault down:site/Dallas
            #! on pool01.sea.contoso.com
            Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
            Import-CsRgsConfiguration -Destination ApplicationServer:pool01.sea.contoso.com -FileName 'C:\rgs\dal.zip'
            {dallas_groups_on_seattle}
            #! fault up:site/Dallas
            Export-CsRgsConfiguration -Source ApplicationServer:pool01.sea.contoso.com -Owner ApplicationServer:pool01.dal.contoso.com -FileName 'C:\rgs\dal-back.zip'
            Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com
            Import-CsRgsConfiguration -Destination ApplicationServer:pool01.dal.contoso.com -OverwriteOwner -FileName 'C:\rgs\dal-back.zip'
            Get-CsRgsWorkflow -Identity service:ApplicationServer:pool01.dal.contoso.com
            "
        ),
    );
    let names = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|w| w["Name"].as_str().map(String::from)).collect()).unwrap_or_default()
    };
    assert_eq!(names(output(&out, dallas_groups_on_seattle)), ["Helpdesk", "Payroll"]);
    let home = output(&out, "Get-CsRgsWorkflow -Identity service:ApplicationServer:pool01.dal.contoso.com");
    assert_eq!(names(home), ["Helpdesk", "Payroll"]);
    assert!(home.as_array().is_some_and(|a| a.iter().all(|w| w["OwnerPool"] == DAL)), "{home}");
    assert_eq!(state(&sim, DAL), FailoverState::Normal);
}

/// Rule 26 (JJ204699): Response Group names must be unique deployment-wide before any
/// failover, or the import into the backup pool fails. Seattle also has a "Helpdesk" workflow:
/// the import is refused; `-ResolveNameConflicts` (the documented way out) imports it.
#[test]
fn rule_26_response_group_names_unique() {
    let sites = sites_with("responseGroups: [Facilities]", "responseGroups: [Facilities, Helpdesk]");
    let mut sim = simulator(&format!("{sites}cms: {{activePool: pool01.chi.contoso.com}}\n"));
    run_ok(
        &mut sim,
        r"
        #! on pool01.dal.contoso.com
        Export-CsRgsConfiguration -Source ApplicationServer:pool01.dal.contoso.com -FileName 'C:\rgs\dal.zip'
        #! fault down:site/Dallas
        #! on pool01.sea.contoso.com
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        ",
    );

    let e = refused_by_lync(
        &mut sim,
        SEA,
        r"Import-CsRgsConfiguration -Destination ApplicationServer:pool01.sea.contoso.com -FileName 'C:\rgs\dal.zip'",
        26,
    );
    assert!(e.message.contains("A workflow named \"Helpdesk\" already exists"), "{e}");

    let out = run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Import-CsRgsConfiguration -Destination ApplicationServer:pool01.sea.contoso.com -FileName 'C:\rgs\dal.zip' -ResolveNameConflicts
        Get-CsRgsWorkflow -ShowAll
        ",
    );
    let all = output(&out, "Get-CsRgsWorkflow").as_array().cloned().unwrap_or_default();
    let on_seattle: Vec<&str> = all.iter().filter(|w| w["HostPool"] == SEA).filter_map(|w| w["Name"].as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = on_seattle.iter().copied().collect();
    assert_eq!(unique.len(), 4, "Seattle's two and Dallas's two, renamed where they clash: {on_seattle:?}");
    assert_eq!(on_seattle.iter().filter(|n| n.starts_with("Helpdesk")).count(), 2, "{on_seattle:?}");
    let imported = all.iter().filter(|w| w["HostPool"] == SEA && w["OwnerPool"] == DAL).count();
    assert_eq!(imported, 2, "{all:?}");
}

/// Rule 28 (JJ205395): Call Park is enabled in both pools before a disaster. Lync fails users
/// over regardless: strict mode. The simulator has no cmdlet that enables Call Park, so the
/// in-order run starts from the deployment where both pools have it.
#[test]
fn rule_28_call_park_in_both_pools() {
    let tail = "cms: {activePool: pool01.chi.contoso.com}\nstate: {down: [site/Dallas]}\n";
    let failover = "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode";
    let sites = sites_with("responseGroups: [Facilities]", "responseGroups: [Facilities]\n        callPark: false");
    let mut sim = simulator(&format!("{sites}{tail}"));
    let e = refused_strictly(&mut sim, SEA, failover, 28);
    assert!(e.message.contains("not on its backup pool pool01.sea.contoso.com"), "{e}");
    assert_eq!(state(&sim, DAL), FailoverState::Normal);

    let mut sim = deployment(tail);
    run_ok(&mut sim, &format!("#! on pool01.sea.contoso.com\n{failover}"));
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
}

/// Rule 29 (JJ205252): the Backup Service's "final" state from the failing pool holds only once
/// `Invoke-CsPoolFailOver` has made that pool read-only. Nothing is refused; the consequence is in
/// the status readings: never FinalState while the pool takes changes; once read-only, FinalState
/// only after the changes it still holds have reached the partner; the planned failover then
/// loses nothing.
#[test]
fn rule_29_final_state_only_once_read_only() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Set-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com
        #! wait 3m
        ",
    );
    for module in ["UserServices.PresenceFocus", "ConfServices.DataConf"] {
        assert_eq!(export_status(&mut sim, SEA, DAL, module), "SteadyState", "Dallas still takes changes");
    }
    assert!(unreplicated(&sim, DAL).0 > 1.0, "changes since the last sync cycle are still only in Dallas");

    let inv = parse_line("Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com", &binder::is_switch).expect("parses").expect("command");
    let ticket = sim.begin(&RunOn::Pool(f(SEA)), &inv).expect("planned failover starts");
    assert_eq!(state(&sim, DAL), FailoverState::FailingOver);
    let status = export_status(&mut sim, SEA, DAL, "UserServices.PresenceFocus");
    let pending = unreplicated(&sim, DAL).0;
    assert!(pending > 1.0 && status == "SteadyState", "read-only with {pending} changes not yet at the partner must not read {status}");

    // The next sync cycle exports what Dallas still held: now the reading is final.
    let next_cycle = sim.next_event();
    assert!(next_cycle < ticket.done_at, "a sync cycle comes before the failover completes");
    sim.advance_to(next_cycle);
    assert_eq!(unreplicated(&sim, DAL).0, 0.0);
    for module in ["UserServices.PresenceFocus", "ConfServices.DataConf"] {
        assert_eq!(export_status(&mut sim, SEA, DAL, module), "FinalState", "{module}");
    }

    sim.advance_to(ticket.done_at);
    assert_eq!(sim.finish(ticket.id), Some(Ok(Value::Null)));
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::FailedOver, SEA.to_string()));
    assert_eq!(sim.stats().lost_changes, 0.0);
}

/// Rule 30 (C17): no `Move-CsUser -MoveConferenceData` in disaster recovery; the Backup Service
/// carries conference data. Lync accepts it: strict mode.
#[test]
fn rule_30_no_move_conference_data_in_dr() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\nstate: {down: [site/Dallas]}\n");

    refused_strictly(
        &mut sim,
        SEA,
        "Move-CsUser -Identity sip:alice@contoso.com -Target pool01.sea.contoso.com -Force -MoveConferenceData",
        30,
    );
    assert_eq!(sim.stats().users_data_dropped, 0);

    let out = run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode
        Move-CsUser -Identity sip:alice@contoso.com -Target pool01.sea.contoso.com -Force
        Get-CsUserPoolInfo -Identity sip:alice@contoso.com
        ",
    );
    assert_eq!(output(&out, "Get-CsUserPoolInfo")["PrimaryPoolFqdn"], SEA);
    assert_eq!(sim.stats().users_data_dropped, 1, "-Force drops the moved user's contacts and meetings (C17)");
    assert_eq!(served_by(&sim, DAL), SEA);
}

// ----------------------------------------------------------------------------------------------

/// Lenient mode (`set_strict(false)`): a rule Lync does not enforce is recorded as a hazard and
/// the call goes through, with its consequences (here rule 9: a forced CMS failover while the
/// CMS is reachable loses the changes not yet replicated). Lync's own refusals stay.
#[test]
fn lenient_mode_records_hazards_instead_of_refusing() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\n");
    sim.set_strict(false);
    run_ok(
        &mut sim,
        r"
        #! on pool01.sea.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip'
        Export-CsLisConfiguration -FileName 'C:\lyncdr\CsLisConfiguration.zip'
        #! wait 1m
        Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc -Force
        ",
    );
    assert_eq!(cms_pool(&sim).as_deref(), Some(SEA));
    let hazards = &sim.stats().hazards;
    assert_eq!(hazards.len(), 1, "{hazards:?}");
    assert!(hazards[0].contains("rule 9:") && hazards[0].contains("-Force"), "{hazards:?}");
    assert!(sim.stats().lost_cms_changes > 0.0, "-Force ignored replication");

    // Rule 28 the same way: the failover happens, the hazard is on record.
    let sites = sites_with("responseGroups: [Facilities]", "responseGroups: [Facilities]\n        callPark: false");
    let mut sim = simulator(&format!("{sites}cms: {{activePool: pool01.chi.contoso.com}}\nstate: {{down: [site/Dallas]}}\n"));
    sim.set_strict(false);
    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_eq!(served_by(&sim, DAL), SEA);
    assert!(sim.stats().hazards.iter().any(|h| h.contains("rule 28:")), "{:?}", sim.stats().hazards);

    // Lync's own refusal (rule 11) is not relaxed.
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {down: [pool/pool01.dal.contoso.com]}\n");
    sim.set_strict(false);
    refused_by_lync(&mut sim, SEA, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", 11);
    assert!(sim.stats().hazards.is_empty());
}

/// The procedures' parameter names that the cmdlets do not have (domain document section 6,
/// discrepancies 4-6) fail at binding, with PowerShell's message, before anything runs; the
/// reference's names bind.
#[test]
fn powershell_rejects_the_documented_wrong_parameter_names() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nfederation: {xmppEdgePool: edge01.dal.contoso.com}\n");
    let out = run_script(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Set-CsSite Seattle -XmppExternalFederationRoute edge01-es01.sea.contoso.com
        Invoke-CsManagementServerFailover -MirrorSQLServerFqdn sql02.sea.contoso.com -MirrorSQLInstanceName rtc
        Get-CsBackupServiceStatus -PoolFqdn pool01.sea.contoso.com -BackupModule ConfServices.DataConf
        ",
    );
    let errors: Vec<Option<&str>> = out.iter().filter(|l| !l.line.starts_with("#!")).map(|l| l.error.as_deref()).collect();
    assert_eq!(
        errors,
        [
            Some("Set-CsSite : A parameter cannot be found that matches parameter name 'XmppExternalFederationRoute'."),
            Some("Invoke-CsManagementServerFailover : A parameter cannot be found that matches parameter name 'MirrorSQLServerFqdn'."),
            Some("Get-CsBackupServiceStatus : A parameter cannot be found that matches parameter name 'BackupModule'."),
        ]
    );
    assert!(sim.log().iter().all(|r| r.outcome == Outcome::Error && !r.mutating && r.finished == Some(r.started)));
    assert_eq!(sim.now().0, 0, "nothing ran");
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));
    assert_eq!(sim.snapshot().federation.xmpp_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_DAL));

    for line in [
        "Set-CsSite -Identity Seattle -XmppFederationRoute EdgeServer:edge01.sea.contoso.com",
        "Invoke-CsManagementServerFailover -BackupSqlServerFqdn sql01.sea.contoso.com -BackupSqlInstanceName rtc \
         -BackupMirrorSqlServerFqdn sql02.sea.contoso.com -BackupMirrorSqlInstanceName rtc -Force",
        "Get-CsBackupServiceStatus -PoolFqdn pool01.sea.contoso.com -Category UserData",
    ] {
        let inv = parse_line(line, &binder::is_switch).expect("parses").expect("command");
        assert!(bind(&inv, Product::Lync2013).is_ok(), "{line}");
    }
}

/// `-DisasterMode` data loss (domain document 2.9): a failover loses the changes the partner had
/// not imported when the pool went down; a failback with the backup pool down loses what the
/// failed-over users changed on it since it last reached home. Both are counted.
#[test]
fn data_loss_of_disaster_mode_failover_and_failback() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    run_ok(&mut sim, "#! wait 1m\n#! fault down:site/Dallas");
    let (at_home, _) = unreplicated(&sim, DAL);
    // 1,001 users x (1 + 0.1) changes per hour x 1 minute since the start.
    assert_close(at_home, 1001.0 * 1.1 / 60.0);

    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_close(sim.stats().lost_changes, at_home);

    run_ok(&mut sim, "#! wait 30m\n#! fault up:site/Dallas\n#! fault down:site/Seattle");
    let (_, on_backup) = unreplicated(&sim, DAL);
    assert!(on_backup > 500.0, "half an hour of changes made on Seattle: {on_backup}");
    run_ok(&mut sim, "#! on pool01.dal.contoso.com\nInvoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com -DisasterMode");
    assert_close(sim.stats().lost_changes, at_home + on_backup);
    assert_eq!((state(&sim, DAL), served_by(&sim, DAL)), (FailoverState::Normal, DAL.to_string()));
}

/// A planned failover (no `-DisasterMode`) makes the pool read-only and synchronises before it
/// completes: nothing is lost although changes were pending when it started.
#[test]
fn data_loss_none_in_planned_failover() {
    let mut sim = deployment("cms: {activePool: pool01.chi.contoso.com}\n");
    run_ok(
        &mut sim,
        "
        #! on pool01.sea.contoso.com
        Set-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com
        #! wait 3m
        ",
    );
    assert!(unreplicated(&sim, DAL).0 > 1.0);
    run_ok(&mut sim, "#! on pool01.sea.contoso.com\nInvoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com");
    assert_eq!(sim.stats().lost_changes, 0.0);
    assert_eq!(unreplicated(&sim, DAL).0, 0.0);
    assert_eq!(served_by(&sim, DAL), SEA);
}

// ----------------------------------------------------------------------------------------------
// Issue 10: the simulator is never more lenient than Lync, and stricter only when labelled.

/// Issue 10, finding 15: Response Group configuration lives in the pool's Back End (the
/// Application databases), so with both Dallas SQL servers down it can be neither exported from
/// Dallas nor listed there, although the Front End servers answer.
#[test]
fn response_groups_cannot_be_exported_while_the_back_end_is_down() {
    let mut sim =
        deployment("cms: {activePool: pool01.chi.contoso.com}\nstate: {down: [sql/sql01.dal.contoso.com, sql/sql02.dal.contoso.com]}\n");
    let e = fails(&mut sim, DAL, r"Export-CsRgsConfiguration -Source ApplicationServer:pool01.dal.contoso.com -FileName 'C:\rgs\dal.zip'");
    assert!(e.message.contains("Back End database is not available"), "{e}");
    let e = fails(&mut sim, DAL, "Get-CsRgsWorkflow -Identity service:ApplicationServer:pool01.dal.contoso.com");
    assert!(e.message.contains("pool01.dal.contoso.com"), "{e}");
    // Seattle's Back End runs: its export works.
    run_ok(
        &mut sim,
        r"#! on pool01.sea.contoso.com
Export-CsRgsConfiguration -Source ApplicationServer:pool01.sea.contoso.com -FileName 'C:\rgs\sea.zip'",
    );
    // The mirror takes the Application databases once one server is back: export works again.
    run_ok(
        &mut sim,
        r"#! fault up:sql/sql02.dal.contoso.com
#! on pool01.dal.contoso.com
Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType Application -NewPrincipal Mirror -Force
Export-CsRgsConfiguration -Source ApplicationServer:pool01.dal.contoso.com -FileName 'C:\rgs\dal.zip'",
    );
}

/// Issue 10, finding 16: `-DatabaseType Application` fails over the Application databases only;
/// the User database keeps its principal, so a CentralMgmt failover that follows still breaks
/// rule 18 (strict mode).
#[test]
fn application_database_failover_leaves_the_user_database() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\nstate: {down: [sql/sql01.dal.contoso.com]}\n");
    let out = run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType Application -NewPrincipal Mirror -Force
        Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com -DatabaseType User
        ",
    );
    assert_eq!(output(&out, "Get-CsDatabaseMirrorState")[0]["StateOnMirror"], "Mirror", "the User database did not move");
    refused_strictly(
        &mut sim,
        DAL,
        "Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType CentralMgmt -NewPrincipal Mirror -Force",
        18,
    );
    let e = fails(&mut sim, DAL, "Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType Archiving -NewPrincipal Mirror");
    assert!(e.message.contains("no Archiving database"), "{e}");
}

/// Issue 10, finding 17: PowerShell binds an integer to a TimeSpan as ticks (`120` is 12
/// microseconds) and a string through `TimeSpan.Parse` (`"10"` is ten days): both are outside
/// 00:00:05-03:00:00 and refused; `00:00:10` is ten seconds. The same binding applies to every
/// TimeSpan parameter.
#[test]
fn timespans_bind_as_powershell_binds_them() {
    let mut sim = deployment("cms: {activePool: pool01.dal.contoso.com}\n");
    let e = fails(&mut sim, DAL, "Set-CsBackupServiceConfiguration -SyncInterval 120");
    assert!(e.message.contains("SyncInterval 00:00:00.0000120 is out of range"), "{e}");
    let e = fails(&mut sim, DAL, "Set-CsBackupServiceConfiguration -SyncInterval \"10\"");
    assert!(e.message.contains("SyncInterval 10.00:00:00 is out of range"), "{e}");
    let e = fails(&mut sim, DAL, "Set-CsBackupServiceConfiguration -SyncInterval 25:00:00");
    assert!(e.message.contains("numeric components is out of range"), "{e}");
    let out = run_ok(
        &mut sim,
        "#! on pool01.dal.contoso.com\nSet-CsBackupServiceConfiguration -SyncInterval 00:00:10\nGet-CsBackupServiceConfiguration",
    );
    assert_eq!(output(&out, "Get-CsBackupServiceConfiguration")["SyncInterval"], "00:00:10");
    run_ok(&mut sim, "#! on pool01.dal.contoso.com\nSet-CsBackupServiceConfiguration -SyncInterval 1:30\nGet-CsBackupServiceConfiguration");
    let bound = |line: &str| {
        let inv = parse_line(line, &binder::is_switch).expect("parses").expect("command");
        bind(&inv, Product::SfB2019).map(|b| b.get("WaitTime").cloned())
    };
    assert_eq!(bound("Invoke-CsPoolFailBack -PoolFqdn p.contoso.com -WaitTime 150").ok().flatten(), Some(json!("00:00:00.0000150")));
    assert_eq!(bound("Invoke-CsPoolFailBack -PoolFqdn p.contoso.com -WaitTime '2'").ok().flatten(), Some(json!("2.00:00:00")));
    assert_eq!(bound("Invoke-CsPoolFailBack -PoolFqdn p.contoso.com -WaitTime 00:00:15").ok().flatten(), Some(json!("00:00:15")));
    assert!(bound("Invoke-CsPoolFailBack -PoolFqdn p.contoso.com -WaitTime 15s").is_err());
}

/// Issue 10, finding 18: the documented command for a failed primary (JJ204991, domain document
/// 4.10 step 3) has no `-Force`; the cmdlet reference says `-Force` is also used when the current
/// database is not accessible. The simulator accepts both.
#[test]
fn documented_user_database_failover_without_force_is_accepted() {
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {down: [sql/sql01.dal.contoso.com]}\n");
    let out = run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com -DatabaseType User
        Invoke-CsDatabaseFailover -PoolFqdn pool01.dal.contoso.com -DatabaseType User -NewPrincipal mirror -Verbose
        Get-CsDatabaseMirrorState -PoolFqdn pool01.dal.contoso.com -DatabaseType User
        ",
    );
    assert_eq!(output(&out, "Get-CsDatabaseMirrorState")[0]["StateOnMirror"], "Principal");
    assert!(sim.snapshot().all_users_served);
}

/// Issue 10, finding 19: the literal XMPP failback procedure of JJ721897 (start the restored Edge
/// pool's services, repoint the XMPP route to one of its servers, then the DNS records) passes
/// strict mode. Only the documented parameter name is replaced by the reference's (discrepancy
/// 6: `-XmppExternalFederationRoute` does not bind). Stopping services is for failing over to a
/// new pool, not for failing back.
#[test]
fn xmpp_failback_follows_the_documented_procedure() {
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nfederation: {xmppEdgePool: edge01.dal.contoso.com}\n");
    run_ok(
        &mut sim,
        "
        #! fault down:edge/edge01.dal.contoso.com
        #! on edge01-es01.sea.contoso.com
        Stop-CsWindowsService
        #! on edge01-es02.sea.contoso.com
        Stop-CsWindowsService
        #! on pool01.sea.contoso.com
        Set-CsSite -Identity Seattle -XmppFederationRoute EdgeServer:edge01.sea.contoso.com
        #! fault point:xmpp-dns/edge01.sea.contoso.com
        #! on edge01-es01.sea.contoso.com
        Start-CsWindowsService
        #! on edge01-es02.sea.contoso.com
        Start-CsWindowsService
        #! fault up:edge/edge01.dal.contoso.com
        ",
    );
    run_ok(
        &mut sim,
        "
        #! on edge01-es01.dal.contoso.com
        Start-CsWindowsService
        #! on edge01-es02.dal.contoso.com
        Start-CsWindowsService
        #! on pool01.dal.contoso.com
        Set-CsSite Dallas -XmppFederationRoute edge01-es01.dal.contoso.com
        #! fault point:xmpp-dns/edge01.dal.contoso.com
        Resolve-DnsName _xmpp-server._tcp.contoso.com SRV
        ",
    );
    assert_eq!(sim.snapshot().federation.xmpp_edge_pool.as_ref().map(Fqdn::as_str), Some(EDGE_DAL));
    assert_eq!(sim.xmpp_dns_target().as_ref().map(Fqdn::as_str), Some(EDGE_DAL));
    // Repointing XMPP to a pool it was not moved away from still needs that pool stopped.
    refused_strictly(&mut sim, SEA, "Set-CsSite -Identity Seattle -XmppFederationRoute EdgeServer:edge01.sea.contoso.com", 21);
}

/// Issue 10, finding 7 (rules 1 and 3): the CMS moves into a pool that serves its own users.
/// Dallas's users are failed over to Seattle, which hosts the CMS: Dallas is failed back first.
/// Lync accepts the move earlier: strict mode.
#[test]
fn cms_moves_only_into_a_pool_serving_its_own_users() {
    let mut sim = deployment("cms: {activePool: pool01.sea.contoso.com}\nstate: {failedOver: [pool01.dal.contoso.com]}\n");
    run_ok(
        &mut sim,
        r"
        #! on pool01.dal.contoso.com
        Export-CsConfiguration -FileName 'C:\lyncdr\CsConfiguration.zip'
        Export-CsLisConfiguration -FileName 'C:\lyncdr\CsLisConfiguration.zip'
        ",
    );
    let e = refused_strictly(&mut sim, DAL, "Invoke-CsManagementServerFailover", 1);
    assert!(e.message.contains("Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com"), "{e}");
    run_ok(
        &mut sim,
        "
        #! on pool01.dal.contoso.com
        Invoke-CsPoolFailBack -PoolFqdn pool01.dal.contoso.com
        Invoke-CsManagementServerFailover
        ",
    );
    assert_eq!(cms_pool(&sim).as_deref(), Some(DAL));
}
