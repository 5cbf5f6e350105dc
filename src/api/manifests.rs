//! Loading desired state from Kubernetes manifests: multi-document YAML files, or every
//! `.yaml`/`.yml` file of a directory (e.g. a git checkout), as the standalone front ends use
//! them. Documents of other API groups are skipped; lyncdr.io documents must be well formed:
//! unknown fields are rejected (checked against the CRD schema, with a suggestion), and every
//! error names the file, the resource and the field.

use std::path::{Path, PathBuf};

use kube::CustomResourceExt;
use serde_json::Value;

use super::{ConferenceContentRestore, GROUP, LyncDeployment, PoolPair, UserPlacement};

/// A lyncdr resource read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Deployment(Box<LyncDeployment>),
    PoolPair(PoolPair),
    UserPlacement(UserPlacement),
    ContentRestore(ConferenceContentRestore),
}

impl Manifest {
    pub fn id(&self) -> String {
        match self {
            Manifest::Deployment(o) => format!("LyncDeployment/{}", o.metadata.name.clone().unwrap_or_default()),
            Manifest::PoolPair(o) => format!("PoolPair/{}", o.metadata.name.clone().unwrap_or_default()),
            Manifest::UserPlacement(o) => format!("UserPlacement/{}", o.metadata.name.clone().unwrap_or_default()),
            Manifest::ContentRestore(o) => format!("ConferenceContentRestore/{}", o.metadata.name.clone().unwrap_or_default()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: document {index} is not valid YAML: {message}")]
    Yaml { path: String, index: usize, message: String },
    #[error("{path}: {resource}: {field}: {message}")]
    Invalid { path: String, resource: String, field: String, message: String },
    #[error("no lyncdr.io resources found in {0}")]
    Empty(String),
}

/// Reads a file, or every YAML file of a directory (sorted, not recursive into hidden folders).
pub fn load(path: &Path) -> Result<Vec<Manifest>, ManifestError> {
    let mut files = Vec::new();
    collect(path, &mut files)?;
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| ManifestError::Io { path: f.display().to_string(), message: e.to_string() })?;
        out.extend(parse(&text, &f.display().to_string())?);
    }
    if out.is_empty() {
        return Err(ManifestError::Empty(path.display().to_string()));
    }
    Ok(out)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let io = |e: std::io::Error| ManifestError::Io { path: path.display().to_string(), message: e.to_string() };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if e.is_dir() {
                collect(&e, files)?;
            } else if e.extension().and_then(|x| x.to_str()).is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(e);
            }
        }
        Ok(())
    } else if path.exists() {
        files.push(path.to_path_buf());
        Ok(())
    } else {
        Err(ManifestError::Io { path: path.display().to_string(), message: "no such file or directory".into() })
    }
}

/// Parses the documents of one YAML text.
pub fn parse(text: &str, path: &str) -> Result<Vec<Manifest>, ManifestError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml { path: path.into(), index: 0, message: e.to_string() })?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        let group = api_version.split('/').next().unwrap_or_default();
        if group != GROUP {
            continue;
        }
        let name = doc.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or_default().to_string();
        let resource = format!("{kind}/{name}");
        let invalid = |field: &str, message: String| ManifestError::Invalid {
            path: path.into(),
            resource: resource.clone(),
            field: field.into(),
            message,
        };
        if api_version != super::API_VERSION {
            return Err(invalid("apiVersion", format!("'{api_version}' is not served; use {}", super::API_VERSION)));
        }
        if name.is_empty() {
            return Err(invalid("metadata.name", "is required".into()));
        }
        let crd = match kind.as_str() {
            "LyncDeployment" => LyncDeployment::crd(),
            "PoolPair" => PoolPair::crd(),
            "UserPlacement" => UserPlacement::crd(),
            "ConferenceContentRestore" => ConferenceContentRestore::crd(),
            other => {
                return Err(invalid(
                    "kind",
                    format!("'{other}' is not a lyncdr.io kind; use LyncDeployment, PoolPair, UserPlacement or ConferenceContentRestore"),
                ));
            }
        };
        let schema = crd
            .spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        if let Some(spec) = doc.get("spec") {
            check_unknown(spec, &schema["properties"]["spec"], "spec").map_err(|(f, m)| invalid(&f, m))?;
        } else {
            return Err(invalid("spec", "is required".into()));
        }
        let typed = |e: serde_json::Error| invalid("spec", e.to_string());
        out.push(match kind.as_str() {
            "LyncDeployment" => Manifest::Deployment(Box::new(serde_json::from_value(doc).map_err(typed)?)),
            "PoolPair" => Manifest::PoolPair(serde_json::from_value(doc).map_err(typed)?),
            "UserPlacement" => Manifest::UserPlacement(serde_json::from_value(doc).map_err(typed)?),
            _ => Manifest::ContentRestore(serde_json::from_value(doc).map_err(typed)?),
        });
    }
    Ok(out)
}

/// Rejects keys the schema does not define, suggesting the nearest defined one.
fn check_unknown(value: &Value, schema: &Value, path: &str) -> Result<(), (String, String)> {
    match value {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
            for (k, v) in map {
                match props.get(k) {
                    Some(s) => check_unknown(v, s, &format!("{path}.{k}"))?,
                    None => {
                        let near = props
                            .keys()
                            .min_by_key(|p| distance(&p.to_ascii_lowercase(), &k.to_ascii_lowercase()))
                            .cloned()
                            .unwrap_or_default();
                        return Err((
                            format!("{path}.{k}"),
                            format!(
                                "unknown field; did you mean '{near}'? Known fields: {}",
                                props.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
            for (i, v) in items.iter().enumerate() {
                check_unknown(v, &item_schema, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_kinds_and_skips_other_groups() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: lync}
---
apiVersion: lyncdr.io/v1alpha1
kind: LyncDeployment
metadata: {name: contoso}
spec:
  centralManagementStore: {activePool: pool01.dal.contoso.com}
---
apiVersion: lyncdr.io/v1alpha1
kind: PoolPair
metadata: {name: dal-sea}
spec:
  deployment: contoso
  pools: [pool01.dal.contoso.com, pool01.sea.contoso.com]
  failedOver: [pool01.dal.contoso.com]
  allowDataLoss: true
"#;
        let m = parse(text, "t.yaml").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id(), "LyncDeployment/contoso");
        match &m[1] {
            Manifest::PoolPair(p) => assert_eq!(p.spec.failed_over[0].as_str(), "pool01.dal.contoso.com"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_unknown_fields_and_bad_values() {
        let text = "apiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {name: p}\nspec:\n  deployment: c\n  pools: [a.contoso.com, b.contoso.com]\n  failedover: [a.contoso.com]\n";
        let e = parse(text, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("PoolPair/p") && e.contains("spec.failedover") && e.contains("failedOver"), "{e}");
        let text = "apiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {name: p}\nspec:\n  deployment: c\n  pools: [a.contoso.com, 'b contoso']\n";
        let e = parse(text, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("PoolPair/p") && e.contains("b contoso"), "{e}");
        let text = "apiVersion: lyncdr.io/v1beta9\nkind: PoolPair\nmetadata: {name: p}\nspec: {}\n";
        assert!(parse(text, "t.yaml").unwrap_err().to_string().contains("apiVersion"));
        let text = "apiVersion: lyncdr.io/v1alpha1\nkind: PoolPare\nmetadata: {name: p}\nspec: {}\n";
        assert!(parse(text, "t.yaml").unwrap_err().to_string().contains("PoolPare"));
    }
}
