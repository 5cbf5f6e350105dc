#!/usr/bin/env bash
# Builds the integration tests' real control plane, kube-apiserver and etcd, from the Go wrapper
# modules in tests/controlplane/ (Go module proxy only: no release downloads, no containers), once
# per version, into
#
#   ${LYNCDR_CACHE:-~/.cache/lyncdr}/controlplane/k8s-<version>_etcd-<version>/
#
# and prints that directory, and nothing else, on stdout:
#
#   KUBEBUILDER_ASSETS="$(bash scripts/control-plane.sh)"
#
# Later runs find the binaries and only print the directory (no Go command runs then). Progress and
# all of Go's output go to stderr. The Go module and build caches live under LYNCDR_CACHE as well
# (tests/controlplane/goenv.sh), never inside the repository.
#
# A cold build takes tens of minutes on two cores; parallelism is capped (LYNCDR_GO_PARALLEL,
# default 2 packages at a time) and the compiler runs under `nice`, so it does not starve other
# builds on the machine. Concurrent callers wait for one build instead of racing.
#
# To move to another Kubernetes or etcd version, run tests/controlplane/gen-gomod.sh and commit.
set -euo pipefail
exec 3>&1 1>&2 # fd 3 is the real stdout: it gets the result line and nothing else

root="$(cd "$(dirname "$0")/.." && pwd)"
wrappers="$root/tests/controlplane"
# shellcheck source=tests/controlplane/goenv.sh
. "$wrappers/goenv.sh"

# The version at which go.mod $1 requires module $2 (single-line `require` or inside a block).
required() {
	awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit }
		($1 == m && $2 ~ /^v[0-9]/) { print $2; exit }' "$1"
}
kube="$(required "$wrappers/kube-apiserver/go.mod" k8s.io/kubernetes)"
etcd="$(required "$wrappers/etcd/go.mod" go.etcd.io/etcd/server/v3)"
if [ -z "$kube" ] || [ -z "$etcd" ]; then
	echo "control-plane.sh: cannot read the versions from tests/controlplane/*/go.mod" >&2
	exit 1
fi

out="$LYNCDR_CACHE/controlplane/k8s-${kube#v}_etcd-${etcd#v}"
mkdir -p "$out"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$out/.lock"
	flock 9
fi

minor="${kube#v1.}"
minor="${minor%%.*}"
# Version stamps as upstream's hack/lib/version.sh sets them; without them /version reports
# v0.0.0-master, which clients that parse the server version (kubectl, kube-rs) would see.
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	kube_ldflags+=" -X $pkg.gitTreeState=clean"
done
etcd_ldflags="-s -w" # etcd's version is compiled in (go.etcd.io/etcd/api/v3/version)

# build NAME LDFLAGS EXPECTED_VERSION_TEXT: builds tests/controlplane/NAME into $out/NAME unless
# a binary built from the same inputs (wrapper go.mod, go.sum, main.go and link flags) is there.
build() {
	local name="$1" ldflags="$2" expect="$3" dir="$wrappers/$1" inputs started reported
	inputs="$(cat "$dir/go.mod" "$dir/go.sum" "$dir/main.go" <(echo "$ldflags") | sha256sum | cut -d' ' -f1)"
	if [ -x "$out/$name" ] && [ "$(cat "$out/.$name.inputs" 2>/dev/null)" = "$inputs" ]; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || {
		echo "control-plane.sh: Go is needed to build $name" >&2
		return 1
	}
	echo "control-plane.sh: building $name ($expect) with $(go version | cut -d' ' -f3) into $out" >&2
	echo "control-plane.sh: the first build downloads modules and may take 20+ minutes" >&2
	started="$SECONDS"
	(
		cd "$dir"
		nice -n 10 go build -trimpath -p "${LYNCDR_GO_PARALLEL:-2}" -ldflags "$ldflags" \
			-o "$out/$name.tmp" .
	)
	# A binary that does not report the expected version is never installed.
	reported="$("$out/$name.tmp" --version 2>&1)" || true
	if [[ "$reported" != *"$expect"* ]]; then
		echo "control-plane.sh: $out/$name.tmp --version does not report '$expect' but:" >&2
		echo "$reported" >&2
		return 1
	fi
	mv -f "$out/$name.tmp" "$out/$name" # atomic: an interrupted build never leaves a usable half
	echo "$inputs" >"$out/.$name.inputs"
	echo "control-plane.sh: built $name in $((SECONDS - started)) s, $(du -h "$out/$name" | cut -f1)" >&2
}

build etcd "$etcd_ldflags" "etcd Version: ${etcd#v}"
build kube-apiserver "$kube_ldflags" "Kubernetes $kube"

echo "$out" >&3
