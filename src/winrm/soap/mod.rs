//! SOAP for WinRS: namespaces and actions ([`ns`]), a bounded namespace-aware XML tree ([`xml`]),
//! envelopes and faults ([`envelope`]), the client's request builders ([`request`]) and response
//! readers ([`response`]).

pub mod envelope;
pub mod ns;
pub mod request;
pub mod response;
pub mod xml;

pub use envelope::Envelope;
pub use ns::{Action, Signal};
pub use request::{Headers, Request, ShellOptions};
pub use response::{CommandState, ReceiveOutput, StreamChunk};
