//! The observer: reads a deployment through `Get-*` cmdlets into an [`Observed`] snapshot.
//! Independent queries run concurrently. Each Front End pool is probed twice, from the operator
//! (on the pool itself) and from its partner, so that an operator cut off from a site can tell
//! an isolated but healthy pool from a dead one; an Edge pool the operator does not reach is
//! probed from a Front End pool of another site for the same reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures::future::{BoxFuture, Shared, join_all};
use futures::{FutureExt, StreamExt};
use serde_json::Value;

use crate::backend::records::{
    self, BackupServiceConfiguration, BackupServiceStatus, CentralManagementService, CmsReplicaStatus, CmsStoreStatus, ComputerSystem,
    DatabaseMirrorState, DnsRecord, EdgeServerService, MeasureObject, MediaService, OperatingSystem, PoolBackupRelationship, PoolRecord,
    Record, RgsWorkflow, ServerPatchVersion, ServerVersion, SipDomain, SiteRecord, UserDatabaseService, UserPoolInfo, WindowsService,
};
use crate::backend::{Lync, LyncError};
use crate::model::{
    BackEnd, BackEndObs, CmsObs, DbType, EdgeObs, EdgePool, Edition, FailoverState, FederationObs, Fqdn, FrontEndPool, History,
    ModuleStatus, Observed, PoolObs, PoolTraits, Probe, Product, RgsObs, Role, RunOn, Span, SrvRecord, Stamp, Topology, Virtualization,
};
use crate::ps::{Input, Invocation, script_block};

/// Most `Get-CsUserPoolInfo` queries (one per placed user) in flight at once: enough for the
/// WinRM driver to gather them into large batches, few enough that 10,000 placed users do not
/// hold 10,000 requests (and their buffers) at a time.
pub const USER_QUERIES_IN_FLIGHT: usize = 256;

/// What to observe beyond the deployment itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Users whose home pool is needed (placements by SIP address).
    pub users: BTreeSet<String>,
    /// Pools whose homed users must be counted (placements by pool).
    pub count_pools: BTreeSet<Fqdn>,
    /// Read Response Group workflows.
    pub response_groups: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error("no server of the deployment answers: {0}")]
    NoVantage(String),
    #[error("{query} returned an unexpected answer: {detail}")]
    Unexpected { query: String, detail: String },
}

/// Reads the whole deployment. Through a backend that keeps a [`QueryMemo`], the calls of the
/// last observation are asked again at once, before the phases that depend on each other need
/// them: with an unchanged topology the whole observation leaves in one batch per target.
pub async fn observe(lync: &dyn Lync, scope: &Scope, history: &History) -> Result<Observed, ObserveError> {
    let Some(memo) = lync.query_memo() else { return observe_through(lync, lync, scope, history).await };
    let ahead = Prefetching::new(lync, memo.calls());
    let (_, observed) = futures::join!(ahead.all(), observe_through(&ahead, lync, scope, history));
    memo.keep(ahead.asked());
    observed
}

type Key = (RunOn, String);

/// A backend seen through the calls asked ahead: a call asked ahead is answered from there,
/// any other goes to the backend; every call is recorded for the next observation.
struct Prefetching<'a> {
    lync: &'a dyn Lync,
    ahead: HashMap<Key, Shared<BoxFuture<'a, Result<Value, LyncError>>>>,
    asked: Mutex<Vec<(RunOn, Invocation)>>,
}

impl<'a> Prefetching<'a> {
    fn new(lync: &'a dyn Lync, calls: Vec<(RunOn, Invocation)>) -> Prefetching<'a> {
        let mut ahead = HashMap::new();
        for (on, inv) in calls {
            let key = (on.clone(), inv.to_powershell());
            ahead.entry(key).or_insert_with(|| async move { lync.invoke(&on, &inv).await }.boxed().shared());
        }
        Prefetching { lync, ahead, asked: Mutex::new(Vec::new()) }
    }

    /// Drives every call asked ahead (together, so they leave in the same batches).
    async fn all(&self) {
        join_all(self.ahead.values().cloned()).await;
    }

    fn asked(&self) -> Vec<(RunOn, Invocation)> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Lync for Prefetching<'_> {
    fn invoke<'b>(&'b self, run_on: &'b RunOn, inv: &'b Invocation) -> BoxFuture<'b, Result<Value, LyncError>> {
        if let Ok(mut a) = self.asked.lock() {
            a.push((run_on.clone(), inv.clone()));
        }
        match self.ahead.get(&(run_on.clone(), inv.to_powershell())) {
            Some(f) => f.clone().boxed(),
            None => self.lync.invoke(run_on, inv),
        }
    }
    fn now(&self) -> Stamp {
        self.lync.now()
    }
    fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
        self.lync.sleep(d)
    }
    fn describe(&self) -> String {
        self.lync.describe()
    }
}

/// One observation. `once` answers the questions asked once and then remembered (a pool's host
/// facts): they are not asked ahead next time.
async fn observe_through(lync: &dyn Lync, once: &dyn Lync, scope: &Scope, history: &History) -> Result<Observed, ObserveError> {
    // The deployment-wide queries go to the first pool last seen up (the anchor of its site, so
    // they travel in that site's batch), or anywhere.
    let hub = history.pool_health.keys().find(|p| seen_up(history, p)).map(|p| RunOn::Pool(p.clone())).unwrap_or(RunOn::Any);
    let hub = &hub;
    let q = |inv: Invocation| async move { at(lync, hub, &RunOn::Any, &inv).await };
    let (pools_v, sites_v, db_v, edge_v, conf_v, med_v, cms_svc_v, cms_v, cfg_v, domain_v) = futures::join!(
        q(Invocation::new("Get-CsPool")),
        q(Invocation::new("Get-CsSite")),
        q(Invocation::new("Get-CsService").switch("UserDatabase")),
        q(Invocation::new("Get-CsService").switch("EdgeServer")),
        q(Invocation::new("Get-CsService").switch("ConferencingServer")),
        q(Invocation::new("Get-CsService").switch("MediationServer")),
        q(Invocation::new("Get-CsService").switch("CentralManagement")),
        q(Invocation::new("Get-CsManagementStoreReplicationStatus").switch("CentralManagementStoreStatus")),
        q(Invocation::new("Get-CsBackupServiceConfiguration")),
        q(Invocation::new("Get-CsSipDomain")),
    );
    let pools_v = pools_v.map_err(|e| ObserveError::NoVantage(e.to_string()))?;
    let sites_v = need("Get-CsSite", sites_v)?;
    let db_v = need("Get-CsService -UserDatabase", db_v)?;

    // Topology.
    let mut fe_pools: BTreeMap<Fqdn, (String, Vec<Fqdn>)> = BTreeMap::new();
    let mut edge_pools: BTreeMap<Fqdn, (String, Vec<Fqdn>)> = BTreeMap::new();
    for p in rows::<PoolRecord>("Get-CsPool", &pools_v)? {
        let entry = (p.site_name().to_string(), p.computer_fqdns());
        if p.has_service("Registrar") {
            fe_pools.insert(p.fqdn, entry);
        } else if p.has_service("EdgeServer") {
            edge_pools.insert(p.fqdn, entry);
        }
    }
    let site_records = rows::<SiteRecord>("Get-CsSite", &sites_v)?;
    let sites: Vec<String> = site_records.iter().map(|s| s.display_name.clone()).collect();
    let mut federation = site_records
        .first()
        .map(|s| FederationObs { sip_edge: s.federation_edge(), xmpp_edge: s.xmpp_federation_edge(), ..Default::default() })
        .unwrap_or_default();
    let domains: Vec<SipDomain> = domain_v.map(|v| records::parsed(&v)).unwrap_or_default();
    federation.sip_domain = domains.iter().find(|d| d.is_default).or(domains.first()).map(|d| d.name.clone()).filter(|d| !d.is_empty());
    if federation.xmpp_edge.is_some() {
        federation.xmpp_srv = xmpp_srv(lync, hub, federation.sip_domain.as_deref()).await;
    }
    let mut back_ends: BTreeMap<Fqdn, BackEnd> = BTreeMap::new();
    for d in rows::<UserDatabaseService>("Get-CsService -UserDatabase", &db_v)? {
        for pool in d.user_pools() {
            back_ends.insert(
                pool,
                BackEnd { primary: d.pool_fqdn.clone(), mirror: d.mirror(), witness: d.has_witness, clustered: d.is_clustered },
            );
        }
    }

    // Per-pool queries, concurrently.
    let pool_names: Vec<Fqdn> = fe_pools.keys().cloned().collect();
    let anchors = Anchors::new(&fe_pools, history);
    let relations =
        join_all(pool_names.iter().map(|p| q(Invocation::new("Get-CsPoolBackupRelationship").arg("PoolFqdn", p.as_str())))).await;
    let mut backup: BTreeMap<Fqdn, Fqdn> = BTreeMap::new();
    let mut failover: BTreeMap<Fqdn, FailoverState> = BTreeMap::new();
    for (p, r) in pool_names.iter().zip(relations) {
        const QUERY: &str = "Get-CsPoolBackupRelationship";
        let v = need(QUERY, r)?;
        // No relationship at all reads as none, in the Normal state.
        let relation = rows::<PoolBackupRelationship>(QUERY, &v)?.into_iter().next().unwrap_or_default();
        if let Some(b) = relation.backup_pool() {
            backup.insert(p.clone(), b);
        }
        failover.insert(p.clone(), relation.failover_state);
    }

    let mut history_traits = history.pool_traits.clone();
    let per_pool = join_all(pool_names.iter().map(|p| {
        let partner = backup.get(p).cloned();
        let need_traits = !history_traits.contains_key(p);
        let partner_at = partner.as_ref().map(|q| (anchors.of(q), RunOn::Pool(q.clone())));
        let facts = need_traits.then_some(once);
        observe_pool(lync, p.clone(), (anchors.of(p), hub), partner_at, facts, fe_pools[p].1.clone())
    }))
    .await;

    let mut pools = BTreeMap::new();
    let mut topo_pools = BTreeMap::new();
    let mut unknown_traits = std::collections::BTreeSet::new();
    for (p, got) in pool_names.iter().zip(per_pool) {
        let (site, front_ends) = fe_pools[p].clone();
        let be =
            back_ends.get(p).cloned().unwrap_or(BackEnd { primary: front_ends[0].clone(), mirror: None, witness: false, clustered: false });
        let edition = if front_ends.len() == 1 && be.primary == front_ends[0] { Edition::Standard } else { Edition::Enterprise };
        if let Some(t) = &got.traits {
            history_traits.insert(p.clone(), PoolTraits { edition, back_end_ha: be.ha(), ..t.clone() });
        }
        if !history_traits.contains_key(p) {
            unknown_traits.insert(p.clone());
        }
        let traits = history_traits.get(p).cloned().unwrap_or(PoolTraits {
            edition,
            product: Product::Lync2013,
            virtualization: Virtualization::Physical,
            os: String::new(),
            back_end_ha: be.ha(),
        });
        let mut obs = got.obs;
        obs.failover = failover.get(p).copied().unwrap_or_default();
        pools.insert(p.clone(), obs);
        topo_pools.insert(
            p.clone(),
            FrontEndPool {
                fqdn: p.clone(),
                site,
                traits: PoolTraits { edition, back_end_ha: be.ha(), ..traits },
                front_ends,
                users: 0,
                named_users: vec![],
                back_end: be,
                call_park: true,
                response_groups: vec![],
            },
        );
    }
    // The deployment's product: the one most pools with known facts run; pools whose facts are
    // unknown are assumed to run it (the pairing rules that need the facts are skipped for them).
    let known = || topo_pools.iter().filter(|(f, _)| !unknown_traits.contains(*f)).map(|(_, p)| p.traits.product);
    let product = known().max_by_key(|pr| known().filter(|x| x == pr).count()).unwrap_or(Product::Lync2013);
    for f in &unknown_traits {
        if let Some(p) = topo_pools.get_mut(f) {
            p.traits.product = product;
        }
    }

    // Edge pools.
    const EDGE_QUERY: &str = "Get-CsService -EdgeServer";
    let edge_services = need(EDGE_QUERY, edge_v)?;
    let next_hops: BTreeMap<Fqdn, Option<Fqdn>> =
        rows::<EdgeServerService>(EDGE_QUERY, &edge_services)?.into_iter().map(|e| (e.pool_fqdn.clone(), e.next_hop())).collect();
    let edge_names: Vec<Fqdn> = edge_pools.keys().cloned().collect();
    // Another site's view of an Edge pool comes from a Front End pool there that answers.
    let vantage = |site: &str| -> Option<Fqdn> {
        fe_pools.iter().find(|(p, (s, _))| s != site && pools.get(*p).is_some_and(|o: &PoolObs| o.direct.is_ok())).map(|(p, _)| p.clone())
    };
    let edge_obs = join_all(edge_names.iter().map(|e| {
        let site = &edge_pools[e].0;
        observe_edge(lync, e.clone(), edge_pools[e].1.clone(), anchors.in_site(site), vantage(site))
    }))
    .await;
    let mut edges = BTreeMap::new();
    let mut topo_edges = BTreeMap::new();
    for (e, mut obs) in edge_names.iter().zip(edge_obs) {
        obs.next_hop = next_hops.get(e).cloned().flatten();
        edges.insert(e.clone(), obs);
        let (site, servers) = edge_pools[e].clone();
        topo_edges.insert(e.clone(), EdgePool { fqdn: e.clone(), site, servers });
    }

    // Media associations.
    for (v, mediation) in [(conf_v, false), (med_v, true)] {
        let v = need("Get-CsService", v)?;
        for s in records::parsed::<MediaService>(&v) {
            if let Some(o) = pools.get_mut(&s.pool_fqdn) {
                let edge = s.edge();
                if mediation {
                    o.mediation_edge = edge;
                } else {
                    o.conferencing_edge = edge;
                }
            }
        }
    }

    // CMS.
    let mut cms = CmsObs::default();
    const CMS_QUERY: &str = "Get-CsService -CentralManagement";
    for s in rows::<CentralManagementService>(CMS_QUERY, &need(CMS_QUERY, cms_svc_v)?)? {
        if let Some(f) = s.pool() {
            if s.active {
                cms.home_pool = Some(f);
            } else {
                cms.standby_pool = Some(f);
            }
        }
    }
    const STORE_QUERY: &str = "Get-CsManagementStoreReplicationStatus";
    let status = rows::<CmsStoreStatus>(STORE_QUERY, &need(STORE_QUERY, cms_v)?)?;
    if let Some(master) = status.first().and_then(CmsStoreStatus::active_master) {
        cms.master_pool = topo_pools.values().find(|p| p.front_ends.contains(&master)).map(|p| p.fqdn.clone());
    }
    if cms.available() {
        let replicas = q(Invocation::new("Get-CsManagementStoreReplicationStatus")).await;
        if let Ok(v) = replicas {
            let rows = records::parsed::<CmsReplicaStatus>(&v);
            // A replica whose last report is five minutes older than the freshest one is cut
            // off from the CMS. Measured against the freshest report, not this process's clock:
            // the answer may have been read (asked ahead) a while before it is looked at here.
            let freshest = rows.iter().filter_map(|r| r.last_status_report).max();
            for r in rows {
                cms.replicas.insert(r.replica_fqdn.clone(), r.up_to_date);
                if let (Some(t), Some(f)) = (r.last_status_report, freshest)
                    && f.saturating_sub(t) < Span::mins(5).0
                {
                    cms.in_contact.insert(r.replica_fqdn);
                }
            }
        }
    }

    let sync_interval = cfg_v
        .ok()
        .and_then(|v| records::one::<BackupServiceConfiguration>(&v).ok())
        .and_then(|c| c.sync_interval.and_then(|s| Span::parse(&s).ok()));

    // Users.
    let mut users = BTreeMap::new();
    let user_list: Vec<String> = scope.users.iter().cloned().collect();
    let asks: Vec<_> = user_list.iter().map(|u| q(Invocation::new("Get-CsUserPoolInfo").arg("Identity", u.as_str()))).collect();
    let infos: Vec<_> = futures::stream::iter(asks).buffered(USER_QUERIES_IN_FLIGHT).collect().await;
    for (u, r) in user_list.iter().zip(infos) {
        let home = match r {
            Ok(v) => records::one::<UserPoolInfo>(&v).ok().and_then(|i| i.primary_pool()),
            Err(LyncError::Cmdlet { .. }) => None,
            Err(e) => return Err(ObserveError::NoVantage(e.to_string())),
        };
        users.insert(u.clone(), home);
    }
    let counted: Vec<Fqdn> = scope.count_pools.iter().filter(|p| pools.contains_key(*p)).cloned().collect();
    let counts = join_all(counted.iter().map(|p| {
        let query = Invocation::new("Get-CsUser").arg("Filter", script_block(format!("RegistrarPool -eq \"{p}\"")));
        q(Invocation::new("Measure-Object").piped_from(Input::Command(Box::new(query))))
    }))
    .await;
    for (p, r) in counted.iter().zip(counts) {
        if let (Ok(v), Some(o)) = (r, pools.get_mut(p)) {
            o.homed_users = records::one::<MeasureObject>(&v).ok().map(|m| m.count);
        }
    }

    // Response Groups.
    let mut rgs = RgsObs::default();
    if scope.response_groups {
        let reachable: Vec<Fqdn> = pools.iter().filter(|(_, o)| o.direct.is_ok()).map(|(p, _)| p.clone()).collect();
        let found = join_all(reachable.iter().map(|p| {
            let inv = Invocation::new("Get-CsRgsWorkflow").arg("Identity", format!("service:ApplicationServer:{p}")).switch("ShowAll");
            let (anchor, own) = (anchors.of(p), RunOn::Pool(p.clone()));
            async move { at(lync, &anchor, &own, &inv).await }
        }))
        .await;
        for (host, r) in reachable.iter().zip(found) {
            if let Ok(v) = r {
                let entry = rgs.hosted.entry(host.clone()).or_default();
                for w in records::parsed::<RgsWorkflow>(&v) {
                    if let Some(owner) = w.owner() {
                        entry.entry(owner).or_default().push(w.name);
                    }
                }
            }
        }
    }

    let topology = Topology { product, sites, pools: topo_pools, edges: topo_edges, backup };
    let mut observed = Observed {
        at: lync.now(),
        topology,
        pools,
        edges,
        cms,
        federation,
        sync_interval,
        users,
        rgs,
        unknown_traits,
        history: History { pool_traits: history_traits, ..history.clone() },
    };
    observed.history = observed.history.remember(&observed);
    Ok(observed)
}

/// The external XMPP federation SRV records (JJ688065 step 5), as a server resolves them.
/// `None` when they cannot be read; a name that does not exist has no records.
async fn xmpp_srv(lync: &dyn Lync, hub: &RunOn, domain: Option<&str>) -> Option<Vec<SrvRecord>> {
    let name = format!("_xmpp-server._tcp.{}", domain?);
    let inv = Invocation::new("Resolve-DnsName").arg("Name", name).arg("Type", "SRV");
    match at(lync, hub, &RunOn::Any, &inv).await {
        Ok(v) => Some(records::parsed::<DnsRecord>(&v).iter().filter_map(DnsRecord::srv).collect()),
        Err(LyncError::Cmdlet { .. }) => Some(vec![]),
        Err(_) => None,
    }
}

struct PoolResult {
    obs: PoolObs,
    traits: Option<PoolTraits>,
}

/// Where the per-pool and per-Edge queries of a site are asked: one Front End pool of the site,
/// its anchor, answers for all of them (the cmdlets name their pool or server: `-PoolFqdn`,
/// `-ComputerName`), so a transport that sends a target's calls together pays one round trip
/// per site. The anchor is the first pool of the site last seen up (else the first pool); when
/// it cannot be reached, each pool is asked itself ([`at`]).
struct Anchors {
    /// The anchor of each site.
    by_site: BTreeMap<String, Fqdn>,
    /// The site of each Front End pool.
    site_of: BTreeMap<Fqdn, String>,
}

impl Anchors {
    fn new(fe_pools: &BTreeMap<Fqdn, (String, Vec<Fqdn>)>, history: &History) -> Anchors {
        let mut anchors: BTreeMap<String, Fqdn> = BTreeMap::new();
        let up = |p: &Fqdn| seen_up(history, p);
        for (p, (site, _)) in fe_pools {
            match anchors.get(site) {
                Some(a) if up(a) || !up(p) => {}
                _ => {
                    anchors.insert(site.clone(), p.clone());
                }
            }
        }
        Anchors { by_site: anchors, site_of: fe_pools.iter().map(|(p, (site, _))| (p.clone(), site.clone())).collect() }
    }

    /// Where a Front End pool's queries are asked.
    fn of(&self, pool: &Fqdn) -> RunOn {
        self.site_of.get(pool).and_then(|site| self.in_site(site)).unwrap_or_else(|| RunOn::Pool(pool.clone()))
    }

    /// Where queries about a site's servers are asked, if the site has a Front End pool.
    fn in_site(&self, site: &str) -> Option<RunOn> {
        self.by_site.get(site).map(|a| RunOn::Pool(a.clone()))
    }
}

/// Whether the operator memory last saw this pool up (where anchors and the hub are chosen).
fn seen_up(history: &History, pool: &Fqdn) -> bool {
    history.pool_health.get(pool).is_some_and(|h| h.value == crate::model::Health::Up)
}

/// Asks at the site's anchor or, when the anchor cannot be reached, at `own` itself.
async fn at(lync: &dyn Lync, anchor: &RunOn, own: &RunOn, inv: &Invocation) -> Result<Value, LyncError> {
    match lync.invoke(anchor, inv).await {
        Err(LyncError::Unreachable { .. }) if anchor != own => lync.invoke(own, inv).await,
        r => r,
    }
}

/// `(anchor, hub)`: where the pool's site is asked, and where the deployment-wide queries go.
async fn observe_pool(
    lync: &dyn Lync,
    pool: Fqdn,
    (anchor, hub): (RunOn, &RunOn),
    partner: Option<(RunOn, RunOn)>,
    facts: Option<&dyn Lync>,
    front_ends: Vec<Fqdn>,
) -> PoolResult {
    let fabric = Invocation::new("Get-CsPoolFabricState").arg("PoolFqdn", pool.as_str());
    let here = RunOn::Pool(pool.clone());
    let direct_f = at(lync, &anchor, &here, &fabric);
    let partner_f = async {
        match &partner {
            Some((anchor, own)) => Some(at(lync, anchor, own, &fabric).await),
            None => None,
        }
    };
    let mirror = Invocation::new("Get-CsDatabaseMirrorState").arg("PoolFqdn", pool.as_str());
    let mirror_f = at(lync, hub, &RunOn::Any, &mirror);
    let backup = Invocation::new("Get-CsBackupServiceStatus").arg("PoolFqdn", pool.as_str());
    let backup_f = at(lync, &anchor, &here, &backup);
    let (direct, from_partner, mirror, backup) = futures::join!(direct_f, partner_f, mirror_f, backup_f);

    let mut obs = PoolObs { direct: probe(&direct), ..Default::default() };
    obs.from_partner = match &from_partner {
        None => Probe::NotProbed,
        Some(Err(LyncError::Unreachable { .. })) => Probe::NotProbed,
        Some(r) => probe(r),
    };
    if let Ok(rows) = &mirror {
        let mut be = BackEndObs { primary_up: false, mirror_up: None, principal: BTreeMap::new() };
        for row in records::parsed::<DatabaseMirrorState>(rows) {
            let db = match row.database_type.as_str() {
                "CentralMgmt" => DbType::CentralMgmt,
                "Application" => DbType::Application,
                _ => DbType::User,
            };
            let (on_primary, on_mirror) = (row.state_on_primary, row.state_on_mirror);
            // A primary that reports itself the mirror means the principal is on the mirror, even
            // when the mirror cannot say so itself (issue 14 finding: a lost mirror holding the
            // principal was taken for a principal on the running primary, so nothing was done).
            let role = if on_mirror == "Principal" || on_primary == "Mirror" { Role::Mirror } else { Role::Primary };
            be.principal.insert(db, role);
            be.primary_up = on_primary == "Principal" || on_primary == "Mirror";
            be.mirror_up = match on_mirror.as_str() {
                "DatabaseInaccessibleOrMirroringNotEnabled" => None,
                s => Some(s == "Principal" || s == "Mirror"),
            };
        }
        obs.back_end = be;
    }
    if let Ok(v) = &backup {
        for m in records::parsed::<BackupServiceStatus>(v).iter().flat_map(|s| &s.backup_modules) {
            let Some(module) = m.module() else { continue };
            obs.backup_modules.insert(module, ModuleStatus { export: m.export_status, import: m.import_status });
        }
    }
    if obs.direct.is_ok() {
        // LYNCBACKUP on every Front End (installed by local setup once the pool is paired),
        // asked of the pool (`-ComputerName`): one round trip for the pool, not one per server.
        // Only "no such service" means not installed; a server the pool cannot reach stays
        // unknown.
        let results = join_all(front_ends.iter().map(|fe| {
            let inv = Invocation::new("Get-CsWindowsService").arg("Name", "LYNCBACKUP").arg("ComputerName", fe.as_str());
            let (anchor, here) = (&anchor, &here);
            async move { at(lync, anchor, here, &inv).await }
        }))
        .await;
        for (fe, r) in front_ends.iter().zip(results) {
            match r {
                Ok(v) => {
                    obs.backup_service.insert(fe.clone(), Some(records::parsed::<WindowsService>(&v).iter().any(WindowsService::running)));
                }
                Err(LyncError::Cmdlet { message, .. }) if message.contains(NO_SUCH_SERVICE) => {
                    obs.backup_service.insert(fe.clone(), None);
                }
                Err(_) => {}
            }
        }
        // Between local setup and the start of LYNCBACKUP (SfB 2019, rule 13): whether each such
        // Front End is at its cumulative update again (`Get-CsServerPatchVersion`).
        let waiting: Vec<Fqdn> = obs.backup_service.iter().filter(|(_, s)| **s == Some(false)).map(|(fe, _)| fe.clone()).collect();
        obs.patch_current = patch_levels(lync, &waiting).await;
    }
    // Host facts are the pool's own: asked of the pool itself.
    let traits = match facts {
        Some(once) if obs.direct.is_ok() => read_traits(once, &here).await,
        _ => None,
    };
    PoolResult { obs, traits }
}

/// How `Get-CsWindowsService -Name` says a service is not installed (Windows' `Get-Service`
/// text, English locale).
const NO_SUCH_SERVICE: &str = "Cannot find any service with service name";

/// Reads the component versions of these servers (`Get-CsServerPatchVersion`, SfB 2015
/// November 2015 CU and later): a server is current when none of its components is behind the
/// highest version any of them (or of its peers read here) reports. Servers that cannot say
/// (Lync 2013 has no such cmdlet, or the call failed) are left out.
async fn patch_levels(lync: &dyn Lync, servers: &[Fqdn]) -> BTreeMap<Fqdn, bool> {
    let inv = Invocation::new("Get-CsServerPatchVersion");
    let results = join_all(servers.iter().map(|s| {
        let on = RunOn::Server(s.clone());
        let inv = &inv;
        async move { lync.invoke(&on, inv).await }
    }))
    .await;
    let read: Vec<(Fqdn, Vec<Vec<u64>>)> = servers
        .iter()
        .zip(results)
        .filter_map(|(s, r)| {
            r.ok().map(|v| (s.clone(), records::parsed::<ServerPatchVersion>(&v).iter().map(|c| c.version_parts()).collect::<Vec<_>>()))
        })
        .filter(|(_, vs)| !vs.is_empty())
        .collect();
    let Some(top) = read.iter().flat_map(|(_, vs)| vs.iter()).max().cloned() else { return BTreeMap::new() };
    read.into_iter().map(|(s, vs)| (s, vs.iter().all(|v| *v >= top))).collect()
}

async fn read_traits(lync: &dyn Lync, on: &RunOn) -> Option<PoolTraits> {
    let (v, o, c) = (
        Invocation::new("Get-CsServerVersion"),
        Invocation::new("Get-CimInstance").arg("ClassName", "Win32_OperatingSystem"),
        Invocation::new("Get-CimInstance").arg("ClassName", "Win32_ComputerSystem"),
    );
    let (ver, os, cs) = futures::join!(lync.invoke(on, &v), lync.invoke(on, &o), lync.invoke(on, &c));
    let text = records::one::<ServerVersion>(&ver.ok()?).map(|v| v.0).unwrap_or_default();
    let product = if text.contains("2019") {
        Product::SfB2019
    } else if text.contains("2015") {
        Product::SfB2015
    } else {
        Product::Lync2013
    };
    let os = os.ok().and_then(|v| records::one::<OperatingSystem>(&v).ok()).map(|o| o.caption).unwrap_or_default();
    let os = os.trim_start_matches("Microsoft ").trim_end_matches(" Datacenter").trim_end_matches(" Standard").to_string();
    let model = cs.ok().and_then(|v| records::one::<ComputerSystem>(&v).ok()).map(|c| c.model).unwrap_or_default();
    let virtualization = if model.contains("Virtual") { Virtualization::Virtual } else { Virtualization::Physical };
    Some(PoolTraits { edition: Edition::Enterprise, product, virtualization, os, back_end_ha: crate::model::BackEndHa::None })
}

/// An Edge pool's servers, asked from the anchor of its site (`-ComputerName`) or, in a site
/// without Front End pools or when the anchor cannot tell, each server itself.
async fn observe_edge(lync: &dyn Lync, edge: Fqdn, servers: Vec<Fqdn>, anchor: Option<RunOn>, vantage: Option<Fqdn>) -> EdgeObs {
    let results = join_all(servers.iter().map(|s| {
        let own = RunOn::Server(s.clone());
        let anchor = anchor.clone();
        async move {
            let local = Invocation::new("Get-CsWindowsService").arg("Name", "RTCSRV");
            match anchor {
                Some(a) => {
                    let remote = local.clone().arg("ComputerName", s.as_str());
                    // The anchor may be unreachable, or refused by the perimeter firewall:
                    // then the server itself, if it has a listener the operator reaches.
                    match lync.invoke(&a, &remote).await {
                        Ok(v) => Ok(v),
                        Err(_) => lync.invoke(&own, &local).await,
                    }
                }
                None => lync.invoke(&own, &local).await,
            }
        }
    }))
    .await;
    let mut obs = EdgeObs::default();
    let mut any_ok = None;
    for (s, r) in servers.iter().zip(results) {
        match r {
            Ok(v) => {
                let running = records::parsed::<WindowsService>(&v).iter().any(WindowsService::running);
                obs.services_running.insert(s.clone(), running);
                any_ok = Some(Probe::Ok);
            }
            Err(e) => {
                if any_ok.is_none() {
                    any_ok = Some(probe::<Value>(&Err(e)));
                }
            }
        }
    }
    obs.direct = any_ok.unwrap_or_else(|| Probe::Unreachable(format!("{edge} has no servers")));
    if !obs.direct.is_ok()
        && let Some(pool) = vantage
    {
        obs.from_other_site = from_other_site(lync, &pool, &servers).await;
    }
    obs
}

/// Asks a Front End pool of another site whether it reaches the Edge servers
/// (`Get-CsWindowsService -Name RTCSRV -ComputerName <server>`): reached if any answers.
async fn from_other_site(lync: &dyn Lync, pool: &Fqdn, servers: &[Fqdn]) -> Probe {
    let on = RunOn::Pool(pool.clone());
    let results = join_all(servers.iter().map(|s| {
        let inv = Invocation::new("Get-CsWindowsService").arg("Name", "RTCSRV").arg("ComputerName", s.as_str());
        let on = on.clone();
        async move { lync.invoke(&on, &inv).await }
    }))
    .await;
    let mut out = Probe::NotProbed;
    for r in results {
        match r {
            Ok(_) => return Probe::Ok,
            // The vantage point itself did not answer: no evidence either way.
            Err(LyncError::Unreachable { .. }) => {}
            Err(e) => {
                if out == Probe::NotProbed {
                    out = Probe::Failed(e.to_string());
                }
            }
        }
    }
    out
}

fn probe<T>(r: &Result<T, LyncError>) -> Probe {
    match r {
        Ok(_) => Probe::Ok,
        Err(LyncError::Unreachable { detail, .. }) => Probe::Unreachable(detail.clone()),
        Err(e) => Probe::Failed(e.to_string()),
    }
}

fn need(query: &str, r: Result<Value, LyncError>) -> Result<Value, ObserveError> {
    r.map_err(|e| match e {
        LyncError::Unreachable { .. } => ObserveError::NoVantage(e.to_string()),
        other => unexpected(query, &other.to_string()),
    })
}

fn unexpected(query: &str, detail: &str) -> ObserveError {
    ObserveError::Unexpected { query: query.to_string(), detail: detail.to_string() }
}

/// The rows of a query the observer cannot do without: one that does not parse makes the whole
/// observation fail, naming the query.
fn rows<T: Record>(query: &str, v: &Value) -> Result<Vec<T>, ObserveError> {
    records::rows(v).map_err(|e| unexpected(query, &e.to_string()))
}
