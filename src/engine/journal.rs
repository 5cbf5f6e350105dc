//! The journal: every mutating step is recorded before its cmdlet runs and again when its
//! outcome is known, so that after a crash or restart the engine knows what may have happened
//! and never repeats a step blindly. Kept in memory (`demo`), in a file (`run --manifests`),
//! or in the LyncDeployment's status (the operator).

use std::path::PathBuf;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::Stamp;
use crate::planner::Step;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub step: Step,
    pub plan_hash: String,
    pub started_at: Stamp,
    /// Which writer started it (operator instance, or the CLI).
    pub by: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "message")]
pub enum Outcome {
    /// Started; the outcome is not known yet.
    Pending,
    Succeeded,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(pub String);

pub trait Journal: Send + Sync {
    /// Records a step about to run. Must be durable before it returns.
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Records the outcome of a step.
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Steps started whose outcome was never recorded.
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>>;
    /// Every entry, oldest first (for reports).
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>>;
}

/// A journal in memory, for a single run.
#[derive(Default)]
pub struct MemoryJournal {
    entries: Mutex<Vec<Entry>>,
}

impl MemoryJournal {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<Entry>) -> T) -> T {
        let mut g = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

fn finish_in(entries: &mut [Entry], step_id: &str, outcome: &Outcome) {
    if let Some(e) = entries.iter_mut().rev().find(|e| e.step.id == step_id && e.outcome == Outcome::Pending) {
        e.outcome = outcome.clone();
    }
}

impl Journal for MemoryJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        self.with(|v| v.push(e.clone()));
        futures::future::ready(Ok(())).boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome) -> BoxFuture<'a, Result<(), JournalError>> {
        self.with(|v| finish_in(v, step_id, outcome));
        futures::future::ready(Ok(())).boxed()
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        let p = self.with(|v| v.iter().filter(|e| e.outcome == Outcome::Pending).cloned().collect());
        futures::future::ready(Ok(p)).boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        let all = self.with(|v| v.clone());
        futures::future::ready(Ok(all)).boxed()
    }
}

/// A journal in a JSON file, rewritten atomically (write to a temporary file, sync, rename)
/// on every change; survives restarts of `lyncdr run --manifests`.
pub struct FileJournal {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileJournal {
    pub fn new(path: PathBuf) -> FileJournal {
        FileJournal { path, lock: tokio::sync::Mutex::new(()) }
    }

    async fn load(&self) -> Result<Vec<Entry>, JournalError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) if bytes.is_empty() => Ok(vec![]),
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| JournalError(format!("{} is not a lyncdr journal: {e}", self.path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(JournalError(format!("cannot read {}: {e}", self.path.display()))),
        }
    }

    async fn store(&self, entries: &[Entry]) -> Result<(), JournalError> {
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let bytes = serde_json::to_vec_pretty(entries).map_err(|e| JournalError(e.to_string()))?;
        let io = |e: std::io::Error| JournalError(format!("cannot write {}: {e}", self.path.display()));
        let mut f = tokio::fs::File::create(&tmp).await.map_err(io)?;
        tokio::io::AsyncWriteExt::write_all(&mut f, &bytes).await.map_err(io)?;
        f.sync_all().await.map_err(io)?;
        tokio::fs::rename(&tmp, &self.path).await.map_err(io)?;
        // The rename is durable only once the directory is synced.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::File::open(dir).await.map_err(io)?.sync_all().await.map_err(io)?;
        }
        Ok(())
    }
}

impl Journal for FileJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            let _g = self.lock.lock().await;
            let mut all = self.load().await?;
            all.push(e.clone());
            self.store(&all).await
        }
        .boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            let _g = self.lock.lock().await;
            let mut all = self.load().await?;
            finish_in(&mut all, step_id, outcome);
            self.store(&all).await
        }
        .boxed()
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        async move { Ok(self.load().await?.into_iter().filter(|e| e.outcome == Outcome::Pending).collect()) }.boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        async move { self.load().await }.boxed()
    }
}
