//! The Kubernetes operator: one reconciler per LyncDeployment that reads the PoolPairs,
//! UserPlacements and ConferenceContentRestores referring to it from reflector stores, observes
//! the deployment, plans globally and executes through the same engine as `lyncdr demo`, with
//! the journal in status. Module map: `inputs` (stores, desired state), `reconcile` (the
//! pipeline), `report` (status, Events, progress), `journal` (the journal in status),
//! `metrics`.
//! Leader election (a Lease) makes one replica the only writer; `/metrics`, `/healthz` and
//! `/readyz` are served for Prometheus and the kubelet.

mod connect;
pub mod inputs;
mod journal;
pub mod metrics;
mod reconcile;
mod report;

use std::sync::Arc;

use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{info, warn};

pub use connect::{ConnectError, Connector, DefaultConnector, KubeSecrets};
pub use inputs::{Stores, Writers};
pub use journal::StatusJournal;
pub use metrics::Metrics;
pub use reconcile::{Error, error_policy, reconcile};

use crate::api::{ConferenceContentRestore, LyncDeployment, PoolPair, UserPlacement};

/// The finalizer lyncdr puts on LyncDeployments. Its cleanup removes only operator state
/// (metric series, cached connections); deleting a resource never changes Lync.
pub const FINALIZER: &str = "lyncdr.io/cleanup";

/// Shared by every reconcile.
pub struct Ctx {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Operator instance (pod name), written into journal entries and events.
    pub instance: String,
    pub connector: Arc<dyn Connector>,
    /// Whether this instance may act.
    pub leader: watch::Receiver<bool>,
    /// Every lyncdr resource, as the watches last delivered it.
    pub stores: Stores,
}

impl Ctx {
    pub fn new(
        client: Client,
        instance: &str,
        connector: Arc<dyn Connector>,
        leader: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
        stores: Stores,
    ) -> Ctx {
        let recorder = Recorder::new(client.clone(), Reporter { controller: "lyncdr".into(), instance: Some(instance.to_string()) });
        Ctx { client, metrics, recorder, instance: instance.to_string(), connector, leader, stores }
    }
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}

/// `lyncdr run` options.
#[derive(Debug, Clone)]
pub struct Options {
    pub metrics_addr: String,
    pub leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    pub instance: String,
    pub watch_namespace: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create a Kubernetes client: {0}")]
    Client(String),
    #[error("cannot serve metrics on {addr}: {message}")]
    Metrics { addr: String, message: String },
    #[error("leader election: {0}")]
    Lease(String),
}

fn deployment_refs(ns: Option<String>, deployment: &str) -> Option<ObjectRef<DeserializeGuard<LyncDeployment>>> {
    if deployment.is_empty() {
        return None;
    }
    let r = ObjectRef::new(deployment);
    Some(match ns {
        Some(n) => r.within(&n),
        None => r,
    })
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(opts: Options, client: Option<Client>) -> Result<(), RunError> {
    let client = match client {
        Some(c) => c,
        None => Client::try_default().await.map_err(|e| RunError::Client(e.to_string()))?,
    };
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(&opts.metrics_addr)
        .await
        .map_err(|e| RunError::Metrics { addr: opts.metrics_addr.clone(), message: e.to_string() })?;
    let router = metrics.router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            warn!(error = %e, "metrics server stopped");
        }
    });

    let (leader_tx, leader_rx) = watch::channel(!opts.leader_election);
    let mut lease_task = None;
    if opts.leader_election {
        let ns = opts.lease_namespace.clone().unwrap_or_else(|| "default".into());
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &opts.lease_name)
            .with_namespace(&ns)
            .with_identity(&opts.instance)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .map_err(|e| RunError::Lease(e.to_string()))?;
        let (mut channel, task) = manager.watch().await;
        let metrics_l = metrics.clone();
        let tx = leader_tx.clone();
        let instance = opts.instance.clone();
        tokio::spawn(async move {
            loop {
                let leading = *channel.borrow_and_update();
                metrics_l.leader.set(i64::from(leading));
                info!(instance = %instance, leading, "leadership");
                let _ = tx.send(leading);
                if channel.changed().await.is_err() {
                    let _ = tx.send(false);
                    break;
                }
            }
        });
        lease_task = Some(task);
    } else {
        metrics.leader.set(1);
    }

    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match ns {
            Some(n) => Api::namespaced(client.clone(), n),
            None => Api::all(client.clone()),
        }
    }
    let ns = &opts.watch_namespace;
    let deployments: Api<DeserializeGuard<LyncDeployment>> = api(&client, ns);
    let pairs: Api<DeserializeGuard<PoolPair>> = api(&client, ns);
    let placements: Api<DeserializeGuard<UserPlacement>> = api(&client, ns);
    let restores: Api<DeserializeGuard<ConferenceContentRestore>> = api(&client, ns);
    // Ready once LyncDeployments can be listed (the CRDs are served and RBAC allows it), which is
    // when the controller's own cache syncs. Not `controller.store().wait_until_ready()`: that is
    // a oneshot underneath that wakes only the last task to poll it, and the controller's runner
    // waits on it too, so a second waiter is never woken (/readyz stayed 503 forever) or, polled
    // again, would delay the runner instead.
    let ready_api: Api<DeserializeGuard<LyncDeployment>> = api(&client, ns);
    let ready_metrics = metrics.clone();
    tokio::spawn(async move {
        loop {
            match ready_api.list(&kube::api::ListParams::default().limit(1)).await {
                Ok(_) => {
                    ready_metrics.set_ready(true);
                    info!("LyncDeployments can be listed; ready");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "cannot list LyncDeployments yet; not ready");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    });
    // The related resources are watched once: each watch feeds a reflector store (read by
    // every reconcile and by every step of a running plan, without API calls) and triggers the
    // reconcile of the deployment it names.
    let (pair_store, pair_writer) = reflector::store();
    let (placement_store, placement_writer) = reflector::store();
    let (restore_store, restore_writer) = reflector::store();
    let pair_stream = reflector::reflector(pair_writer, watcher(pairs, watcher::Config::default())).touched_objects();
    let placement_stream = reflector::reflector(placement_writer, watcher(placements, watcher::Config::default())).touched_objects();
    let restore_stream = reflector::reflector(restore_writer, watcher(restores, watcher::Config::default())).touched_objects();
    let controller = Controller::new(deployments, watcher::Config::default().any_semantic());
    let stores = Stores { deployments: controller.store(), pairs: pair_store, placements: placement_store, restores: restore_store };
    let ctx = Arc::new(Ctx::new(
        client.clone(),
        &opts.instance,
        Arc::new(KubeSecrets::connector(client.clone())),
        leader_rx,
        metrics.clone(),
        stores,
    ));
    controller
        .watches_stream(pair_stream, |p: DeserializeGuard<PoolPair>| {
            p.0.ok().and_then(|p| deployment_refs(p.metadata.namespace.clone(), &p.spec.deployment))
        })
        .watches_stream(placement_stream, |p: DeserializeGuard<UserPlacement>| {
            p.0.ok().and_then(|p| deployment_refs(p.metadata.namespace.clone(), &p.spec.deployment))
        })
        .watches_stream(restore_stream, |p: DeserializeGuard<ConferenceContentRestore>| {
            p.0.ok().and_then(|p| deployment_refs(p.metadata.namespace.clone(), &p.spec.deployment))
        })
        .reconcile_all_on(leader_changes(ctx.leader.clone()))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                warn!(error = %e, "reconcile");
            }
        })
        .await;
    info!("controller stopped");
    drop(lease_task);
    Ok(())
}

/// A stream that ticks whenever leadership is gained, so every deployment is reconciled then.
fn leader_changes(rx: watch::Receiver<bool>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            if rx.changed().await.is_err() {
                return None;
            }
            if *rx.borrow() {
                return Some(((), rx));
            }
        }
    })
}

/// The action after a reconcile that must wait for a condition to change.
pub fn idle(d: crate::model::Span) -> Action {
    Action::requeue(d.to_std())
}
