//! The PowerShell driver: how lyncdr runs cmdlets on real Lync Server 2013 / Skype for Business
//! Server machines. [`script`] generates one script per call and reads the framed line it
//! answers with; [`winrm`] is the [`crate::backend::Lync`] backend that runs those scripts in
//! warm PowerShell sessions over WinRM (one per server). The simulator's WS-Man endpoint
//! (`lyncdr sim serve --winrm`) reads the same scripts, so `transport: WinRM` against the
//! simulator exercises the code that drives a real deployment.

pub mod script;
pub mod winrm;
