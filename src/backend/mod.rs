//! The Lync backend the engine drives: run one cmdlet somewhere in the deployment, tell the
//! time, wait. Implemented by the in-process simulator (`sim::LocalSim`), by the HTTP client of
//! `lyncdr sim serve` ([`HttpSim`], speaking [`wire`]), and later by the WinRM driver. Everything above this trait
//! (observer, executor, controller) is the same whichever backend runs underneath. What the
//! read-only cmdlets return is typed in [`records`], shared by the simulator and the observer.

pub mod http;
pub mod records;
pub mod wire;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use http::HttpSim;

use crate::model::{Request, RequestState, RunOn, Span, Stamp};
use crate::ps::Invocation;

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum LyncError {
    /// Nothing ran: no server could be reached where the call had to run.
    #[error("cannot reach {target}: {detail}")]
    Unreachable { target: String, detail: String },
    /// The cmdlet ran and reported an error.
    #[error("{cmdlet} : {message}")]
    Cmdlet {
        cmdlet: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<u8>,
    },
    /// The connection was lost while the cmdlet ran: it may or may not have taken effect.
    #[error("outcome unknown: {detail}")]
    Ambiguous { detail: String },
    /// The backend answered something unexpected.
    #[error("backend protocol error: {0}")]
    Protocol(String),
}

impl LyncError {
    /// The call certainly did not change anything.
    pub fn nothing_ran(&self) -> bool {
        matches!(self, LyncError::Unreachable { .. })
    }
}

/// A Lync deployment the engine can act on.
pub trait Lync: Send + Sync {
    /// Runs one cmdlet and returns its output (objects as JSON).
    fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>>;
    /// Runs a state-changing cmdlet under a request the backend's ledger records (refused after
    /// its deadline, never run twice). A backend without a ledger just runs it.
    fn invoke_request<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation, req: &'a Request) -> BoxFuture<'a, Result<Value, LyncError>> {
        let _ = req;
        self.invoke(run_on, inv)
    }
    /// What the backend's ledger says about a request.
    fn request_state<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, RequestState> {
        let _ = req;
        Box::pin(futures::future::ready(RequestState::Unknown("this backend keeps no request ledger".into())))
    }
    /// How long a request may take to reach the backend (in backend time): a request not
    /// received by then never runs.
    fn request_window(&self) -> Span {
        Span::mins(2)
    }
    /// The backend's clock.
    fn now(&self) -> Stamp;
    /// Waits for a span of the backend's time.
    fn sleep(&self, d: Span) -> BoxFuture<'static, ()>;
    /// A short description for logs and status (never secrets).
    fn describe(&self) -> String;
    /// Where the observer keeps the read-only calls of its last observation through this
    /// backend, to ask them all at once at the start of the next. A backend that sends calls
    /// together (WinRM: one script per target) then pays one round trip per target instead of
    /// one per dependent phase. `None`: calls cost the same asked together or apart.
    fn query_memo(&self) -> Option<&QueryMemo> {
        None
    }
}

/// The read-only calls an observation made, in the order asked (see [`Lync::query_memo`]).
#[derive(Debug, Default)]
pub struct QueryMemo(std::sync::Mutex<Vec<(RunOn, Invocation)>>);

impl QueryMemo {
    /// The calls of the last observation.
    pub fn calls(&self) -> Vec<(RunOn, Invocation)> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Replaces the calls remembered.
    pub fn keep(&self, calls: Vec<(RunOn, Invocation)>) {
        if let Ok(mut c) = self.0.lock() {
            *c = calls;
        }
    }
}
