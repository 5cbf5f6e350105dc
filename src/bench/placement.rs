//! User placement at scale: 10,000 users rehomed from one pool to another (`UserPlacement` with
//! `fromPool`) in batches of 100, 1,000 and 5,000, through the PowerShell driver to the
//! simulator's WS-Man endpoint (the path a real deployment takes): the WinRM round trips, the
//! `Move-CsUser` calls and the simulated time, per 10,000 users.

use serde::Serialize;

use super::BenchError;
use crate::api::manifests;
use crate::cli::demo;
use crate::desired::{self, Desired};
use crate::scenario::Scenario;

/// Users moved per row (1,000 in a quick run).
pub const USERS: u32 = 10_000;

/// One row of the placement table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementRow {
    pub users: u32,
    pub batch: u32,
    /// State-changing `Move-CsUser` calls.
    pub moves: usize,
    /// WinRM scripts run (observations included).
    pub round_trips: u64,
    /// Simulated seconds from the first move to the last.
    pub moving_s: f64,
    /// Per 10,000 users.
    pub round_trips_per_10k: f64,
    pub seconds_per_10k: f64,
    pub converged: bool,
}

/// Two Enterprise pools in one site, `users` homed on the first.
pub fn scenario(users: u32) -> Result<Scenario, BenchError> {
    let yaml = format!(
        "name: placement\nproduct: SfB2015\nsites:\n  - name: Dallas\n    frontEndPools:\n      - {{fqdn: pool01.dal.contoso.com, edition: Enterprise, frontEnds: 3, users: {users}, backEnd: {{primary: sql01.dal.contoso.com}}}}\n      - {{fqdn: pool02.dal.contoso.com, edition: Enterprise, frontEnds: 3, users: 0, backEnd: {{primary: sql02.dal.contoso.com}}}}\ncms: {{activePool: pool01.dal.contoso.com}}\n"
    );
    Scenario::from_yaml(&yaml).map_err(|e| BenchError(format!("placement scenario: {e}")))
}

/// Every user of pool01 homed on pool02, in batches of `batch`.
pub fn desired_state(batch: u32) -> Result<Desired, BenchError> {
    let text = format!(
        "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: contoso, namespace: lync}}\nspec:\n  centralManagementStore: {{activePool: pool01.dal.contoso.com}}\n  policy: {{concurrency: 4}}\n---\napiVersion: lyncdr.io/v1alpha1\nkind: UserPlacement\nmetadata: {{name: rebalance, namespace: lync}}\nspec:\n  deployment: contoso\n  fromPool: pool01.dal.contoso.com\n  targetPool: pool02.dal.contoso.com\n  batchSize: {batch}\n"
    );
    let m = manifests::parse(&text, "placement desired state").map_err(|e| BenchError(format!("placement desired state: {e}")))?;
    desired::compile(&m)
        .map_err(|e| BenchError(format!("placement desired state: {e}")))?
        .into_iter()
        .next()
        .ok_or_else(|| BenchError("placement desired state has no deployment".into()))
}

/// Moves the users with each batch size over WinRM.
pub fn run(quick: bool) -> Result<Vec<PlacementRow>, BenchError> {
    let (users, batches): (u32, &[u32]) = if quick { (1_000, &[100]) } else { (USERS, &[100, 1_000, 5_000]) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BenchError(format!("cannot start a runtime: {e}")))?;
    let mut rows = vec![];
    for &batch in batches {
        let s = scenario(users)?;
        let d = desired_state(batch)?;
        let r = rt
            .block_on(demo::demo_over_winrm(&s, &d, &[], 4))
            .map_err(|e| BenchError(format!("placement in batches of {batch}: {}", e.0)))?;
        let round_trips = r.round_trips.unwrap_or_default();
        let r = super::runtime()?
            .block_on(demo::demo(&s, &d, &[], 4))
            .map_err(|e| BenchError(format!("placement in batches of {batch}: {}", e.0)))?;
        let moves: Vec<&demo::CmdletRecord> = r.cmdlets.iter().filter(|c| c.cmdlet == "Move-CsUser").collect();
        let first = moves.iter().map(|c| c.start).fold(f64::INFINITY, f64::min);
        let last = moves.iter().filter_map(|c| c.end).fold(0.0, f64::max);
        let moving_s = if moves.is_empty() { 0.0 } else { last - first };
        let scale = 10_000.0 / users as f64;
        rows.push(PlacementRow {
            users,
            batch,
            moves: moves.len(),
            round_trips,
            moving_s,
            round_trips_per_10k: round_trips as f64 * scale,
            seconds_per_10k: moving_s * scale,
            converged: r.converged,
        });
    }
    Ok(rows)
}

pub fn render(rows: &[PlacementRow]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| users | batch | Move-CsUser calls | WinRM round trips | simulated time | round trips per 10,000 | time per 10,000 | converged |\n|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} s | {:.0} | {:.0} s | {} |",
            r.users,
            r.batch,
            r.moves,
            r.round_trips,
            r.moving_s,
            r.round_trips_per_10k,
            r.seconds_per_10k,
            if r.converged { "yes" } else { "no" }
        );
    }
    s
}
