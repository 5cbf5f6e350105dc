//! The journal kept in the LyncDeployment's status: each mutating step is recorded (merge patch
//! of `status.journal`) before its cmdlet runs and when its outcome is known; the write must
//! succeed before the cmdlet runs. After a restart the operator reads it back from status.

use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::api::{JournalStatus, LyncDeployment};
use crate::engine::journal::{Entry, Journal, JournalError, Outcome};

/// Entries kept in status: every pending one plus the most recent finished ones.
const KEEP: usize = 20;

pub struct StatusJournal {
    api: Api<LyncDeployment>,
    name: String,
    entries: Mutex<Vec<Entry>>,
    write: tokio::sync::Mutex<()>,
}

impl StatusJournal {
    /// A journal holding the entries already in status.
    pub fn new(api: Api<LyncDeployment>, name: &str, existing: &[JournalStatus]) -> StatusJournal {
        let entries = existing.iter().filter_map(|j| serde_json::from_str::<Entry>(&j.record).ok()).collect();
        StatusJournal { api, name: name.to_string(), entries: Mutex::new(entries), write: tokio::sync::Mutex::new(()) }
    }

    fn snapshot(&self) -> Vec<Entry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The journal as status shows it.
    pub fn status(&self) -> Vec<JournalStatus> {
        render(&self.snapshot())
    }

    async fn persist(&self) -> Result<(), JournalError> {
        let _g = self.write.lock().await;
        let body = json!({ "status": { "journal": self.status() } });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map(|_| ())
            .map_err(|e| JournalError(format!("cannot write the journal to LyncDeployment/{} status: {e}", self.name)))
    }
}

pub fn render(entries: &[Entry]) -> Vec<JournalStatus> {
    let finished: Vec<&Entry> = entries.iter().filter(|e| e.outcome != Outcome::Pending).collect();
    let skip = finished.len().saturating_sub(KEEP);
    let mut dropped = 0;
    entries
        .iter()
        .filter(|e| {
            if e.outcome != Outcome::Pending && dropped < skip {
                dropped += 1;
                return false;
            }
            true
        })
        .map(|e| JournalStatus {
            step: e.step.id.clone(),
            plan_hash: e.plan_hash.clone(),
            command: e.step.command(),
            run_on: e.step.run_on.to_string(),
            started_at: e.started_at.to_string(),
            by: e.by.clone(),
            outcome: match &e.outcome {
                Outcome::Pending => "Pending".into(),
                Outcome::Succeeded => "Succeeded".into(),
                Outcome::Failed(_) => "Failed".into(),
            },
            message: match &e.outcome {
                Outcome::Failed(m) => Some(m.clone()),
                _ => None,
            },
            record: serde_json::to_string(e).unwrap_or_default(),
        })
        .collect()
}

impl Journal for StatusJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            if let Ok(mut v) = self.entries.lock() {
                v.push(e.clone());
            }
            self.persist().await
        }
        .boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            if let Ok(mut v) = self.entries.lock()
                && let Some(e) = v.iter_mut().rev().find(|e| e.step.id == step_id && e.outcome == Outcome::Pending)
            {
                e.outcome = outcome.clone();
            }
            self.persist().await
        }
        .boxed()
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        let p = self.snapshot().into_iter().filter(|e| e.outcome == Outcome::Pending).collect();
        futures::future::ready(Ok(p)).boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.snapshot())).boxed()
    }
}
