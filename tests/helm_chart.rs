//! The Helm chart `charts/lyncdr`, rendered with a real `helm` (`helm lint`, `helm template`) and
//! checked: the pod's hardening, probes and downward-API environment, least-privilege RBAC,
//! the CRD toggle and keep policy, the monitoring objects, and the strict values schema.
//!
//! helm comes from `$LYNCDR_HELM_DIR/helm` (as printed by `scripts/helm.sh`) or `PATH`. Without
//! it every test prints why and passes, unless `LYNCDR_REQUIRE_HELM=1`, which makes its absence a
//! failure (for CI). Server-side validation against a real API server is not done here.

#[path = "support/helm.rs"]
mod helm_bin;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use helm_bin::helm;
use serde_json::Value;

const NS: &str = "lyncdr-system";
const RELEASE: &str = "lyncdr";
const KINDS: [&str; 4] = ["lyncdeployments", "poolpairs", "userplacements", "conferencecontentrestores"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/lyncdr")
}

/// Runs helm with the arguments; Ok(stdout) on success, Err(stdout + stderr) on failure.
fn run(helm: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm).args(args).current_dir(root()).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() { Ok(stdout) } else { Err(format!("helm {} failed ({}):\n{stdout}\n{stderr}", args.join(" "), out.status)) }
}

/// A rendering of the chart: the text and its documents.
struct Rendered {
    text: String,
    docs: Vec<Value>,
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "expected exactly one {kind}, found {}", found.len());
        found[0]
    }

    fn kinds(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for d in &self.docs {
            *m.entry(d["kind"].as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
        }
        m
    }
}

fn template(helm: &Path, set: &[&str]) -> Rendered {
    let chart = chart();
    let mut args = vec!["template", RELEASE, chart.to_str().expect("UTF-8 path"), "--namespace", NS];
    for s in set {
        args.extend(["--set", s]);
    }
    let text = run(helm, &args).unwrap_or_else(|e| panic!("{e}"));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("helm template printed invalid YAML: {e}\n{text}"));
    let docs = docs.into_iter().filter(|d| !d.is_null()).collect();
    Rendered { text, docs }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn container(r: &Rendered) -> &Value {
    let containers = &r.one("Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "one container");
    &containers[0]
}

fn args(r: &Rendered) -> Vec<&str> {
    strings(&container(r)["args"])
}

// --- RBAC --------------------------------------------------------------------------------------

/// The verbs the operator's contract allows per (apiGroup, resource), and whether the rule may
/// be cluster-wide.
fn allowed(group: &str, resource: &str) -> Option<&'static [&'static str]> {
    match (group, resource) {
        ("lyncdr.io", r) if KINDS.contains(&r) => Some(&["get", "list", "watch", "patch"]),
        ("lyncdr.io", r) if r.strip_suffix("/status").is_some_and(|k| KINDS.contains(&k)) => Some(&["patch"]),
        ("events.k8s.io", "events") => Some(&["create", "patch"]),
        ("coordination.k8s.io", "leases") => Some(&["get", "create", "update", "patch"]),
        ("", "secrets") => Some(&["get"]),
        _ => None,
    }
}

/// One (apiGroup, resource) of one rule of a Role or ClusterRole.
#[derive(Debug)]
struct Grant {
    /// `Role` or `ClusterRole`.
    role: String,
    /// The Role's namespace (empty for a ClusterRole).
    namespace: String,
    resource: String,
    verbs: Vec<String>,
    names: Vec<String>,
}

/// Checks every rule of every Role and ClusterRole against the contract; returns the grants.
fn check_rbac(r: &Rendered) -> Vec<Grant> {
    let mut out = Vec::new();
    for role in r.docs.iter().filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role") {
        let kind = role["kind"].as_str().unwrap_or_default().to_string();
        let ns = role["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let name = role["metadata"]["name"].as_str().unwrap_or_default();
        let rules = role["rules"].as_array().unwrap_or_else(|| panic!("{kind} {name} has no rules"));
        for rule in rules {
            assert!(rule.get("nonResourceURLs").is_none(), "{kind} {name}: nonResourceURLs are not needed: {rule}");
            let verbs = strings(&rule["verbs"]);
            let names: Vec<String> = strings(&rule["resourceNames"]).into_iter().map(String::from).collect();
            assert!(!verbs.is_empty(), "{kind} {name}: a rule without verbs: {rule}");
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    let ok = allowed(group, resource)
                        .unwrap_or_else(|| panic!("{kind} {name}: the operator needs nothing on {group}/{resource}: {rule}"));
                    for verb in &verbs {
                        assert!(ok.contains(verb), "{kind} {name}: verb {verb} on '{group}' {resource} is not in the contract {ok:?}");
                    }
                    if resource == "leases" {
                        assert_eq!(kind, "Role", "leases must only be granted in a Role (the release namespace)");
                        assert_eq!(ns, NS, "the Lease Role must be in the release namespace");
                    }
                    if resource == "secrets" {
                        assert_eq!(verbs, ["get"], "{kind} {name}: Secrets are get only (no list/watch): {rule}");
                    }
                    out.push(Grant {
                        role: kind.clone(),
                        namespace: ns.clone(),
                        resource: resource.to_string(),
                        verbs: verbs.iter().map(|v| v.to_string()).collect(),
                        names: names.clone(),
                    });
                }
            }
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(!strings(&rule[field]).contains(&"*"), "{kind} {name}: wildcard in {field}: {rule}");
            }
        }
    }
    // Every rule is commented with the reason it exists: in the rendered text, the line before each
    // rule's `- apiGroups:` is a comment.
    let lines: Vec<&str> = r.text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("- apiGroups:") {
            let prev = lines[..i].iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim_start()).unwrap_or_default();
            assert!(
                prev.starts_with('#'),
                "RBAC rule without a comment saying why it exists:\n{}\n{line}",
                lines[i.saturating_sub(3)..i].join("\n")
            );
        }
    }
    // Every binding names the release's ServiceAccount.
    for binding in r.docs.iter().filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding") {
        let subjects = binding["subjects"].as_array().expect("subjects");
        assert_eq!(subjects.len(), 1, "{binding}");
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        assert_eq!(subjects[0]["name"], r.one("ServiceAccount")["metadata"]["name"]);
        assert_eq!(subjects[0]["namespace"], NS);
    }
    out
}

// --- tests -------------------------------------------------------------------------------------

#[test]
fn lint_passes_also_strict() {
    let Some(helm) = helm() else { return };
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    run(&helm, &["lint", chart]).unwrap_or_else(|e| panic!("{e}"));
    run(&helm, &["lint", "--strict", chart]).unwrap_or_else(|e| panic!("{e}"));
    let all = "leaderElection.enabled=true,serviceMonitor.enabled=true,prometheusRule.enabled=true,crds.install=false";
    run(&helm, &["lint", "--strict", chart, "--set", all]).unwrap_or_else(|e| panic!("{e}"));
    run(&helm, &["lint", "--strict", chart, "--set", "watchNamespace=lync,rbac.secrets.anyName=true"]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn default_render_is_hardened_and_least_privilege() {
    let Some(helm) = helm() else { return };
    let r = template(&helm, &[]);

    let kinds = r.kinds();
    let expected: BTreeMap<String, usize> = [
        ("CustomResourceDefinition", 4),
        ("ServiceAccount", 1),
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("Service", 1),
        ("Deployment", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(kinds, expected, "objects rendered with the default values");

    // One operator, never two at once.
    let deployment = r.one("Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64().is_some_and(|s| s >= 600),
        "a long grace period for a running failover step: {}",
        pod["terminationGracePeriodSeconds"]
    );
    assert_eq!(pod["serviceAccountName"], r.one("ServiceAccount")["metadata"]["name"]);

    // Hardening.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert!(pod["securityContext"]["runAsUser"].as_u64().is_some_and(|u| u > 0));
    let c = container(&r);
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"].get("add").is_none(), "no capability is added");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(
        c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string(),
        "resources: {}",
        c["resources"]
    );

    // Command line and environment.
    let a = args(&r);
    assert_eq!(a.first(), Some(&"run"), "args start with the subcommand: {a:?}");
    assert!(a.contains(&"--metrics-addr=0.0.0.0:8080"), "{a:?}");
    assert!(a.contains(&"--log-format=json"), "{a:?}");
    assert!(!a.iter().any(|x| x.starts_with("--leader-election") || x.starts_with("--watch-namespace")), "{a:?}");
    let env: BTreeMap<&str, &Value> =
        c["env"].as_array().expect("env").iter().map(|e| (e["name"].as_str().expect("env name"), e)).collect();
    assert_eq!(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
    assert_eq!(env["RUST_LOG"]["value"], "info");

    // Probes and the metrics port.
    let port = &c["ports"][0];
    assert_eq!((port["name"].as_str(), port["containerPort"].as_u64()), (Some("metrics"), Some(8080)));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");
    let svc = r.one("Service");
    assert_eq!(svc["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(svc["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"].as_object().map(|m| m.iter().all(|(k, v)| pod_label(deployment, k) == Some(v))),
        Some(true)
    );

    // RBAC: cluster-wide rules for the custom resources and Events; no Secret, no Lease.
    let rules = check_rbac(&r);
    let resources: BTreeSet<&str> = rules.iter().map(|r| r.resource.as_str()).collect();
    for k in KINDS {
        assert!(
            resources.contains(k) && resources.contains(format!("{k}/status").as_str()),
            "{k} and {k}/status are granted: {resources:?}"
        );
    }
    assert!(resources.contains("events"));
    assert!(!resources.contains("secrets"), "no Secret access unless configured");
    assert!(!resources.contains("leases"), "no Lease without leader election");
    assert!(rules.iter().all(|r| r.role == "ClusterRole"));
}

fn pod_label<'a>(deployment: &'a Value, key: &str) -> Option<&'a Value> {
    deployment["spec"]["template"]["metadata"]["labels"].get(key)
}

/// Where two JSON values differ (numbers compared by value: Helm's toYaml writes 16.0 as 16,
/// the same number for the API server), or None.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .find_map(|k| first_difference(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} != {b}")),
    }
}

#[test]
fn crds_are_rendered_from_crds_with_the_keep_policy() {
    let Some(helm) = helm() else { return };
    let r = template(&helm, &[]);
    let rendered = r.of_kind("CustomResourceDefinition");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crds")).expect("crds/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("read CRD")).expect("CRD YAML");
            sources.insert(doc["metadata"]["name"].as_str().expect("CRD name").to_string(), doc);
        }
    }
    assert_eq!(rendered.len(), sources.len(), "one rendered CRD per file of crds/");
    for crd in rendered {
        let name = crd["metadata"]["name"].as_str().expect("name");
        let source = sources.get(name).unwrap_or_else(|| panic!("rendered CRD {name} is not in crds/"));
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep", "{name}");
        assert_eq!(crd["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm", "{name}");
        // Rendering (fromYaml/toYaml) must not change the definition itself.
        if let Some(d) = first_difference(&source["spec"], &crd["spec"], "spec") {
            panic!("{name}: the rendered CRD differs from crds/{name}.yaml at {d}");
        }
        assert_eq!(crd["apiVersion"], source["apiVersion"]);
    }

    let argo = template(&helm, &["crds.annotations.argocd\\.argoproj\\.io/sync-options=Delete=false"]);
    for crd in argo.of_kind("CustomResourceDefinition") {
        assert_eq!(crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"], "Delete=false");
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
    let without_keep = template(&helm, &["crds.keep=false"]);
    for crd in without_keep.of_kind("CustomResourceDefinition") {
        assert!(crd["metadata"]["annotations"].get("helm.sh/resource-policy").is_none());
    }
    let none = template(&helm, &["crds.install=false"]);
    assert!(none.of_kind("CustomResourceDefinition").is_empty(), "crds.install=false renders no CRD");
}

#[test]
fn leader_election_monitoring_and_no_crds() {
    let Some(helm) = helm() else { return };
    let r = template(
        &helm,
        &[
            "leaderElection.enabled=true,serviceMonitor.enabled=true,prometheusRule.enabled=true,crds.install=false",
            "leaderElection.replicas=3",
        ],
    );
    assert!(r.of_kind("CustomResourceDefinition").is_empty());

    let deployment = r.one("Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let a = args(&r);
    for expected in ["--leader-election", "--lease-name=lyncdr", &format!("--lease-namespace={NS}")] {
        assert!(a.contains(&expected), "{expected} in {a:?}");
    }

    // The Lease: a Role in the release namespace, create unrestricted (it cannot be), the rest
    // on the operator's Lease only.
    let rules = check_rbac(&r);
    let lease: Vec<_> = rules.iter().filter(|r| r.resource == "leases").collect();
    assert!(!lease.is_empty(), "leader election grants the Lease");
    for g in &lease {
        if g.verbs.iter().any(|v| v != "create") {
            assert_eq!(g.names, &["lyncdr"], "get/update/patch only on the operator's Lease");
        }
    }
    let lease_verbs: BTreeSet<&str> = lease.iter().flat_map(|r| r.verbs.iter().map(String::as_str)).collect();
    assert_eq!(lease_verbs, BTreeSet::from(["create", "get", "patch", "update"]));

    let sm = r.one("ServiceMonitor");
    assert_eq!(sm["metadata"]["namespace"], NS);
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["selector"]["matchLabels"], r.one("Service")["spec"]["selector"]);

    let rule = r.one("PrometheusRule");
    let alerts: BTreeMap<&str, &Value> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|a| (a["alert"].as_str().expect("alert name"), a))
        .collect();
    let expect = [
        ("LyncdrObservationStale", "lyncdr_last_successful_observation_timestamp_seconds", "> 600"),
        ("LyncdrDriftDetected", "lyncdr_drift_detected", "== 1"),
        ("LyncdrAwaitingApproval", "lyncdr_awaiting_approval", "== 1"),
        ("LyncdrDataAtRisk", "lyncdr_data_at_risk", "== 1"),
        ("LyncdrReconcileErrors", "lyncdr_reconcile_errors_total", "> 0"),
        ("LyncdrNoLeader", "lyncdr_leader", "< 1"),
    ];
    for (name, metric, cmp) in expect {
        let alert = alerts.get(name).unwrap_or_else(|| panic!("alert {name} missing; have {:?}", alerts.keys()));
        let expr = alert["expr"].as_str().expect("expr");
        assert!(expr.contains(metric) && expr.contains(cmp), "{name}: {expr}");
        assert!(expr.contains(&format!("namespace=\"{NS}\"")), "{name} selects this installation's series: {expr}");
        assert!(alert["labels"]["severity"].is_string(), "{name} has a severity");
        assert!(alert["annotations"]["summary"].is_string() && alert["annotations"]["description"].is_string(), "{name} is described");
    }
    assert_eq!(alerts["LyncdrDriftDetected"]["for"], "15m");
    assert_eq!(alerts["LyncdrAwaitingApproval"]["for"], "30m");
    assert!(alerts.contains_key("LyncdrOperatorDown"));
    // Prometheus' own templates survive Helm's.
    assert!(alerts["LyncdrDataAtRisk"]["annotations"]["summary"].as_str().is_some_and(|s| s.contains("{{ $labels.pool }}")));
}

#[test]
fn watch_namespace_mode_is_namespaced_and_secrets_are_named() {
    let Some(helm) = helm() else { return };
    let r = template(
        &helm,
        &[
            "watchNamespace=lync",
            "rbac.secrets.names[0].name=lync-winrm",
            "rbac.secrets.names[1].name=other,rbac.secrets.names[1].namespace=lab",
        ],
    );
    assert!(
        r.of_kind("ClusterRole").is_empty() && r.of_kind("ClusterRoleBinding").is_empty(),
        "nothing cluster-wide in watchNamespace mode"
    );
    assert!(args(&r).contains(&"--watch-namespace=lync"));
    let rules = check_rbac(&r);
    for rule in &rules {
        assert_eq!(rule.role, "Role");
    }
    let cr: Vec<_> = rules.iter().filter(|r| r.resource == "lyncdeployments").collect();
    assert_eq!(cr.len(), 1);
    assert_eq!(cr[0].namespace, "lync", "the resource rules are in the watched namespace");
    let mut secrets: Vec<(String, Vec<String>)> =
        rules.iter().filter(|r| r.resource == "secrets").map(|r| (r.namespace.clone(), r.names.clone())).collect();
    secrets.sort();
    assert_eq!(
        secrets,
        [("lab".to_string(), vec!["other".to_string()]), ("lync".to_string(), vec!["lync-winrm".to_string()])],
        "get on the named Secrets only"
    );

    // anyName in watchNamespace mode: get on any Secret of that namespace, still no list/watch.
    let r = template(&helm, &["watchNamespace=lync,rbac.secrets.anyName=true"]);
    let rules = check_rbac(&r);
    let secrets: Vec<_> = rules.iter().filter(|r| r.resource == "secrets").collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!((secrets[0].role.as_str(), secrets[0].namespace.as_str()), ("Role", "lync"));
}

#[test]
fn cluster_mode_secret_options() {
    let Some(helm) = helm() else { return };
    // Named Secrets in cluster mode: a Role per namespace, never a ClusterRole.
    let r = template(&helm, &["rbac.secrets.names[0].name=winrm,rbac.secrets.names[0].namespace=lync"]);
    let rules = check_rbac(&r);
    let secrets: Vec<_> = rules.iter().filter(|r| r.resource == "secrets").collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (secrets[0].role.as_str(), secrets[0].namespace.as_str(), secrets[0].names.clone()),
        ("Role", "lync", vec!["winrm".to_string()])
    );
    // A name without a namespace cannot be placed.
    let chart = chart();
    let err = run(&helm, &["template", RELEASE, chart.to_str().expect("UTF-8"), "--set", "rbac.secrets.names[0].name=winrm"])
        .expect_err("a Secret name without a namespace is refused");
    assert!(err.contains("needs a namespace"), "{err}");
    // anyName in cluster mode: the documented, discouraged cluster-wide get.
    let r = template(&helm, &["rbac.secrets.anyName=true"]);
    let rules = check_rbac(&r);
    let secrets: Vec<_> = rules.iter().filter(|r| r.resource == "secrets").collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].role, "ClusterRole");
}

#[test]
fn scheduling_values_reach_the_pod() {
    let Some(helm) = helm() else { return };
    let r = template(
        &helm,
        &[
            "nodeSelector.kubernetes\\.io/os=linux",
            "tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            "resources.limits.cpu=1",
            "logLevel=lyncdr=debug,logFormat=text",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
    );
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"],
        "zone"
    );
    let c = container(&r);
    assert_eq!(c["resources"]["limits"]["cpu"], 1);
    assert!(
        c["image"].as_str().is_some_and(|i| i.ends_with("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")),
        "{}",
        c["image"]
    );
    assert!(args(&r).contains(&"--log-format=text"));
}

#[test]
fn values_schema_rejects_unknown_and_invalid_values() {
    let Some(helm) = helm() else { return };
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    for (set, needle) in [
        ("bogus=1", "bogus"),
        ("image.bogus=1", "bogus"),
        ("leaderElection.replica=2", "replica"),
        ("logFormat=xml", "logFormat"),
        ("leaderElection.strategy=Canary", "strategy"),
        ("terminationGracePeriodSeconds=5", "terminationGracePeriodSeconds"),
        ("watchNamespace=Not_A_Namespace", "watchNamespace"),
    ] {
        let err = run(&helm, &["template", RELEASE, chart, "--set", set]).expect_err(&format!("--set {set} must be rejected"));
        assert!(err.contains("schema") && err.contains(needle), "--set {set}: {err}");
    }
    // A misspelt value is caught by lint as well.
    assert!(run(&helm, &["lint", chart, "--set", "serviceMonitor.enable=true"]).is_err());
}
