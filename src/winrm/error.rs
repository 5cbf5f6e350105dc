//! The errors of the WinRM transport, client and server side: what failed, and whether the request
//! may have taken effect. A [`WinrmError`] never carries a secret (passwords, hashes, keys, tokens).

use std::fmt;

/// A SOAP fault answered by a WS-Management service (MS-WSMV 2.2.4.x, SOAP 1.2 `s:Fault`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsmanFault {
    /// The SOAP code, e.g. `s:Receiver` or `s:Sender`.
    pub code: String,
    /// The SOAP subcode, e.g. `w:TimedOut`, `w:InvalidSelectors`.
    pub subcode: Option<String>,
    /// The Windows error number of `f:WSManFault Code="…"` (e.g. 2150858793 for a timeout).
    pub wsman_code: Option<u64>,
    /// The machine that answered (`f:WSManFault Machine="…"`).
    pub machine: Option<String>,
    /// The human-readable text: `f:Message` (provider faults included), else `s:Reason/s:Text`.
    pub message: String,
}

/// The WSManFault code Windows sends with `w:TimedOut` (ERROR_WSMAN_OPERATION_TIMEDOUT).
pub const WSMAN_TIMED_OUT_CODE: u64 = 2_150_858_793;

impl WsmanFault {
    /// The local part of the subcode (`TimedOut` for `w:TimedOut`).
    pub fn subcode_name(&self) -> Option<&str> {
        self.subcode.as_deref().map(|s| s.rsplit(':').next().unwrap_or(s))
    }

    /// A Receive that found no output within `OperationTimeout`: not an error, receive again.
    pub fn is_timed_out(&self) -> bool {
        self.subcode_name() == Some("TimedOut") || self.wsman_code == Some(WSMAN_TIMED_OUT_CODE)
    }
}

impl fmt::Display for WsmanFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WS-Management fault {}", self.code)?;
        if let Some(sub) = &self.subcode {
            write!(f, "/{sub}")?;
        }
        if let Some(code) = self.wsman_code {
            write!(f, " (code {code})")?;
        }
        if let Some(machine) = &self.machine {
            write!(f, " from {machine}")?;
        }
        write!(f, ": {}", self.message.trim())
    }
}

impl std::error::Error for WsmanFault {}

/// Why a WinRM call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WinrmError {
    /// No request was sent: the endpoint could not be reached or the connection not set up.
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    /// The server refused the credentials (HTTP 401), or the authentication handshake failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The request was sent but no complete answer came back (connection lost, reply timed
    /// out): it may or may not have taken effect. Never retried automatically.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The server answered with an HTTP status that carries no SOAP fault.
    #[error("HTTP {status}: {detail}")]
    Http { status: u16, detail: String },
    /// The server answered with a SOAP fault.
    #[error(transparent)]
    Fault(#[from] WsmanFault),
    /// The server's answer could not be understood (malformed XML, missing element, wrong
    /// `RelatesTo`, oversized body).
    #[error("WS-Management protocol error: {0}")]
    Protocol(String),
    /// Message encryption failed (bad signature, framing, sequence).
    #[error("message encryption: {0}")]
    Crypto(String),
    /// A feature this transport does not provide (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The caller's configuration is unusable (bad endpoint, bad account name).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl WinrmError {
    /// The call certainly changed nothing on the server (safe to retry elsewhere).
    pub fn nothing_ran(&self) -> bool {
        matches!(self, WinrmError::Connect { .. } | WinrmError::Auth(_) | WinrmError::Config(_) | WinrmError::Unsupported(_))
    }

    /// A `w:TimedOut` fault.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, WinrmError::Fault(f) if f.is_timed_out())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(subcode: Option<&str>, code: Option<u64>) -> WsmanFault {
        WsmanFault {
            code: "s:Receiver".into(),
            subcode: subcode.map(str::to_string),
            wsman_code: code,
            machine: Some("host".into()),
            message: "msg ".into(),
        }
    }

    #[test]
    fn timed_out_is_recognised_by_subcode_or_code() {
        assert!(fault(Some("w:TimedOut"), None).is_timed_out());
        assert!(fault(None, Some(WSMAN_TIMED_OUT_CODE)).is_timed_out());
        assert!(!fault(Some("w:InvalidSelectors"), Some(2150858843)).is_timed_out());
        assert!(WinrmError::Fault(fault(Some("w:TimedOut"), None)).is_timed_out());
    }

    #[test]
    fn display_names_code_machine_and_message() {
        let text = fault(Some("w:InternalError"), Some(5)).to_string();
        assert_eq!(text, "WS-Management fault s:Receiver/w:InternalError (code 5) from host: msg");
    }

    #[test]
    fn only_pre_send_failures_are_nothing_ran() {
        assert!(WinrmError::Connect { endpoint: "e".into(), detail: "d".into() }.nothing_ran());
        assert!(!WinrmError::OutcomeUnknown("x".into()).nothing_ran());
        assert!(!WinrmError::Protocol("x".into()).nothing_ran());
    }
}
