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

/// A record in status that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{field} cannot be read ({source})")]
pub struct RecordError {
    pub field: String,
    #[source]
    pub source: serde_json::Error,
}

/// Reads a record lyncdr wrote into status: an object, or (before 0.2) a JSON string.
fn read_record<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, serde_json::Error> {
    match v {
        serde_json::Value::String(s) => serde_json::from_str(s),
        other => serde_json::from_value(other.clone()),
    }
}

/// The operator memory held in status (none yet: an empty memory).
pub fn memory_of(status: Option<&serde_json::Value>) -> Result<History, RecordError> {
    match status {
        None | Some(serde_json::Value::Null) => Ok(History::default()),
        Some(v) => read_record(v).map_err(|e| RecordError { field: "status.history".into(), source: e }),
    }
}

/// Entries kept in status: every pending one plus the most recent finished ones.
const KEEP: usize = 20;

pub struct StatusJournal {
    api: Api<LyncDeployment>,
    name: String,
    state: Mutex<JournalState>,
    /// What status held when this journal last read or wrote it; also serialises writes.
    stored: tokio::sync::Mutex<Stored>,
}

/// The journal and memory as last read from or written to status, with the object's
/// resourceVersion then: a write is made only on that version, and on a conflict only if
/// status still holds what this journal last saw (something else changed, e.g. an
/// annotation or the plan's progress). Another writer's journal is never overwritten.
struct Stored {
    resource_version: Option<String>,
    /// Compared as lyncdr's own types: the apiserver may spell a number differently (`1.0`
    /// and `1`), which is the same record.
    entries: Vec<Entry>,
    memory: History,
    /// Whether status holds the memory as an object (not absent, nor the old string form): only
    /// then can a merge patch send just what changed.
    memory_is_object: bool,
}

fn is_object(status: Option<&crate::api::LyncDeploymentStatus>) -> bool {
    status.and_then(|s| s.history.as_ref()).is_some_and(serde_json::Value::is_object)
}

/// The journal entries and memory a status holds, read as lyncdr's types.
fn stored_records(status: Option<&crate::api::LyncDeploymentStatus>) -> Result<(Vec<Entry>, History), RecordError> {
    let journal: &[JournalStatus] = status.map(|s| s.journal.as_slice()).unwrap_or_default();
    let entries = journal
        .iter()
        .enumerate()
        .map(|(i, j)| read_record(&j.record).map_err(|e| RecordError { field: format!("status.journal[{i}].record"), source: e }))
        .collect::<Result<_, _>>()?;
    Ok((entries, memory_of(status.and_then(|s| s.history.as_ref()))?))
}

impl StatusJournal {
    /// A journal holding the entries and the memory already in status. An entry or a memory
    /// that cannot be read is an error: what it says (a step whose outcome is unknown, an
    /// automatic failover) decides what lyncdr may do, so it is never dropped.
    pub fn new(api: Api<LyncDeployment>, dep: &LyncDeployment) -> Result<StatusJournal, RecordError> {
        let (entries, memory) = stored_records(dep.status.as_ref())?;
        let stored = Stored {
            resource_version: dep.metadata.resource_version.clone(),
            entries: entries.clone(),
            memory: memory.clone(),
            memory_is_object: is_object(dep.status.as_ref()),
        };
        Ok(StatusJournal {
            api,
            name: dep.metadata.name.clone().unwrap_or_default(),
            state: Mutex::new(JournalState { entries, memory }),
            stored: tokio::sync::Mutex::new(stored),
        })
    }

    /// Changes the state in memory. A lock poisoned by a task that panicked while changing it
    /// holds a state that may be half changed: it is refused, never written to status (the
    /// next round reads the journal and the memory from status again).
    fn with<T>(&self, f: impl FnOnce(&mut JournalState) -> T) -> Result<T, JournalError> {
        let mut g = self.state.lock().map_err(|_| {
            JournalError::Refused(format!(
                "the journal of LyncDeployment/{} was being changed when a task panicked; it is not written to status, and this round stops (the next one reads status again)",
                self.name
            ))
        })?;
        Ok(f(&mut g))
    }

    /// Reads the state in memory (also a poisoned one: reading writes nothing).
    fn read<T>(&self, f: impl FnOnce(&JournalState) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn snapshot(&self) -> Vec<Entry> {
        self.read(|s| s.entries.clone())
    }

    /// The journal as status shows it.
    pub fn status(&self) -> Vec<JournalStatus> {
        crate::status::journal_status(&self.snapshot())
    }

    /// Writes the journal and the memory in one status patch, on the resourceVersion last seen.
    async fn persist(&self) -> Result<(), JournalError> {
        let mut stored = self.stored.lock().await;
        let (entries, memory) = self.with(|s| {
            s.compact(KEEP);
            (s.entries.clone(), s.memory.clone())
        })?;
        let journal = serde_json::to_value(crate::status::journal_status(&entries)).map_err(JournalError::Encode)?;
        let fail = |e: kube::Error| JournalError::Api { name: self.name.clone(), source: Box::new(e) };
        for _ in 0..5 {
            // A merge patch merges objects key by key: a key the memory dropped (a pending
            // Edge setup done) must be sent as null, or it stays in status for good.
            let before = serde_json::to_value(&stored.memory).map_err(JournalError::Encode)?;
            let after = serde_json::to_value(&memory).map_err(JournalError::Encode)?;
            let history = if stored.memory_is_object { merge_diff(&before, &after) } else { after.clone() };
            let mut body = json!({ "status": { "journal": journal, "history": history } });
            if let Some(rv) = &stored.resource_version {
                body["metadata"] = json!({ "resourceVersion": rv });
            }
            match self.api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body)).await {
                Ok(obj) => {
                    *stored = Stored { resource_version: obj.metadata.resource_version, entries, memory, memory_is_object: true };
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    let now = self.api.get(&self.name).await.map_err(fail)?;
                    let same = stored_records(now.status.as_ref()).is_ok_and(|(e, m)| e == stored.entries && m == stored.memory);
                    if !same {
                        return Err(JournalError::Refused(format!(
                            "status.journal of LyncDeployment/{} was changed by another writer since this operator read it (another lyncdr instance, or a person); it is not overwritten and nothing more runs until the next round reads it",
                            self.name
                        )));
                    }
                    stored.resource_version = now.metadata.resource_version;
                    stored.memory_is_object = is_object(now.status.as_ref());
                }
                Err(e) => return Err(fail(e)),
            }
        }
        Err(JournalError::Refused(format!(
            "cannot write the journal to LyncDeployment/{} status: the object kept changing (five conflicts in a row)",
            self.name
        )))
    }
}

impl Journal for StatusJournal {
    fn begin<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            self.with(|s| s.begin(e))?;
            self.persist().await
        }
        .boxed()
    }
    fn finish<'a>(&'a self, step_id: &'a str, outcome: &'a Outcome, at: Stamp) -> BoxFuture<'a, Result<(), JournalError>> {
        async move {
            if self.with(|s| s.finish(step_id, outcome, at))? {
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
            })?;
            if changed {
                self.persist().await?;
            }
            Ok(memory)
        }
        .boxed()
    }
    fn memory(&self) -> History {
        self.read(|s| s.memory.clone())
    }
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.read(|s| s.pending()))).boxed()
    }
    fn entries(&self) -> BoxFuture<'_, Result<Vec<Entry>, JournalError>> {
        futures::future::ready(Ok(self.snapshot())).boxed()
    }
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`. A merge patch leaves keys it
/// does not mention as they are: a key the memory dropped (a pending Edge setup done) is sent
/// as `null`, or it stays in status for good.
fn merge_diff(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) => {
                        out.insert(k.clone(), merge_diff(ov, nv));
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_diff;

    #[test]
    fn merge_diff_clears_what_the_new_status_omits() {
        let old = json!({"plan": {"hash": "a", "steps": [{"id": "x"}], "blockers": [{"reason": "r"}]}, "journal": [1], "observed": {"cmsPool": "p"}});
        let new = json!({"plan": {"hash": "b", "progress": "0/0"}, "journal": [1], "observed": {"cmsPool": "p"}});
        assert_eq!(merge_diff(&old, &new), json!({"plan": {"hash": "b", "progress": "0/0", "steps": null, "blockers": null}}));
        assert_eq!(merge_diff(&new, &new), json!({}));
        assert_eq!(merge_diff(&json!({"a": 1}), &json!({"a": {"b": 2}})), json!({"a": {"b": 2}}));
    }
}
