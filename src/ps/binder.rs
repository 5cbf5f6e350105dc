//! PowerShell's parameter binding against the [`super::catalog`]: case-insensitive unique-prefix
//! names, positional arguments, pipeline input, type conversion and parameter-set resolution,
//! failing with the same messages PowerShell gives. The simulator binds every call through here,
//! so it rejects what Lync would reject.

use indexmap::IndexMap;
use serde_json::Value;

use super::catalog::{COMMON, CmdletSpec, ParamSpec, SetSpec, Ty, lookup};
use super::timespan::{TICKS_PER_MS, format_timespan, parse_dotnet_timespan, timespan_ticks};
use super::{Input, Invocation, parse::POSITIONAL};
use crate::model::{Fqdn, Product, Span};

/// A PowerShell binding failure, with PowerShell's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BindError(pub String);

/// A call bound to its cmdlet: canonical parameter names and converted values.
#[derive(Debug, Clone)]
pub struct Bound {
    pub spec: &'static CmdletSpec,
    pub set: &'static str,
    pub args: IndexMap<&'static str, Value>,
    pub input: Option<Input>,
}

impl Bound {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.args.get(name)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(Value::as_str)
    }
    pub fn switch(&self, name: &str) -> bool {
        matches!(self.args.get(name), Some(Value::Bool(true)))
    }
    pub fn fqdn(&self, name: &str) -> Option<Fqdn> {
        self.str(name).and_then(|s| Fqdn::parse(s).ok())
    }
    /// A bound `TimeSpan` parameter in ticks (100 ns), as .NET holds it (may be negative).
    pub fn ticks(&self, name: &str) -> Option<i64> {
        self.str(name).and_then(|s| parse_dotnet_timespan(s).ok())
    }
    /// A bound `TimeSpan` parameter as a [`Span`] (milliseconds; `None` if negative).
    pub fn span(&self, name: &str) -> Option<Span> {
        self.ticks(name).filter(|t| *t >= 0).map(|t| Span((t / TICKS_PER_MS) as u64))
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        self.args.get(name).and_then(Value::as_i64)
    }
    pub fn what_if(&self) -> bool {
        self.switch("WhatIf")
    }
}

impl CmdletSpec {
    pub fn available_params(&self, product: Product) -> impl Iterator<Item = &ParamSpec> {
        self.params.iter().filter(move |p| p.avail.includes(product))
    }

    /// Whether a parameter name (or unique prefix) names a switch of this cmdlet.
    pub fn is_switch(&self, name: &str) -> bool {
        match self.resolve(name, None) {
            Ok(Resolved::Param(p)) => p.ty == Ty::Switch,
            Ok(Resolved::Common(c)) => matches!(c, "Verbose" | "Debug" | "WhatIf" | "Confirm"),
            Err(_) => false,
        }
    }

    /// `Get-Command -Syntax` style text for this product.
    pub fn syntax(&self, product: Product) -> String {
        let mut out = String::new();
        let sets: Vec<SetSpec> =
            if self.sets.is_empty() { vec![SetSpec { name: "Default", params: &[], mandatory: &[] }] } else { self.sets.to_vec() };
        for set in sets {
            let mut line = self.name.to_string();
            for prm in self.available_params(product) {
                if !self.in_set(prm.name, &set) {
                    continue;
                }
                let mandatory = prm.mandatory || set.mandatory.contains(&prm.name);
                let ty = match prm.ty {
                    Ty::Switch => String::new(),
                    Ty::Fqdn => " <Fqdn>".into(),
                    Ty::TimeSpan => " <TimeSpan>".into(),
                    Ty::Int => " <Int32>".into(),
                    Ty::Bool => " <Boolean>".into(),
                    Ty::Enum(t, _) => format!(" <{}>", t.rsplit('.').next().unwrap_or(t)),
                    Ty::List => " <String[]>".into(),
                    Ty::Str | Ty::Filter => " <String>".into(),
                };
                let name = match prm.position {
                    Some(_) => format!("[-{}]", prm.name),
                    None => format!("-{}", prm.name),
                };
                let item = format!("{name}{ty}");
                line.push(' ');
                line.push_str(&if mandatory { item } else { format!("[{item}]") });
            }
            if self.should_process {
                line.push_str(" [-WhatIf] [-Confirm]");
            }
            line.push_str(" [<CommonParameters>]\n");
            out.push_str(&line);
        }
        out
    }

    fn in_set(&self, param: &str, set: &SetSpec) -> bool {
        let listed_anywhere = self.sets.iter().any(|s| s.params.contains(&param));
        !listed_anywhere || set.params.contains(&param)
    }

    fn resolve(&self, name: &str, product: Option<Product>) -> Result<Resolved, BindError> {
        let mut candidates: Vec<Resolved> = Vec::new();
        let avail = |p: &&ParamSpec| product.is_none_or(|pr| p.avail.includes(pr));
        let mut names: Vec<Resolved> = self.params.iter().filter(avail).map(Resolved::Param).collect();
        names.extend(COMMON.iter().map(|c| Resolved::Common(c)));
        if self.should_process {
            names.push(Resolved::Common("WhatIf"));
            names.push(Resolved::Common("Confirm"));
        }
        for r in &names {
            if r.name().eq_ignore_ascii_case(name) {
                return Ok(*r);
            }
        }
        for r in names {
            if r.name().to_ascii_lowercase().starts_with(&name.to_ascii_lowercase()) {
                candidates.push(r);
            }
        }
        match candidates.len() {
            0 => Err(BindError(format!("A parameter cannot be found that matches parameter name '{name}'."))),
            1 => Ok(candidates[0]),
            _ => Err(BindError(format!(
                "Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches include: {}.",
                candidates.iter().map(|c| format!("-{}", c.name())).collect::<Vec<_>>().join(" ")
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Resolved {
    Param(&'static ParamSpec),
    Common(&'static str),
}

impl Resolved {
    fn name(&self) -> &'static str {
        match self {
            Resolved::Param(p) => p.name,
            Resolved::Common(c) => c,
        }
    }
}

/// Whether `param` is a switch of `cmdlet`, for the line parser.
pub fn is_switch(cmdlet: &str, param: &str) -> bool {
    lookup(cmdlet).is_some_and(|c| c.is_switch(param))
}

/// The PowerShell error for a command name that does not exist.
pub fn not_recognized(name: &str) -> BindError {
    BindError(format!(
        "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
    ))
}

/// Binds an invocation as PowerShell would on a server running `product`.
pub fn bind(inv: &Invocation, product: Product) -> Result<Bound, BindError> {
    let spec = lookup(&inv.cmdlet).ok_or_else(|| not_recognized(&inv.cmdlet))?;
    let mut args: IndexMap<&'static str, Value> = IndexMap::new();
    let mut positional: Vec<(usize, &Value)> = Vec::new();
    for (name, value) in &inv.args {
        if let Some(n) = name.strip_prefix(POSITIONAL) {
            positional.push((n.parse().unwrap_or(usize::MAX), value));
            continue;
        }
        let r = spec.resolve(name, Some(product))?;
        if args.contains_key(r.name()) {
            return Err(BindError(format!("Cannot bind parameter because parameter '{}' is specified more than once.", r.name())));
        }
        let v = match r {
            Resolved::Param(prm) => convert(prm, value)?,
            Resolved::Common(c) if matches!(c, "Verbose" | "Debug" | "WhatIf" | "Confirm") => switch_value(c, value)?,
            Resolved::Common(_) => value.clone(),
        };
        args.insert(r.name(), v);
    }
    positional.sort_by_key(|(n, _)| *n);
    let mut slots: Vec<&'static ParamSpec> =
        spec.available_params(product).filter(|p| p.position.is_some() && !args.contains_key(p.name)).collect();
    slots.sort_by_key(|p| p.position);
    let mut slots = slots.into_iter();
    for (_, value) in positional {
        let Some(prm) = slots.next() else {
            return Err(BindError(format!("A positional parameter cannot be found that accepts argument '{}'.", display(value))));
        };
        args.insert(prm.name, convert(prm, value)?);
    }
    let pipeline_param = spec.available_params(product).find(|p| p.pipeline).map(|p| p.name);
    if inv.input.is_some() && pipeline_param.is_none() {
        return Err(BindError(
            "The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input."
                .into(),
        ));
    }
    // Parameter-set resolution.
    let sets: Vec<SetSpec> =
        if spec.sets.is_empty() { vec![SetSpec { name: "Default", params: &[], mandatory: &[] }] } else { spec.sets.to_vec() };
    let fits: Vec<&SetSpec> =
        sets.iter().filter(|s| args.keys().all(|a| !spec.params.iter().any(|p| p.name == *a) || spec.in_set(a, s))).collect();
    let set = match fits.len() {
        0 => return Err(BindError("Parameter set cannot be resolved using the specified named parameters.".into())),
        1 => fits[0],
        _ => {
            // Prefer a set whose own parameters were used, then the first (default) set.
            fits.iter().find(|s| s.params.iter().any(|p| args.contains_key(p))).copied().unwrap_or(fits[0])
        }
    };
    let mut missing: Vec<&str> = Vec::new();
    for prm in spec.available_params(product) {
        let mandatory = prm.mandatory || set.mandatory.contains(&prm.name);
        let supplied = args.contains_key(prm.name) || (Some(prm.name) == pipeline_param && inv.input.is_some());
        if mandatory && spec.in_set(prm.name, set) && !supplied {
            missing.push(prm.name);
        }
    }
    if !missing.is_empty() {
        return Err(BindError(format!(
            "Cannot process command because of one or more missing mandatory parameters: {}.",
            missing.join(" ")
        )));
    }
    Ok(Bound { spec, set: set.name, args, input: inv.input.clone() })
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn switch_value(name: &str, v: &Value) -> Result<Value, BindError> {
    match v {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        other => Err(BindError(format!(
            "Cannot convert '{}' to the type 'System.Management.Automation.SwitchParameter' required by parameter '{name}'.",
            display(other)
        ))),
    }
}

fn cannot_convert(prm: &ParamSpec, v: &Value, ty: &str, err: &str) -> BindError {
    BindError(format!("Cannot bind parameter '{}'. Cannot convert value \"{}\" to type \"{ty}\". Error: \"{err}\"", prm.name, display(v)))
}

fn convert(prm: &ParamSpec, v: &Value) -> Result<Value, BindError> {
    match prm.ty {
        Ty::Switch => switch_value(prm.name, v),
        Ty::Str => match v {
            Value::String(_) | Value::Null => Ok(v.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(if *b { "True" } else { "False" }.into())),
            other => Err(cannot_convert(prm, other, "System.String", "Cannot convert a list to a single value.")),
        },
        Ty::Fqdn => {
            let s = display(v);
            Fqdn::parse(&s)
                .map(|f| Value::String(f.to_string()))
                .map_err(|_| cannot_convert(prm, v, "Microsoft.Rtc.Management.Deploy.Fqdn", "The FQDN is not valid."))
        }
        Ty::TimeSpan => {
            timespan_ticks(v).map(|t| Value::String(format_timespan(t))).map_err(|e| cannot_convert(prm, v, "System.TimeSpan", e))
        }
        Ty::Int => match v {
            Value::Number(n) if n.is_i64() => Ok(v.clone()),
            Value::String(s) => s
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| cannot_convert(prm, v, "System.Int32", "Input string was not in a correct format.")),
            other => Err(cannot_convert(prm, other, "System.Int32", "Input string was not in a correct format.")),
        },
        Ty::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            other => Err(BindError(format!(
                "Cannot process argument transformation on parameter '{}'. Cannot convert value \"{}\" to type \"System.Boolean\". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
                prm.name,
                display(other)
            ))),
        },
        Ty::Enum(ty, names) => {
            let s = display(v);
            names.iter().find(|n| n.eq_ignore_ascii_case(&s)).map(|n| Value::String((*n).to_string())).ok_or_else(|| {
                cannot_convert(
                    prm,
                    v,
                    ty,
                    &format!(
                        "Unable to match the identifier name {s} to a valid enumerator name.  Specify one of the following enumerator names and try again: {}",
                        names.join(", ")
                    ),
                )
            })
        }
        Ty::List => match v {
            Value::Array(_) => Ok(v.clone()),
            other => Ok(Value::Array(vec![other.clone()])),
        },
        Ty::Filter => Ok(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(inv: Invocation, product: Product) -> Result<Bound, String> {
        bind(&inv, product).map_err(|e| e.0)
    }

    #[test]
    fn prefixes_case_and_positions() {
        let inv = Invocation::new("invoke-cspoolfailover").arg("poolfq", "POOL01.dal.contoso.com").arg("Disaster", true);
        let bound = b(inv, Product::Lync2013).unwrap();
        assert_eq!(bound.spec.name, "Invoke-CsPoolFailOver");
        assert_eq!(bound.str("PoolFqdn"), Some("pool01.dal.contoso.com"));
        assert!(bound.switch("DisasterMode"));
        let inv = Invocation::new("Move-CsUser").arg("#0", "sip:a@contoso.com").arg("#1", "pool01.sea.contoso.com");
        let bound = b(inv, Product::SfB2015).unwrap();
        assert_eq!(bound.str("Identity"), Some("sip:a@contoso.com"));
        assert_eq!(bound.str("Target"), Some("pool01.sea.contoso.com"));
    }

    #[test]
    fn rejects_like_powershell() {
        let e = b(
            Invocation::new("Set-CsSite").arg("Identity", "Seattle").arg("XmppExternalFederationRoute", "e.contoso.com"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert_eq!(e, "A parameter cannot be found that matches parameter name 'XmppExternalFederationRoute'.");
        let e =
            b(Invocation::new("Invoke-CsManagementServerFailover").arg("MirrorSQLServerFqdn", "sql02.sea.contoso.com"), Product::Lync2013)
                .unwrap_err();
        assert!(e.contains("MirrorSQLServerFqdn"), "{e}");
        let e = b(Invocation::new("Invoke-CsPoolFailOver").switch("DisasterMode"), Product::Lync2013).unwrap_err();
        assert_eq!(e, "Cannot process command because of one or more missing mandatory parameters: PoolFqdn.");
        let e =
            b(Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "p.contoso.com").switch("SkipDataVerification"), Product::Lync2013)
                .unwrap_err();
        assert!(e.contains("SkipDataVerification"), "{e}");
        assert!(
            b(Invocation::new("Invoke-CsPoolFailOver").arg("PoolFqdn", "p.contoso.com").switch("SkipDataVerification"), Product::SfB2019)
                .is_ok()
        );
        let e = b(
            Invocation::new("Invoke-CsDatabaseFailover")
                .arg("PoolFqdn", "p.contoso.com")
                .arg("DatabaseType", "User")
                .arg("NewPrincipal", "secondary"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert!(e.contains("Primary, Mirror"), "{e}");
        let e = b(
            Invocation::new("Get-CsBackupServiceStatus").arg("PoolFqdn", "p.contoso.com").arg("BackupModule", "ConfServices.DataConf"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert!(e.contains("'BackupModule'"), "{e}");
        let e = b(Invocation::new("Get-CsService").arg("C", true), Product::Lync2013).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
        let e = b(
            Invocation::new("Invoke-CsManagementServerFailover").switch("Restore").arg("BackupSqlServerFqdn", "s.contoso.com"),
            Product::Lync2013,
        )
        .unwrap_err();
        assert!(e.contains("Parameter set cannot be resolved"), "{e}");
        let e = b(Invocation::new("Invoke-CsManagementServerFailover").switch("Force"), Product::Lync2013).unwrap_err();
        assert!(e.contains("missing mandatory parameters: BackupSqlServerFqdn"), "{e}");
        let e = b(Invocation::new("Get-CsPool").arg("#0", "a").arg("#1", "b"), Product::Lync2013).unwrap_err();
        assert!(e.contains("positional parameter"), "{e}");
        let e = b(Invocation::new("Invoke-CsPoolFail0ver"), Product::Lync2013).unwrap_err();
        assert!(e.contains("is not recognized"), "{e}");
        let e = b(Invocation::new("Set-CsBackupServiceConfiguration").arg("SyncInterval", "two minutes"), Product::Lync2013).unwrap_err();
        assert!(e.contains("System.TimeSpan"), "{e}");
    }

    #[test]
    fn parameter_sets() {
        let bound = b(
            Invocation::new("Invoke-CsManagementServerFailover").arg("BackupSqlServerFqdn", "sql01.sea.contoso.com").switch("Force"),
            Product::SfB2015,
        )
        .unwrap();
        assert_eq!(bound.set, "DisasterRecovery");
        let bound = b(Invocation::new("Invoke-CsManagementServerFailover"), Product::SfB2015).unwrap();
        assert_eq!(bound.set, "Normal");
        let bound = b(Invocation::new("Invoke-CsManagementServerFailover").switch("WhatIf"), Product::SfB2015).unwrap();
        assert!(bound.what_if());
    }

    #[test]
    fn syntax_lists_product_parameters() {
        let spec = lookup("Invoke-CsPoolFailOver").unwrap();
        assert!(!spec.syntax(Product::Lync2013).contains("SkipDataVerification"));
        assert!(spec.syntax(Product::SfB2019).contains("[-SkipDataVerification]"));
        assert!(spec.syntax(Product::Lync2013).starts_with("Invoke-CsPoolFailOver -PoolFqdn <Fqdn>"));
    }
}
