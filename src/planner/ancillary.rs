//! What pool failover does not carry: Response Groups (exported routinely, imported into the
//! backup pool after failover, exported from it before failback and imported home after, rules
//! 25-26), conference content after failback and on request (rule 24, JJ688030), and the
//! Backup Service sync interval (rule 32).

use std::collections::{BTreeSet, HashMap};

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::{Expect, Remember};
use crate::desired::Desired;
use crate::model::{BackupModule, ExportStatus, Fqdn, Observed};
use crate::ps::Invocation;

pub(crate) fn rgs_export_before_failback_id(x: &Fqdn) -> String {
    format!("rgs-export-before-failback/{x}")
}

/// The routine export that a failover of `x` imports afterwards (rule 25: export before).
pub(crate) fn rgs_routine_export_id(x: &Fqdn) -> String {
    format!("rgs-routine-export/{x}")
}

/// The owners of the Response Group workflows of each name, across every pool hosting some:
/// what rule 26 checks a pool's workflow names against, read once per plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct RgsOwners(HashMap<String, BTreeSet<Fqdn>>);

impl RgsOwners {
    pub fn of(o: &Observed) -> RgsOwners {
        let mut by_name: HashMap<String, BTreeSet<Fqdn>> = HashMap::new();
        for (owner, list) in o.rgs.hosted.values().flat_map(|owners| owners.iter()) {
            for n in list {
                by_name.entry(n.clone()).or_default().insert(owner.clone());
            }
        }
        RgsOwners(by_name)
    }

    /// Whether an owner other than `x` has a workflow named `name`.
    fn elsewhere(&self, name: &str, x: &Fqdn) -> bool {
        self.0.get(name).is_some_and(|owners| owners.iter().any(|o| o != x))
    }
}

/// Names of `x`'s Response Group workflows (as hosted now, and as last exported) that exist
/// elsewhere under another owner: importing them into the backup pool fails (rule 26) unless
/// `-ResolveNameConflicts` renames them. Empty when lyncdr does not manage Response Groups.
pub(crate) fn rgs_name_clashes(d: &Desired, o: &Observed, owners: &RgsOwners, x: &Fqdn) -> Vec<String> {
    let Some(path) = &d.rgs_export_path else { return vec![] };
    let mut names: Vec<String> = o.rgs.hosted.get(x).and_then(|h| h.get(x)).cloned().unwrap_or_default();
    if let Some(export) = o.history.rgs_exports.get(&routine_file(path, x)) {
        names.extend(export.workflows.iter().cloned());
    }
    let mut clashes: Vec<String> = names.into_iter().filter(|n| owners.elsewhere(n, x)).collect();
    clashes.sort();
    clashes.dedup();
    clashes
}

/// Rule 26, as a blocker message naming the way out.
pub(crate) fn rgs_clash_message(d: &Desired, x: &Fqdn, y: &Fqdn, clashes: &[String]) -> String {
    format!(
        "Response Group names must be unique before a failover (rule 26): {} of {x} also exist elsewhere, so importing them into {y} would fail; rename them, or set spec.responseGroups.resolveNameConflicts: true on LyncDeployment/{} to import them with -ResolveNameConflicts (the copies get new names)",
        clashes.join(", "),
        d.deployment
    )
}

fn routine_file(path: &str, x: &Fqdn) -> String {
    format!(r"{path}\{x}-routine.zip")
}

fn app(p: &Fqdn) -> String {
    format!("service:ApplicationServer:{p}")
}

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    response_groups(c, b);
    content(c, b);
    sync_interval(c, b);
}

fn response_groups(c: &Ctx, b: &mut Builder) {
    let Some(path) = c.desired.rgs_export_path.clone() else { return };
    let dep = c.deployment();
    let routine = |x: &Fqdn| routine_file(&path, x);
    let before_failback = |x: &Fqdn| format!(r"{path}\{}-failback.zip", x);
    for pt in &c.targets.pairs {
        for x in &pt.spec.pools {
            let y = pt.spec.partner(x).clone();
            let res = pt.spec.resource();
            // Routine export while the pool serves its own workflows (before any outage; the
            // workflows are read from its Back End, so it must be available).
            let own: Vec<String> = c.observed.rgs.hosted.get(x).and_then(|h| h.get(x)).cloned().unwrap_or_default();
            // Also just before a planned failover, while the pool still answers (the failover
            // waits for it: rule 25, export before).
            let serving_here = c.serves_itself(x) || (c.failing_over(x) && c.observed.failover(x) == crate::model::FailoverState::Normal);
            if c.up(x)
                && serving_here
                && !c.failing_back(x)
                && !own.is_empty()
                && super::targets::back_end_ok_after(c.observed, &c.targets, x)
            {
                let file = routine(x);
                let current = c.observed.history.rgs_exports.get(&file).is_some_and(|e| e.workflows == own);
                if !current {
                    let inv = Invocation::new("Export-CsRgsConfiguration").arg("Source", app(x)).arg("FileName", file.clone());
                    b.step(rgs_routine_export_id(x), inv, x, dep.clone())
                        .after(super::pools::db_deps(c, x))
                        .reason(format!("keep a current export of {x}'s Response Groups: they are not replicated, and after a failover they are imported from it"))
                        .rules(&[25])
                        .remember(Remember::RgsExported { file, owner: x.clone(), workflows: own.clone() })
                        .add();
                }
            }
            // After failover: import x's workflows into its backup pool.
            let failed_over_target = !c.serves_itself(x);
            if failed_over_target && c.up(&y) && !c.observed.rgs.hosts(&y, x) {
                let file = routine(x);
                let exporting = b.has(&rgs_routine_export_id(x));
                let known = c.observed.history.rgs_exports.get(&file).cloned().or_else(|| {
                    exporting.then(|| crate::model::RgsExportObs { owner: x.clone(), workflows: own.clone(), taken_at: c.observed.at })
                });
                match known.as_ref() {
                    None => b.notice(format!("{res}: no Response Group export of {x} is known, so its Response Groups stay unavailable until {x} returns (rule 25)")),
                    Some(_) => {
                        // Rule 26 (checked before the failover too, in targets).
                        let clashes = rgs_name_clashes(c.desired, c.observed, &c.targets.rgs_owners, x);
                        if !clashes.is_empty() && !c.desired.rgs_resolve_name_conflicts {
                            b.block(&res, rgs_clash_message(c.desired, x, &y, &clashes));
                        } else {
                            let mut inv = Invocation::new("Import-CsRgsConfiguration").arg("Destination", app(&y)).arg("FileName", file.clone());
                            if !clashes.is_empty() {
                                inv = inv.switch("ResolveNameConflicts");
                            }
                            b.step(format!("rgs-import/{y}/{x}"), inv, &y, res.clone())
                                .reason(if clashes.is_empty() {
                                    format!("import {x}'s Response Groups into {y}, which now serves its users")
                                } else {
                                    format!(
                                        "import {x}'s Response Groups into {y}, which now serves its users; {} exist there too and are renamed (spec.responseGroups.resolveNameConflicts)",
                                        clashes.join(", ")
                                    )
                                })
                                .rules(&[25, 26])
                                .after([id::failover(x), rgs_routine_export_id(x)])
                                .expect(Expect::RgsHosted { host: y.clone(), owner: x.clone() })
                                .add();
                        }
                    }
                }
            }
            // Before failback: export x's workflows (with changes made meanwhile) from y.
            if c.failing_back(x) && c.up(&y) && c.observed.rgs.hosts(&y, x) {
                let file = before_failback(x);
                let workflows = c.observed.rgs.hosted.get(&y).and_then(|h| h.get(x)).cloned().unwrap_or_default();
                let inv =
                    Invocation::new("Export-CsRgsConfiguration").arg("Source", app(&y)).arg("Owner", app(x)).arg("FileName", file.clone());
                // Taken right before the failback (after everything else it waits for), so the
                // export holds the latest changes and a plan stopped earlier does not leave a
                // stale export to be taken again.
                let export = rgs_export_before_failback_id(x);
                let with_failback: Vec<String> = b.after_of(&id::failback(x)).into_iter().filter(|a| *a != export).collect();
                b.step(export, inv, &y, res.clone())
                    .after(with_failback)
                    .reason(format!("export {x}'s Response Groups from {y} right before failback"))
                    .rules(&[25])
                    .remember(Remember::RgsExported { file, owner: x.clone(), workflows })
                    .add();
            }
            // After failback: import them home, taking ownership back.
            let file = before_failback(x);
            let pending = c.observed.history.rgs_exports.contains_key(&file) || b.has(&rgs_export_before_failback_id(x));
            if pending && c.serves_itself(x) && c.up(x) {
                let inv = Invocation::new("Import-CsRgsConfiguration")
                    .arg("Destination", app(x))
                    .switch("OverwriteOwner")
                    .arg("FileName", file.clone());
                b.step(format!("rgs-import/{x}/{x}"), inv, x, res.clone())
                    .reason(format!("import {x}'s Response Groups back into {x} after failback, with -OverwriteOwner"))
                    .rules(&[25])
                    .after([id::failback(x), rgs_export_before_failback_id(x)])
                    .remember(Remember::RgsImported { file })
                    .add();
            }
        }
    }
}

fn content_steps(b: &mut Builder, key: &str, y: &Fqdn, res: &str, after: Vec<String>, reason: String, remember: Option<Remember>) {
    let inv =
        Invocation::new("Invoke-CsBackupServiceSync").arg("PoolFqdn", y.as_str()).arg("BackupModule", BackupModule::DataConf.as_str());
    let sync = b.step(format!("content-sync/{key}"), inv, y, res).reason(reason).rules(&[24]).after(after).add();
    let mut wait = b
        .step(format!("wait-content-sync/{key}"), Invocation::new("Get-CsBackupServiceStatus").arg("PoolFqdn", y.as_str()), y, res)
        .wait()
        .reason(format!("wait until {y}'s conference content export reaches steady state"))
        .rules(&[24])
        .after([sync])
        .expect(Expect::BackupSynced { pool: y.clone(), module: BackupModule::DataConf });
    if let Some(r) = remember {
        wait = wait.remember(r);
    }
    wait.add();
}

fn content(c: &Ctx, b: &mut Builder) {
    for pt in &c.targets.pairs {
        for x in &pt.spec.pools {
            let y = pt.spec.partner(x).clone();
            let backlog = c
                .observed
                .pool(&y)
                .and_then(|p| p.module(BackupModule::DataConf))
                .is_some_and(|m| m.export == ExportStatus::NonSteadyState);
            let home = c.serves_itself(x) && c.health(x).is_alive() && c.up(&y);
            if c.failing_back(x) && c.up(&y) {
                content_steps(
                    b,
                    y.as_str(),
                    &y,
                    &pt.spec.resource(),
                    vec![id::failback(x)],
                    format!("copy the conference content {x}'s users created on {y} back to {x} after failback"),
                    None,
                );
            } else if home && backlog && !c.failing_over(x) {
                content_steps(
                    b,
                    y.as_str(),
                    &y,
                    &pt.spec.resource(),
                    vec![],
                    format!("{y} holds conference content {x} lacks: copy it back"),
                    None,
                );
            }
        }
    }
    for r in &c.desired.restores {
        let res = format!("ConferenceContentRestore/{}", r.name);
        if c.observed.history.completed_restores.get(&r.name).is_some_and(|g| *g >= r.generation) {
            continue;
        }
        let Some(y) = c.observed.topology.partner(&r.pool).cloned() else {
            b.block(&res, format!("{} has no backup pool holding a copy of its conference content", r.pool));
            continue;
        };
        if !c.serves_itself(&r.pool) || !c.health(&r.pool).is_alive() || !c.up(&y) {
            b.block(&res, format!("the restore needs {} serving its own users and {y} reachable", r.pool));
            continue;
        }
        let after = if c.failing_back(&r.pool) { vec![id::failback(&r.pool)] } else { vec![] };
        content_steps(
            b,
            &format!("restore/{}", r.name),
            &y,
            &res,
            after,
            format!("restore {}'s conference content from the copy in {y}", r.pool),
            Some(Remember::RestoreDone { name: r.name.clone(), generation: r.generation }),
        );
    }
}

fn sync_interval(c: &Ctx, b: &mut Builder) {
    let Some(want) = c.desired.sync_interval else { return };
    if c.observed.sync_interval == Some(want) {
        return;
    }
    let dep = c.deployment();
    let deps = match c.cms_deps() {
        Ok(d) => d,
        Err(why) => {
            b.block(&dep, format!("spec.backupService.syncInterval is {want}, but {why}"));
            return;
        }
    };
    let Some(run_on) = c.admin_pool() else { return };
    let inv = Invocation::new("Set-CsBackupServiceConfiguration").arg("Identity", "global").arg("SyncInterval", want.to_timespan());
    b.step("backup-sync-interval", inv, &run_on, dep)
        .reason(format!(
            "spec.backupService.syncInterval is {want} (now {}); it drives Backup Service load and the recovery point, so change it only when necessary",
            c.observed.sync_interval.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into())
        ))
        .rules(&[32])
        .after(deps)
        .expect(Expect::SyncInterval { interval: want })
        .add();
}
