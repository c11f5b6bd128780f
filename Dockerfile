# The images of page-tracker, built from one builder so the dependencies compile once:
#
#   runtime (the default, last stage)  the service alone on distroless, as nonroot
#   test                               the compiled specification runner for the e2e level
#
# The builder checks formatting, lints and runs the unit-level specification before
# it builds the shipped binary: a failing check fails the build.

# cargo-chef's official image: the official rust image with cargo-chef in it.
ARG CHEF_IMAGE=lukemathwalker/cargo-chef:0.1.77-rust-1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# --- Build tools: make (for jemalloc) and the toolchain's linters.
FROM ${CHEF_IMAGE} AS chef
# make builds jemalloc, the service's allocator, from its C sources. The official
# image lacks it; the one scripts/build-base-images.sh builds has it (no apt-get needed).
RUN if ! command -v make >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends make=4.3-4.1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && rustup component add clippy rustfmt
WORKDIR /build

# --- A recipe of the dependencies only, so they are rebuilt only when the manifests change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- Dependencies (a cached layer), then the checks, the unit level and the shipped
#     binary. Each dependency is compiled in the two ways its uses need: as the tests
#     build it (debug, quick to compile) and as the binary ships it (dist: whole-program
#     LTO, and without the features the test dependencies widen, such as tokio's
#     test-util clock). Cooked here, neither is compiled again on a change in the
#     sources. Only the shipped binary has the jemalloc feature: its C build is the
#     longest single piece, and the tests do not need it (the host's `cargo clippy`
#     still lints that code).
FROM chef AS builder
# pipefail: a failing cargo must fail the RUN, not vanish into the pipe.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Warnings are errors in the project's own code (cargo caps the dependencies' lints).
# Set for the cooks as well: the flags are part of what makes a compiled dependency
# reusable.
ENV RUSTFLAGS="-D warnings"
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --locked --all-targets --no-default-features --recipe-path recipe.json \
    && cargo chef cook --locked --profile dist --bin page-tracker --recipe-path recipe.json
COPY . .
# The revision the binary reports in page_tracker_build_info.
ARG REVISION=unknown
# Clippy lints while the tests compile: cargo runs clippy-driver as the compiler of
# the project's own crates (RUSTC_WORKSPACE_WRAPPER, as `cargo clippy` does for its
# check build), so clippy needs no build of the dependencies of its own. cargo names
# the test binary with a hash; it is copied to a fixed path for the test image.
RUN cargo fmt --check \
    && export RUSTC_WORKSPACE_WRAPPER=clippy-driver \
    && cargo test --locked --no-default-features --all-targets --no-run \
        --message-format=json-render-diagnostics \
        | sed -n 's/.*"executable":"\([^"]*\/bdd-[^"]*\)".*/\1/p' > bdd-path \
    && test -s bdd-path \
    && cargo test --locked --no-default-features --test bdd -- --level unit \
    && unset RUSTC_WORKSPACE_WRAPPER \
    && PAGE_TRACKER_REVISION="${REVISION}" cargo build --locked --profile dist --bin page-tracker \
    && mkdir -p out/reports \
    && cp "$(cat bdd-path)" out/bdd \
    && cp target/dist/page-tracker out/page-tracker

# --- The e2e test-service: the runner and the features, run as nonroot, writing its
#     reports to /reports. No compiler, no shell.
FROM ${RUNTIME_IMAGE} AS test
COPY --from=builder /build/out/bdd /usr/local/bin/bdd
COPY features /features
COPY --from=builder --chown=65532:65532 /build/out/reports /reports
USER 65532:65532
ENV BDD_FEATURES=/features \
    BDD_REPORT_DIR=/reports \
    BDD_LEVEL=e2e
ENTRYPOINT ["bdd"]

# --- Runtime: the binary, the C library it links and CA certificates; as nonroot
#     (65532), with no shell or package manager.
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="page-tracker" \
      org.opencontainers.image.description="Counts page views in Redis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /build/out/page-tracker /usr/local/bin/page-tracker
USER 65532:65532
# Metrics for Prometheus on 9000: reached inside the container network only, so
# it is not EXPOSEd (`docker run -P` would publish it).
ENV PAGE_TRACKER_BIND=0.0.0.0:8000 \
    METRICS_BIND=0.0.0.0:9000 \
    REDIS_URL=redis://localhost:6379
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["page-tracker", "--healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["page-tracker"]
