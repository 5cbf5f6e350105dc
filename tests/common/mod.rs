//! Shared helpers for the integration tests: scenarios, desired states, and running the engine
//! against the in-process simulator in virtual time.
#![allow(dead_code)]

use lyncdr::api::manifests;
use lyncdr::desired::{self, Desired};
use lyncdr::engine::journal::MemoryJournal;
use lyncdr::engine::{Converged, Engine, Settings};
use lyncdr::model::{History, Observed};
use lyncdr::planner::{Plan, Policy, plan};
use lyncdr::scenario::Scenario;
use lyncdr::sim::LocalSim;
use lyncdr::sim::Simulator;

pub fn scenario(yaml: &str) -> Scenario {
    Scenario::from_yaml(yaml).unwrap_or_else(|e| panic!("scenario: {e}\n{yaml}"))
}

pub fn desired(yaml: &str) -> Desired {
    let m = manifests::parse(yaml, "test").unwrap_or_else(|e| panic!("manifests: {e}\n{yaml}"));
    desired::compile(&m).unwrap_or_else(|e| panic!("desired: {e}")).remove(0)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

pub fn plan_for(s: &Scenario, d: &Desired) -> (Observed, Plan) {
    let rt = runtime();
    rt.block_on(async {
        let lync = LocalSim::new(Simulator::new(s));
        let journal = MemoryJournal::default();
        let engine = Engine::new(&lync, &journal);
        engine.preview(d, &|_| {}).await.expect("observe")
    })
}

pub fn replan(d: &Desired, o: &Observed) -> Plan {
    plan(d, o, &Policy::default())
}

/// Runs the engine until converged or blocked; returns the outcome and the simulator.
pub async fn converge(lync: &LocalSim, d: &Desired, history: History) -> (Converged, History) {
    let journal = MemoryJournal::with_memory(history);
    let mut engine = Engine::new(lync, &journal);
    engine.settings = Settings { wait_timeout: lyncdr::model::Span::hours(2), ..Settings::default() };
    let c = engine.converge(d, &|_| {}).await;
    (c, engine.history())
}

pub const TWO_SITE: &str = include_str!("../../examples/two-site/scenario.yaml");
pub const TWO_SITE_DESIRED: &str = include_str!("../../examples/two-site/desired.yaml");

/// A minimal LyncDeployment + PoolPair for the two-site scenario, with the pair's extra spec lines.
pub fn two_site_desired(pair_extra: &str, deployment_extra: &str) -> Desired {
    desired(&two_site_manifests(pair_extra, deployment_extra))
}

/// The manifests of [`two_site_desired`]: `deployment_extra` and `pair_extra` are spec lines
/// indented by two spaces.
pub fn two_site_manifests(pair_extra: &str, deployment_extra: &str) -> String {
    format!(
        r#"
apiVersion: lyncdr.io/v1alpha1
kind: LyncDeployment
metadata: {{name: contoso}}
spec:
{deployment_extra}
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {{name: dal-sea}}
spec:
  deployment: contoso
  pools: [pool01.dal.contoso.com, pool01.sea.contoso.com]
{pair_extra}
"#
    )
}

pub const DAL: &str = "pool01.dal.contoso.com";
pub const SEA: &str = "pool01.sea.contoso.com";

/// Checks (or, with `LYNCDR_BLESS=1`, rewrites) a generated section of docs/reliability.md,
/// between `<!-- NAME:begin -->` and `<!-- NAME:end -->`: the figures there are what the tests
/// measured, never typed by hand.
pub fn reliability_section(name: &str, body: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let (begin, end) = (format!("<!-- {name}:begin -->"), format!("<!-- {name}:end -->"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let section = format!("{begin}\n{body}{end}");
    let current = match (text.find(&begin), text.find(&end)) {
        (Some(a), Some(b)) if a < b => Some(text[a..b + end.len()].to_string()),
        _ => None,
    };
    if std::env::var("LYNCDR_BLESS").is_ok_and(|v| v == "1") {
        let updated = match &current {
            Some(old) => text.replacen(old, &section, 1),
            None => format!("{text}\n{section}\n"),
        };
        std::fs::write(&path, updated).expect("write docs/reliability.md");
        return;
    }
    assert_eq!(
        current.as_deref(),
        Some(section.as_str()),
        "docs/reliability.md section {name} is not what the test measured; run the test with LYNCDR_BLESS=1 to regenerate it"
    );
}
