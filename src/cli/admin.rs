//! `lyncdr run` (the operator, or the standalone front end), `lyncdr approve` and `lyncdr status`.

use std::path::Path;
use std::process::ExitCode;

use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::{CliError, Format, LogFormat, RunArgs};
use crate::api::{APPROVE_ANNOTATION, LyncDeployment, PoolPair, PoolPairStatus, RESOLVE_ANNOTATION, UserPlacement};
use crate::engine::journal::{FileJournal, Journal, resolve_by_person};
use crate::model::Stamp;
use crate::standalone::{self, StatusFile};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn,tower=warn,sspi=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    init_logging(args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(manifests) = args.manifests {
        let opts = standalone::Options {
            manifests,
            state_dir: args.state_dir,
            status_file: args.status_file,
            once: args.once,
            simulator: args.simulator,
            secrets_dir: args.secrets_dir,
        };
        let report = rt.block_on(standalone::run(&opts))?;
        let ready = report.deployments.values().all(|d| d.status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        return Ok(if ready || !args.once { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let instance = args.instance.unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| "lyncdr".into()));
    let opts = crate::controller::Options {
        metrics_addr: args.metrics_addr,
        leader_election: args.leader_election,
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        instance,
        watch_namespace: args.watch_namespace,
    };
    rt.block_on(crate::controller::run(opts, None))?;
    Ok(ExitCode::SUCCESS)
}

pub fn approve(name: &str, namespace: &str, hash: Option<&str>) -> Result<ExitCode, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = Client::try_default().await?;
        let api: Api<LyncDeployment> = Api::namespaced(client, namespace);
        let dep = api.get(name).await?;
        let current = dep.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| p.hash.clone());
        let hash = match (hash, current) {
            (Some(h), _) => h.to_string(),
            (None, Some(h)) => h,
            (None, None) => return Err(CliError(format!("LyncDeployment/{name} has no plan in status to approve"))),
        };
        let body = json!({ "metadata": { "annotations": { APPROVE_ANNOTATION: hash } } });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await?;
        println!("approved plan {hash} of LyncDeployment/{namespace}/{name}");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn resolve(name: &str, step: &str, namespace: Option<&str>, state: Option<&Path>) -> Result<ExitCode, CliError> {
    crate::api::names::check_subdomain(name).map_err(|m| CliError(format!("deployment name {m}")))?;
    if let Some(ns) = namespace {
        crate::api::names::check_label(ns).map_err(|m| CliError(format!("--namespace {m}")))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(dir) = state {
        let key = match namespace {
            Some(ns) => format!("{ns}_{name}"),
            None => name.to_string(),
        };
        let path = standalone::journal_path(dir, &key);
        if !path.exists() {
            return Err(CliError(format!("{} does not exist: no journal for LyncDeployment {name} in {}", path.display(), dir.display())));
        }
        return rt.block_on(async {
            let journal = FileJournal::open(path, None)?;
            let pending = journal.pending().await?;
            if resolve_by_person(&journal, step, "lyncdr resolve", Stamp(0)).await? {
                println!(
                    "journal entry {step} of LyncDeployment/{name} marked resolved; the next round plans from the deployment as it is"
                );
                Ok(ExitCode::SUCCESS)
            } else {
                let list: Vec<String> = pending.iter().map(|e| e.step.id.clone()).collect();
                Err(CliError(format!(
                    "LyncDeployment/{name} has no pending journal entry for step {step}; pending: {}",
                    if list.is_empty() { "none".to_string() } else { list.join(", ") }
                )))
            }
        });
    }
    let namespace = namespace.unwrap_or("default");
    rt.block_on(async {
        let client = Client::try_default().await?;
        let api: Api<LyncDeployment> = Api::namespaced(client, namespace);
        let dep = api.get(name).await?;
        let pending: Vec<String> = dep
            .status
            .as_ref()
            .map(|s| s.journal.iter().filter(|j| j.outcome == "Pending").map(|j| j.step.clone()).collect())
            .unwrap_or_default();
        if !pending.iter().any(|p| p == step) {
            return Err(CliError(format!(
                "LyncDeployment/{namespace}/{name} has no pending journal entry for step {step}; pending: {}",
                if pending.is_empty() { "none".to_string() } else { pending.join(", ") }
            )));
        }
        // A new value each time, so the same step can be resolved again later.
        let value = format!("{step}@{}", k8s_openapi::jiff::Timestamp::now().as_second());
        let body = json!({ "metadata": { "annotations": { RESOLVE_ANNOTATION: value } } });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await?;
        println!("asked the operator to resolve {step} of LyncDeployment/{namespace}/{name} (annotation {RESOLVE_ANNOTATION}={value})");
        Ok(ExitCode::SUCCESS)
    })
}

fn cond(conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition], t: &str) -> String {
    conds
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| if c.message.is_empty() { c.status.clone() } else { format!("{} ({})", c.status, c.message) })
        .unwrap_or_else(|| "Unknown".into())
}

fn print_pair(name: &str, s: &PoolPairStatus) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    println!(
        "  PoolPair/{name}: paired {} | serving {} | backup {} | at risk {} | Ready {}",
        cond(&s.conditions, "Paired"),
        text(&s.serving),
        text(&s.backup_sync),
        text(&s.data_at_risk),
        cond(&s.conditions, "Ready")
    );
}

pub fn status(namespace: Option<&str>, state: Option<&Path>, format: Format) -> Result<ExitCode, CliError> {
    if let Some(dir) = state {
        let path = dir.join("status.json");
        let text = std::fs::read_to_string(&path).map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
        let file: StatusFile = serde_json::from_str(&text)?;
        if format == Format::Json {
            println!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        for (name, d) in &file.deployments {
            print_deployment(name, &d.status);
            for (p, s) in &d.pool_pairs {
                print_pair(p, s);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = Client::try_default().await?;
        let (deps, pairs, placements): (Api<LyncDeployment>, Api<PoolPair>, Api<UserPlacement>) = match namespace {
            Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
            None => (Api::all(client.clone()), Api::all(client.clone()), Api::all(client)),
        };
        let deps = deps.list(&ListParams::default()).await?.items;
        let pairs = pairs.list(&ListParams::default()).await?.items;
        let placements = placements.list(&ListParams::default()).await?.items;
        if format == Format::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "lyncDeployments": deps, "poolPairs": pairs, "userPlacements": placements }))?
            );
            return Ok(ExitCode::SUCCESS);
        }
        for d in &deps {
            let st = d.status.clone().unwrap_or_default();
            print_deployment(&format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()), &st);
            for p in pairs.iter().filter(|p| p.spec.deployment == d.name_any() && p.namespace() == d.namespace()) {
                print_pair(&p.name_any(), &p.status.clone().unwrap_or_default());
            }
            for u in placements.iter().filter(|p| p.spec.deployment == d.name_any() && p.namespace() == d.namespace()) {
                let s = u.status.clone().unwrap_or_default();
                println!(
                    "  UserPlacement/{}: {} users remaining | Ready {}",
                    u.name_any(),
                    s.remaining.unwrap_or(-1),
                    cond(&s.conditions, "Ready")
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_deployment(name: &str, st: &crate::api::LyncDeploymentStatus) {
    println!("LyncDeployment/{name}");
    println!("  Ready: {}", cond(&st.conditions, "Ready"));
    for t in ["Reconciling", "Stalled", "AwaitingApproval", "DriftDetected", "Paused", "DataAtRisk", "Conflict"] {
        if st.conditions.iter().any(|c| c.type_ == t && c.status == "True") {
            println!("  {t}: {}", cond(&st.conditions, t));
        }
    }
    if let Some(o) = &st.observed {
        println!(
            "  CMS on {} | SIP federation via {} | XMPP via {}",
            o.cms_pool.clone().unwrap_or("-".into()),
            o.sip_federation_pool.clone().unwrap_or("-".into()),
            o.xmpp_federation_pool.clone().unwrap_or("-".into())
        );
        for l in o.pools.iter().chain(o.edges.iter()) {
            println!("    {l}");
        }
    }
    if let Some(p) = &st.plan {
        println!("  Plan {} [{}]", p.hash, p.progress);
        for s in &p.steps {
            println!("    [{}] {} — {} (on {})", s.state, s.id, s.command, s.run_on);
        }
        for b in &p.blockers {
            println!("    BLOCKED {}: {}", b.resource, b.reason);
        }
    }
    for j in st.journal.iter().filter(|j| j.outcome == "Pending") {
        println!("  journal: {} started {} by {} is Pending", j.step, j.started_at, j.by);
    }
}
