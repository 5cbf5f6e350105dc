//! The Kubernetes API of lyncdr: custom resources in group `lyncdr.io`, version `v1alpha1`.
//! [`LyncDeployment`] describes a deployment (how to reach it, where the CMS lives, Edge routing,
//! Back Ends, the Backup Service, policy); [`PoolPair`] a pairing and which pool serves its
//! users; [`UserPlacement`] users' home pools; [`ConferenceContentRestore`] a restore of a pool's
//! conference content. The same YAML drives the operator (`kubectl apply`, GitOps) and the
//! standalone front ends (`lyncdr plan`, `lyncdr run --manifests`), loaded by [`manifests`].

// kube's `printcolumn(...)` attributes repeat keys such as `type_`, which this lint misreads.
#![allow(clippy::duplicated_attributes)]

mod common;
mod content_restore;
mod deployment;
pub mod manifests;
pub mod names;
mod placement;
mod pool_pair;

pub use common::*;
pub use content_restore::*;
pub use deployment::*;
pub use placement::*;
pub use pool_pair::*;

pub const GROUP: &str = "lyncdr.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "lyncdr.io/v1alpha1";

/// Annotation approving a plan in Manual mode: its value is the plan hash.
pub const APPROVE_ANNOTATION: &str = "lyncdr.io/approve";
/// Annotation pausing reconciliation (`"true"`).
pub const PAUSED_ANNOTATION: &str = "lyncdr.io/paused";
/// Annotation requesting an immediate reconcile; echoed in status.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "lyncdr.io/reconcile-requested-at";
/// Annotation on a PoolPair allowing the way back after an automatic failover.
pub const APPROVE_FAILBACK_ANNOTATION: &str = "lyncdr.io/approve-failback";
/// Annotation resolving an ambiguous journal entry: its value is the step id, optionally
/// followed by `@` and anything that makes the value new (to resolve the same step again later).
pub const RESOLVE_ANNOTATION: &str = "lyncdr.io/resolve";

/// The step id a `lyncdr.io/resolve` value names.
pub fn resolve_target(value: &str) -> &str {
    value.split_once('@').map(|(s, _)| s).unwrap_or(value).trim()
}

/// All CRDs, in a stable order (for `lyncdr crdgen` and the committed `crds/`).
pub fn crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![LyncDeployment::crd(), PoolPair::crd(), UserPlacement::crd(), ConferenceContentRestore::crd()]
}
