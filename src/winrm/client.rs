//! The WS-Management request/response cycle on top of [`Transport`]: send one built request,
//! parse the reply (size-capped), check that `RelatesTo` names the request, and turn SOAP faults
//! (sealed HTTP 500s included) into [`WinrmError::Fault`].

use std::time::Duration;

use crate::winrm::error::WinrmError;
use crate::winrm::http::{Transport, TransportConfig};
use crate::winrm::soap::request::Headers;
use crate::winrm::soap::{Envelope, Request, envelope};

/// Extra time the HTTP read waits beyond the WS-Man OperationTimeout.
pub const READ_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);

/// A WS-Management client bound to one endpoint and one connection.
#[derive(Debug)]
pub struct WsmanClient {
    transport: Transport,
    headers: Headers,
    read_margin: Duration,
}

impl WsmanClient {
    /// A client for `cfg`; the WS-Man headers default to [`Headers::new`] for the endpoint URL.
    pub fn new(cfg: TransportConfig) -> Result<Self, WinrmError> {
        let headers = Headers::new(cfg.endpoint.url());
        Ok(WsmanClient { transport: Transport::new(cfg)?, headers, read_margin: READ_TIMEOUT_MARGIN })
    }

    /// The shared WS-Man headers (operation timeout, envelope size, locale).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Changes the shared WS-Man headers.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// How long past the OperationTimeout a reply may take before the request's outcome is
    /// declared unknown (default [`READ_TIMEOUT_MARGIN`]).
    pub fn set_read_margin(&mut self, margin: Duration) {
        self.read_margin = margin;
    }

    /// The underlying transport.
    pub fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The largest reply accepted: the announced MaxEnvelopeSize plus slack for framing.
    fn max_reply(&self) -> usize {
        (self.headers.max_envelope_size as usize).saturating_mul(2).max(64 * 1024)
    }

    /// Sends `req` and returns the reply envelope; faults are errors.
    pub async fn call(&mut self, req: &Request) -> Result<Envelope, WinrmError> {
        let timeout = self.headers.operation_timeout + self.read_margin;
        let reply = self.transport.send(&req.xml, timeout).await?;
        if reply.body.is_empty() {
            return Err(WinrmError::Http { status: reply.status, detail: "empty reply body".into() });
        }
        let env = match envelope::parse(&reply.body, self.max_reply()) {
            Ok(env) => env,
            Err(e) if reply.status >= 300 => return Err(WinrmError::Http { status: reply.status, detail: e.to_string() }),
            Err(e) => return Err(e),
        };
        if let Some(fault) = env.fault() {
            if let Some(rel) = env.relates_to()
                && rel != req.message_id
            {
                return Err(WinrmError::Protocol(format!("fault relates to {rel}, not to the request {}", req.message_id)));
            }
            return Err(WinrmError::Fault(fault));
        }
        if reply.status != 200 {
            return Err(WinrmError::Http { status: reply.status, detail: "reply without a SOAP fault".into() });
        }
        match env.relates_to() {
            Some(rel) if rel == req.message_id => Ok(env),
            Some(rel) => Err(WinrmError::Protocol(format!("reply relates to {rel}, not to the request {}", req.message_id))),
            None => Err(WinrmError::Protocol("reply has no a:RelatesTo".into())),
        }
    }
}
