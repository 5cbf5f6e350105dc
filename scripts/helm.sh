#!/usr/bin/env bash
# Builds helm (v3) from source with the Go toolchain, once, into
#   ${LYNCDR_CACHE:-$HOME/.cache/lyncdr}/helm/<version>/helm
# and prints that directory on stdout (progress goes to stderr). Idempotent: a second run only
# checks the binary and prints the directory.
#
# Helm is not packaged for our machines and nothing may be downloaded except through package
# registries, so the binary comes from the Go module proxy (`go install module@version`).
#
# Usage:  HELM_DIR="$(bash scripts/helm.sh)" && export LYNCDR_HELM_DIR="$HELM_DIR"
# Env:    LYNCDR_HELM_VERSION  (default below; the newest v3 the Go module proxy serves, <= v3.22.0)
#         LYNCDR_CACHE         (default ~/.cache/lyncdr)
set -euo pipefail

version="${LYNCDR_HELM_VERSION:-v3.22.0}"
cache="${LYNCDR_CACHE:-$HOME/.cache/lyncdr}"
dir="$cache/helm/$version"
bin="$dir/helm"

log() { echo "helm.sh: $*" >&2; }

# Already built (the stamp is written last, after a complete build with the flags below): check
# that it runs and reports the expected version, then we are done.
if [ -f "$dir/.built" ] && [ -x "$bin" ] \
  && "$bin" version --template '{{.Version}}' 2>/dev/null | grep -qx "$version"; then
  echo "$dir"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "the Go toolchain is needed to build helm $version (go not found on PATH)"
  exit 1
fi

mkdir -p "$dir"
# Build into a temporary GOBIN next to the final one and move the binary into place at the end,
# so an interrupted build never leaves a half-written helm that looks usable.
tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "building helm $version with $(go version | cut -d' ' -f3) (a cold build takes several minutes)"
start=$(date +%s)

# helm's Makefile stamps the Kubernetes version it was built against (its client-go minor), which
# `helm template` and `helm lint` use as the cluster version when they have no cluster. Without
# it they assume v1.20, older than our CRDs need (Chart.yaml kubeVersion). Do the same.
gomod="$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
k8s_minor="$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2] }' "$gomod")"
if [ -z "$k8s_minor" ]; then
  log "cannot find helm's k8s.io/client-go version in $gomod"
  exit 1
fi
k8s_flags="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
k8s_flags="$k8s_flags -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
# -p 2: the machines have 2 cores and other builds run at the same time.
# -trimpath and -s -w: smaller binary, less linker work, reproducible paths.
# The version is stamped the way helm's Makefile does, so `helm version` reports it.
GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" CGO_ENABLED=0 \
  go install -p 2 -trimpath \
    -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version $k8s_flags" \
    "helm.sh/helm/v3/cmd/helm@$version" >&2
mv -f "$tmp/helm" "$bin"
touch "$dir/.built"
log "built $bin (for Kubernetes 1.$k8s_minor) in $(( $(date +%s) - start ))s"

"$bin" version --short >&2
echo "$dir"
