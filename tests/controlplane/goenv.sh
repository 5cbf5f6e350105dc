# shellcheck shell=bash
# Sourced (not run) by gen-gomod.sh and scripts/control-plane.sh, so that both use the same Go
# environment for the control-plane wrapper modules. Everything Go downloads or compiles goes under
# LYNCDR_CACHE (default ~/.cache/lyncdr), never into the repository.

export LYNCDR_CACHE="${LYNCDR_CACHE:-$HOME/.cache/lyncdr}"
mkdir -p "$LYNCDR_CACHE"
LYNCDR_CACHE="$(cd "$LYNCDR_CACHE" && pwd)" # Go insists on absolute cache paths

# Never switch to a downloaded toolchain: build with the installed Go or fail loudly.
export GOTOOLCHAIN=local
# Pure-Go static binaries, as upstream ships them.
export CGO_ENABLED=0
# A go.work somewhere above the checkout must not leak into these modules.
export GOWORK=off
export GOMODCACHE="$LYNCDR_CACHE/go/mod"
export GOCACHE="$LYNCDR_CACHE/go/build"
# -modcacherw: a plain `rm -rf "$LYNCDR_CACHE"` can delete the module cache.
# -mod=readonly: building must never rewrite the committed go.mod/go.sum.
export GOFLAGS="-modcacherw -mod=readonly -buildvcs=false"
