//! The PowerShell layer: cmdlet invocations as data ([`Invocation`]), their PowerShell text, the
//! parser for lines an admin types, the cmdlet catalogue, PowerShell's parameter binding against
//! it, and `System.TimeSpan` as PowerShell reads it.
//! Shared by the simulator (which binds every call as Lync's PowerShell would), the planner
//! (which emits invocations) and the drivers (which render them).

pub mod binder;
pub mod catalog;
mod invocation;
pub mod parse;
pub mod timespan;

pub use binder::{BindError, Bound, bind};
pub use invocation::{Input, Invocation, quote, script_block};
pub use parse::{ParseError, parse_line};
