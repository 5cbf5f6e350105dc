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

/// Single-quotes a string for PowerShell (a quote inside is doubled).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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
