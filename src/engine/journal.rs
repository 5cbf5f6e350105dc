//! The journal: every mutating step is recorded before its cmdlet runs and again when its
//! outcome is known, so that after a crash or restart the engine knows what may have happened
//! and never repeats a step blindly. The journal also owns the operator's memory ([`History`]):
//! what a step teaches lyncdr (an automatic failover, Edge setup still pending, a Response Group
//! export) is folded into the memory in the same durable write that records the step's success,
//! so a crash between two instructions can never keep one without the other. Kept in memory
//! (`demo`), in a file (`run --manifests`), or in the LyncDeployment's status (the operator).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::{History, Request, Stamp};
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
    /// The request the step's cmdlet carries: what the backend's ledger knows it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
}

/// A request id never used before, also across restarts: a digest of who asks, for what, when
/// (wall clock and backend clock), in which process, and a counter.
pub fn new_request_id(by: &str, step: &str, at: Stamp) -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let digest = Sha256::digest(format!("{by}\n{step}\n{}\n{wall}\n{}\n{n}", at.0, std::process::id()));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "message")]
pub enum Outcome {
    /// Started; the outcome is not known yet.
    Pending,
    Succeeded,
    Failed(String),
}

/// Why the journal cannot be read or written; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file of the journal (the journal, its lock, a legacy memory file) cannot be used.
    #[error("journal: cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not what lyncdr wrote; `hint` says what to do.
    #[error("journal: {} is not a lyncdr {what} ({source}); {hint}", path.display())]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        hint: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The journal cannot be encoded (a bug, not the environment).
    #[error("journal: cannot encode it: {0}")]
    Encode(#[source] serde_json::Error),
    /// The status of the LyncDeployment cannot be written or read back.
    #[error("journal: cannot write the journal to LyncDeployment/{name} status: {source}")]
    Api {
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// Refused for a reason of lyncdr's own (too large, not a regular file, another writer).
    #[error("journal: {0}")]
    Refused(String),
}

impl JournalError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
        let path = path.to_path_buf();
        move |source| JournalError::Io { action, path, source }
    }
}

/// Finished entries kept besides the pending ones (older ones are dropped).
pub const KEEP_FINISHED: usize = 200;

/// What a journal persists, in one write: the entries and the operator memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalState {
    #[serde(default)]
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub memory: History,
}

impl JournalState {
    pub fn begin(&mut self, e: &Entry) {
        self.entries.push(e.clone());
    }

    /// Records the outcome of the newest pending entry of `step_id`; a success also folds what
    /// the step remembers into the memory. Returns whether an entry was found.
    pub fn finish(&mut self, step_id: &str, outcome: &Outcome, at: Stamp) -> bool {
        let Some(e) = self.entries.iter_mut().rev().find(|e| e.step.id == step_id && e.outcome == Outcome::Pending) else {
            return false;
        };
        e.outcome = outcome.clone();
        if *outcome == Outcome::Succeeded {
            for r in &e.step.remember {
                r.apply(&mut self.memory, at);
            }
        }
        true
    }

    pub fn pending(&self) -> Vec<Entry> {
        self.entries.iter().filter(|e| e.outcome == Outcome::Pending).cloned().collect()
    }

    /// Keeps every pending entry and the `keep` most recent finished ones.
    pub fn compact(&mut self, keep: usize) {
        let finished = self.entries.iter().filter(|e| e.outcome != Outcome::Pending).count();
        let mut drop = finished.saturating_sub(keep);
        self.entries.retain(|e| {
            if e.outcome != Outcome::Pending && drop > 0 {
                drop -= 1;
                return false;
            }
            true
        });
    }
}

/// A change to the operator memory, applied to the memory as stored when it is written.
pub type MemoryChange = Box<dyn FnOnce(&mut History) + Send + 'static>;

pub trait Journal: Send + Sync {
    /// Records a step about to run. Must be durable before it returns.
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Records the outcome of a step, at `at`. A success folds the step's `remember` into the
    /// memory in the same durable write.
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome, at: Stamp) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Changes the memory (what observations teach, steps that leave no entry); durable when it
    /// returns. An unchanged memory is not written. Returns the memory as it now is.
    fn remember(&self, change: MemoryChange) -> BoxFuture<'_, Result<History, JournalError>>;
    /// The memory as last read or written.
    fn memory(&self) -> History;
    /// Steps started whose outcome was never recorded.
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>>;
    /// Every entry kept, oldest first (for reports).
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>>;
}

/// Marks a pending entry as dealt with by a person (`lyncdr.io/resolve`, `lyncdr resolve`).
/// Returns whether a pending entry with that step id was found.
pub async fn resolve_by_person(journal: &dyn Journal, step: &str, how: &str, at: Stamp) -> Result<bool, JournalError> {
    if !journal.pending().await?.iter().any(|e| e.step.id == step) {
        return Ok(false);
    }
    journal.finish(step, &Outcome::Failed(format!("resolved by a person ({how})")), at).await?;
    Ok(true)
}

/// A journal in memory, for a single run.
#[derive(Default)]
pub struct MemoryJournal {
    state: Mutex<JournalState>,
}

impl MemoryJournal {
    /// A journal starting from a memory (e.g. one carried over from an earlier run).
    pub fn with_memory(memory: History) -> MemoryJournal {
        MemoryJournal { state: Mutex::new(JournalState { entries: vec![], memory }) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut JournalState) -> T) -> T {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

impl Journal for MemoryJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        self.with(|s| s.begin(e));
        futures::future::ready(Ok(())).boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome, at: Stamp) -> BoxFuture<'a, Result<(), JournalError>> {
        self.with(|s| s.finish(step_id, outcome, at));
        futures::future::ready(Ok(())).boxed()
    }
    fn remember(&self, change: MemoryChange) -> BoxFuture<'_, Result<History, JournalError>> {
        let m = self.with(|s| {
            change(&mut s.memory);
            s.memory.clone()
        });
        futures::future::ready(Ok(m)).boxed()
    }
    fn memory(&self) -> History {
        self.with(|s| s.memory.clone())
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.with(|s| s.pending()))).boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.with(|s| s.entries.clone()))).boxed()
    }
}

/// Largest journal file lyncdr reads (entries are compacted long before that).
const MAX_FILE: u64 = 64 << 20;

/// A journal in a JSON file (entries and memory together), rewritten atomically (write to a
/// temporary file, sync, rename, sync the directory) on every change; survives restarts of
/// `lyncdr run --manifests`. Every change re-reads the file under an exclusive lock of a
/// sidecar `.lock` file, so a person's `lyncdr resolve` and a running front end never lose each
/// other's writes.
pub struct FileJournal {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
    cache: Mutex<JournalState>,
}

impl FileJournal {
    /// Opens (or creates) the journal at `path`. A file that is not a lyncdr journal is an
    /// error: nothing is dropped silently. A journal written by an earlier version (a list of
    /// entries, with the memory in `legacy_memory`) is read and rewritten in the current form.
    pub fn open(path: PathBuf, legacy_memory: Option<&Path>) -> Result<FileJournal, JournalError> {
        let j = FileJournal { path, lock: tokio::sync::Mutex::new(()), cache: Mutex::new(JournalState::default()) };
        let _guard = j.file_lock()?;
        let mut state = j.read()?;
        if let Some(legacy) = legacy_memory.filter(|p| p.exists()) {
            if state.memory == History::default() {
                let bytes = read_capped(legacy)?;
                state.memory = serde_json::from_slice(&bytes).map_err(|source| JournalError::Corrupt {
                    path: legacy.to_path_buf(),
                    what: "memory file",
                    hint: "move it away only if you know what lyncdr remembered (automatic failovers, pending Edge setup)",
                    source,
                })?;
                j.write(&state)?;
            }
            std::fs::remove_file(legacy).map_err(JournalError::io("remove", legacy))?;
        }
        *j.cache.lock().unwrap_or_else(|p| p.into_inner()) = state;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        let mut p = self.path.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    fn file_lock(&self) -> Result<std::fs::File, JournalError> {
        let p = self.lock_path();
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(JournalError::io("open", &p))?;
        f.lock().map_err(JournalError::io("lock", &p))?;
        Ok(f)
    }

    fn read(&self) -> Result<JournalState, JournalError> {
        let bytes = match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalState::default()),
            Err(e) => return Err(JournalError::io("read", &self.path)(e)),
            Ok(_) => read_capped(&self.path)?,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JournalState::default());
        }
        let corrupt = |source: serde_json::Error| JournalError::Corrupt {
            path: self.path.clone(),
            what: "journal",
            hint: "it records steps whose outcome may be unknown, so lyncdr will not act until it is repaired or moved away after checking the deployment",
            source,
        };
        // Earlier versions kept only the list of entries.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(corrupt)?;
            return Ok(JournalState { entries, memory: History::default() });
        }
        serde_json::from_slice(&bytes).map_err(corrupt)
    }

    fn write(&self, state: &JournalState) -> Result<(), JournalError> {
        let io = |e: std::io::Error| JournalError::io("write", &self.path)(e);
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let bytes = serde_json::to_vec_pretty(state).map_err(JournalError::Encode)?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        // The rename is durable only once the directory is synced.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).map_err(io)?.sync_all().map_err(io)?;
        }
        Ok(())
    }

    /// Reads the file, applies `f`, and writes it back if `f` says it changed. The file is
    /// small: plain blocking I/O under the inter-process lock, without an await in between.
    async fn update<T>(&self, f: impl FnOnce(&mut JournalState) -> (bool, T)) -> Result<T, JournalError> {
        let _g = self.lock.lock().await;
        let _file = self.file_lock()?;
        let mut state = self.read()?;
        let (changed, out) = f(&mut state);
        if changed {
            state.compact(KEEP_FINISHED);
            self.write(&state)?;
        }
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = state;
        Ok(out)
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, JournalError> {
    let err = |e: std::io::Error| JournalError::io("read", path)(e);
    let f = std::fs::File::open(path).map_err(err)?;
    if !f.metadata().map_err(err)?.is_file() {
        return Err(JournalError::Refused(format!("{} is not a regular file", path.display())));
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(JournalError::Refused(format!("{} is larger than {} MiB", path.display(), MAX_FILE >> 20)));
    }
    Ok(bytes)
}

impl Journal for FileJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            self.update(|s| {
                s.begin(e);
                (true, ())
            })
            .await
        }
        .boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome, at: Stamp) -> BoxFuture<'a, Result<(), JournalError>> {
        async move { self.update(|s| (s.finish(step_id, outcome, at), ())).await }.boxed()
    }
    fn remember(&self, change: MemoryChange) -> BoxFuture<'_, Result<History, JournalError>> {
        async move {
            self.update(move |s| {
                let before = s.memory.clone();
                change(&mut s.memory);
                (s.memory != before, s.memory.clone())
            })
            .await
        }
        .boxed()
    }
    fn memory(&self) -> History {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).memory.clone()
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        async move { self.update(|s| (false, s.pending())).await }.boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        async move { self.update(|s| (false, s.entries.clone())).await }.boxed()
    }
}
