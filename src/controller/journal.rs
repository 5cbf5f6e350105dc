//! The journal kept in the LyncDeployment's status: each mutating step is recorded (merge patch
//! of `status.journal`) before its cmdlet runs and when its outcome is known; the write must
//! succeed before the cmdlet runs. The operator memory (`status.history`) travels in the same
//! patch, so what a step teaches is stored with its success. After a restart the operator reads
//! both back from status.

use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::api::{JournalStatus, LyncDeployment};
use crate::engine::journal::{Entry, Journal, JournalError, JournalState, MemoryChange, Outcome};
use crate::model::{History, Stamp};

/// Entries kept in status: every pending one plus the most recent finished ones.
const KEEP: usize = 20;

pub struct StatusJournal {
    api: Api<LyncDeployment>,
    name: String,
    state: Mutex<JournalState>,
    write: tokio::sync::Mutex<()>,
}

impl StatusJournal {
    /// A journal holding the entries and the memory already in status.
    pub fn new(api: Api<LyncDeployment>, name: &str, existing: &[JournalStatus], memory: History) -> StatusJournal {
        let entries = existing.iter().filter_map(|j| serde_json::from_str::<Entry>(&j.record).ok()).collect();
        StatusJournal {
            api,
            name: name.to_string(),
            state: Mutex::new(JournalState { entries, memory }),
            write: tokio::sync::Mutex::new(()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut JournalState) -> T) -> T {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    fn snapshot(&self) -> Vec<Entry> {
        self.with(|s| s.entries.clone())
    }

    /// The journal as status shows it.
    pub fn status(&self) -> Vec<JournalStatus> {
        crate::status::journal_status(&self.snapshot())
    }

    /// Writes the journal and the memory in one status patch.
    async fn persist(&self) -> Result<(), JournalError> {
        let _g = self.write.lock().await;
        let (journal, memory) = self.with(|s| {
            s.compact(KEEP);
            (crate::status::journal_status(&s.entries), s.memory.clone())
        });
        let memory = serde_json::to_string(&memory).map_err(|e| JournalError(e.to_string()))?;
        let body = json!({ "status": { "journal": journal, "history": memory } });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map(|_| ())
            .map_err(|e| JournalError(format!("cannot write the journal to LyncDeployment/{} status: {e}", self.name)))
    }
}

impl Journal for StatusJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            self.with(|s| s.begin(e));
            self.persist().await
        }
        .boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome, at: Stamp) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            if self.with(|s| s.finish(step_id, outcome, at)) {
                self.persist().await?;
            }
            Ok(())
        }
        .boxed()
    }
    fn remember(&self, change: MemoryChange) -> BoxFuture<'_, Result<History, JournalError>> {
        async move {
            let (changed, memory) = self.with(|s| {
                let before = s.memory.clone();
                change(&mut s.memory);
                (s.memory != before, s.memory.clone())
            });
            if changed {
                self.persist().await?;
            }
            Ok(memory)
        }
        .boxed()
    }
    fn memory(&self) -> History {
        self.with(|s| s.memory.clone())
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.with(|s| s.pending()))).boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.snapshot())).boxed()
    }
}
