//! lyncdr's own WS-Management (WinRM) transport: the WinRS client the Lync driver will use to run
//! PowerShell on Windows servers, and the WS-Man server the simulator exposes. SOAP envelopes of
//! the six WinRS actions, MS-WSMV message encryption over NTLM (through the `sspi` crate),
//! one authenticated HTTP/1.1 connection per shell, and the shell lifecycle with its Receive loop.

pub mod auth;
pub mod client;
pub mod clixml;
pub mod encryption;
pub mod error;
pub mod http;
pub mod powershell;
pub mod server;
pub mod session;
pub mod shell;
pub mod soap;

pub use error::{WinrmError, WsmanFault};
