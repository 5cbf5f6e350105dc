#!/usr/bin/env bash
# The full `lyncdr bench` with the operator on the tests' real apiserver (docs/benchmarks.md):
# builds or reuses the control-plane binaries, runs the bench test with LYNCDR_BENCH_FULL=1 and
# prints every table; the charts are written to target/bench-charts.
set -euo pipefail
cd "$(dirname "$0")/.."
export LYNCDR_CACHE="${LYNCDR_CACHE:-$HOME/.cache/lyncdr}"
KUBEBUILDER_ASSETS="$(bash scripts/control-plane.sh)"
export KUBEBUILDER_ASSETS LYNCDR_BENCH_FULL=1 LYNCDR_REQUIRE_CONTROL_PLANE=1
cargo test --release --test bench_cli -- --nocapture
