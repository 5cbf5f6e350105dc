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
use crate::model::text::{shown, shown_lines};

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
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: String, message: String },
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

/// The files to read: `path` itself (followed if it is a symbolic link: the user named it), or
/// the YAML files of the directory tree under it. Inside a directory, a symbolic link is followed
/// only to a regular file inside that directory: a link to a directory (which can loop) or to a
/// file elsewhere (`/etc/...`) is an error naming the link.
fn collect(path: &Path, files: &mut Vec<PathBuf>, depth: usize) -> Result<(), ManifestError> {
    let io = |e: std::io::Error| ManifestError::Io { path: path.display().to_string(), message: e.to_string() };
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        let root = std::fs::canonicalize(path).map_err(io)?;
        walk(path, &root, files, depth)
    } else {
        files.push(path.to_path_buf());
        Ok(())
    }
}

fn walk(dir: &Path, root: &Path, files: &mut Vec<PathBuf>, depth: usize) -> Result<(), ManifestError> {
    let fail = |p: &Path, message: String| ManifestError::Io { path: p.display().to_string(), message };
    if depth > 32 {
        return Err(fail(dir, "directories nested more than 32 deep".into()));
    }
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| fail(dir, e.to_string()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for e in entries {
        let name = e.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let yaml = e.extension().and_then(|x| x.to_str()).is_some_and(|x| x == "yaml" || x == "yml");
        let Ok(own) = std::fs::symlink_metadata(&e) else { continue };
        if own.file_type().is_symlink() {
            let target = match std::fs::metadata(&e) {
                Ok(t) => t,
                Err(err) if yaml => return Err(fail(&e, err.to_string())),
                Err(_) => continue,
            };
            if target.is_dir() {
                return Err(fail(
                    &e,
                    "a symbolic link to a directory; links to directories are not followed (they can loop or lead outside the directory)"
                        .into(),
                ));
            }
            if !yaml {
                continue;
            }
            if !target.is_file() {
                return Err(fail(&e, "not a regular file; only regular files are read".into()));
            }
            let real = std::fs::canonicalize(&e).map_err(|err| fail(&e, err.to_string()))?;
            if !real.starts_with(root) {
                return Err(fail(
                    &e,
                    format!("a symbolic link to {}, outside {}; only files inside the directory are read", real.display(), root.display()),
                ));
            }
        } else if own.is_dir() {
            walk(&e, root, files, depth + 1)?;
            continue;
        } else if !yaml {
            continue;
        }
        if files.len() >= MAX_FILES {
            return Err(fail(dir, format!("more than {MAX_FILES} manifest files")));
        }
        files.push(e);
    }
    Ok(())
}

/// Parses the documents of one YAML text. Documents of other API groups are skipped; every
/// lyncdr.io document must be well formed, and every error names the file, the document or the
/// resource, and the field.
pub fn parse(text: &str, path: &str) -> Result<Vec<Manifest>, ManifestError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml { path: path.into(), message: shown_lines(&e.to_string()) })?;
    let mut out: Vec<Manifest> = Vec::new();
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
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
            None => return Err(document("metadata.name", format!("is required on the {}", shown(&kind)))),
        };
        let resource = format!("{}/{}", shown(&kind), names::printable(&name));
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
        // As kubectl's strict field validation: a misspelt key (`sepc`, `metadata.anotations`)
        // would silently drop what it holds (a Manual approval, the pause annotation).
        check_known(obj.keys(), TOP_LEVEL, "").map_err(|(f, m)| invalid(&f, m))?;
        if let Some(Value::Object(meta)) = metadata {
            check_known(meta.keys(), OBJECT_META, "metadata.").map_err(|(f, m)| invalid(&f, m))?;
        }
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
        if let Some(first) = seen.insert((m.kind().to_string(), m.namespace(), m.name()), index) {
            return Err(duplicate(&m, format!("{path} (document {first})"), format!("{path} (document {index})")));
        }
        out.push(m);
    }
    Ok(out)
}

/// Deserializes a document, naming the field that does not fit (e.g. `spec.policy.drift`).
fn typed<T: serde::de::DeserializeOwned>(doc: Value, invalid: &dyn Fn(&str, String) -> ManifestError) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let field = shown(&e.path().to_string());
        // serde quotes the offending value (`unknown variant `Report\u{1b}[2J``): escaped.
        invalid(if field == "." { "(document)" } else { &field }, shown(&e.into_inner().to_string()))
    })
}

/// The top-level fields of a Kubernetes object (`status` is accepted and ignored, as the
/// apiserver does on create, so `kubectl get -o yaml` output loads).
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// The fields of `ObjectMeta`.
const OBJECT_META: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// Refuses a key that is not one of `known`, suggesting the nearest known one.
fn check_known<'a>(keys: impl Iterator<Item = &'a String>, known: &[&str], prefix: &str) -> Result<(), (String, String)> {
    for k in keys {
        if !known.contains(&k.as_str()) {
            return Err((format!("{prefix}{}", shown(k)), unknown_field(k, known.iter().copied())));
        }
    }
    Ok(())
}

fn unknown_field<'a>(key: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    let near = known.clone().min_by_key(|p| distance(&p.to_ascii_lowercase(), &key.to_ascii_lowercase())).unwrap_or_default();
    format!("unknown field; did you mean '{near}'? Known fields: {}", known.collect::<Vec<_>>().join(", "))
}

/// Rejects keys the schema does not define, suggesting the nearest defined one.
fn check_unknown(value: &Value, schema: &Value, path: &str) -> Result<(), (String, String)> {
    match value {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
            for (k, v) in map {
                match props.get(k) {
                    Some(s) => check_unknown(v, s, &format!("{path}.{k}"))?,
                    None => return Err((format!("{path}.{}", shown(k)), unknown_field(k, props.keys().map(String::as_str)))),
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

    #[test]
    fn refuses_unknown_top_level_and_metadata_fields() {
        let text =
            "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: c}\nspec: {}\nsepc: {policy: {approval: Manual}}\n";
        let e = parse(text, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("LyncDeployment/c: sepc: unknown field; did you mean 'spec'?"), "{e}");
        let text = "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: c, anotations: {a: b}}\nspec: {}\n";
        let e = parse(text, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("metadata.anotations: unknown field; did you mean 'annotations'?"), "{e}");
        let text = "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: c, labels: {a: b}}\nspec: {}\nstatus: {}\n";
        assert!(parse(text, "t.yaml").is_ok());
    }

    #[test]
    fn follows_symlinks_only_to_files_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("m");
        std::fs::create_dir_all(d.join("real")).unwrap();
        let text = "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: c}\nspec: {}\n";
        std::fs::write(d.join("real/c.txt"), text).unwrap();
        std::os::unix::fs::symlink("real/c.txt", d.join("link.yaml")).unwrap();
        assert_eq!(load(&d).unwrap().len(), 1);
        std::fs::write(dir.path().join("secret.yaml"), text).unwrap();
        std::os::unix::fs::symlink("../secret.yaml", d.join("out.yaml")).unwrap();
        assert!(load(&d).unwrap_err().to_string().contains("outside"));
        std::fs::remove_file(d.join("out.yaml")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("etc")).unwrap();
        assert!(load(&d).unwrap_err().to_string().contains("a symbolic link to a directory"));
    }
}
