#!/usr/bin/env bash
# Runs every Argo CD health-check, action-discovery and action test of
# argocd/resource_customizations/lyncdr.io with a plain Lua 5.4 interpreter.
#
# The fixtures stay YAML (Argo CD's own layout); tests/argocd_lua.rs converts them into Lua
# tables and runs argocd/test/runner.lua, which loads each health.lua / discovery.lua /
# action.lua with the fixture as the global `obj`, as Argo CD does. It also checks the layout
# and that argocd/argocd-cm.yaml matches the scripts.
#
# Needs lua5.4 (Debian: apt-get install -y lua5.4). After one run, a Lua-only change can be
# re-checked without cargo:
#   lua5.4 argocd/test/runner.lua target/tmp/argocd-lua-suite.lua
# (the suite embeds the fixtures: re-run this script after changing a fixture).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v "${LYNCDR_LUA:-lua5.4}" >/dev/null 2>&1; then
  echo "test-lua.sh: ${LYNCDR_LUA:-lua5.4} not found; install it with: apt-get install -y lua5.4" >&2
  exit 1
fi
LYNCDR_REQUIRE_LUA=1 exec cargo test --release --test argocd_lua -- --nocapture "$@"
