//! Making a PoolPair true in Lync (domain document 4.1, rules 12-14 and 31): publish the
//! topology in which the two pools back each other up (and, for a re-pair, their former
//! partners back up nobody), run local setup on every Front End of both pools, start the Backup
//! Service, synchronise both pools and wait until both directions are in steady state; after a
//! re-pair, remove the former partner's data. A pairing published but not completed (setup or
//! LYNCBACKUP missing) is completed the same way.

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::{Expect, Remember};
use super::targets::{PairTarget, Pairing};
use crate::model::{BackupModule, Fqdn, Product};
use crate::ps::Invocation;
use crate::ps::catalog::bootstrapper_path;

fn key(pt: &PairTarget) -> String {
    format!("{}+{}", pt.spec.pools[0], pt.spec.pools[1])
}

fn cleanup_id(p: &Fqdn) -> String {
    format!("pairing-cleanup/{p}")
}

pub(crate) fn emit(c: &Ctx, b: &mut Builder) {
    // A topology document is the whole topology: one written before another pairing was
    // published would undo it when published. Topology changes therefore run one after another.
    let mut last_publish: Option<String> = None;
    for pt in &c.targets.pairs {
        match &pt.pairing {
            Pairing::Established => {}
            Pairing::Complete { install, start } => setup(c, b, pt, install, start, vec![]),
            Pairing::Publish { former } => {
                if let Some(p) = publish(c, b, pt, former, last_publish.take()) {
                    last_publish = Some(p);
                }
            }
        }
    }
    // Former partners' data left behind by an earlier re-pair (remembered: Lync does not report it).
    for pool in &c.observed.history.pending_backup_cleanup {
        if c.observed.topology.partner(pool).is_some() && c.up(pool) && !b.has(&cleanup_id(pool)) {
            cleanup(b, pool, &c.deployment(), vec![]);
        }
    }
}

fn cleanup(b: &mut Builder, pool: &Fqdn, res: &str, after: Vec<String>) {
    b.step(cleanup_id(pool), Invocation::new("Remove-CsUserStoreBackupData").arg("PoolFqdn", pool.as_str()), pool, res)
        .reason(format!("{pool}'s backup pool changed: remove the data it still keeps for its former partner"))
        .rules(&[31])
        .after(after)
        .remember(Remember::BackupCleanupDone { pool: pool.clone() })
        .add();
}

/// Plans the topology change and the setup after it; returns the id of the publish step.
fn publish(c: &Ctx, b: &mut Builder, pt: &PairTarget, former: &[(Fqdn, Fqdn)], previous: Option<String>) -> Option<String> {
    let res = pt.spec.resource();
    let [a, bb] = &pt.spec.pools;
    let k = key(pt);
    let deps = match c.cms_deps() {
        Ok(d) => d,
        Err(why) => {
            b.block(&res, format!("pairing {a} with {bb} changes the topology, but {why}"));
            return None;
        }
    };
    let Some(admin) = c.admin_pool() else {
        b.block(&res, format!("pairing {a} with {bb}: no pool is up to run the topology cmdlets"));
        return None;
    };
    let fes: Vec<Fqdn> = [a, bb].iter().flat_map(|x| c.observed.topology.pools[*x].front_ends.clone()).collect();
    if let Err(why) = replicas_reachable(c, &fes) {
        b.block(&res, format!("pairing {a} with {bb}: {why}"));
        return None;
    }
    let tag = format!("{}-{}", a, bb);
    let backup = b
        .step(
            format!("pairing-backup-configuration/{k}"),
            Invocation::new("Export-CsConfiguration")
                .arg("FileName", format!(r"C:\lyncdr\backup\CsConfiguration-before-pairing-{tag}.zip")),
            &admin,
            res.clone(),
        )
        .reason("back up the configuration before changing the topology")
        .after(deps)
        .add();
    let file = format!(r"C:\lyncdr\topology\pairing-{tag}.xml");
    let draft = b
        .step(
            format!("pairing-topology/{k}"),
            Invocation::new("Set-LyncdrBackupPool")
                .arg("PoolFqdn", a.as_str())
                .arg("BackupPoolFqdn", bb.as_str())
                .arg("FileName", file.clone()),
            &admin,
            res.clone(),
        )
        .reason(if former.is_empty() {
            format!("write a topology in which {a} and {bb} are each other's backup pool (Topology Builder: Associated Backup Pool)")
        } else {
            format!(
                "write a topology in which {a} and {bb} are each other's backup pool and {} no longer have one (consented re-pair)",
                former.iter().map(|(_, q)| q.to_string()).collect::<Vec<_>>().join(", ")
            )
        })
        .rules(&[12, 14])
        .after([backup].into_iter().chain(previous))
        .add();
    let mut published = b
        .step(format!("pairing-publish/{k}"), Invocation::new("Publish-CsTopology").arg("FileName", file), &admin, res.clone())
        .reason(format!("publish the topology pairing {a} with {bb}"))
        .rules(&[12, 13, 14])
        .after([draft])
        .expect(Expect::PairedWith { pool: a.clone(), partner: bb.clone() });
    let changed: Vec<Fqdn> = former.iter().map(|(x, _)| x.clone()).collect();
    if !changed.is_empty() {
        published = published.remember(Remember::BackupCleanupPending { pools: changed.clone() });
    }
    let published = published.add();
    setup(c, b, pt, &fes, &fes, vec![published.clone()]);
    for x in changed {
        cleanup(b, &x, &res, vec![published.clone()]);
    }
    Some(published)
}

/// Enable the topology, let it reach the Front Ends, run local setup where the Backup Service is
/// missing, start it where it does not run, synchronise both pools and wait for steady state.
fn setup(c: &Ctx, b: &mut Builder, pt: &PairTarget, install: &[Fqdn], start: &[Fqdn], after: Vec<String>) {
    let res = pt.spec.resource();
    let [a, bb] = &pt.spec.pools;
    let k = key(pt);
    if let Err(why) = replicas_reachable(c, install) {
        b.block(&res, format!("completing the pairing of {a} with {bb}: {why}"));
        return;
    }
    // Enabling the topology and waiting for the replicas matter only where local setup runs: a
    // Backup Service that is installed but stopped just needs starting (which works without the CMS).
    let gate = if install.is_empty() {
        after
    } else {
        let Some(admin) = c.admin_pool() else {
            b.block(&res, format!("completing the pairing of {a} with {bb}: no pool is up to run the topology cmdlets"));
            return;
        };
        let enable = b
            .step(format!("pairing-enable/{k}"), Invocation::new("Enable-CsTopology"), &admin, res.clone())
            .reason("enable the published topology so local setup installs the pairing components")
            .rules(&[13])
            .after(after)
            .add();
        let wait = b
            .step(
                id::cms_replication(&format!("pairing/{k}")),
                Invocation::new("Get-CsManagementStoreReplicationStatus"),
                &admin,
                res.clone(),
            )
            .wait()
            .reason(format!("the Front Ends of {a} and {bb} must hold the pairing before local setup runs"))
            .rules(&[13])
            .after([enable])
            .expect(Expect::CmsReplicated { servers: install.to_vec().into() })
            .add();
        vec![wait]
    };
    let product = c.observed.topology.pools[a].traits.product;
    let mut started = Vec::new();
    let behind = |fe: &Fqdn| c.observed.pools.values().any(|p| p.patch_current.get(fe) == Some(&false));
    let mut updates = Vec::new();
    for fe in start {
        let mut before = gate.clone();
        if install.contains(fe) {
            before.push(
                b.step(format!("pairing-setup/{fe}"), Invocation::new(bootstrapper_path(product)), fe, res.clone())
                    .reason(format!("run local setup (Bootstrapper) on {fe} to install the pairing components"))
                    .rules(&[13])
                    .after(gate.clone())
                    .expect(Expect::BackupService { server: fe.clone(), running: false })
                    .add(),
            );
        }
        // SfB 2019 (JJ204773): local setup installs the pairing components at the release
        // version; a person re-applies the server's cumulative update, then the Backup Service
        // starts. Observable: Get-CsServerPatchVersion on the server, compared with its peers.
        if product == Product::SfB2019 && (install.contains(fe) || behind(fe)) {
            let wait = b
                .step(format!("wait-cumulative-update/{fe}"), Invocation::new("Get-CsServerPatchVersion"), fe, res.clone())
                .wait()
                .reason(format!(
                    "wait until a person has re-applied the cumulative update on {fe} after local setup (every component at the server's update level)"
                ))
                .rules(&[13])
                .after(before.clone())
                .expect(Expect::UpdatesApplied { server: fe.clone() })
                .add();
            updates.push(fe.to_string());
            before = vec![wait];
        }
        started.push(
            b.step(
                format!("pairing-start-backup/{fe}"),
                Invocation::new("Start-CsWindowsService").arg("Name", "LYNCBACKUP"),
                fe,
                res.clone(),
            )
            .reason(format!("start the Backup Service on {fe}"))
            .rules(&[13])
            .after(before)
            .expect(Expect::BackupService { server: fe.clone(), running: true })
            .add(),
        );
    }
    let mut syncs = Vec::new();
    for x in [a, bb] {
        syncs.push(
            b.step(format!("pairing-sync/{x}"), Invocation::new("Invoke-CsBackupServiceSync").arg("PoolFqdn", x.as_str()), x, res.clone())
                .reason(format!("start synchronising {x} with its partner"))
                .rules(&[13])
                .after(started.clone())
                .add(),
        );
    }
    for x in [a, bb] {
        b.step(format!("wait-pairing-sync/{x}"), Invocation::new("Get-CsBackupServiceStatus").arg("PoolFqdn", x.as_str()), x, res.clone())
            .wait()
            .reason(format!("wait until {x}'s user data is in steady state with its partner"))
            .rules(&[13])
            .after(syncs.clone())
            .expect(Expect::BackupSynced { pool: x.clone(), module: BackupModule::PresenceFocus })
            .add();
    }
    if !updates.is_empty() {
        b.notice(format!(
            "{res}: Skype for Business Server 2019: once local setup has installed the pairing components, re-apply the cumulative update installed on {} (rule 13); lyncdr starts the Backup Service there when Get-CsServerPatchVersion shows every component at the update level",
            updates.join(", ")
        ));
    }
}

/// Local setup installs what the server's local CMS replica says: the replicas of the Front Ends
/// that run it must be able to receive the published topology, or setup installs nothing.
fn replicas_reachable(c: &Ctx, servers: &[Fqdn]) -> Result<(), String> {
    if servers.is_empty() {
        return Ok(());
    }
    if !c.observed.cms.available() {
        return Err("the CMS is unavailable, and local setup needs the published topology it replicates".into());
    }
    let cut: Vec<String> = servers.iter().filter(|s| !c.observed.cms.in_contact.contains(*s)).map(ToString::to_string).collect();
    if cut.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the CMS has no recent status report from {}; their replicas would not receive the new topology, so local setup there would install nothing. It waits until they report",
            cut.join(", ")
        ))
    }
}
