//! The reconciler against a mocked API server (tower-test): a small in-memory apiserver answers
//! list, get, merge-patch, status-patch and event calls, and the Lync side is the in-process
//! simulator in virtual time. Each test reconciles and then checks the stored objects, the
//! events and what the simulator executed.

mod common;

use common::two_site_manifests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::core::DeserializeGuard;
use lyncdr::api::{Connection, LyncDeployment};
use lyncdr::backend::Lync;
use lyncdr::controller::{ConnectError, Connector, Ctx, Metrics, Stores, Writers, reconcile};
use lyncdr::sim::LocalSim;
use lyncdr::sim::Simulator;
use serde_json::{Value, json};

/// The in-memory apiserver: objects by (plural, namespace, name), events in order.
#[derive(Default)]
struct Store {
    objects: BTreeMap<(String, String, String), Value>,
    events: Vec<Value>,
    rv: u64,
    /// Plays another writer: just before the next status patch that writes a journal, it
    /// replaces the stored journal with its own entry.
    foreign_journal_write: bool,
    /// Field managers of the server-side applies received, in order.
    applied_by: Vec<String>,
}

type Shared = Arc<Mutex<Store>>;

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// A status patch made on an older resourceVersion than the stored one is a conflict, as on a
/// real apiserver. Plays the other writer first when asked (`foreign`, cleared once used).
fn conflicts(o: &mut Value, patch: &Value, foreign: &mut bool) -> bool {
    if *foreign && patch["status"]["journal"].as_array().is_some_and(|j| !j.is_empty()) {
        *foreign = false;
        o["status"]["journal"] = json!([{ "step": "someone-else", "planHash": "x", "command": "Get-CsPool", "runOn": "x", "startedAt": "+0s", "by": "another-operator", "outcome": "Succeeded" }]);
        let rv = o["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_string();
        o["metadata"]["resourceVersion"] = json!(format!("{rv}-foreign"));
    }
    patch["metadata"]["resourceVersion"].as_str().is_some_and(|rv| Some(rv) != o["metadata"]["resourceVersion"].as_str())
}

fn respond(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .expect("response")
}

async fn serve(store: Shared, mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>) {
    while let Some((req, send)) = handle.next_request().await {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let content_type = req.headers().get("content-type").map(|v| v.as_bytes().to_vec()).unwrap_or_default();
        let json_patch = content_type.starts_with(b"application/json-patch");
        let apply = content_type.starts_with(b"application/apply-patch");
        let body = req.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut st = store.lock().expect("store");
        st.rv += 1;
        let rv = st.rv;
        let resp = match (method.as_str(), parts.as_slice()) {
            ("POST", ["apis", "events.k8s.io", "v1", "namespaces", _, "events"]) => {
                st.events.push(body.clone());
                respond(201, body)
            }
            ("PATCH", ["apis", "events.k8s.io", "v1", "namespaces", _, "events", _]) => respond(200, body),
            ("GET", ["apis", "lyncdr.io", "v1alpha1", "namespaces", ns, plural]) => {
                let items: Vec<Value> = st.objects.iter().filter(|((p, n, _), _)| p == plural && n == ns).map(|(_, v)| v.clone()).collect();
                respond(
                    200,
                    json!({ "apiVersion": "lyncdr.io/v1alpha1", "kind": "List", "metadata": { "resourceVersion": rv.to_string() }, "items": items }),
                )
            }
            (
                "GET",
                ["apis", "lyncdr.io", "v1alpha1", "namespaces", ns, plural, name]
                | ["apis", "lyncdr.io", "v1alpha1", "namespaces", ns, plural, name, "status"],
            ) => match st.objects.get(&(plural.to_string(), ns.to_string(), name.to_string())) {
                Some(o) => respond(200, o.clone()),
                None => respond(
                    404,
                    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found" }),
                ),
            },
            ("PATCH", ["apis", "lyncdr.io", "v1alpha1", "namespaces", ns, plural, name, rest @ ..]) => {
                let key = (plural.to_string(), ns.to_string(), name.to_string());
                let mut foreign = std::mem::take(&mut st.foreign_journal_write);
                let conflict = match st.objects.get_mut(&key) {
                    Some(o) if !rest.is_empty() => conflicts(o, &body, &mut foreign),
                    _ => false,
                };
                st.foreign_journal_write = foreign;
                match st.objects.get_mut(&key) {
                    Some(o) if json_patch => {
                        // kube's finalizer helper: JSON patch with `test` ops.
                        let ops: json_patch::Patch = serde_json::from_value(body.clone()).expect("a JSON patch");
                        // The apiserver reads an absent field as null for `test`.
                        if o["metadata"].get("finalizers").is_none() {
                            o["metadata"]["finalizers"] = Value::Null;
                        }
                        let r = json_patch::patch(o, &ops);
                        if o["metadata"]["finalizers"].is_null()
                            && let Some(m) = o["metadata"].as_object_mut()
                        {
                            m.remove("finalizers");
                        }
                        match r {
                            Ok(()) => {
                                o["metadata"]["resourceVersion"] = json!(rv.to_string());
                                respond(200, o.clone())
                            }
                            Err(e) => respond(
                                422,
                                json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422, "message": e.to_string() }),
                            ),
                        }
                    }
                    Some(_) if conflict => respond(
                        409,
                        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified; please apply your changes to the latest version and try again" }),
                    ),
                    Some(_) if apply => {
                        // Server-side apply of a status by the report's field manager: what it
                        // applied before and omits now goes; the journal's fields (another
                        // manager's) stay.
                        assert_eq!(rest, ["status"], "only status is applied");
                        let manager = query.split('&').find_map(|kv| kv.strip_prefix("fieldManager=")).unwrap_or_default().to_string();
                        st.applied_by.push(manager);
                        let Some(o) = st.objects.get_mut(&key) else { unreachable!("matched above") };
                        let mut status = body["status"].clone();
                        for f in ["journal", "history"] {
                            if let Some(v) = o["status"].get(f) {
                                status[f] = v.clone();
                            }
                        }
                        o["status"] = status;
                        o["metadata"]["resourceVersion"] = json!(rv.to_string());
                        respond(200, o.clone())
                    }
                    Some(o) => {
                        let mut patch = body.clone();
                        if rest.is_empty() {
                            // Only metadata may change on the main resource here; spec changes bump the generation.
                            if let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                                m.remove("resourceVersion");
                            }
                            if patch.get("spec").is_some() {
                                let g = o["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                                o["metadata"]["generation"] = json!(g);
                            }
                        } else if let Some(p) = patch.as_object_mut() {
                            p.retain(|k, _| k == "status");
                        }
                        merge(o, &patch);
                        o["metadata"]["resourceVersion"] = json!(rv.to_string());
                        respond(200, o.clone())
                    }
                    None => respond(
                        404,
                        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found" }),
                    ),
                }
            }
            _ => respond(
                404,
                json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{method} {path} is not served by the test apiserver") }),
            ),
        };
        drop(st);
        send.send_response(resp);
    }
}

/// Connects every deployment to one in-process simulator.
struct SimConnector(Arc<LocalSim>);

impl Connector for SimConnector {
    fn connect<'a>(&'a self, _key: &'a str, _conn: &'a Connection) -> BoxFuture<'a, Result<Arc<dyn Lync>, ConnectError>> {
        let l: Arc<dyn Lync> = self.0.clone();
        futures::future::ready(Ok(l)).boxed()
    }
}

struct Harness {
    store: Shared,
    ctx: Arc<Ctx>,
    sim: Arc<LocalSim>,
    /// The controller's reflector stores, refilled from the mocked apiserver before each
    /// reconcile (what the watches do in the operator).
    writers: Mutex<Writers>,
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "LyncDeployment" => "lyncdeployments",
        "PoolPair" => "poolpairs",
        "UserPlacement" => "userplacements",
        _ => "conferencecontentrestores",
    }
}

impl Harness {
    fn new(scenario: &str, manifests: &str) -> Harness {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "lync");
        let store: Shared = Arc::default();
        tokio::spawn(serve(store.clone(), handle));
        let docs: Vec<Value> = serde_saphyr::from_multiple(manifests).expect("manifests");
        for mut d in docs {
            let kind = d["kind"].as_str().unwrap_or_default().to_string();
            let name = d["metadata"]["name"].as_str().unwrap_or_default().to_string();
            d["metadata"]["namespace"] = json!("lync");
            d["metadata"]["generation"] = json!(1);
            d["metadata"]["resourceVersion"] = json!("1");
            d["metadata"]["uid"] = json!(format!("uid-{name}"));
            store.lock().expect("store").objects.insert((plural(&kind).into(), "lync".into(), name), d);
        }
        let sim = Arc::new(LocalSim::new(Simulator::new(&common::scenario(scenario))));
        let (_tx, leader) = tokio::sync::watch::channel(true);
        std::mem::forget(_tx);
        let (stores, writers) = Stores::new();
        let ctx =
            Arc::new(Ctx::new(client, "test-operator", Arc::new(SimConnector(sim.clone())), leader, Arc::new(Metrics::default()), stores));
        Harness { store, ctx, sim, writers: Mutex::new(writers) }
    }

    fn object(&self, kind: &str, name: &str) -> Value {
        self.store.lock().expect("store").objects.get(&(plural(kind).into(), "lync".into(), name.into())).cloned().unwrap_or(Value::Null)
    }

    fn annotate(&self, kind: &str, name: &str, key: &str, value: &str) {
        let mut st = self.store.lock().expect("store");
        if let Some(o) = st.objects.get_mut(&(plural(kind).into(), "lync".into(), name.into())) {
            o["metadata"]["annotations"][key] = json!(value);
        }
    }

    fn edit(&self, kind: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut st = self.store.lock().expect("store");
        if let Some(o) = st.objects.get_mut(&(plural(kind).into(), "lync".into(), name.into())) {
            f(o);
            let g = o["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            o["metadata"]["generation"] = json!(g);
        }
    }

    /// What a relist of every watch would deliver now.
    fn refill_stores(&self) {
        fn all<K: serde::de::DeserializeOwned>(h: &Harness, plural: &str) -> Vec<K> {
            let st = h.store.lock().expect("store");
            st.objects.iter().filter(|((p, _, _), _)| p == plural).filter_map(|(_, v)| serde_json::from_value(v.clone()).ok()).collect()
        }
        let (d, p, u, r) =
            (all(self, "lyncdeployments"), all(self, "poolpairs"), all(self, "userplacements"), all(self, "conferencecontentrestores"));
        self.writers.lock().expect("writers").replace(d, p, u, r);
    }

    /// One reconcile, as the controller runs it; the first one only adds the finalizer, and
    /// the watch event of that change brings the second, which this helper runs too.
    async fn reconcile(&self) -> kube::runtime::controller::Action {
        let had_finalizer = self.object("LyncDeployment", "contoso")["metadata"]["finalizers"].is_array();
        let action = self.reconcile_once().await;
        if had_finalizer { action } else { self.reconcile_once().await }
    }

    async fn reconcile_once(&self) -> kube::runtime::controller::Action {
        self.refill_stores();
        let obj: DeserializeGuard<LyncDeployment> = serde_json::from_value(self.object("LyncDeployment", "contoso")).expect("deployment");
        reconcile(Arc::new(obj), self.ctx.clone()).await.expect("reconcile")
    }

    fn condition(&self, kind: &str, name: &str, t: &str) -> (String, String, String) {
        let o = self.object(kind, name);
        let c = o["status"]["conditions"].as_array().and_then(|a| a.iter().find(|c| c["type"] == t)).cloned().unwrap_or(Value::Null);
        (c["status"].as_str().unwrap_or("").into(), c["reason"].as_str().unwrap_or("").into(), c["message"].as_str().unwrap_or("").into())
    }

    fn changes(&self) -> Vec<String> {
        self.sim.lock().log().iter().filter(|r| r.mutating).map(|r| r.cmdlet.clone()).collect()
    }

    fn events(&self) -> Vec<String> {
        self.store.lock().expect("store").events.iter().map(|e| e["reason"].as_str().unwrap_or("").to_string()).collect()
    }
}

fn manifests(pair_extra: &str, policy: &str) -> String {
    two_site_manifests(pair_extra, &format!("  connection: {{transport: Simulator, simulatorUrl: \"http://sim\"}}\n  policy: {{{policy}}}"))
}

#[tokio::test(start_paused = true)]
async fn first_reconcile_adds_the_finalizer_and_reports_ready() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: []", "approval: Automatic"));
    h.reconcile().await;
    let dep = h.object("LyncDeployment", "contoso");
    assert_eq!(dep["metadata"]["finalizers"], json!(["lyncdr.io/cleanup"]));
    assert_eq!(dep["status"]["observedGeneration"], 1);
    assert_eq!(h.condition("LyncDeployment", "contoso", "Ready").0, "True", "{dep:#}");
    assert_eq!(h.condition("LyncDeployment", "contoso", "Reconciling").0, "False");
    assert_eq!(h.condition("LyncDeployment", "contoso", "Stalled").0, "False");
    assert_eq!(dep["status"]["observed"]["cmsPool"], "pool01.dal.contoso.com");
    assert_eq!(dep["status"]["appliedGeneration"], 1);
    let managers = h.store.lock().expect("store").applied_by.clone();
    assert!(
        !managers.is_empty() && managers.iter().all(|m| m == "lyncdr-status"),
        "status is applied by its own field manager: {managers:?}"
    );
    assert!(dep["status"]["history"].is_object(), "the memory is an object in status: {:#}", dep["status"]["history"]);
    let pair = h.object("PoolPair", "dal-sea");
    assert_eq!(pair["status"]["observedGeneration"], 1);
    assert_eq!(h.condition("PoolPair", "dal-sea", "Ready").0, "True");
    assert!(pair["status"]["serving"].as_str().unwrap_or("").contains("pool01.dal.contoso.com→pool01.dal.contoso.com"));
    assert!(h.changes().is_empty(), "a converged deployment changes nothing: {:?}", h.changes());
    // A second reconcile writes nothing new: status is written only when it changed.
    let rv = h.object("LyncDeployment", "contoso")["metadata"]["resourceVersion"].clone();
    h.reconcile().await;
    assert_eq!(h.object("LyncDeployment", "contoso")["metadata"]["resourceVersion"], rv, "an unchanged status must not be patched again");
}

#[tokio::test(start_paused = true)]
async fn automatic_approval_runs_the_plan_and_journals_it() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Automatic"));
    h.reconcile().await;
    let changes = h.changes();
    assert!(
        changes.contains(&"Invoke-CsManagementServerFailover".to_string()) && changes.contains(&"Invoke-CsPoolFailOver".to_string()),
        "{changes:?}"
    );
    let dep = h.object("LyncDeployment", "contoso");
    let journal = dep["status"]["journal"].as_array().cloned().unwrap_or_default();
    assert!(journal.iter().any(|j| j["step"] == "pool-failover/pool01.dal.contoso.com" && j["outcome"] == "Succeeded"), "{journal:#?}");
    assert!(journal.iter().all(|j| j["outcome"] != "Pending"));
    assert!(h.events().iter().any(|e| e == "StepStarted") && h.events().iter().any(|e| e == "StepFinished"), "{:?}", h.events());
    // The next reconcile sees the result and is ready.
    h.reconcile().await;
    let ready = h.condition("LyncDeployment", "contoso", "Ready");
    assert_eq!(ready.0, "True", "{ready:?}");
    assert!(
        h.object("PoolPair", "dal-sea")["status"]["serving"]
            .as_str()
            .unwrap_or("")
            .contains("pool01.dal.contoso.com→pool01.sea.contoso.com")
    );
}

#[tokio::test(start_paused = true)]
async fn manual_approval_waits_for_the_hash_and_a_stale_approval_runs_nothing() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Manual"));
    h.reconcile().await;
    let (st, reason, msg) = h.condition("LyncDeployment", "contoso", "AwaitingApproval");
    assert_eq!((st.as_str(), reason.as_str()), ("True", "ApprovalRequired"));
    let hash = h.object("LyncDeployment", "contoso")["status"]["plan"]["hash"].as_str().unwrap_or("").to_string();
    assert!(!hash.is_empty() && msg.contains(&hash), "{msg}");
    assert!(h.changes().is_empty(), "nothing runs before approval: {:?}", h.changes());
    assert!(h.events().iter().any(|e| e == "AwaitingApproval"));

    // A stale approval: the spec changed, so the plan (and its hash) did too.
    h.annotate("LyncDeployment", "contoso", "lyncdr.io/approve", &hash);
    h.edit("PoolPair", "dal-sea", |o| o["spec"]["failedOver"] = json!(["pool01.sea.contoso.com"]));
    h.reconcile().await;
    let new_hash = h.object("LyncDeployment", "contoso")["status"]["plan"]["hash"].as_str().unwrap_or("").to_string();
    assert_ne!(new_hash, hash);
    assert_eq!(h.condition("LyncDeployment", "contoso", "AwaitingApproval").0, "True");
    assert!(h.changes().is_empty(), "a stale approval never runs a different plan: {:?}", h.changes());

    // Approving the current hash runs it.
    h.annotate("LyncDeployment", "contoso", "lyncdr.io/approve", &new_hash);
    h.reconcile().await;
    assert!(h.changes().contains(&"Invoke-CsPoolFailOver".to_string()), "{:?}", h.changes());
    let log = h.sim.lock().log().to_vec();
    assert!(log.iter().any(|r| r.line.contains("Invoke-CsPoolFailOver -PoolFqdn pool01.sea.contoso.com")));
}

#[tokio::test(start_paused = true)]
async fn paused_deployments_report_but_do_not_act() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Automatic"));
    h.annotate("LyncDeployment", "contoso", "lyncdr.io/paused", "true");
    h.reconcile().await;
    assert_eq!(h.condition("LyncDeployment", "contoso", "Paused").0, "True");
    assert_eq!(h.condition("LyncDeployment", "contoso", "Ready").1, "Paused");
    assert!(
        h.object("LyncDeployment", "contoso")["status"]["plan"]["steps"].as_array().is_some_and(|s| !s.is_empty()),
        "the plan is still published"
    );
    assert!(h.changes().is_empty());
    h.annotate("LyncDeployment", "contoso", "lyncdr.io/paused", "false");
    h.reconcile().await;
    assert_eq!(h.condition("LyncDeployment", "contoso", "Paused").0, "False");
    assert!(h.changes().contains(&"Invoke-CsPoolFailOver".to_string()));
}

#[tokio::test(start_paused = true)]
async fn observe_only_never_acts() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "managementPolicy: ObserveOnly"));
    h.reconcile().await;
    h.reconcile().await;
    assert_eq!(h.condition("LyncDeployment", "contoso", "Ready").1, "ObserveOnly");
    assert!(h.changes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_pending_journal_entry_without_effect_stalls_until_resolved() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Manual"));
    // First reconcile publishes the plan; take its failover step as if an earlier instance had
    // started it and died before recording the outcome.
    h.reconcile().await;
    let dep: LyncDeployment = serde_json::from_value(h.object("LyncDeployment", "contoso")).expect("dep");
    let steps = dep.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| p.steps.clone()).unwrap_or_default();
    assert!(steps.iter().any(|s| s.id == "pool-failover/pool01.dal.contoso.com"));
    let d = common::desired(&manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Manual"));
    let journal = lyncdr::engine::journal::MemoryJournal::default();
    let engine = lyncdr::engine::Engine::new(h.sim.as_ref(), &journal);
    let (_, p) = engine.preview(&d, &|_| {}).await.expect("plan");
    let step = p.step("pool-failover/pool01.dal.contoso.com").expect("failover step").clone();
    let entry = lyncdr::engine::journal::Entry {
        step,
        plan_hash: p.hash.clone(),
        started_at: lyncdr::model::Stamp(0),
        by: "lyncdr-old-pod".into(),
        outcome: lyncdr::engine::journal::Outcome::Pending,
        request: None,
    };
    let record = serde_json::to_string(&entry).expect("record");
    {
        let mut st = h.store.lock().expect("store");
        let o = st.objects.get_mut(&("lyncdeployments".into(), "lync".into(), "contoso".into())).expect("dep");
        o["status"]["journal"] = json!([{ "step": entry.step.id, "planHash": p.hash, "command": "", "runOn": "", "startedAt": "+0s", "by": "lyncdr-old-pod", "outcome": "Pending", "record": record }]);
        o["metadata"]["annotations"]["lyncdr.io/approve"] = json!(p.hash);
    }
    h.reconcile().await;
    let (st, reason, msg) = h.condition("LyncDeployment", "contoso", "Stalled");
    assert_eq!((st.as_str(), reason.as_str()), ("True", "Stalled"), "{msg}");
    assert!(msg.contains("pool-failover/pool01.dal.contoso.com") && msg.contains("unknown"), "{msg}");
    assert!(h.changes().is_empty(), "nothing runs while an outcome is unknown: {:?}", h.changes());
    // A person checks Lync and resolves the entry; the plan then runs.
    h.annotate("LyncDeployment", "contoso", "lyncdr.io/resolve", "pool-failover/pool01.dal.contoso.com");
    h.reconcile().await;
    assert_eq!(h.condition("LyncDeployment", "contoso", "Stalled").0, "False");
    let journal = h.object("LyncDeployment", "contoso")["status"]["journal"].clone();
    assert!(journal.as_array().is_some_and(|j| j.iter().all(|e| e["outcome"] != "Pending")), "{journal:#}");
}

#[tokio::test(start_paused = true)]
async fn a_pool_in_two_pairs_is_a_conflict_naming_both() {
    let extra = r#"
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {name: dal-chi}
spec:
  deployment: contoso
  pools: [pool01.dal.contoso.com, pool01.chi.contoso.com]
"#;
    let h = Harness::new(common::TWO_SITE, &(manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Automatic") + extra));
    h.reconcile().await;
    let (st, reason, msg) = h.condition("LyncDeployment", "contoso", "Conflict");
    assert_eq!((st.as_str(), reason.as_str()), ("True", "ConflictingResources"));
    assert!(msg.contains("PoolPair/dal-sea") && msg.contains("PoolPair/dal-chi"), "{msg}");
    assert_eq!(h.condition("LyncDeployment", "contoso", "Stalled").0, "True");
    assert!(h.changes().is_empty());
    assert!(h.events().iter().any(|e| e == "Conflict"));
}

#[tokio::test(start_paused = true)]
async fn the_memory_is_an_object_in_status_and_the_old_string_form_is_still_read() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: []", "approval: Automatic"));
    let old = json!({ "automaticFailovers": { "pool01.dal.contoso.com": { "at": 1000, "generation": 1 } } }).to_string();
    h.edit("LyncDeployment", "contoso", |d| d["status"] = json!({ "history": old }));
    h.reconcile().await;
    let dep = h.object("LyncDeployment", "contoso");
    assert_eq!(dep["status"]["history"]["automaticFailovers"]["pool01.dal.contoso.com"]["at"], json!(1000), "{:#}", dep["status"]);
    assert_eq!(h.condition("LyncDeployment", "contoso", "Ready").0, "True");
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_journal_record_stalls_instead_of_being_dropped() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Automatic"));
    h.edit("LyncDeployment", "contoso", |d| {
        d["status"] = json!({ "journal": [{ "step": "pool-failover/pool01.dal.contoso.com", "planHash": "x", "command": "Invoke-CsPoolFailOver", "runOn": "pool01.sea.contoso.com", "startedAt": "+0s", "by": "op", "outcome": "Pending", "record": { "step": 3 } }] })
    });
    h.reconcile().await;
    let (status, reason, message) = h.condition("LyncDeployment", "contoso", "Stalled");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Stalled"), "{message}");
    assert!(message.contains("status.journal[0].record cannot be read"), "{message}");
    assert!(h.changes().is_empty(), "nothing runs while the journal cannot be read: {:?}", h.changes());
}

#[tokio::test(start_paused = true)]
async fn a_journal_changed_by_another_writer_is_not_overwritten_and_nothing_runs() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: [pool01.dal.contoso.com]", "approval: Automatic"));
    h.reconcile().await;
    let changes_before = h.changes();
    // The next journal write finds that another writer replaced the journal meanwhile.
    h.edit("PoolPair", "dal-sea", |o| o["spec"]["failedOver"] = json!([]));
    h.store.lock().expect("store").foreign_journal_write = true;
    h.reconcile().await;
    let dep = h.object("LyncDeployment", "contoso");
    assert_eq!(dep["status"]["journal"][0]["by"], "another-operator", "the other writer's journal is kept: {:#}", dep["status"]["journal"]);
    let after = h.changes();
    assert_eq!(after.len(), changes_before.len(), "no cmdlet ran without its journal entry: {after:?}");
    let (status, _, message) = h.condition("LyncDeployment", "contoso", "Stalled");
    assert_eq!(status, "True", "{message}");
    assert!(message.contains("changed by another writer"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn what_the_memory_forgets_is_removed_from_status() {
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: []", "approval: Automatic"));
    h.reconcile().await;
    // The memory says local setup is pending on one Edge server: the plan runs it and the
    // memory forgets it, which status must show (a merge patch keeps keys it does not null).
    let server = "edge01-es01.dal.contoso.com";
    h.edit("LyncDeployment", "contoso", |d| d["status"]["history"]["pendingEdgeSetup"] = json!({ server: 1000 }));
    h.reconcile().await;
    assert!(h.changes().iter().any(|c| c.contains("Bootstrapper") || c.starts_with('&')), "{:?}", h.changes());
    let dep = h.object("LyncDeployment", "contoso");
    assert!(dep["status"]["history"]["pendingEdgeSetup"].get(server).is_none(), "{:#}", dep["status"]["history"]);
}

#[tokio::test(start_paused = true)]
async fn a_memory_left_half_changed_by_a_panic_is_never_written_to_status() {
    use futures::FutureExt;
    use lyncdr::engine::journal::Journal;
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: []", "approval: Automatic"));
    h.reconcile().await;
    let before = h.object("LyncDeployment", "contoso")["status"]["history"].clone();
    let dep: LyncDeployment = serde_json::from_value(h.object("LyncDeployment", "contoso")).expect("deployment");
    let journal = lyncdr::controller::StatusJournal::new(kube::Api::namespaced(h.ctx.client.clone(), "lync"), &dep).expect("journal");
    // A change that panics half-way: it has already changed the memory.
    let panicked = std::panic::AssertUnwindSafe(journal.remember(Box::new(|m| {
        m.completed_restores.insert("half-done".into(), 1);
        panic!("a bug while changing the memory");
    })))
    .catch_unwind()
    .await;
    assert!(panicked.is_err());
    let err = journal.remember(Box::new(|m| m.completed_restores.clear())).await.expect_err("a poisoned memory is refused");
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(journal.finish("any-step", &lyncdr::engine::journal::Outcome::Succeeded, lyncdr::model::Stamp(0)).await.is_err());
    let after = h.object("LyncDeployment", "contoso")["status"]["history"].clone();
    assert_eq!(before, after, "nothing was written to status");
    assert!(!after.to_string().contains("half-done"));
}

#[tokio::test]
async fn a_winrm_connection_names_what_is_missing_and_never_a_secret_value() {
    use lyncdr::api::{Connection, Transport};
    use lyncdr::controller::KubeSecrets;
    let h = Harness::new(common::TWO_SITE, &manifests("  failedOver: []", "approval: Automatic"));
    let connector = KubeSecrets::connector(h.ctx.client.clone());
    let mut conn: Connection = serde_json::from_value(json!({ "transport": "WinRM" })).expect("connection");
    assert_eq!(conn.transport, Transport::WinRM);
    let err = |c: &Connection| {
        let c = c.clone();
        let connector = &connector;
        async move { connector.connect("lync/contoso", &c).await.err().map(|e| e.to_string()).unwrap_or_default() }
    };
    assert!(err(&conn).await.contains("spec.connection.endpoints is required for transport WinRM"));
    conn.endpoints = Some(vec!["not a server".into()]);
    assert!(err(&conn).await.starts_with("spec.connection.endpoints[0]: "));
    conn.endpoints = Some(vec!["pool01-fe01.dal.contoso.com".into()]);
    assert!(err(&conn).await.contains("spec.connection.credentialsSecret is required"));
    conn.credentials_secret = Some("lync-winrm".into());
    // The test apiserver has no Secrets: reading it fails, naming the Secret.
    assert!(err(&conn).await.starts_with("credentials Secret lync/lync-winrm: "), "{}", err(&conn).await);
}
