//! Finding the helm binary for the chart tests: `$LYNCDR_HELM_DIR` (what `scripts/helm.sh` builds
//! and prints) or PATH. Without it the tests skip, saying why, unless `LYNCDR_REQUIRE_HELM=1`
//! (set by `scripts/test.sh` once it has built helm), when they fail instead.

use std::path::{Path, PathBuf};

/// The helm binary, or `None` (with the reason printed) when the test should be skipped.
pub fn helm() -> Option<PathBuf> {
    let exe = |dir: &Path| Some(dir.join("helm")).filter(|p| p.is_file());
    let found = std::env::var_os("LYNCDR_HELM_DIR")
        .and_then(|d| exe(Path::new(&d)))
        .or_else(|| std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find_map(|d| exe(&d))));
    if found.is_none() {
        let reason = "helm not found in $LYNCDR_HELM_DIR or PATH; build it with `export LYNCDR_HELM_DIR=\"$(bash scripts/helm.sh)\"`";
        assert!(std::env::var("LYNCDR_REQUIRE_HELM").map_or(true, |v| v != "1"), "LYNCDR_REQUIRE_HELM=1 but {reason}");
        eprintln!("skipped: {reason}");
    }
    found
}
