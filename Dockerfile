# syntax=docker/dockerfile:1
#
# The lyncdr operator image: a static musl binary on distroless static, running as non-root.
#
#   docker build -t lyncdr:0.1.0 .
#   docker run --rm lyncdr:0.1.0 --help
#
# Untested here: the development machines have no container engine, so this file has never been
# built by us. Keep it boring. The Helm chart (charts/lyncdr) runs it as UID/GID 65532 with a
# read-only root filesystem, and passes `run` plus flags as args (overriding CMD).

# --- build: static binary for x86_64-unknown-linux-musl ------------------------------------------
FROM docker.io/library/rust:1.95-bookworm AS build

# musl-gcc compiles ring's C and assembly for the musl target (rustls; no OpenSSL anywhere).
# Linking needs nothing more: Rust's musl target brings its own C runtime and links statically.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
ENV CC_x86_64_unknown_linux_musl=musl-gcc

WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary is copied out of
# the cached target directory because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin lyncdr \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/lyncdr /out/lyncdr

# --- runtime: no shell, no package manager; CA certificates and a nonroot user (65532) ----------
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/lyncdr /lyncdr
USER 65532:65532
# /metrics, /healthz, /readyz (--metrics-addr).
EXPOSE 8080
ENTRYPOINT ["/lyncdr"]
CMD ["run"]
