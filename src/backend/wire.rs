//! The JSON contract between `lyncdr sim serve` and its client ([`super::HttpSim`]): what is
//! sent to `POST /v1/invoke` and `/v1/clock` and what comes back. Its own module, so the server
//! (in `sim`) and the client (in `backend`) share it without depending on each other.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LyncError;
use crate::model::{Request, RunOn, Stamp};
use crate::ps::Invocation;

/// How often `/v1/invoke` sends a heartbeat while a cmdlet runs.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeRequest {
    pub run_on: RunOn,
    pub invocation: Invocation,
    /// For a state-changing call: the request the ledger records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LyncError>,
    pub started: Stamp,
    pub finished: Stamp,
    pub now: Stamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockReply {
    pub now: Stamp,
    pub speed: f64,
}
