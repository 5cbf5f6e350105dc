//! Loading desired state from Kubernetes manifests: multi-document YAML files, or every
//! `.yaml`/`.yml` file of a directory (e.g. a git checkout), as the standalone front ends use
//! them. Documents of other API groups are skipped; lyncdr.io documents must be well formed:
//! unknown fields are rejected (checked against the CRD schema, with a suggestion), and every
//! error names the file, the resource and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use serde_json::Value;

use super::{ConferenceContentRestore, GROUP, LyncDeployment, PoolPair, UserPlacement, names};

/// A lyncdr resource read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Deployment(Box<LyncDeployment>),
    PoolPair(PoolPair),
    UserPlacement(UserPlacement),
    ContentRestore(ConferenceContentRestore),
}

impl Manifest {
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Deployment(_) => "LyncDeployment",
            Manifest::PoolPair(_) => "PoolPair",
            Manifest::UserPlacement(_) => "UserPlacement",
            Manifest::ContentRestore(_) => "ConferenceContentRestore",
        }
    }
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Deployment(o) => &o.metadata,
            Manifest::PoolPair(o) => &o.metadata,
            Manifest::UserPlacement(o) => &o.metadata,
            Manifest::ContentRestore(o) => &o.metadata,
        }
    }
    pub fn name(&self) -> String {
        self.metadata().name.clone().unwrap_or_default()
    }
    /// The namespace, empty when the manifest names none.
    pub fn namespace(&self) -> String {
        self.metadata().namespace.clone().unwrap_or_default()
    }
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: document {index} is not valid YAML: {message}")]
    Yaml { path: String, index: usize, message: String },
    #[error("{path}: document {index}: {field}: {message}")]
    Document { path: String, index: usize, field: String, message: String },
    #[error("{path}: {resource}: {field}: {message}")]
    Invalid { path: String, resource: String, field: String, message: String },
    #[error(
        "{resource}{namespace} is defined twice, in {first} and in {second}; a name is unique per kind and namespace: rename or remove one"
    )]
    Duplicate { resource: String, namespace: String, first: String, second: String },
    #[error("no lyncdr.io resources found in {0}")]
    Empty(String),
}

/// Largest manifest file read (a deployment's resources are a few kilobytes).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Most manifest files read from one directory tree.
pub const MAX_FILES: usize = 10_000;

/// Reads a file, or every YAML file of a directory (sorted, not recursive into hidden folders).
/// Only regular files are read (a FIFO or a device named `*.yaml` is an error, not a hang), each
/// at most [`MAX_FILE_BYTES`]. A resource defined twice (same kind, namespace and name) is an
/// error naming both files.
pub fn load(path: &Path) -> Result<Vec<Manifest>, ManifestError> {
    let mut files = Vec::new();
    collect(path, &mut files, 0)?;
    let mut out: Vec<Manifest> = Vec::new();
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for f in files {
        let shown = f.display().to_string();
        let text = read_text(&f, MAX_FILE_BYTES)?;
        for m in parse(&text, &shown)? {
            let key = (m.kind().to_string(), m.namespace(), m.name());
            if let Some(first) = seen.insert(key, shown.clone()) {
                return Err(duplicate(&m, first, shown));
            }
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(ManifestError::Empty(path.display().to_string()));
    }
    Ok(out)
}

fn duplicate(m: &Manifest, first: String, second: String) -> ManifestError {
    let ns = m.namespace();
    ManifestError::Duplicate {
        resource: m.id(),
        namespace: if ns.is_empty() { String::new() } else { format!(" (namespace {ns})") },
        first,
        second,
    }
}

/// Reads a regular file of at most `max` bytes as UTF-8.
pub fn read_text(path: &Path, max: u64) -> Result<String, ManifestError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| ManifestError::Io { path: shown.clone(), message: e.to_string() };
    // Opened without blocking first, so a FIFO cannot hang the open itself.
    let f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io)?
    };
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ManifestError::Io { path: shown.clone(), message: "not a regular file; only regular files are read".into() });
    }
    if meta.len() > max {
        return Err(ManifestError::Io { path: shown.clone(), message: format!("{} bytes; the limit is {} bytes", meta.len(), max) });
    }
    let mut bytes = Vec::new();
    // The size may change after the check: never read more than the limit.
    std::io::Read::read_to_end(&mut std::io::Read::take(f, max + 1), &mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(ManifestError::Io { path: shown.clone(), message: format!("larger than the limit of {max} bytes") });
    }
    String::from_utf8(bytes).map_err(|e| ManifestError::Io { path: shown, message: format!("not UTF-8 text: {e}") })
}

fn collect(path: &Path, files: &mut Vec<PathBuf>, depth: usize) -> Result<(), ManifestError> {
    let io = |e: std::io::Error| ManifestError::Io { path: path.display().to_string(), message: e.to_string() };
    if depth > 32 {
        return Err(ManifestError::Io { path: path.display().to_string(), message: "directories nested more than 32 deep".into() });
    }
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            let is_dir = std::fs::metadata(&e).map(|m| m.is_dir()).unwrap_or(false);
            if is_dir {
                collect(&e, files, depth + 1)?;
            } else if e.extension().and_then(|x| x.to_str()).is_some_and(|x| x == "yaml" || x == "yml") {
                if files.len() >= MAX_FILES {
                    return Err(ManifestError::Io {
                        path: path.display().to_string(),
                        message: format!("more than {MAX_FILES} manifest files"),
                    });
                }
                files.push(e);
            }
        }
        Ok(())
    } else {
        files.push(path.to_path_buf());
        Ok(())
    }
}

/// Parses the documents of one YAML text. Documents of other API groups are skipped; every
/// lyncdr.io document must be well formed, and every error names the file, the document or the
/// resource, and the field.
pub fn parse(text: &str, path: &str) -> Result<Vec<Manifest>, ManifestError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml { path: path.into(), index: 0, message: e.to_string() })?;
    let mut out: Vec<Manifest> = Vec::new();
    let mut seen: BTreeMap<(String, String, String), ()> = BTreeMap::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let index = i + 1;
        let document = |field: &str, message: String| ManifestError::Document { path: path.into(), index, field: field.into(), message };
        let Some(obj) = doc.as_object() else {
            return Err(document("(document)", "is not a mapping; a Kubernetes manifest has apiVersion, kind, metadata and spec".into()));
        };
        let api_version = match obj.get("apiVersion") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(document("apiVersion", format!("must be a string such as {}, not {other}", super::API_VERSION))),
            None => return Err(document("apiVersion", format!("is required (e.g. {})", super::API_VERSION))),
        };
        let kind = match obj.get("kind") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(document("kind", format!("must be a string, not {other}"))),
            None => return Err(document("kind", "is required".into())),
        };
        let group = api_version.split('/').next().unwrap_or_default();
        if group != GROUP {
            continue;
        }
        let metadata = obj.get("metadata");
        let name = match metadata.and_then(|m| m.get("name")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(document("metadata.name", format!("must be a string, not {other}"))),
            None => return Err(document("metadata.name", format!("is required on the {kind}"))),
        };
        let resource = format!("{kind}/{}", names::printable(&name));
        let invalid = |field: &str, message: String| ManifestError::Invalid {
            path: path.into(),
            resource: resource.clone(),
            field: field.into(),
            message,
        };
        if api_version != super::API_VERSION {
            return Err(invalid("apiVersion", format!("'{}' is not served; use {}", names::printable(&api_version), super::API_VERSION)));
        }
        names::check_subdomain(&name).map_err(|m| invalid("metadata.name", m))?;
        match metadata.and_then(|m| m.get("namespace")) {
            None => {}
            Some(Value::String(ns)) => names::check_label(ns).map_err(|m| invalid("metadata.namespace", m))?,
            Some(other) => return Err(invalid("metadata.namespace", format!("must be a string, not {other}"))),
        }
        let crd = match kind.as_str() {
            "LyncDeployment" => LyncDeployment::crd(),
            "PoolPair" => PoolPair::crd(),
            "UserPlacement" => UserPlacement::crd(),
            "ConferenceContentRestore" => ConferenceContentRestore::crd(),
            other => {
                return Err(invalid(
                    "kind",
                    format!(
                        "'{}' is not a lyncdr.io kind; use LyncDeployment, PoolPair, UserPlacement or ConferenceContentRestore",
                        names::printable(other)
                    ),
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
        match obj.get("spec") {
            Some(spec @ Value::Object(_)) => check_unknown(spec, &schema["properties"]["spec"], "spec").map_err(|(f, m)| invalid(&f, m))?,
            Some(other) => return Err(invalid("spec", format!("must be a mapping, not {other}"))),
            None => return Err(invalid("spec", "is required".into())),
        }
        let m = match kind.as_str() {
            "LyncDeployment" => Manifest::Deployment(Box::new(typed(doc, &invalid)?)),
            "PoolPair" => Manifest::PoolPair(typed(doc, &invalid)?),
            "UserPlacement" => Manifest::UserPlacement(typed(doc, &invalid)?),
            _ => Manifest::ContentRestore(typed(doc, &invalid)?),
        };
        if seen.insert((m.kind().to_string(), m.namespace(), m.name()), ()).is_some() {
            return Err(duplicate(&m, format!("{path} (an earlier document)"), format!("{path} (document {index})")));
        }
        out.push(m);
    }
    Ok(out)
}

/// Deserializes a document, naming the field that does not fit (e.g. `spec.policy.drift`).
fn typed<T: serde::de::DeserializeOwned>(doc: Value, invalid: &dyn Fn(&str, String) -> ManifestError) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let field = e.path().to_string();
        invalid(if field == "." { "(document)" } else { &field }, e.into_inner().to_string())
    })
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
