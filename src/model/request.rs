//! A state-changing call's identity and deadline. Every mutating step carries one: the backend
//! records what became of it (a request ledger on the server side), refuses it if it arrives
//! after its deadline, and never runs the same request twice. After a crash, lyncdr asks the
//! ledger instead of guessing: a request that never arrived before its deadline can be planned
//! again, one that ran is known to have run, even when its effect cannot be observed.

use serde::{Deserialize, Serialize};

use super::Stamp;

/// The identity and deadline of a state-changing call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Unique per call (never reused, also across restarts).
    pub id: String,
    /// The backend refuses the request if it arrives later than this (backend time).
    pub not_after: Stamp,
}

/// What a backend's request ledger says about a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "detail")]
pub enum RequestState {
    /// Not received, and its deadline has passed: it never ran and never will.
    NeverRan,
    /// Not received yet, but it could still arrive until its deadline.
    NotYet,
    /// Received and running.
    Running,
    /// Ran and succeeded.
    Succeeded,
    /// Ran and failed (the cmdlet's error); nothing else is known to have changed.
    Failed(String),
    /// Received and started, then cut off on the server before it finished (the server lost
    /// power or its site): it no longer runs, and what it changed, if anything, is only known
    /// by looking at the deployment.
    Interrupted(String),
    /// The ledger cannot tell (the server is unreachable, the backend keeps no ledger).
    Unknown(String),
}
