//! One cmdlet call, as data: the cmdlet, its named arguments (real PowerShell parameter names)
//! and optional pipeline input. Renders to the PowerShell text a Lync admin would type.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A cmdlet invocation. Argument values are JSON: switches are `true` (or `false` for
/// `-Switch:$false`), strings, integers, arrays, `null` for `$null`, and `{"ScriptBlock": "..."}`
/// for script blocks such as `-Filter {RegistrarPool -eq "pool01"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub cmdlet: String,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, Value>,
    /// What is piped into the cmdlet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
}

/// Pipeline input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Input {
    /// Literal values, e.g. `'sip:a@contoso.com','sip:b@contoso.com' | Move-CsUser ...`.
    Values(Vec<Value>),
    /// The output of another command, e.g. `Get-CsUser -Filter {...} | Move-CsUser ...`.
    Command(Box<Invocation>),
}

impl Invocation {
    pub fn new(cmdlet: impl Into<String>) -> Self {
        Invocation { cmdlet: cmdlet.into(), args: IndexMap::new(), input: None }
    }

    /// Adds a named argument.
    pub fn arg(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.args.insert(name.to_string(), value.into());
        self
    }

    /// Adds a switch parameter (`-Name`).
    pub fn switch(mut self, name: &str) -> Self {
        self.args.insert(name.to_string(), Value::Bool(true));
        self
    }

    pub fn piped_from(mut self, input: Input) -> Self {
        self.input = Some(input);
        self
    }

    /// A named argument by exact (case-insensitive) name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    pub fn has_switch(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// Refuses text PowerShell cannot take as one literal argument on one line: a control
    /// character (a line break would end the command). Checked before a call is journaled.
    pub fn check(&self) -> Result<(), String> {
        fn walk(v: &Value, name: &str) -> Result<(), String> {
            match v {
                Value::String(s) => match s.chars().find(|c| c.is_control()) {
                    Some(c) => {
                        Err(format!("the value of -{name} contains the control character {c:?}, which lyncdr does not pass to PowerShell"))
                    }
                    None => Ok(()),
                },
                Value::Array(items) => items.iter().try_for_each(|i| walk(i, name)),
                Value::Object(m) => m.values().try_for_each(|i| walk(i, name)),
                _ => Ok(()),
            }
        }
        if self.cmdlet.chars().any(char::is_control) {
            return Err(format!("the command {:?} contains a control character", self.cmdlet));
        }
        for (name, v) in &self.args {
            walk(v, name)?;
        }
        match &self.input {
            Some(Input::Values(vs)) => vs.iter().try_for_each(|v| walk(v, "(pipeline input)")),
            Some(Input::Command(inv)) => inv.check(),
            None => Ok(()),
        }
    }

    /// PowerShell text of the invocation.
    pub fn to_powershell(&self) -> String {
        let mut out = String::new();
        match &self.input {
            Some(Input::Values(vs)) => {
                out.push_str(&vs.iter().map(render_value).collect::<Vec<_>>().join(","));
                out.push_str(" | ");
            }
            Some(Input::Command(inv)) => {
                out.push_str(&inv.to_powershell());
                out.push_str(" | ");
            }
            None => {}
        }
        out.push_str(&render_command(&self.cmdlet));
        for (name, value) in &self.args {
            match value {
                Value::Bool(true) => out.push_str(&format!(" -{name}")),
                Value::Bool(false) => out.push_str(&format!(" -{name}:$false")),
                v => out.push_str(&format!(" -{name} {}", render_value(v))),
            }
        }
        out
    }
}

/// External programs (paths) are called with `&`.
fn render_command(cmd: &str) -> String {
    if cmd.contains('\\') || cmd.contains('/') || cmd.contains(' ') { format!("& {}", quote(cmd)) } else { cmd.to_string() }
}

/// The characters PowerShell treats as a single quote: `'` and the typographic quotes
/// U+2018–U+201B. Any of them ends a single-quoted string; doubled, it stands for itself.
pub const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// The characters PowerShell treats as a double quote: `"` and U+201C–U+201E.
pub const DOUBLE_QUOTES: [char; 4] = ['"', '\u{201C}', '\u{201D}', '\u{201E}'];

/// Single-quotes a string for PowerShell: every character PowerShell treats as a single quote
/// is doubled, so nothing inside can end the string. Control characters cannot be written this
/// way on one line and are refused by [`Invocation::check`] before anything runs.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "$null".to_string(),
        Value::Bool(b) => if *b { "$true" } else { "$false" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let bare = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-.:_@".contains(c)) && !s.starts_with('-');
            if bare { s.clone() } else { quote(s) }
        }
        Value::Array(items) => items.iter().map(render_value).collect::<Vec<_>>().join(","),
        Value::Object(map) => match map.get("ScriptBlock").and_then(Value::as_str) {
            Some(body) => format!("{{{body}}}"),
            None => quote(&Value::Object(map.clone()).to_string()),
        },
    }
}

/// A script-block argument value.
pub fn script_block(body: impl Into<String>) -> Value {
    serde_json::json!({ "ScriptBlock": body.into() })
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_powershell())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_switches_values_and_pipelines() {
        let inv = Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "pool01.dal.contoso.com").switch("DisasterMode");
        assert_eq!(inv.to_powershell(), "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode");
        let inv = Invocation::new("Set-CsSite").arg("Identity", "Dallas").arg("FederationRoute", Value::Null);
        assert_eq!(inv.to_powershell(), "Set-CsSite -Identity Dallas -FederationRoute $null");
        let q = Invocation::new("Get-CsUser").arg("Filter", script_block("RegistrarPool -eq \"p.contoso.com\"")).arg("ResultSize", 50);
        let mv = Invocation::new("Move-CsUser").arg("Target", "q.contoso.com").piped_from(Input::Command(Box::new(q)));
        assert_eq!(
            mv.to_powershell(),
            "Get-CsUser -Filter {RegistrarPool -eq \"p.contoso.com\"} -ResultSize 50 | Move-CsUser -Target q.contoso.com"
        );
        let b = Invocation::new(r"C:\Program Files\Microsoft Lync Server 2013\Deployment\Bootstrapper.exe");
        assert_eq!(b.to_powershell(), r"& 'C:\Program Files\Microsoft Lync Server 2013\Deployment\Bootstrapper.exe'");
        let s = Invocation::new("Export-CsRgsConfiguration").arg("FileName", "C:\\rgs\\it's.zip").switch("Force").arg("Confirm", false);
        assert_eq!(s.to_powershell(), "Export-CsRgsConfiguration -FileName 'C:\\rgs\\it''s.zip' -Force -Confirm:$false");
    }
}
