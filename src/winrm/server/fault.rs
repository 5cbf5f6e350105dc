//! The transport fault-injection hook of the WS-Man server: consulted once per HTTP request,
//! it can delay, refuse, drop the connection before or after processing (a lost reply), answer
//! 401 mid-session, answer a bare HTTP error status, a wrong `RelatesTo` or a truncated body. It
//! sees the request's action and, for a Send, the input it carries. The default hook does nothing.

use std::time::Duration;

use crate::winrm::soap::Action;

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Handle it normally.
    Proceed,
    /// Wait, then handle it normally (a slow server).
    Delay(Duration),
    /// Close the connection without processing or answering it.
    DropBeforeProcessing,
    /// Hold the request this long without taking it, then close the connection unanswered
    /// (a server that times out before it takes the request).
    StallThenDrop(Duration),
    /// Process it (side effects happen), then close the connection without answering.
    LoseReply,
    /// Answer 401 and forget the connection's authentication (401 mid-session).
    Unauthorized,
    /// Answer this HTTP status with an empty body, without processing.
    Status(u16),
    /// Process it, then answer with a `RelatesTo` naming another message.
    WrongRelatesTo,
    /// Process it, then send only the first `n` bytes of the (sealed) reply body.
    Truncate(usize),
}

/// What the hook knows about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// Server-wide connection number (from 1).
    pub connection: u64,
    /// Server-wide request number (from 1), authentication legs included.
    pub request: u64,
    /// The WinRS action, once the body could be read (`None` for handshake legs).
    pub action: Option<Action>,
    /// The stdin a Send carries, decoded (empty for other requests).
    pub input: Vec<u8>,
}

/// Decides per request (and per connection) whether to inject a transport fault.
pub trait FaultHook: Send + Sync {
    /// Accept a new TCP connection? `false` closes it at once (a refused connection).
    fn on_connect(&self, _connection: u64) -> bool {
        true
    }
    /// The fate of one request.
    fn on_request(&self, _info: &RequestInfo) -> FaultAction {
        FaultAction::Proceed
    }
}

/// The hook that never injects anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl FaultHook for NoFaults {}
