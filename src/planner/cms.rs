//! Central Management store failover (domain document 4.3-4.4): back up the configuration
//! (rule 8), fail over on a Front End of the pool that receives the CMS (rule 10), with the
//! disaster-recovery parameters naming the standby's principal SQL server (rule 5) and `-Force`
//! only when the active CMS is unreachable (rule 9), then wait until every replica is up to
//! date (rule 4) before anything depends on it (rule 3).

use super::builder::Builder;
use super::ctx::{Ctx, id};
use super::step::{Expect, Remember};
use crate::model::DbType;
use crate::ps::Invocation;

/// The SQL instance name of Lync Back End databases.
pub(crate) const SQL_INSTANCE: &str = "rtc";

/// Emits the CMS move: a required one first (`last == false`), before everything that needs
/// it; an elective one after every other step of the plan (rule 16); a required one into a pool
/// this plan fails back (a cross-failover of the CMS pool, rules 1 and 3) last as well, after that
/// failback and the configuration changes that do not wait for it.
pub(crate) fn emit(c: &Ctx, b: &mut Builder, last: bool) {
    let Some(m) = c.targets.cms_move.as_ref() else { return };
    let deferred = c.cms_deferred();
    if (m.elective || deferred) != last {
        return;
    }
    let dep = c.deployment();
    let to = &m.to;
    let tag = format!("{}-to-{}", m.from, to);
    // Back End failovers that bring the databases back (in the receiving pool, or the CMS's own
    // database when it is what made the CMS unavailable) come first.
    let mut before: Vec<String> =
        [to, &m.from].into_iter().flat_map(|p| [DbType::User, DbType::Application, DbType::CentralMgmt].map(|d| id::db(p, d))).collect();
    if m.elective {
        before.extend(b.ids());
    } else if deferred {
        before.push(id::failback(to));
        before.extend(b.writers_independent_of(&[id::cms_failover(to), id::cms_replication(to.as_str())]));
    }
    let mut export = Invocation::new("Export-CsConfiguration").arg("FileName", format!(r"C:\lyncdr\backup\CsConfiguration-{tag}.zip"));
    if m.force {
        // The CMS is unreachable: read the local replica of the Front End.
        export = export.switch("LocalStore");
    }
    let export = b
        .step(id::cms_export(to), export, to, dep.clone())
        .reason("back up the configuration before moving the CMS")
        .rules(&[8])
        .after(before.clone())
        .add();
    let mut backups = vec![export];
    if !m.force {
        let lis = Invocation::new("Export-CsLisConfiguration").arg("FileName", format!(r"C:\lyncdr\backup\CsLisConfiguration-{tag}.zip"));
        backups.push(
            b.step(id::cms_export_lis(to), lis, to, dep.clone())
                .reason("back up the Location Information Server configuration before moving the CMS")
                .rules(&[8])
                .after(before.clone())
                .add(),
        );
    }
    let mut inv = Invocation::new("Invoke-CsManagementServerFailover");
    if m.force {
        let be = &c.observed.topology.pools[to].back_end;
        inv = inv.arg("BackupSqlServerFqdn", be.primary.as_str()).arg("BackupSqlInstanceName", SQL_INSTANCE);
        if let Some(mirror) = &be.mirror {
            // The topology's database is mirrored: name the mirror too (C3, section 4.4), which
            // is also how a principal on the mirror is reached (rule 5; discrepancy 5: the
            // reference's parameter names).
            inv = inv.arg("BackupMirrorSqlServerFqdn", mirror.as_str()).arg("BackupMirrorSqlInstanceName", SQL_INSTANCE);
        }
        inv = inv.switch("Force");
    }
    let failover = b
        .step(id::cms_failover(to), inv, to, dep.clone())
        .reason(m.reason.clone())
        .rules(&m.rules)
        .data_loss(m.force)
        .after(backups)
        .expect(Expect::CmsActive { pool: to.clone() })
        .remember(Remember::CmsMoved { from: m.from.clone(), to: to.clone(), forced: m.force })
        .add();
    b.step(id::cms_replication(to.as_str()), Invocation::new("Get-CsManagementStoreReplicationStatus"), to, dep)
        .wait()
        .reason(format!("every CMS replica must be up to date on {to} before pools depend on the moved CMS"))
        .rules(&[4])
        .after([failover])
        .expect(Expect::CmsReplicated { servers: c.replica_servers() })
        .add();
}
