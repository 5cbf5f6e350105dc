//! Prometheus metrics and the operator's HTTP endpoints (`/metrics`, `/healthz`, `/readyz`), and
//! a [`Lync`] wrapper that counts and times every cmdlet call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::FutureExt;
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::backend::{Lync, LyncError};
use crate::model::{Request, RequestState, RunOn, Span, Stamp};
use crate::ps::Invocation;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CmdletLabels {
    pub cmdlet: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CmdletNameLabels {
    pub cmdlet: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabels {
    pub deployment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub deployment: String,
    pub pool: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconcile: Family<ReconcileLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub cmdlet_calls: Family<CmdletLabels, Counter>,
    pub cmdlet_duration: Family<CmdletNameLabels, Histogram>,
    pub in_progress: Family<DeploymentLabels, Gauge>,
    pub drift: Family<DeploymentLabels, Gauge>,
    pub awaiting_approval: Family<DeploymentLabels, Gauge>,
    pub data_at_risk: Family<PoolLabels, Gauge>,
    pub last_observation: Family<DeploymentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub leader: Gauge,
    ready: AtomicBool,
}

fn cmdlet_histogram() -> Histogram {
    // 0.5 s to about 1 h: queries take seconds, pool failovers and failbacks tens of minutes.
    Histogram::new([0.5, 2.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("lyncdr");
        let reconcile = Family::<ReconcileLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0]);
        let cmdlet_calls = Family::<CmdletLabels, Counter>::default();
        let cmdlet_duration = Family::<CmdletNameLabels, Histogram>::new_with_constructor(cmdlet_histogram as fn() -> Histogram);
        let in_progress = Family::<DeploymentLabels, Gauge>::default();
        let drift = Family::<DeploymentLabels, Gauge>::default();
        let awaiting_approval = Family::<DeploymentLabels, Gauge>::default();
        let data_at_risk = Family::<PoolLabels, Gauge>::default();
        let last_observation = Family::<DeploymentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let leader = Gauge::default();
        registry.register("reconcile", "Reconciles by controller and result", reconcile.clone());
        registry.register("reconcile_errors", "Reconcile errors by controller and category", reconcile_errors.clone());
        registry.register("reconcile_duration_seconds", "Time spent in one reconcile", reconcile_duration.clone());
        registry.register("cmdlet_calls", "Lync cmdlet calls by cmdlet and outcome", cmdlet_calls.clone());
        registry.register("cmdlet_duration_seconds", "Duration of Lync cmdlet calls", cmdlet_duration.clone());
        registry.register("operations_in_progress", "Plan steps running for a deployment", in_progress.clone());
        registry.register("drift_detected", "1 when a deployment drifted from its desired state", drift.clone());
        registry.register("awaiting_approval", "1 when a plan waits for approval", awaiting_approval.clone());
        registry.register("data_at_risk", "1 when a pool's changes are not replicated to its partner", data_at_risk.clone());
        registry.register(
            "last_successful_observation_timestamp_seconds",
            "Unix time of the last successful observation of a deployment",
            last_observation.clone(),
        );
        registry.register("leader", "1 while this instance holds the leader lease", leader.clone());
        Metrics {
            registry,
            reconcile,
            reconcile_errors,
            reconcile_duration,
            cmdlet_calls,
            cmdlet_duration,
            in_progress,
            drift,
            awaiting_approval,
            data_at_risk,
            last_observation,
            leader,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn deployment(name: &str) -> DeploymentLabels {
        DeploymentLabels { deployment: name.to_string() }
    }

    /// Drops the series of a deleted deployment.
    pub fn forget(&self, name: &str) {
        let l = Self::deployment(name);
        self.in_progress.remove(&l);
        self.drift.remove(&l);
        self.awaiting_approval.remove(&l);
        self.last_observation.remove(&l);
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/metrics",
                get(|State(m): State<Arc<Metrics>>| async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(|State(m): State<Arc<Metrics>>| async move {
                    if m.ready.load(Ordering::SeqCst) { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready") }
                }),
            )
            .with_state(self.clone())
    }
}

/// Counts and times every call of the wrapped backend.
pub struct Metered {
    pub inner: Arc<dyn Lync>,
    pub metrics: Arc<Metrics>,
}

impl Metered {
    async fn measured(&self, inv: &Invocation, call: BoxFuture<'_, Result<Value, LyncError>>) -> Result<Value, LyncError> {
        {
            let start = std::time::Instant::now();
            let r = call.await;
            let outcome = match &r {
                Ok(_) => "ok",
                Err(LyncError::Cmdlet { .. }) => "error",
                Err(LyncError::Unreachable { .. }) => "unreachable",
                Err(LyncError::Ambiguous { .. }) => "unknown",
                Err(LyncError::Protocol(_)) => "protocol",
            };
            let cmdlet = crate::ps::catalog::lookup(&inv.cmdlet).map(|c| c.name.to_string()).unwrap_or_else(|| "other".into());
            self.metrics.cmdlet_calls.get_or_create(&CmdletLabels { cmdlet: cmdlet.clone(), outcome: outcome.into() }).inc();
            self.metrics.cmdlet_duration.get_or_create(&CmdletNameLabels { cmdlet }).observe(start.elapsed().as_secs_f64());
            r
        }
    }
}

impl Lync for Metered {
    fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>> {
        self.measured(inv, self.inner.invoke(run_on, inv)).boxed()
    }
    fn invoke_request<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation, req: &'a Request) -> BoxFuture<'a, Result<Value, LyncError>> {
        self.measured(inv, self.inner.invoke_request(run_on, inv, req)).boxed()
    }
    fn request_state<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, RequestState> {
        self.inner.request_state(req)
    }
    fn request_window(&self) -> Span {
        self.inner.request_window()
    }
    fn now(&self) -> Stamp {
        self.inner.now()
    }
    fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
        self.inner.sleep(d)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}
