//! Shared helpers of the WinRM integration tests: where the third-party fixtures are
//! (`scripts/winrm-fixtures.sh` exports them), and the skip-or-fail rule: without them a test
//! prints why and passes, unless `LYNCDR_REQUIRE_WINRM=1`, which makes their absence a failure.
#![allow(dead_code)]

use std::path::PathBuf;

fn required() -> bool {
    std::env::var("LYNCDR_REQUIRE_WINRM").is_ok_and(|v| v == "1")
}

fn from_env(var: &str, test: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        other => {
            let why = match other {
                Some(p) => format!("{var}={} does not exist", p.display()),
                None => format!("{var} is not set (eval \"$(bash scripts/winrm-fixtures.sh)\")"),
            };
            assert!(!required(), "LYNCDR_REQUIRE_WINRM=1 but {why}");
            eprintln!("note: skipping {test}: {why}");
            None
        }
    }
}

/// The Python interpreter of the venv with pywinrm, pypsrp and pyspnego.
pub fn python(test: &str) -> Option<PathBuf> {
    from_env("LYNCDR_WINRM_PYTHON", test)
}

/// pypsrp's captured responses directory.
pub fn pypsrp_responses(test: &str) -> Option<PathBuf> {
    from_env("LYNCDR_PYPSRP_RESPONSES", test)
}

/// A helper script under tests/winrm/.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/winrm").join(name)
}
