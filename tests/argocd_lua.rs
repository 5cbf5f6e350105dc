//! The Argo CD customizations in `argocd/resource_customizations/lyncdr.io/<Kind>/` (Argo CD's own
//! layout: `health.lua`, `health_test.yaml`, `testdata/`, `actions/discovery.lua`,
//! `actions/<name>/action.lua`, `actions/action_test.yaml`, `actions/testdata/`):
//!
//! - runs every health, discovery and action test with a Lua 5.4 interpreter: the YAML fixtures
//!   are converted here into Lua table literals (Lua cannot read YAML) and
//!   `argocd/test/runner.lua` loads each script with the fixture as the global `obj`, as Argo CD
//!   does, in a sandbox without the string library (Argo CD runs custom scripts without it);
//!   without `lua5.4` the run is skipped with the reason, unless `LYNCDR_REQUIRE_LUA=1`;
//! - checks the layout: every kind has a health check covering the required situations, the four
//!   `health.lua` are one script, every fixture is used, and the scripts use only what Argo CD
//!   offers;
//! - keeps `argocd/argocd-cm.yaml` (the same scripts as `argocd-cm` keys) in sync with the files:
//!   `LYNCDR_UPDATE_ARGOCD_CM=1 cargo test --test argocd_lua` rewrites it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const KINDS: [&str; 4] = ["ConferenceContentRestore", "LyncDeployment", "PoolPair", "UserPlacement"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn customizations() -> PathBuf {
    root().join("argocd/resource_customizations/lyncdr.io")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn str_of<'a>(v: &'a Value, key: &str, context: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{context}: `{key}` must be a string: {v}"))
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

// --- Lua literals --------------------------------------------------------------------------

fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as a Lua expression: objects and arrays become tables (arrays 1-based), null
/// becomes nil (a null map entry is left out, as Argo CD's conversion does).
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{f:?}"),
            _ => panic!("unrepresentable number {n}"),
        },
        Value::String(s) => lua_string(s),
        Value::Array(a) => {
            assert!(!a.iter().any(Value::is_null), "a null inside a list cannot be represented in Lua: {v}");
            format!("{{{}}}", a.iter().map(lua).collect::<Vec<_>>().join(", "))
        }
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| format!("[{}] = {}", lua_string(k), lua(x))).collect::<Vec<_>>().join(", ")
        ),
    }
}

// --- the cases -----------------------------------------------------------------------------

struct Case {
    name: String,
    lua: String,
}

fn case(kind: &str, name: String, script: &Path, fields: &[(&str, String)]) -> Case {
    assert!(script.is_file(), "{name}: missing script {}", script.display());
    let mut lua = format!(
        "{{kind = {}, name = {}, script = {}",
        lua_string(kind),
        lua_string(&name),
        lua_string(script.to_str().expect("UTF-8 path"))
    );
    for (k, v) in fields {
        let _ = write!(lua, ", {k} = {v}");
    }
    lua.push('}');
    Case { name, lua }
}

/// Every case of every kind, and the fixture files they use.
fn collect_cases() -> (Vec<Case>, BTreeSet<PathBuf>) {
    let mut cases = Vec::new();
    let mut used = BTreeSet::new();
    let mut fixture = |dir: &Path, rel: &str| -> Value {
        let path = dir.join(rel);
        used.insert(path.clone());
        yaml(&path)
    };
    for kind in KINDS {
        let dir = customizations().join(kind);
        let tests = yaml(&dir.join("health_test.yaml"));
        for t in items(&tests, "tests") {
            let input = str_of(t, "inputPath", kind);
            let obj = fixture(&dir, input);
            let expected = &t["healthStatus"];
            cases.push(case(
                "health",
                format!("{kind}/health {input}"),
                &dir.join("health.lua"),
                &[("obj", lua(&obj)), ("expected", lua(expected))],
            ));
        }
        let actions = dir.join("actions");
        if !actions.is_dir() {
            continue;
        }
        let tests = yaml(&actions.join("action_test.yaml"));
        for t in items(&tests, "discoveryTests") {
            let input = str_of(t, "inputPath", kind);
            let obj = fixture(&actions, input);
            cases.push(case(
                "discovery",
                format!("{kind}/actions/discovery {input}"),
                &actions.join("discovery.lua"),
                &[("obj", lua(&obj)), ("expected", lua(&t["result"]))],
            ));
        }
        for t in items(&tests, "actionTests") {
            let action = str_of(t, "action", kind);
            let input = str_of(t, "inputPath", kind);
            let obj = fixture(&actions, input);
            let mut fields = vec![("obj", lua(&obj))];
            if let Some(params) = t.get("parameters") {
                fields.push(("params", lua(params)));
            }
            // `expectedError` is lyncdr's addition to Argo CD's format: the action must fail
            // with a message containing this text.
            match (t.get("expectedOutputPath").and_then(Value::as_str), t.get("expectedError").and_then(Value::as_str)) {
                (Some(out), None) => fields.push(("expected", lua(&fixture(&actions, out)))),
                (None, Some(err)) => fields.push(("expected_error", lua_string(err))),
                _ => panic!("{kind} action test {action} {input}: give exactly one of expectedOutputPath and expectedError"),
            }
            let name = format!("{kind}/actions/{action} {input}{}", t.get("parameters").map(|p| format!(" {p}")).unwrap_or_default());
            cases.push(case("action", name, &actions.join(action).join("action.lua"), &fields));
        }
    }
    (cases, used)
}

/// `lua5.4` (or `$LYNCDR_LUA`), checked to be Lua 5.4; None, with the reason printed, when absent.
fn lua_interpreter() -> Option<String> {
    let candidate = std::env::var("LYNCDR_LUA").unwrap_or_else(|_| "lua5.4".into());
    let version = Command::new(&candidate)
        .arg("-v")
        .output()
        .ok()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
    match version {
        Some(v) if v.contains("Lua 5.4") => Some(candidate),
        other => {
            let reason = match other {
                Some(v) => format!("{candidate} is not Lua 5.4 ({})", v.trim()),
                None => format!("no Lua 5.4 interpreter ({candidate} not found); install it with `apt-get install -y lua5.4`"),
            };
            if std::env::var("LYNCDR_REQUIRE_LUA").is_ok_and(|v| v == "1") {
                panic!("LYNCDR_REQUIRE_LUA=1 but {reason}");
            }
            println!("skipping the Lua run: {reason}");
            None
        }
    }
}

#[test]
fn health_checks_and_actions_pass_their_tests_in_lua() {
    let (cases, _) = collect_cases();
    let Some(interpreter) = lua_interpreter() else {
        return;
    };
    let suite = format!(
        "-- Generated by tests/argocd_lua.rs from argocd/resource_customizations.\nreturn {{\n{}\n}}\n",
        cases.iter().map(|c| format!("  {},", c.lua)).collect::<Vec<_>>().join("\n")
    );
    // Kept after the run, so a Lua-only change can be re-run quickly:
    //   lua5.4 argocd/test/runner.lua target/tmp/argocd-lua-suite.lua
    let suite_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("argocd-lua-suite.lua");
    std::fs::write(&suite_path, suite).expect("write the Lua suite");

    let out = Command::new(&interpreter)
        .arg(root().join("argocd/test/runner.lua"))
        .arg(&suite_path)
        .current_dir(root())
        .output()
        .expect("run the Lua runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    let expected = format!("lua: {} passed, 0 failed", cases.len());
    assert!(
        out.status.success() && stdout.lines().any(|l| l == expected),
        "the Lua tests failed (expected `{expected}`):\n{stdout}\n{stderr}"
    );
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "two cases with the same name");
}

#[test]
fn every_kind_has_the_same_health_check_covering_every_situation() {
    let reference = read(&customizations().join("LyncDeployment/health.lua"));
    // The situations the brief asks for, by fixture name (the awaiting-* fixture differs by kind).
    let required = ["no-status", "generation-not-observed", "healthy", "reconciling", "stalled", "paused", "conflict"];
    for kind in KINDS {
        let dir = customizations().join(kind);
        assert_eq!(
            read(&dir.join("health.lua")),
            reference,
            "{kind}/health.lua differs from LyncDeployment/health.lua: the four kinds share one script, copy it"
        );
        let tests = yaml(&dir.join("health_test.yaml"));
        let mut by_fixture = BTreeMap::new();
        for t in items(&tests, "tests") {
            let input = str_of(t, "inputPath", kind);
            let stem = input.trim_start_matches("testdata/").trim_end_matches(".yaml").to_string();
            by_fixture.insert(stem, str_of(&t["healthStatus"], "status", kind).to_string());
        }
        let expect = |stem: &str, status: &str| {
            assert_eq!(by_fixture.get(stem).map(String::as_str), Some(status), "{kind}: testdata/{stem}.yaml should be tested as {status}")
        };
        for stem in required {
            assert!(by_fixture.contains_key(stem), "{kind}: health_test.yaml lacks testdata/{stem}.yaml");
        }
        expect("no-status", "Progressing");
        expect("generation-not-observed", "Progressing");
        expect("healthy", "Healthy");
        expect("reconciling", "Progressing");
        expect("stalled", "Degraded");
        expect("paused", "Suspended");
        expect("conflict", "Degraded");
        assert!(
            by_fixture.iter().any(|(stem, status)| stem.starts_with("awaiting-") && status == "Suspended"),
            "{kind}: an awaiting-* fixture tested as Suspended"
        );
    }
    // The Ready=False-for-a-Conflict case without a Conflict condition.
    let tests = yaml(&customizations().join("LyncDeployment/health_test.yaml"));
    assert!(
        items(&tests, "tests")
            .iter()
            .any(|t| t["inputPath"] == "testdata/ready-false-conflict.yaml" && t["healthStatus"]["status"] == "Degraded")
    );
}

#[test]
fn actions_are_complete_and_every_fixture_is_used() {
    let expected_actions: BTreeMap<&str, &[&str]> =
        [("LyncDeployment", &["approve", "pause", "resume"][..]), ("PoolPair", &["approve-failback"][..])].into_iter().collect();
    for kind in KINDS {
        let actions = customizations().join(kind).join("actions");
        let want = expected_actions.get(kind).copied().unwrap_or_default();
        if want.is_empty() {
            assert!(!actions.exists(), "{kind} has actions nobody asked for");
            continue;
        }
        assert!(actions.join("discovery.lua").is_file(), "{kind}: actions/discovery.lua");
        let tests = yaml(&actions.join("action_test.yaml"));
        assert!(!items(&tests, "discoveryTests").is_empty(), "{kind}: discoveryTests");
        let tested: BTreeSet<&str> = items(&tests, "actionTests").iter().map(|t| str_of(t, "action", kind)).collect();
        let mut dirs: Vec<String> = std::fs::read_dir(&actions)
            .expect("actions/")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("action.lua").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        assert_eq!(dirs, want, "{kind}: the actions/<name>/action.lua folders");
        for a in want {
            assert!(tested.contains(a), "{kind}: action {a} has no actionTests entry");
        }
        // Every action offered by discovery has a definition.
        for t in items(&tests, "discoveryTests") {
            for r in items(t, "result") {
                assert!(want.contains(&str_of(r, "name", kind)), "{kind}: discovery offers {} which has no action.lua", r["name"]);
            }
        }
    }

    // No fixture left unused, none missing.
    let (_, used) = collect_cases();
    let mut on_disk = BTreeSet::new();
    for kind in KINDS {
        for dir in [customizations().join(kind).join("testdata"), customizations().join(kind).join("actions/testdata")] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                on_disk.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        }
    }
    let unused: Vec<_> = on_disk.difference(&used).collect();
    assert!(unused.is_empty(), "fixtures no test uses: {unused:?}");
}

#[test]
fn fixtures_are_valid_lyncdr_resources() {
    // The objects the scripts are tested on must be resources the CRDs accept (the operator's
    // manifest loader checks every spec field against the CRD schema).
    let (_, used) = collect_cases();
    for path in used {
        let loaded = lyncdr::api::manifests::parse(&read(&path), &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.len(), 1, "{}: one lyncdr resource per fixture", path.display());
        let kind = path.components().find_map(|c| KINDS.iter().find(|k| c.as_os_str() == **k)).expect("fixture under a kind folder");
        assert!(loaded[0].id().starts_with(&format!("{kind}/")), "{}: a {kind}", path.display());
    }
}

#[test]
fn scripts_use_only_what_argo_cd_offers() {
    // Argo CD runs custom health checks and actions with the base, table and (safe) os
    // functions only: no string, math or io library, no string methods. The sandbox of the Lua
    // run catches what the fixtures execute; this catches the rest of the text.
    let forbidden = [
        "string.",
        "math.",
        "io.",
        "utf8.",
        "require",
        "goto ",
        "loadstring",
        "dofile",
        ":sub(",
        ":find(",
        ":match(",
        ":gsub(",
        ":format(",
        ":len(",
        ":lower(",
        ":upper(",
    ];
    let mut scripts = Vec::new();
    let mut stack = vec![customizations()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read dir").filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "lua") {
                scripts.push(p);
            }
        }
    }
    assert!(scripts.len() >= 10, "found only {} scripts", scripts.len());
    for s in scripts {
        for (i, line) in read(&s).lines().enumerate() {
            let code = line.split("--").next().unwrap_or_default();
            for f in forbidden {
                assert!(!code.contains(f), "{}:{}: `{f}` is not available to Argo CD scripts: {line}", s.display(), i + 1);
            }
        }
    }
}

// --- argocd/argocd-cm.yaml -----------------------------------------------------------------

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{pad}{l}\n") }).collect()
}

/// The argocd-cm keys carrying the scripts, generated from the files.
fn render_argocd_cm() -> String {
    let mut out = String::from(
        "# Generated from argocd/resource_customizations by tests/argocd_lua.rs; do not edit. To refresh:\n\
         #   LYNCDR_UPDATE_ARGOCD_CM=1 cargo test --release --test argocd_lua\n\
         #\n\
         # Argo CD health checks and resource actions for lyncdr.io, as keys of Argo CD's argocd-cm\n\
         # ConfigMap. Merge them into yours, for example:\n\
         #   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd/argocd-cm.yaml\n\
         # or as a kustomize patch of an Argo CD installation, or under configs.cm of the argo-cd Helm\n\
         # chart. See docs/gitops.md.\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  name: argocd-cm\n  labels:\n    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\n\
         data:\n",
    );
    for kind in KINDS {
        let dir = customizations().join(kind);
        let _ = writeln!(out, "  resource.customizations.health.lyncdr.io_{kind}: |");
        out.push_str(&indent(&read(&dir.join("health.lua")), 4));
        let actions = dir.join("actions");
        if !actions.is_dir() {
            continue;
        }
        let _ = writeln!(out, "  resource.customizations.actions.lyncdr.io_{kind}: |");
        out.push_str("    discovery.lua: |\n");
        out.push_str(&indent(&read(&actions.join("discovery.lua")), 6));
        out.push_str("    definitions:\n");
        let mut names: Vec<String> = std::fs::read_dir(&actions)
            .expect("actions/")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("action.lua").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let _ = writeln!(out, "      - name: {name}\n        action.lua: |");
            out.push_str(&indent(&read(&actions.join(&name).join("action.lua")), 10));
        }
    }
    out
}

#[test]
fn argocd_cm_is_in_sync_with_the_scripts() {
    let path = root().join("argocd/argocd-cm.yaml");
    let want = render_argocd_cm();
    if std::env::var("LYNCDR_UPDATE_ARGOCD_CM").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).expect("write argocd/argocd-cm.yaml");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "argocd/argocd-cm.yaml is out of date with argocd/resource_customizations; refresh it with\n    LYNCDR_UPDATE_ARGOCD_CM=1 cargo test --release --test argocd_lua"
    );

    // And it says what the files say, as Argo CD will read it.
    let cm = yaml(&path);
    let data = &cm["data"];
    for kind in KINDS {
        let dir = customizations().join(kind);
        assert_eq!(
            data[format!("resource.customizations.health.lyncdr.io_{kind}")].as_str(),
            Some(read(&dir.join("health.lua")).as_str()),
            "{kind} health"
        );
        let Some(actions) = data.get(format!("resource.customizations.actions.lyncdr.io_{kind}")).and_then(Value::as_str) else {
            assert!(!dir.join("actions").exists(), "{kind}: actions missing from argocd-cm.yaml");
            continue;
        };
        let actions: Value = serde_saphyr::from_str(actions).unwrap_or_else(|e| panic!("{kind} actions: {e}"));
        assert_eq!(actions["discovery.lua"].as_str(), Some(read(&dir.join("actions/discovery.lua")).as_str()), "{kind} discovery");
        for d in items(&actions, "definitions") {
            let name = str_of(d, "name", kind);
            assert_eq!(
                d["action.lua"].as_str(),
                Some(read(&dir.join("actions").join(name).join("action.lua")).as_str()),
                "{kind} action {name}"
            );
        }
    }
}

#[test]
fn lua_literals_escape_strings() {
    let v = serde_json::json!({"a\"b": ["x\\y\n", 1, 2.5, true], "gone": null});
    assert_eq!(lua(&v), r#"{["a\"b"] = {"x\\y\n", 1, 2.5, true}}"#);
    assert_eq!(lua_string("tab\there\u{1}"), "\"tab\\there\\001\"");
}
