//! The committed CRDs in `crds/` are exactly what `lyncdr crdgen` generates from the Rust types,
//! and the schema says what `kubectl explain` should teach.

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lyncdr"))
        .args(["crdgen", "--out"])
        .arg(dir.path())
        .output()
        .expect("run lyncdr crdgen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut generated: Vec<String> =
        std::fs::read_dir(dir.path()).expect("read").filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    generated.sort();
    let mut committed: Vec<String> =
        std::fs::read_dir("crds").expect("crds/").filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    committed.sort();
    assert_eq!(generated, committed, "crds/ has a different set of files; run `cargo run -- crdgen --out crds`");
    for name in generated {
        let want = std::fs::read_to_string(dir.path().join(&name)).expect("generated");
        let have = std::fs::read_to_string(Path::new("crds").join(&name)).expect("committed");
        assert_eq!(have, want, "crds/{name} is stale; run `cargo run -- crdgen --out crds` and copy it to charts/lyncdr/files/crds/");
    }
}

#[test]
fn every_spec_field_is_described() {
    fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            for (k, p) in props {
                let here = format!("{path}.{k}");
                if p.get("description").is_none()
                    && !here.contains(".status")
                    && !here.ends_with(".metadata")
                    && !here.ends_with(".apiVersion")
                    && !here.ends_with(".kind")
                {
                    missing.push(here.clone());
                }
                walk(p, &here, missing);
            }
        }
        if let Some(items) = v.get("items") {
            walk(items, &format!("{path}[]"), missing);
        }
    }
    let mut missing = Vec::new();
    for crd in lyncdr::api::crds() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
        walk(&schema["openAPIV3Schema"], &crd.spec.names.kind, &mut missing);
    }
    assert!(missing.is_empty(), "fields without a description (kubectl explain shows nothing): {missing:#?}");
}
