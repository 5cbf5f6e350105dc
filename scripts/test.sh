#!/usr/bin/env bash
# The whole test suite, as CI runs it. Safe to run repeatedly: heavy dependencies (the Go-built
# kube-apiserver, etcd and helm; the Python WinRM clients) are built or installed once into a
# cache outside the repository (LYNCDR_CACHE, default ~/.cache/lyncdr) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

export LYNCDR_CACHE="${LYNCDR_CACHE:-$HOME/.cache/lyncdr}"
mkdir -p "$LYNCDR_CACHE"

# Real Kubernetes control plane for the integration suite (skipped, with a reason, without Go).
if [ -f scripts/control-plane.sh ]; then
  if command -v go >/dev/null 2>&1; then
    KUBEBUILDER_ASSETS="$(bash scripts/control-plane.sh)"
    export KUBEBUILDER_ASSETS
  else
    echo "note: Go is not installed; the real-apiserver tests will be skipped" >&2
  fi
fi

cargo test --release --all-targets -- --nocapture 2>&1
