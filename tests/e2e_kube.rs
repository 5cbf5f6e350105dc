//! End-to-end tests of the operator on a real control plane (kube-apiserver + etcd from
//! tests/support/control_plane.rs), driven with the real `kubectl` and `helm`, with the operator
//! (`lyncdr run`) and the simulator (`lyncdr sim serve`) as child processes:
//!
//! 1. `crds_validate_with_cel_and_print_columns`: `kubectl apply -f crds/`; a table of invalid
//!    manifests, each refused with its schema or CEL message (immutability included); the
//!    examples apply; `kubectl explain` and the printer columns.
//! 2. `helm_chart_lints_and_applies_server_side`: `helm lint`, and `helm template | kubectl apply
//!    --dry-run=server` for several value sets, the monitoring objects against stand-in CRDs.
//! 3. `operator_converges_and_recovers_from_a_site_failure`: the two-site example converges,
//!    Dallas is lost and failed over automatically, comes back and fails back automatically;
//!    plan, conditions and Events are visible with kubectl; every state-changing cmdlet ran once.
//! 4. `manual_approval_and_pause`: a plan waits for `lyncdr.io/approve=<hash>`, a wrong hash runs
//!    nothing, the right one (kubectl, then `lyncdr approve`) runs it; `lyncdr.io/paused` holds a
//!    plan back and stops a running one between steps.
//! 5. `leader_election_failover_resumes_from_the_journal`: two replicas, one acts; the leader is
//!    SIGKILLed during a pool failover and the other resumes without repeating it.
//! 6. `chart_rbac_is_enough_and_no_more`: the operator runs with exactly the chart's RBAC (a
//!    ServiceAccount identity) through a site failure and failback; `kubectl auth can-i` agrees.
//!
//! The harness is in tests/support/: `e2e.rs` (set-up, polling, status and Events through
//! kubectl), `kubectl.rs`, `operator_processes.rs` (simulator and operator processes).
//! The tests share one control plane and each uses its own namespaces; every operator watches
//! only its test's namespace. Every child process is killed when its guard drops (also on panic,
//! when the tail of its log is printed), and a watchdog kills it if the test process dies.
//!
//! Skips (passes, printing why) without `KUBEBUILDER_ASSETS`, kubectl or (test 2) helm. Run:
//! `KUBEBUILDER_ASSETS="$(bash scripts/control-plane.sh)" LYNCDR_HELM_DIR="$(bash scripts/helm.sh)"
//! cargo test --release --test e2e_kube -- --nocapture`

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/helm.rs"]
mod helm_bin;
#[path = "support/kubectl.rs"]
mod kubectl;
#[path = "support/operator_processes.rs"]
mod operator_processes;

use helm_bin::helm;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{
    BIN, DAL, EDGE_DAL, SEA, Watch, condition, conditions_line, event_lines, events, example_desired, get_dep, get_pair, is_true, poll,
    ready, reasons, root, serving, setup, summary, wait_converged, wait_settled,
};
use kubectl::{Kubectl, Ran};
use operator_processes::{Operator, Sim, assert_each_change_once, count_cmdlet, describe_call, free_port};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// 1. CRDs and CEL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_validate_with_cel_and_print_columns() {
    let Some(env) = setup("crds").await else { return };
    let k = &env.kubectl;
    let ns = "e2e-crds";
    k.create_namespace(ns);

    // Applying the committed CRDs again changes nothing.
    let again = k.must(&["apply", "-f", &root().join("crds").display().to_string()]);
    assert_eq!(again.matches("unchanged").count(), 4, "{again}");

    let pair = |name: &str, spec: &str| {
        format!(
            "apiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  deployment: contoso\n{spec}"
        )
    };
    let dep = |name: &str, spec: &str| {
        format!("apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}")
    };
    let placement = |name: &str, spec: &str| {
        format!(
            "apiVersion: lyncdr.io/v1alpha1\nkind: UserPlacement\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  deployment: contoso\n{spec}"
        )
    };
    let invalid: Vec<(&str, String, &str)> = vec![
        ("the same pool twice", pair("twice", &format!("  pools: [{DAL}, {DAL}]\n")), "the two pools of a pair must differ"),
        (
            "failedOver names a pool outside the pair",
            pair("outside", &format!("  pools: [{DAL}, {SEA}]\n  failedOver: [pool02.dal.contoso.com]\n")),
            "failedOver must name one of the pair's pools",
        ),
        (
            "two pools failed over",
            pair("both", &format!("  pools: [{DAL}, {SEA}]\n  failedOver: [{DAL}, {SEA}]\n")),
            "must have at most 1 item",
        ),
        ("an FQDN with a space", pair("space", &format!("  pools: [{DAL}, 'pool01 sea.contoso.com']\n")), "spec.pools[1]: Invalid value"),
        (
            "automatic failover without consent",
            pair("noconsent", &format!("  pools: [{DAL}, {SEA}]\n  automaticFailover: {{enabled: true}}\n")),
            "automaticFailover requires allowDataLoss",
        ),
        ("a sync interval of 4h", dep("slow", "  backupService: {syncInterval: 4h}\n"), "syncInterval must be between 5s and 3h"),
        ("a sync interval of 2s", dep("fast", "  backupService: {syncInterval: 2s}\n"), "syncInterval must be between 5s and 3h"),
        (
            "a Simulator connection without URL",
            dep("nourl", "  connection: {transport: Simulator}\n"),
            "transport Simulator needs simulatorUrl",
        ),
        (
            "a UserPlacement with users and fromPool",
            placement("bothsel", &format!("  users: ['sip:alice@contoso.com']\n  fromPool: {DAL}\n  targetPool: {SEA}\n")),
            "set exactly one of users and fromPool",
        ),
        (
            "CMS automatic failover without consent",
            dep("cmsauto", &format!("  centralManagementStore: {{activePool: {DAL}, automaticFailover: true}}\n")),
            "automaticFailover of the CMS requires allowDataLoss",
        ),
    ];
    let mut failures = Vec::new();
    for (what, manifest, message) in &invalid {
        let ran = k.apply(manifest, &[]);
        if ran.ok || !ran.stderr.contains(message) {
            failures.push(format!("{what}: expected a refusal with {message:?}, got ({}):\n{}", ran.status, ran.text()));
        }
    }
    // The FQDN case is refused by the pattern, not by something else.
    let space = k.apply(&invalid[3].1, &[]);
    assert!(space.stderr.contains("should match"), "{}", space.text());

    // Immutability: a PoolPair's pools are its identity.
    k.must_apply(&pair("fixed", &format!("  pools: [{DAL}, {SEA}]\n")));
    let changed = k.apply(&pair("fixed", &format!("  pools: [{DAL}, pool02.sea.contoso.com]\n")), &[]);
    if changed.ok || !changed.stderr.contains("pools are immutable") {
        failures.push(format!("changing spec.pools: expected \"pools are immutable\", got ({}):\n{}", changed.status, changed.text()));
    }
    let moved = k.apply(&pair("fixed", &format!("  pools: [{DAL}, {SEA}]\n")).replace("deployment: contoso", "deployment: other"), &[]);
    if moved.ok || !moved.stderr.contains("deployment is immutable") {
        failures.push(format!("changing spec.deployment: expected \"deployment is immutable\", got:\n{}", moved.text()));
    }
    // Other fields stay mutable.
    let failover = k.apply(&pair("fixed", &format!("  pools: [{DAL}, {SEA}]\n  failedOver: [{DAL}]\n  allowDataLoss: true\n")), &[]);
    if !failover.ok {
        failures.push(format!("changing failedOver was refused:\n{}", failover.text()));
    }

    // The examples and the test fixtures are valid (applied in this namespace).
    let two_site = fs::read_to_string(root().join("examples/two-site/desired.yaml"))
        .expect("example")
        .replace("namespace: lync", &format!("namespace: {ns}"));
    k.must_apply(&two_site);
    let flux = k
        .must(&["kustomize", &root().join("examples/flux/lync").display().to_string()])
        .replace("namespace: lync", &format!("namespace: {ns}"));
    let flux_ns = "e2e-crds-flux";
    k.create_namespace(flux_ns);
    let flux_ran = k.apply(&flux.replace(&format!("namespace: {ns}"), &format!("namespace: {flux_ns}")), &[]);
    if !flux_ran.ok {
        failures.push(format!("examples/flux/lync refused:\n{}", flux_ran.text()));
    }
    for fixture in ["failover-dallas", "manual-consent", "manual-home", "manual-no-consent"] {
        let text = fs::read_to_string(root().join(format!("tests/fixtures/{fixture}.desired.yaml")))
            .expect("fixture")
            .replace("namespace: lync", &format!("namespace: {ns}"));
        let ran = k.apply(&text, &["--dry-run=server"]);
        if !ran.ok {
            failures.push(format!("tests/fixtures/{fixture}.desired.yaml refused:\n{}", ran.text()));
        }
    }

    // kubectl explain shows the field's description (the OpenAPI document is republished a
    // moment after the CRD is established).
    let crd: Value =
        serde_saphyr::from_str(&fs::read_to_string(root().join("crds/poolpairs.lyncdr.io.yaml")).expect("CRD")).expect("CRD YAML");
    let description =
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["allowDataLoss"]["description"]
            .as_str()
            .expect("allowDataLoss description")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    assert!(description.contains("-DisasterMode"), "{description}");
    let explained = poll("kubectl explain poolpair.spec.allowDataLoss", Duration::from_secs(30), || {
        let ran = k.exec(&["explain", "poolpair.spec.allowDataLoss"], None, true);
        let flat = ran.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        if ran.ok && flat.contains(&description) && flat.contains("boolean") { Ok(ran.stdout) } else { Err(ran.text()) }
    });
    eprintln!("{explained}");

    // The printer columns.
    let table = k.must(&["get", "poolpairs", "-n", ns]);
    let header = table.lines().next().unwrap_or_default();
    let columns = ["NAME", "POOL A", "POOL B", "SERVING", "BACKUP SYNC", "DATA AT RISK", "READY", "AGE"];
    let mut at = 0;
    for c in columns {
        match header[at..].find(c) {
            Some(i) => at += i + c.len(),
            None => failures.push(format!("`kubectl get poolpairs` lacks column {c:?} (in order {columns:?}):\n{table}")),
        }
    }
    let row = table.lines().find(|l| l.starts_with("dal-sea")).unwrap_or_default();
    assert!(row.contains(DAL) && row.contains(SEA), "{table}");
    let wide = k.must(&["get", "lyncdeployments", "-n", ns, "-o", "wide"]);
    for c in ["TRANSPORT", "CMS", "STEPS", "READY", "REASON"] {
        if !wide.lines().next().unwrap_or_default().contains(c) {
            failures.push(format!("`kubectl get lyncdeployments -o wide` lacks column {c}:\n{wide}"));
        }
    }
    // The category: `kubectl get lyncdr` lists every kind.
    let all = k.must(&["get", "lyncdr", "-n", ns]);
    assert!(all.contains("lyncdeployment.lyncdr.io/contoso") && all.contains("poolpair.lyncdr.io/dal-sea"), "{all}");

    assert!(failures.is_empty(), "{} check(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// 2. Helm

fn helm_run(helm: &Path, args: &[&str]) -> Ran {
    let out = Command::new(helm).args(args).current_dir(root()).output().unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    Ran {
        ok: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `helm template lyncdr charts/lyncdr --namespace <ns> --set ...`.
fn helm_template(helm: &Path, ns: &str, set: &[&str]) -> String {
    let chart = root().join("charts/lyncdr").display().to_string();
    let mut args = vec!["template", "lyncdr", &chart, "--namespace", ns];
    for s in set {
        args.extend_from_slice(&["--set", s]);
    }
    let ran = helm_run(helm, &args);
    assert!(ran.ok, "helm {} failed:\n{}", args.join(" "), ran.text());
    ran.stdout
}

/// The `kind` of each document of a rendering.
fn kinds(rendered: &str) -> Vec<String> {
    rendered.split("\n---").filter_map(|doc| doc.lines().find_map(|l| l.strip_prefix("kind: ")).map(|k| k.trim().to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_lints_and_applies_server_side() {
    let Some(env) = setup("helm").await else { return };
    let Some(helm) = helm() else { return };
    let k = &env.kubectl;
    let (ns, watched) = ("e2e-helm", "e2e-helm-watch");
    k.create_namespace(ns);
    k.create_namespace(watched);

    let chart = root().join("charts/lyncdr").display().to_string();
    let lint = helm_run(&helm, &["lint", &chart]);
    assert!(lint.ok && lint.stdout.contains("0 chart(s) failed"), "helm lint:\n{}", lint.text());
    let strict = helm_run(
        &helm,
        &["lint", "--strict", &chart, "--set", "leaderElection.enabled=true", "--set", &format!("watchNamespace={watched}")],
    );
    assert!(strict.ok, "helm lint --strict:\n{}", strict.text());

    let watch_ns = format!("watchNamespace={watched}");
    let secret_ns = format!("rbac.secrets.names[0].namespace={watched}");
    let variants: Vec<(&str, Vec<&str>)> = vec![
        ("default values", vec![]),
        ("leader election", vec!["leaderElection.enabled=true"]),
        (
            "one namespace, a named Secret, leader election",
            vec![&watch_ns, "rbac.secrets.names[0].name=lync-winrm", "leaderElection.enabled=true"],
        ),
        ("cluster-wide, a named Secret", vec![&secret_ns, "rbac.secrets.names[0].name=lync-winrm"]),
        ("cluster-wide, any Secret", vec!["rbac.secrets.anyName=true"]),
        (
            "CRDs managed separately, existing ServiceAccount",
            vec!["crds.install=false", "serviceAccount.create=false", "serviceAccount.name=default"],
        ),
    ];
    let mut failures = Vec::new();
    let mut dry_run = |what: &str, set: &[&str]| -> Ran {
        let rendered = helm_template(&helm, ns, set);
        let ran = k.apply(&rendered, &["--dry-run=server"]);
        let expected = kinds(&rendered).len();
        let accepted = ran.stdout.lines().filter(|l| l.ends_with("(server dry run)")).count();
        if !ran.ok || accepted != expected {
            failures.push(format!("{what} ({set:?}): {accepted} of {expected} objects accepted:\n{}", ran.text()));
        }
        ran
    };
    for (what, set) in &variants {
        let ran = dry_run(what, set);
        if set.is_empty() {
            for object in [
                "deployment.apps/lyncdr",
                "serviceaccount/lyncdr",
                "clusterrole.rbac.authorization.k8s.io/lyncdr",
                "service/lyncdr",
                "customresourcedefinition.apiextensions.k8s.io/poolpairs.lyncdr.io",
            ] {
                assert!(ran.stdout.contains(object), "{object} missing from the default rendering's dry run:\n{}", ran.stdout);
            }
        }
    }

    // Monitoring: without the Prometheus Operator's CRDs the apiserver refuses the kinds, which
    // shows that the dry run really checks against the server.
    let monitoring = ["serviceMonitor.enabled=true", "prometheusRule.enabled=true", "leaderElection.enabled=true"];
    let rendered = helm_template(&helm, ns, &monitoring);
    let unknown = k.apply(&rendered, &["--dry-run=server"]);
    let have_monitoring = k.run(&["get", "crd", "servicemonitors.monitoring.coreos.com"]).ok;
    if !have_monitoring {
        assert!(
            !unknown.ok && unknown.stderr.contains("ServiceMonitor") && unknown.stderr.contains("PrometheusRule"),
            "{}",
            unknown.text()
        );
    }
    // With stand-in CRDs (tests/fixtures/e2e/monitoring-stand-in-crds.yaml: the kinds, any
    // spec), the ServiceMonitor and PrometheusRule are accepted as far as kind, metadata and
    // scope go; their specs are checked by tests/helm_chart.rs, not by a real schema.
    k.must(&["apply", "-f", &root().join("tests/fixtures/e2e/monitoring-stand-in-crds.yaml").display().to_string()]);
    k.must(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    ]);
    let accepted = poll("the monitoring kinds are served", Duration::from_secs(30), || {
        let ran = k.apply(&rendered, &["--dry-run=server"]);
        if ran.ok { Ok(ran) } else { Err(ran.text()) }
    });
    for object in ["servicemonitor.monitoring.coreos.com/lyncdr", "prometheusrule.monitoring.coreos.com/lyncdr"] {
        assert!(accepted.stdout.contains(&format!("{object} created (server dry run)")), "{}", accepted.stdout);
    }
    dry_run("monitoring with stand-in CRDs", &monitoring);

    assert!(failures.is_empty(), "{} check(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// 3. Convergence and a site failure

/// The example's story with the operator running: converged; Dallas lost, its users failed over
/// to Seattle automatically (CMS and federation follow); Dallas back, everything fails back
/// automatically after the stability period.
async fn site_failure_story(k: &Kubectl, ns: &str, sim: &Sim) {
    let timeout = Duration::from_secs(150);
    // The first plan exports the Response Groups routinely; then the deployment is Ready.
    k.must(&["wait", "--for=condition=Ready", "lyncdeployment/contoso", "-n", ns, "--timeout=120s"]);
    wait_converged(k, ns, &serving(DAL, SEA), timeout, |_| Ok(()));
    // The pairing is verified in Lync, not assumed: Paired=True once both directions sync.
    poll("PoolPair dal-sea Paired=True", timeout, || {
        let pair = get_pair(k, ns);
        if is_true(&pair, "Paired") && pair["status"]["pairing"] == "Paired" { Ok(()) } else { Err(conditions_line(&pair)) }
    });

    sim.fault("down:site/Dallas").await;
    // While Dallas is down the example's spec still puts the CMS there
    // (`centralManagementStore.activePool: pool01.dal...`): the planner reports that as a blocker,
    // so the LyncDeployment is Ready=False (Blocked) until Dallas returns, although the CMS
    // failed over automatically as the spec allows. Accept that state as settled (and say so).
    let (dep, _) = wait_settled(k, ns, &serving(SEA, SEA), timeout, |dep| {
        let o = &dep["status"]["observed"];
        if o["cmsPool"] == SEA { Ok(()) } else { Err(format!("CMS on {}", o["cmsPool"])) }
    });
    if !ready(&dep) {
        eprintln!("while Dallas is down the LyncDeployment is {}", conditions_line(&dep).lines().next().unwrap_or_default());
    }

    sim.fault("up:site/Dallas").await;
    wait_converged(k, ns, &serving(DAL, SEA), timeout, |dep| {
        let o = &dep["status"]["observed"];
        let pending: Vec<&Value> =
            dep["status"]["journal"].as_array().map(|j| j.iter().filter(|e| e["outcome"] == "Pending").collect()).unwrap_or_default();
        if o["cmsPool"] != DAL || o["sipFederationPool"] != EDGE_DAL || o["xmppFederationPool"] != EDGE_DAL {
            Err(format!("CMS on {}, SIP federation via {}, XMPP via {}", o["cmsPool"], o["sipFederationPool"], o["xmppFederationPool"]))
        } else if !pending.is_empty() {
            Err(format!("pending journal entries {pending:?}"))
        } else {
            Ok(())
        }
    });
}

/// Checks the simulator's log after the story: every change once, the expected procedures.
async fn check_story_calls(sim: &Sim) -> Vec<Value> {
    let calls = sim.mutating().await;
    assert_each_change_once(&calls);
    let all: Vec<String> = calls.iter().map(describe_call).collect();
    for (cmdlet, n) in [("Invoke-CsPoolFailOver", 1), ("Invoke-CsPoolFailBack", 1), ("Invoke-CsManagementServerFailover", 2)] {
        assert_eq!(count_cmdlet(&calls, cmdlet), n, "{cmdlet} should run {n} time(s):\n  {}", all.join("\n  "));
    }
    let failover = calls.iter().find(|r| r["cmdlet"] == "Invoke-CsPoolFailOver").expect("failover");
    assert!(failover["line"].as_str().is_some_and(|l| l.contains("-DisasterMode")), "Dallas was down: {failover}");
    // Federation moved to Seattle's Edge pool and back: local setup re-ran on each Edge server of
    // the pool that took it over (rule 19).
    for server in
        ["edge01-es01.sea.contoso.com", "edge01-es02.sea.contoso.com", "edge01-es01.dal.contoso.com", "edge01-es02.dal.contoso.com"]
    {
        let setups =
            calls.iter().filter(|r| r["server"] == server && r["line"].as_str().is_some_and(|l| l.contains("Bootstrapper.exe"))).count();
        assert_eq!(setups, 1, "Edge setup on {server}:\n  {}", all.join("\n  "));
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_converges_and_recovers_from_a_site_failure() {
    let Some(env) = setup("site-failure").await else { return };
    let k = &env.kubectl;
    let ns = "lync";
    k.create_namespace(ns);
    let sim = Sim::start(env.path(), 600);
    k.must_apply(&example_desired(ns, &sim.url, 4));
    let dep_watch = Watch::start(k, env.path(), "lyncdeployment", &["get", "lyncdeployment", "contoso", "-n", ns]);
    let pair_watch = Watch::start(k, env.path(), "poolpair", &["get", "poolpair", "dal-sea", "-n", ns]);
    let mut op = Operator::start(env.path(), env.plane.kubeconfig_path(), "op-1", &["--watch-namespace", ns]);
    op.wait_ready().await;
    let started = Instant::now();

    site_failure_story(k, ns, &sim).await;
    eprintln!("story done in {:.1} s", started.elapsed().as_secs_f64());
    let calls = check_story_calls(&sim).await;
    eprintln!("{} state-changing cmdlets, each once:\n  {}", calls.len(), calls.iter().map(describe_call).collect::<Vec<_>>().join("\n  "));

    let mut failures = Vec::new();

    // Status, with `kubectl get -o json`: the journal is settled and written by this operator.
    let dep = get_dep(k, ns);
    let journal = dep["status"]["journal"].as_array().cloned().unwrap_or_default();
    if journal.is_empty() || journal.iter().any(|e| e["outcome"] != "Succeeded" || e["by"] != "op-1") {
        failures.push(format!("journal: expected only Succeeded entries by op-1: {journal:#?}"));
    }
    for c in ["Ready", "Reconciling", "Stalled", "AwaitingApproval", "DriftDetected", "Paused", "DataAtRisk", "Conflict"] {
        if condition(&dep, c).is_none() {
            failures.push(format!("condition {c} missing: {}", conditions_line(&dep)));
        }
    }
    if is_true(&dep, "Stalled") || is_true(&dep, "Reconciling") || dep["status"]["observedGeneration"] != dep["metadata"]["generation"] {
        failures.push(format!("not settled: {}", conditions_line(&dep)));
    }
    // Status is server-side applied by its own field manager; the journal writes its fields
    // (journal, history) with resourceVersion-guarded patches.
    let managed = k.json(&["get", "lyncdeployment", "contoso", "-n", ns, "--show-managed-fields"]);
    let status_managers: Vec<(String, String)> = managed["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["subresource"] == "status")
        .map(|m| (m["manager"].as_str().unwrap_or_default().to_string(), m["operation"].as_str().unwrap_or_default().to_string()))
        .collect();
    if !status_managers.contains(&("lyncdr-status".to_string(), "Apply".to_string())) {
        failures.push(format!("status is not applied by the field manager lyncdr-status: {status_managers:?}"));
    }

    // Every plan was published in status while it ran (the watch saw every version).
    let versions = dep_watch.versions();
    let mut seen_steps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut executing = 0;
    for v in &versions {
        for s in v["status"]["plan"]["steps"].as_array().into_iter().flatten() {
            seen_steps
                .entry(s["id"].as_str().unwrap_or_default().to_string())
                .or_default()
                .insert(s["state"].as_str().unwrap_or_default().to_string());
        }
        if condition(v, "Reconciling").is_some_and(|c| c["status"] == "True" && c["reason"] == "Executing") {
            executing += 1;
        }
    }
    for id in [
        format!("pool-failover/{DAL}"),
        format!("pool-failback/{DAL}"),
        format!("cms-failover/{SEA}"),
        format!("cms-failover/{DAL}"),
        format!("edge-next-hop/{EDGE_DAL}"),
    ] {
        match seen_steps.get(&id) {
            Some(states) if states.contains("Succeeded") => {}
            other => failures
                .push(format!("step {id} never shown Succeeded in status.plan (states seen: {other:?}); steps seen: {seen_steps:?}")),
        }
    }
    if executing == 0 {
        failures.push(format!("no version of the LyncDeployment showed Reconciling=True (Executing) among {}", versions.len()));
    }
    let pair_versions = pair_watch.versions();
    let servings: Vec<String> =
        pair_versions.iter().filter_map(|v| v["status"]["serving"].as_str().map(str::to_string)).fold(Vec::new(), |mut acc, s| {
            if acc.last() != Some(&s) {
                acc.push(s);
            }
            acc
        });
    if servings != [serving(DAL, SEA), serving(SEA, SEA), serving(DAL, SEA)] {
        failures.push(format!("PoolPair status.serving went through {servings:?}"));
    }
    let pair_steps: BTreeSet<String> = pair_versions
        .iter()
        .flat_map(|v| v["status"]["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    if !pair_steps.contains(&format!("pool-failover/{DAL}")) {
        failures.push(format!("the PoolPair never listed its failover step: {pair_steps:?}"));
    }

    // Events: the plan, each step, the automatic failover.
    let evs = events(k, ns);
    let got = reasons(&evs);
    for reason in ["PlanReady", "StepStarted", "StepFinished", "AutomaticFailover"] {
        if !got.contains(reason) {
            failures.push(format!("no {reason} event; events:\n  {}", event_lines(&evs)));
        }
    }
    for bad in ["StepFailed", "Stalled", "Conflict", "ObservationFailed"] {
        if got.contains(bad) {
            failures.push(format!("unexpected {bad} event; events:\n  {}", event_lines(&evs)));
        }
    }
    if evs.iter().any(|e| e["reportingInstance"] != "op-1" || e["reportingComponent"] != "lyncdr") {
        failures.push(format!("events not reported by lyncdr/op-1:\n  {}", event_lines(&evs)));
    }
    let started_failover = evs
        .iter()
        .filter(|e| e["reason"] == "StepStarted" && e["message"].as_str().is_some_and(|m| m.starts_with(&format!("pool-failover/{DAL}:"))))
        .count();
    if started_failover != 1 {
        failures.push(format!("{started_failover} StepStarted events for the pool failover:\n  {}", event_lines(&evs)));
    }

    // kubectl describe shows conditions, the plan and the Events.
    let described = k.must(&["describe", "lyncdeployment", "contoso", "-n", ns]);
    for text in [
        "Conditions:",
        "Plan:",
        "Journal:",
        "Observed:",
        "Events:",
        "StepStarted",
        "StepFinished",
        "AutomaticFailover",
        "PlanReady",
        "Invoke-CsPoolFailBack",
    ] {
        if !described.contains(text) {
            failures.push(format!("`kubectl describe lyncdeployment` lacks {text:?}:\n{described}"));
        }
    }
    let table = k.must(&["get", "poolpairs", "-n", ns]);
    let row = table.lines().find(|l| l.starts_with("dal-sea")).unwrap_or_default().to_string();
    if !(row.contains(&serving(DAL, SEA).replace(' ', "")) || row.contains(&serving(DAL, SEA))) || !row.contains("True") {
        failures.push(format!("`kubectl get poolpairs` row: {table}"));
    }
    let listed = k.must(&["get", "lyncdr", "-n", ns]);
    if !listed.contains("lyncdeployment.lyncdr.io/contoso") || !listed.contains("poolpair.lyncdr.io/dal-sea") {
        failures.push(format!("`kubectl get lyncdr`:\n{listed}"));
    }

    // `lyncdr status` (KUBECONFIG) summarises the same.
    let status =
        Command::new(BIN).args(["status", "-n", ns]).env("KUBECONFIG", env.plane.kubeconfig_path()).output().expect("lyncdr status");
    let status_text = String::from_utf8_lossy(&status.stdout);
    if !status.status.success()
        || !status_text.contains(&format!("LyncDeployment/{ns}/contoso"))
        || !status_text.contains("PoolPair/dal-sea")
    {
        failures.push(format!("lyncdr status ({}):\n{status_text}{}", status.status, String::from_utf8_lossy(&status.stderr)));
    }

    // Metrics: this instance acts (no leader election), cmdlets were counted.
    let metrics = op.metrics().await;
    for line in ["lyncdr_leader 1", "lyncdr_cmdlet_calls_total{cmdlet=\"Invoke-CsPoolFailOver\",outcome=\"ok\"} 1"] {
        if !metrics.contains(line) {
            failures.push(format!("/metrics lacks {line:?}:\n{metrics}"));
        }
    }
    assert!(op.proc.exited().is_none(), "the operator exited:\n{}", op.proc.tail(40));
    assert!(failures.is_empty(), "{} check(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// 4. Manual approval and pause

/// A LyncDeployment under Manual approval (no CMS, Edge or Response Group spec) and the pair with
/// `failedOver: [<failed_over>]`.
fn manual_desired(ns: &str, sim_url: &str, failed_over: &str) -> String {
    format!(
        "apiVersion: lyncdr.io/v1alpha1
kind: LyncDeployment
metadata: {{name: contoso, namespace: {ns}}}
spec:
  connection: {{transport: Simulator, simulatorUrl: '{sim_url}'}}
  policy: {{approval: Manual, pollInterval: 5s}}
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {{name: dal-sea, namespace: {ns}}}
spec:
  deployment: contoso
  pools: [{DAL}, {SEA}]
  failedOver: [{failed_over}]
"
    )
}

fn annotate(k: &Kubectl, ns: &str, annotations: &[&str]) {
    let mut args = vec!["annotate", "lyncdeployment", "contoso", "-n", ns, "--overwrite"];
    args.extend_from_slice(annotations);
    k.must(&args);
}

fn set_failed_over(k: &Kubectl, ns: &str, pools: &[&str]) {
    let patch = json!({ "spec": { "failedOver": pools } }).to_string();
    k.must(&["patch", "poolpair", "dal-sea", "-n", ns, "--type", "merge", "-p", &patch]);
}

/// Requests a reconcile (`lyncdr.io/reconcile-requested-at`) and waits until the operator has
/// handled it: every annotation set before was seen by a complete reconcile.
fn reconciled(k: &Kubectl, ns: &str, token: &str) -> Value {
    annotate(k, ns, &[&format!("lyncdr.io/reconcile-requested-at={token}")]);
    poll(&format!("{ns}: reconcile {token} handled"), Duration::from_secs(60), || {
        let dep = get_dep(k, ns);
        if dep["status"]["lastHandledReconcileAt"] == token { Ok(dep) } else { Err(conditions_line(&dep)) }
    })
}

fn journal(dep: &Value) -> Vec<Value> {
    dep["status"]["journal"].as_array().cloned().unwrap_or_default()
}

fn journal_entry(dep: &Value, step: &str) -> Option<Value> {
    journal(dep).into_iter().rev().find(|e| e["step"] == step)
}

fn plan_steps(dep: &Value) -> Vec<String> {
    dep["status"]["plan"]["steps"].as_array().into_iter().flatten().filter_map(|s| s["id"].as_str().map(str::to_string)).collect()
}

/// `lyncdr approve contoso -n <ns>` with `KUBECONFIG`; returns its standard output.
fn lyncdr_approve(kubeconfig: &Path, ns: &str) -> String {
    let out = Command::new(BIN).args(["approve", "contoso", "-n", ns]).env("KUBECONFIG", kubeconfig).output().expect("lyncdr approve");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "lyncdr approve failed ({}):\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    eprintln!("$ lyncdr approve contoso -n {ns}\n{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_approval_and_pause() {
    let Some(env) = setup("manual").await else { return };
    let k = &env.kubectl;
    let admin = env.plane.kubeconfig_path();
    let ns = "e2e-manual";
    k.create_namespace(ns);
    // 200x: the planned failover takes about 8 s, the failback (60 simulated minutes) 18 s, long
    // enough to pause in the middle of it.
    let sim = Sim::start(env.path(), 200);
    k.must_apply(&manual_desired(ns, &sim.url, DAL));
    let mut op = Operator::start(env.path(), admin, "op-m", &["--watch-namespace", ns]);
    op.wait_ready().await;

    // The plan is published with its hash and waits; nothing has run.
    let failover = format!("pool-failover/{DAL}");
    let (dep, hash) = poll("the failover plan awaits approval", Duration::from_secs(60), || {
        let dep = get_dep(k, ns);
        let hash = dep["status"]["plan"]["hash"].as_str().unwrap_or_default().to_string();
        if is_true(&dep, "AwaitingApproval") && !hash.is_empty() && plan_steps(&dep).contains(&failover) {
            Ok((dep, hash))
        } else {
            Err(summary(&dep, &get_pair(k, ns)))
        }
    });
    let awaiting = condition(&dep, "AwaitingApproval").cloned().unwrap_or_default();
    assert!(awaiting["message"].as_str().is_some_and(|m| m.contains(&format!("lyncdr.io/approve={hash}"))), "{awaiting}");
    assert!(
        condition(&dep, "Ready").is_some_and(|c| c["status"] == "False" && c["reason"] == "AwaitingApproval"),
        "{}",
        conditions_line(&dep)
    );
    assert!(sim.mutating().await.is_empty(), "nothing may run before approval: {:?}", sim.mutating().await);
    let evs = events(k, ns);
    assert!(
        evs.iter().any(|e| e["reason"] == "AwaitingApproval" && e["message"].as_str().is_some_and(|m| m.contains(&hash))),
        "{}",
        event_lines(&evs)
    );
    let listed = k.must(&["get", "lyncdeployment", "contoso", "-n", ns, "-o", "wide"]);
    assert!(listed.contains("AwaitingApproval"), "the REASON column: {listed}");

    // A wrong hash runs nothing.
    let wrong = if hash == "0123456789abcdef" { "fedcba9876543210" } else { "0123456789abcdef" };
    annotate(k, ns, &[&format!("lyncdr.io/approve={wrong}")]);
    let dep = reconciled(k, ns, "wrong-hash");
    assert!(is_true(&dep, "AwaitingApproval") && dep["status"]["plan"]["hash"] == hash.as_str(), "{}", summary(&dep, &get_pair(k, ns)));
    assert!(sim.mutating().await.is_empty(), "a wrong hash ran something: {:?}", sim.mutating().await);

    // The right one runs the plan: a planned failover (no -DisasterMode), the CMS first.
    annotate(k, ns, &[&format!("lyncdr.io/approve={hash}")]);
    let (dep, _) = wait_converged(k, ns, &serving(SEA, SEA), Duration::from_secs(120), |_| Ok(()));
    let calls = sim.mutating().await;
    assert_each_change_once(&calls);
    assert_eq!(count_cmdlet(&calls, "Invoke-CsPoolFailOver"), 1, "{calls:?}");
    assert!(calls.iter().all(|c| !c["line"].as_str().unwrap_or_default().contains("-DisasterMode")), "{calls:?}");
    assert!(
        journal(&dep).iter().all(|e| e["planHash"] == hash.as_str() && e["outcome"] == "Succeeded"),
        "every change belongs to the approved plan: {:#?}",
        journal(&dep)
    );

    // Paused, a new plan waits even once approved (`lyncdr approve` reads the hash from status).
    annotate(k, ns, &["lyncdr.io/paused=true"]);
    set_failed_over(k, ns, &[]);
    let failback = format!("pool-failback/{DAL}");
    let (dep, hash2) = poll("the failback plan, paused", Duration::from_secs(60), || {
        let dep = get_dep(k, ns);
        let h = dep["status"]["plan"]["hash"].as_str().unwrap_or_default().to_string();
        if is_true(&dep, "Paused") && h != hash && plan_steps(&dep).contains(&failback) {
            Ok((dep, h))
        } else {
            Err(summary(&dep, &get_pair(k, ns)))
        }
    });
    assert!(condition(&dep, "Ready").is_some_and(|c| c["reason"] == "Paused"), "{}", conditions_line(&dep));
    let approved = lyncdr_approve(admin, ns);
    assert!(approved.contains(&hash2), "lyncdr approve should approve {hash2}: {approved}");
    let dep = reconciled(k, ns, "paused-and-approved");
    assert_eq!(dep["metadata"]["annotations"]["lyncdr.io/approve"], hash2.as_str());
    assert!(is_true(&dep, "Paused") && !is_true(&dep, "AwaitingApproval"), "{}", conditions_line(&dep));
    assert_eq!(sim.mutating().await.len(), calls.len(), "a paused deployment ran something");

    // Resumed, the approved failback runs. Paused again while Invoke-CsPoolFailBack runs: that
    // step finishes, the next one (the conference content sync) does not start.
    annotate(k, ns, &["lyncdr.io/paused-"]);
    poll("the failback is running", Duration::from_secs(60), || {
        let dep = get_dep(k, ns);
        match journal_entry(&dep, &failback) {
            Some(e) if e["outcome"] == "Pending" => Ok(()),
            other => Err(format!("journal entry {other:?}; {}", conditions_line(&dep))),
        }
    });
    annotate(k, ns, &["lyncdr.io/paused=true"]);
    let dep = poll("paused after the running step", Duration::from_secs(90), || {
        let dep = get_dep(k, ns);
        let done = journal_entry(&dep, &failback).is_some_and(|e| e["outcome"] == "Succeeded");
        if done && is_true(&dep, "Paused") && get_pair(k, ns)["status"]["serving"] == serving(DAL, SEA) {
            Ok(dep)
        } else {
            Err(summary(&dep, &get_pair(k, ns)))
        }
    });
    let paused_calls = sim.mutating().await;
    let after: Vec<String> = paused_calls[calls.len()..].iter().map(describe_call).collect();
    assert_eq!(count_cmdlet(&paused_calls, "Invoke-CsPoolFailBack"), 1, "{after:?}");
    assert_eq!(
        count_cmdlet(&paused_calls, "Invoke-CsBackupServiceSync"),
        0,
        "the step after the pause ran: {after:?}\n{}",
        summary(&dep, &get_pair(k, ns))
    );
    // Still nothing a few (simulated) minutes later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sim.mutating().await.len(), paused_calls.len(), "changes while paused");

    // Resumed again: what is left of the plan is a new plan, approved again, and it runs.
    annotate(k, ns, &["lyncdr.io/paused-"]);
    let dep = poll("the rest of the plan runs or awaits approval", Duration::from_secs(60), || {
        let dep = get_dep(k, ns);
        if is_true(&dep, "AwaitingApproval") || (ready(&dep) && !is_true(&dep, "Paused")) { Ok(dep) } else { Err(conditions_line(&dep)) }
    });
    if is_true(&dep, "AwaitingApproval") {
        let hash3 = dep["status"]["plan"]["hash"].as_str().unwrap_or_default().to_string();
        eprintln!("the rest of the failback is plan {hash3} ({:?}), to approve again", plan_steps(&dep));
        assert!(lyncdr_approve(admin, ns).contains(&hash3));
    }
    wait_converged(k, ns, &serving(DAL, SEA), Duration::from_secs(120), |_| Ok(()));
    let all = sim.mutating().await;
    assert_each_change_once(&all);
    assert_eq!(count_cmdlet(&all, "Invoke-CsBackupServiceSync"), 1, "{:?}", all.iter().map(describe_call).collect::<Vec<_>>());
    assert!(op.proc.exited().is_none(), "the operator exited:\n{}", op.proc.tail(40));
}

// ---------------------------------------------------------------------------------------------
// 5. Two replicas with leader election

fn lease_holder(k: &Kubectl, ns: &str, name: &str) -> String {
    k.json(&["get", "lease", name, "-n", ns])["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string()
}

/// The example's pair without automatic failover, in `ns`, with Automatic approval.
fn automatic_desired(ns: &str, sim_url: &str) -> String {
    manual_desired(ns, sim_url, "").replace("approval: Manual", "approval: Automatic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_failover_resumes_from_the_journal() {
    let Some(env) = setup("leader").await else { return };
    let k = &env.kubectl;
    let admin = env.plane.kubeconfig_path();
    let ns = "e2e-leader";
    k.create_namespace(ns);
    // 40x: the pool failover takes 15 simulated minutes, about 22 s, longer than it takes the
    // standby to get the Lease (15 s) once the leader is gone.
    let sim = Sim::start(env.path(), 40);
    k.must_apply(&automatic_desired(ns, &sim.url));
    let args = ["--watch-namespace", ns, "--leader-election", "--lease-namespace", ns];
    let mut ops = vec![Operator::start(env.path(), admin, "op-a", &args), Operator::start(env.path(), admin, "op-b", &args)];
    for op in &mut ops {
        op.wait_ready().await;
    }
    let holder = poll("a Lease holder", Duration::from_secs(60), || {
        let h = lease_holder(k, ns, "lyncdr");
        if h.is_empty() { Err("no holder".to_string()) } else { Ok(h) }
    });
    k.must(&["get", "lease", "lyncdr", "-n", ns, "-o", "wide"]);
    wait_converged(k, ns, &serving(DAL, SEA), Duration::from_secs(60), |_| Ok(()));
    let leader_at = ops.iter().position(|o| o.instance == holder).unwrap_or_else(|| panic!("unknown holder {holder}"));
    let mut leader = ops.remove(leader_at);
    let standby = ops.remove(0);
    eprintln!("leader {}, standby {}", leader.instance, standby.instance);
    assert!(leader.metrics().await.contains("lyncdr_leader 1"), "{}", leader.metrics().await);
    assert!(standby.metrics().await.contains("lyncdr_leader 0"), "{}", standby.metrics().await);

    // A planned failover of Dallas; the leader is killed while the pool failover runs.
    set_failed_over(k, ns, &[DAL]);
    let failover = format!("pool-failover/{DAL}");
    let dep = poll("the pool failover is running", Duration::from_secs(120), || {
        let dep = get_dep(k, ns);
        match journal_entry(&dep, &failover) {
            Some(e) if e["outcome"] == "Pending" => Ok(dep),
            other => Err(format!("journal entry {other:?}; {}", conditions_line(&dep))),
        }
    });
    let before = journal(&dep);
    let evs = events(k, ns);
    assert!(!before.is_empty() && before.iter().all(|e| e["by"] == leader.instance.as_str()), "only the leader acts: {before:#?}");
    assert!(
        !evs.is_empty() && evs.iter().all(|e| e["reportingInstance"] == leader.instance.as_str()),
        "only the leader reports:\n  {}",
        event_lines(&evs)
    );
    assert!(!standby.proc.log_text().contains("executing plan"), "the standby executed a plan:\n{}", standby.proc.tail(40));
    let running = sim.get("/v1/log").await.as_array().cloned().unwrap_or_default();
    assert!(
        running.iter().any(|r| r["cmdlet"] == "Invoke-CsPoolFailOver" && r["outcome"] == "running"),
        "the failover is running in the simulator"
    );
    eprintln!("SIGKILL {} (pid {})", leader.instance, leader.proc.pid());
    leader.proc.kill();

    poll("the standby holds the Lease", Duration::from_secs(60), || {
        let h = lease_holder(k, ns, "lyncdr");
        if h == standby.instance { Ok(()) } else { Err(format!("holder {h:?}")) }
    });
    let still_running = sim.get("/v1/log").await.as_array().cloned().unwrap_or_default();
    let in_flight = still_running.iter().any(|r| r["cmdlet"] == "Invoke-CsPoolFailOver" && r["outcome"] == "running");
    eprintln!("the standby took over while the failover was {}", if in_flight { "still running" } else { "already done" });
    let (dep, _) = wait_converged(k, ns, &serving(SEA, SEA), Duration::from_secs(120), |dep| {
        if journal(dep).iter().any(|e| e["outcome"] == "Pending") { Err("a journal entry is pending".into()) } else { Ok(()) }
    });

    // The step that was running when the leader died ran once; its journal entry (by the dead
    // leader) was resolved by observation; the standby repeated nothing.
    let calls = sim.mutating().await;
    assert_each_change_once(&calls);
    assert_eq!(count_cmdlet(&calls, "Invoke-CsPoolFailOver"), 1);
    let entry = journal_entry(&dep, &failover).expect("journal entry of the failover");
    assert_eq!((entry["by"].as_str(), entry["outcome"].as_str()), (Some(leader.instance.as_str()), Some("Succeeded")), "{entry}");
    let after = journal(&dep);
    for e in &after[before.len()..] {
        assert_eq!(e["by"], standby.instance.as_str(), "entries after the takeover come from the new leader: {e}");
    }
    let evs = events(k, ns);
    let started_by = |who: &str| {
        evs.iter()
            .filter(|e| {
                e["reason"] == "StepStarted"
                    && e["reportingInstance"] == who
                    && e["message"].as_str().is_some_and(|m| m.starts_with(&format!("{failover}:")))
            })
            .count()
    };
    assert_eq!((started_by(&leader.instance), started_by(&standby.instance)), (1, 0), "{}", event_lines(&evs));
    assert!(
        evs.iter().all(|e| e["reportingInstance"] == leader.instance.as_str() || e["reportingInstance"] == standby.instance.as_str()),
        "{}",
        event_lines(&evs)
    );
    assert!(standby.metrics().await.contains("lyncdr_leader 1"));
}

// ---------------------------------------------------------------------------------------------
// 5b. Killed right after an automatic failover; a password in the simulator URL

/// Issue 9: the operator is killed right after an automatic failover is journaled; the new
/// operator must still know the failover was automatic (so failback waits for a person), because
/// the memory travels in the same status patch as the journal entry. The simulator URL carries a
/// password, first to an address where nothing listens: it must appear in no status, Event, log
/// or metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_after_an_automatic_failover_remembers_it_and_leaks_no_password() {
    const SECRET: &str = "S3cr3t-Pa55w0rd";
    let Some(env) = setup("kill-memory").await else { return };
    let k = &env.kubectl;
    let admin = env.plane.kubeconfig_path();
    let ns = "e2e-kill-memory";
    k.create_namespace(ns);
    let sim = Sim::start(env.path(), 60);
    let with_secret = |url: &str| url.replacen("http://", &format!("http://admin:{SECRET}@"), 1);
    let desired = |url: &str| {
        example_desired(ns, &with_secret(url), 4)
            .replace("automaticFailback: {enabled: true, stabilityPeriod: 10m}", "automaticFailback: {enabled: false}")
    };
    // First an address where nothing listens: the operator reports it cannot observe.
    k.must_apply(&desired(&format!("http://127.0.0.1:{}", free_port())));
    let args = ["--watch-namespace", ns];
    let mut first = Operator::start(env.path(), admin, "op-first", &args);
    first.wait_ready().await;
    poll("the unreachable simulator is reported", Duration::from_secs(60), || {
        let dep = get_dep(k, ns);
        if condition(&dep, "Stalled").is_some_and(|c| c["reason"] == "ObservationFailed") { Ok(()) } else { Err(conditions_line(&dep)) }
    });
    k.must_apply(&desired(&sim.url));
    wait_converged(k, ns, &serving(DAL, SEA), Duration::from_secs(90), |_| Ok(()));

    // Dallas is lost; the automatic failover runs; the operator dies right after its success
    // is journaled.
    sim.fault("down:site/Dallas").await;
    let failover = format!("pool-failover/{DAL}");
    poll("the automatic failover is journaled as succeeded", Duration::from_secs(180), || {
        let dep = get_dep(k, ns);
        match journal_entry(&dep, &failover) {
            Some(e) if e["outcome"] == "Succeeded" => Ok(()),
            other => Err(format!("{other:?}; {}", conditions_line(&dep))),
        }
    });
    let first_metrics = first.metrics().await;
    first.proc.kill();
    sim.fault("up:site/Dallas").await;

    let mut second = Operator::start(env.path(), admin, "op-second", &args);
    second.wait_ready().await;
    // Dallas is back; its users stay on Seattle until a person approves the failback.
    let pair = poll("failback waits for approval", Duration::from_secs(240), || {
        let pair = get_pair(k, ns);
        if is_true(&pair, "AwaitingApproval") {
            Ok(pair)
        } else {
            Err(format!("{}; {}", conditions_line(&pair), summary(&get_dep(k, ns), &pair)))
        }
    });
    assert!(
        condition(&pair, "AwaitingApproval").and_then(|c| c["message"].as_str()).is_some_and(|m| m.contains("approve-failback")),
        "{pair}"
    );
    // Steps of the same plan that need no approval (the Response Group import of rule 25) may
    // still be running while the failback waits: let them finish before counting.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let calls = loop {
        let calls = sim.mutating().await;
        if calls.iter().all(|r| r["outcome"] != "running") || std::time::Instant::now() > deadline {
            break calls;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(count_cmdlet(&calls, "Invoke-CsPoolFailOver"), 1);
    assert_eq!(count_cmdlet(&calls, "Invoke-CsPoolFailBack"), 0, "failed back without approval");
    assert_each_change_once(&calls);
    let dep = get_dep(k, ns);
    assert!(dep["status"]["history"]["automaticFailovers"].get(DAL).is_some(), "{}", dep["status"]["history"]);

    // No password anywhere lyncdr writes.
    let mut seen = String::new();
    seen += &serde_json::to_string(&dep["status"]).unwrap_or_default();
    seen += &serde_json::to_string(&pair["status"]).unwrap_or_default();
    seen += &serde_json::to_string(&events(k, ns)).unwrap_or_default();
    seen += &first.proc.log_text();
    seen += &second.proc.log_text();
    seen += &second.metrics().await;
    seen += &first_metrics;
    assert!(seen.contains("127.0.0.1"), "the messages still name the simulator");
    assert!(!seen.contains(SECRET), "the password leaked into status, Events, logs or metrics");
}

// ---------------------------------------------------------------------------------------------
// 6. RBAC as the chart grants it

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_is_enough_and_no_more() {
    let Some(env) = setup("rbac").await else { return };
    let Some(helm) = helm() else { return };
    let k = &env.kubectl;
    let (ns, release_ns) = ("e2e-rbac", "e2e-rbac-system");
    k.create_namespace(ns);
    k.create_namespace(release_ns);

    // The chart's RBAC for an operator watching `ns`, with leader election (the Lease in the
    // release namespace), applied as rendered; the operator runs with the Deployment's flags.
    let rendered =
        helm_template(&helm, release_ns, &[&format!("watchNamespace={ns}"), "leaderElection.enabled=true", "crds.install=false"]);
    let docs: Vec<Value> =
        serde_saphyr::from_multiple::<Value>(&rendered).expect("rendered YAML").into_iter().filter(|d| d.is_object()).collect();
    let rbac: Vec<Value> = docs
        .iter()
        .filter(|d| ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].iter().any(|kind| d["kind"] == *kind))
        .cloned()
        .collect();
    let rbac_kinds: BTreeSet<String> = rbac
        .iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap_or_default(), d["metadata"]["name"].as_str().unwrap_or_default()))
        .collect();
    eprintln!("applying the chart's {rbac_kinds:?}");
    k.must_apply(&json!({ "apiVersion": "v1", "kind": "List", "items": rbac }).to_string());
    let sa_name = docs
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .expect("ServiceAccount")
        .to_string();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("Deployment");
    let chart_args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("container args")
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| *a != "run" && !a.starts_with("--metrics-addr") && !a.starts_with("--log-format"))
        .map(str::to_string)
        .collect();
    assert!(
        chart_args.contains(&format!("--watch-namespace={ns}")) && chart_args.contains(&"--leader-election".to_string()),
        "{chart_args:?}"
    );
    let lease_name = chart_args.iter().find_map(|a| a.strip_prefix("--lease-name=")).unwrap_or("lyncdr").to_string();

    // The identity of a Pod running as that ServiceAccount.
    let sa_kubeconfig = env.plane.kubeconfig_for_service_account(release_ns, &sa_name);
    let sa = Kubectl::new(&sa_kubeconfig);
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let ran = sa.run(&all);
        match ran.stdout.trim() {
            "yes" => true,
            "no" => false,
            other => panic!("kubectl auth can-i {}: {other:?}\n{}", args.join(" "), ran.text()),
        }
    };
    let lease = format!("leases.coordination.k8s.io/{lease_name}");
    let expectations: Vec<(Vec<&str>, bool)> = vec![
        (vec!["list", "secrets", "-n", ns], false),
        (vec!["get", "secrets", "-n", ns], false),
        (vec!["watch", "secrets", "-n", ns], false),
        (vec!["patch", "lyncdeployments.lyncdr.io", "--subresource=status", "-n", ns], true),
        (vec!["patch", "poolpairs.lyncdr.io", "--subresource=status", "-n", ns], true),
        (vec!["update", "lyncdeployments.lyncdr.io", "--subresource=status", "-n", ns], false),
        (vec!["watch", "lyncdeployments.lyncdr.io", "-n", ns], true),
        (vec!["patch", "lyncdeployments.lyncdr.io", "-n", ns], true),
        (vec!["update", "lyncdeployments.lyncdr.io", "-n", ns], false),
        (vec!["delete", "poolpairs.lyncdr.io", "-n", ns], false),
        (vec!["create", "poolpairs.lyncdr.io", "-n", ns], false),
        (vec!["list", "lyncdeployments.lyncdr.io", "-n", "default"], false),
        (vec!["list", "lyncdeployments.lyncdr.io", "--all-namespaces"], false),
        (vec!["create", "events.events.k8s.io", "-n", ns], true),
        (vec!["get", &lease, "-n", release_ns], true),
        (vec!["get", "leases.coordination.k8s.io/another", "-n", release_ns], false),
        (vec!["create", "leases.coordination.k8s.io", "-n", release_ns], true),
        (vec!["create", "leases.coordination.k8s.io", "-n", ns], false),
        (vec!["*", "*", "-n", ns], false),
    ];
    let wrong: Vec<String> = expectations
        .iter()
        .filter(|(args, want)| can(args) != *want)
        .map(|(args, want)| format!("can-i {} should be {want}", args.join(" ")))
        .collect();
    assert!(wrong.is_empty(), "kubectl auth can-i as system:serviceaccount:{release_ns}:{sa_name}:\n  {}", wrong.join("\n  "));
    let whoami = sa.must(&["auth", "whoami"]);
    assert!(whoami.contains(&format!("system:serviceaccount:{release_ns}:{sa_name}")), "{whoami}");

    // The operator with exactly those rights runs the whole story.
    let sim = Sim::start(env.path(), 600);
    k.must_apply(&example_desired(ns, &sim.url, 1));
    let chart_args: Vec<&str> = chart_args.iter().map(String::as_str).collect();
    let mut op = Operator::start(env.path(), &sa_kubeconfig, "op-rbac", &chart_args);
    op.wait_ready().await;
    poll("the operator holds the Lease", Duration::from_secs(60), || {
        let h = lease_holder(k, release_ns, &lease_name);
        if h == "op-rbac" { Ok(()) } else { Err(format!("holder {h:?}")) }
    });
    site_failure_story(k, ns, &sim).await;
    check_story_calls(&sim).await;
    let evs = events(k, ns);
    assert!(reasons(&evs).contains("StepFinished") && evs.iter().all(|e| e["reportingInstance"] == "op-rbac"), "{}", event_lines(&evs));
    let log = op.proc.log_text();
    for denied in ["forbidden", "Forbidden", "403", "cannot publish event", "reconcile failed"] {
        assert!(!log.contains(denied), "the operator's log mentions {denied:?}:\n{}", op.proc.tail(60));
    }
}

/// Issue 11, item 1: a running plan reads the desired state before each step (from the
/// operator's reflector stores). A planned failover of Dallas is set back while its first long
/// step (the CMS move) runs: that step finishes, the pool failover never starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_changed_while_a_plan_runs_stops_the_steps_it_no_longer_wants() {
    let Some(env) = setup("live-desired").await else { return };
    let k = &env.kubectl;
    let ns = "e2e-live-desired";
    k.create_namespace(ns);
    // At speed 30 the CMS move (5 minutes in Lync) takes 10 s.
    let sim = Sim::start(env.path(), 30);
    k.must_apply(&example_desired(ns, &sim.url, 1));
    let mut op = Operator::start(env.path(), env.plane.kubeconfig_path(), "op-live", &["--watch-namespace", ns]);
    op.wait_ready().await;
    wait_converged(k, ns, &serving(DAL, SEA), Duration::from_secs(120), |_| Ok(()));

    set_failed_over(k, ns, &[DAL]);
    let cms = format!("cms-failover/{SEA}");
    poll("the CMS move starts", Duration::from_secs(120), || {
        let dep = get_dep(k, ns);
        match journal_entry(&dep, &cms) {
            Some(e) if e["outcome"] == "Pending" => Ok(()),
            other => Err(format!("{other:?}; {}", conditions_line(&dep))),
        }
    });
    set_failed_over(k, ns, &[]);
    let (dep, _) = wait_converged(k, ns, &serving(DAL, SEA), Duration::from_secs(240), |_| Ok(()));

    let calls = sim.mutating().await;
    assert!(count_cmdlet(&calls, "Invoke-CsManagementServerFailover") >= 1, "the CMS move ran: {calls:#?}");
    assert_eq!(count_cmdlet(&calls, "Invoke-CsPoolFailOver"), 0, "the pool failover ran after the spec no longer wanted it");
    assert_each_change_once(&calls);
    let evs = events(k, ns);
    let stopped: Vec<String> =
        evs.iter().filter_map(|e| e["message"].as_str()).filter(|m| m.contains(": Pending: not run:")).map(str::to_string).collect();
    assert!(!stopped.is_empty(), "a step says why it did not run:\n{}", event_lines(&evs));
    assert!(ready(&dep), "{}", conditions_line(&dep));
    op.proc.kill();
}

// ---------------------------------------------------------------------------------------------
// 8. transport: WinRM, through the PowerShell driver, with credentials from a Secret

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_over_winrm_recovers_from_a_site_failure_with_a_secret() {
    let Some(env) = setup("winrm").await else { return };
    let k = &env.kubectl;
    let ns = "lync-winrm";
    k.create_namespace(ns);
    let password = "e2e-Winrm-Pa55";
    let sim = Sim::start_with(env.path(), 600, Some(("LAB\\lyncdr", password)));
    let wsman = sim.wsman.clone().expect("the WS-Man endpoint");
    k.must_apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: lync-winrm\n  namespace: {ns}\nstringData:\n  username: 'LAB\\lyncdr'\n  password: '{password}'\n"
    ));
    // The simulator's single endpoint stands in for every server (no {server} in the template).
    let connection = format!(
        "  connection:\n    transport: WinRM\n    endpointTemplate: {wsman}\n    endpoints: [pool01-fe01.dal.contoso.com, pool01-fe01.sea.contoso.com]\n    credentialsSecret: lync-winrm\n"
    );
    let manifests = example_desired(ns, &sim.url, 4);
    let old = format!("  connection:\n    transport: Simulator\n    simulatorUrl: {}\n", sim.url);
    assert!(manifests.contains(&old), "the example's connection block changed");
    k.must_apply(&manifests.replace(&old, &connection));
    let mut op = Operator::start(env.path(), env.plane.kubeconfig_path(), "op-winrm", &["--watch-namespace", ns]);
    op.wait_ready().await;
    let started = Instant::now();
    site_failure_story(k, ns, &sim).await;
    eprintln!("story over WinRM done in {:.1} s", started.elapsed().as_secs_f64());
    let calls = check_story_calls(&sim).await;
    // Every change went through the driver: unattended, with -Confirm:$false where it asks.
    let failover = calls.iter().find(|r| r["cmdlet"] == "Invoke-CsPoolFailOver").expect("failover");
    assert_eq!(failover["args"]["Confirm"], false, "{failover}");
    // The password appears nowhere: not in status, Events or the operator's log.
    let dep = get_dep(k, ns);
    let text = format!("{dep}\n{}\n{}", event_lines(&events(k, ns)), op.proc.log_text());
    assert!(!text.contains(password), "the password leaked");
}
