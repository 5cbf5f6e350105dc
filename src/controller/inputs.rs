//! The controller's view of the desired state: reflector stores of every lyncdr resource (kept
//! current by watches that also trigger reconciles), the resources of one deployment read from
//! them, and the desired state built and checked from those. The same function serves the
//! start of a reconcile and every step of a running plan ([`StoreSource`]), so a spec changed
//! while a plan runs is seen before the next step at no API cost.

use std::sync::Arc;

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{reflector::store::Writer, watcher};

use crate::api::{ConferenceContentRestore, LyncDeployment, PoolPair, UserPlacement};
use crate::desired::{self, Desired, DesiredError};
use crate::engine::DesiredSource;
use crate::status::Gate;

/// Read handles of the reflector stores.
#[derive(Clone)]
pub struct Stores {
    pub deployments: Store<DeserializeGuard<LyncDeployment>>,
    pub pairs: Store<DeserializeGuard<PoolPair>>,
    pub placements: Store<DeserializeGuard<UserPlacement>>,
    pub restores: Store<DeserializeGuard<ConferenceContentRestore>>,
}

/// Write handles of the same stores: each goes to a reflector (or to a test that fills it).
pub struct Writers {
    pub deployments: Writer<DeserializeGuard<LyncDeployment>>,
    pub pairs: Writer<DeserializeGuard<PoolPair>>,
    pub placements: Writer<DeserializeGuard<UserPlacement>>,
    pub restores: Writer<DeserializeGuard<ConferenceContentRestore>>,
}

impl Stores {
    /// Empty stores and their writers.
    pub fn new() -> (Stores, Writers) {
        let (deployments, dw) = reflector::store();
        let (pairs, pw) = reflector::store();
        let (placements, uw) = reflector::store();
        let (restores, rw) = reflector::store();
        (Stores { deployments, pairs, placements, restores }, Writers { deployments: dw, pairs: pw, placements: uw, restores: rw })
    }
}

impl Writers {
    /// Replaces every store's content (what a relist does), e.g. from a test's objects.
    pub fn replace(
        &mut self,
        deployments: Vec<DeserializeGuard<LyncDeployment>>,
        pairs: Vec<DeserializeGuard<PoolPair>>,
        placements: Vec<DeserializeGuard<UserPlacement>>,
        restores: Vec<DeserializeGuard<ConferenceContentRestore>>,
    ) {
        fn relist<K>(w: &mut Writer<K>, objects: Vec<K>)
        where
            K: kube::Resource + Clone + 'static,
            K::DynamicType: std::hash::Hash + Eq + Clone,
        {
            w.apply_watcher_event(&watcher::Event::Init);
            for o in objects {
                w.apply_watcher_event(&watcher::Event::InitApply(o));
            }
            w.apply_watcher_event(&watcher::Event::InitDone);
        }
        relist(&mut self.deployments, deployments);
        relist(&mut self.pairs, pairs);
        relist(&mut self.placements, placements);
        relist(&mut self.restores, restores);
    }
}

/// The resources of one deployment, as the stores hold them now.
pub struct Children {
    pub pairs: Vec<PoolPair>,
    pub placements: Vec<UserPlacement>,
    pub restores: Vec<ConferenceContentRestore>,
    /// Resources of the namespace that do not match the schema, as `Kind/name: error`.
    pub malformed: Vec<String>,
}

fn of<K>(store: &Store<DeserializeGuard<K>>, ns: &str, deployment: &str, dep_of: impl Fn(&K) -> &str) -> (Vec<K>, Vec<String>)
where
    K: kube::Resource<DynamicType = ()> + Clone + ResourceExt,
{
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for g in store.state() {
        match &g.0 {
            Ok(k) if k.namespace().as_deref() == Some(ns) && dep_of(k) == deployment => ok.push(k.clone()),
            Ok(_) => {}
            Err(invalid) if invalid.metadata.namespace.as_deref() == Some(ns) => {
                bad.push(format!("{}/{}: {}", K::kind(&()), invalid.metadata.name.clone().unwrap_or_default(), invalid.error))
            }
            Err(_) => {}
        }
    }
    ok.sort_by_key(|k| k.name_any());
    (ok, bad)
}

impl Stores {
    /// The PoolPairs, UserPlacements and ConferenceContentRestores naming a deployment.
    pub fn children(&self, ns: &str, deployment: &str) -> Children {
        let (pairs, mut malformed) = of(&self.pairs, ns, deployment, |p: &PoolPair| &p.spec.deployment);
        let (placements, m2) = of(&self.placements, ns, deployment, |p: &UserPlacement| &p.spec.deployment);
        let (restores, m3) = of(&self.restores, ns, deployment, |p: &ConferenceContentRestore| &p.spec.deployment);
        malformed.extend(m2);
        malformed.extend(m3);
        Children { pairs, placements, restores, malformed }
    }

    /// The LyncDeployment as the store holds it (`None` when absent, malformed or being deleted).
    pub fn deployment(&self, ns: &str, name: &str) -> Option<LyncDeployment> {
        let g = self.deployments.get(&ObjectRef::new(name).within(ns))?;
        g.0.as_ref().ok().filter(|d| d.metadata.deletion_timestamp.is_none()).cloned()
    }
}

/// Builds and checks a deployment's desired state from its resources (validation: every
/// resource on its own, then together).
pub fn desired_of(dep: &LyncDeployment, kids: &Children) -> Result<Desired, DesiredError> {
    for p in &kids.pairs {
        desired::check_pair(p)?;
    }
    for p in &kids.placements {
        desired::check_placement(p)?;
    }
    desired::check_deployment(dep)?;
    let mut d = desired::build(dep, kids.pairs.iter().collect(), kids.placements.iter().collect(), kids.restores.iter().collect())?;
    d.namespace = dep.namespace().unwrap_or_default();
    Ok(d)
}

/// The desired state of one deployment as the stores hold it now, for a running plan.
pub struct StoreSource {
    pub stores: Stores,
    pub namespace: String,
    pub name: String,
    /// `status.appliedGeneration` when the plan started (for the gate).
    pub applied_generation: Option<i64>,
}

impl DesiredSource for StoreSource {
    fn current(&self, plan_hash: &str) -> Result<Arc<Desired>, String> {
        let dep = self
            .stores
            .deployment(&self.namespace, &self.name)
            .ok_or_else(|| format!("LyncDeployment/{} is being deleted or no longer valid; Lync is left as it is", self.name))?;
        Gate::of(&dep, dep.metadata.generation.unwrap_or(0), self.applied_generation).allows_running(plan_hash)?;
        let kids = self.stores.children(&self.namespace, &self.name);
        let d = desired_of(&dep, &kids).map_err(|e| format!("the desired state is no longer valid: {e}"))?;
        Ok(Arc::new(d))
    }
}
