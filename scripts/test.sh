#!/usr/bin/env bash
# The whole test suite, as CI runs it. Safe to run repeatedly: heavy dependencies (the Go-built
# kube-apiserver, etcd and helm; Lua; the Python WinRM clients) are built or installed once,
# cached outside the repository (LYNCDR_CACHE, default ~/.cache/lyncdr), and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

export LYNCDR_CACHE="${LYNCDR_CACHE:-$HOME/.cache/lyncdr}"
mkdir -p "$LYNCDR_CACHE"

# Lua 5.4 for the Argo CD health-check and action tests (tests/argocd_lua.rs).
if ! command -v lua5.4 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing lua5.4 (Debian package) for the Argo CD tests" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >&2
  fi
fi
if command -v lua5.4 >/dev/null 2>&1; then
  export LYNCDR_REQUIRE_LUA=1
else
  echo "note: lua5.4 is not available; the Argo CD Lua tests will be skipped" >&2
fi

if command -v go >/dev/null 2>&1; then
  # Real Kubernetes control plane (kube-apiserver + etcd) and helm, built from the Go module proxy.
  KUBEBUILDER_ASSETS="$(bash scripts/control-plane.sh)"
  LYNCDR_HELM_DIR="$(bash scripts/helm.sh)"
  export KUBEBUILDER_ASSETS LYNCDR_HELM_DIR LYNCDR_REQUIRE_HELM=1
else
  echo "note: Go is not installed; the real-apiserver and helm tests will be skipped" >&2
fi

# WinRM transport tests: pypsrp's captured exchanges and the Python WinRM clients, from PyPI.
if WINRM_ENV="$(bash scripts/winrm-fixtures.sh)"; then
  eval "$WINRM_ENV"
  export LYNCDR_REQUIRE_WINRM=1
else
  echo "note: WinRM fixtures unavailable; the pywinrm/pypsrp/pyspnego tests will be skipped" >&2
fi

cargo test --release --all-targets
