//! The namespace URIs, action URIs and fixed values of WS-Management and the WinRS shell
//! (MS-WSMV), shared by the client's builders and parsers and by the server.

/// SOAP 1.2 envelope.
pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (2004/08).
pub const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// DMTF WS-Management.
pub const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft WS-Management extensions (DataLocale, SessionId).
pub const WSMV: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// WS-Transfer.
pub const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// The Windows Remote Shell.
pub const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// Windows fault details (`f:WSManFault`).
pub const WSMAN_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
/// `xml:lang` and friends.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Resource URI of the WinRS `cmd` shell.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// The anonymous reply address.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// `CommandState` value while the command runs.
pub const STATE_RUNNING: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";
/// `CommandState` value once the command has exited.
pub const STATE_DONE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
/// `CommandState` value before the command started.
pub const STATE_PENDING: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Pending";

/// The six WinRS actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Command,
    Send,
    Receive,
    Signal,
    Delete,
}

impl Action {
    /// Every action, in lifecycle order.
    pub const ALL: [Action; 6] = [Action::Create, Action::Command, Action::Send, Action::Receive, Action::Signal, Action::Delete];

    /// The `a:Action` URI of the request.
    pub fn uri(self) -> &'static str {
        match self {
            Action::Create => "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
            Action::Delete => "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
            Action::Command => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
            Action::Send => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
            Action::Receive => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
            Action::Signal => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
        }
    }

    /// The `a:Action` URI of the response.
    pub fn response_uri(self) -> String {
        format!("{}Response", self.uri())
    }

    /// The action whose request URI is `uri`.
    pub fn from_uri(uri: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.uri() == uri.trim())
    }
}

/// A WinRS signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    CtrlC,
    CtrlBreak,
}

impl Signal {
    /// The `rsp:Code` URI.
    pub fn uri(self) -> &'static str {
        match self {
            Signal::Terminate => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
            Signal::CtrlC => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
            Signal::CtrlBreak => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break",
        }
    }

    /// The signal named by `uri` (case-insensitive: pypsrp spells `Terminate`).
    pub fn from_uri(uri: &str) -> Option<Signal> {
        let u = uri.trim();
        [Signal::Terminate, Signal::CtrlC, Signal::CtrlBreak].into_iter().find(|s| s.uri().eq_ignore_ascii_case(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_and_signal_uris_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::from_uri(a.uri()), Some(a));
            assert!(a.response_uri().ends_with("Response"));
        }
        assert_eq!(Action::from_uri("urn:other"), None);
        assert_eq!(Signal::from_uri("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate"), Some(Signal::Terminate));
        assert_eq!(Signal::from_uri(Signal::CtrlC.uri()), Some(Signal::CtrlC));
    }
}
