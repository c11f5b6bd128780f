# Production image of page-tracker.
# The builder checks formatting, lints and runs the unit-level specification
# before it builds the shipped binary: a failing check fails the build.

ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- Build tools: make (for jemalloc), the toolchain's linters and cargo-chef for
#     dependency caching.
FROM ${RUST_IMAGE} AS chef
# make builds jemalloc, the service's allocator, from its C sources. The official
# image lacks it; the one scripts/build-base-images.sh builds has it (no apt-get needed).
RUN if ! command -v make >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends make=4.3-4.1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && rustup component add clippy rustfmt \
    && cargo install cargo-chef --locked --version 0.1.78 \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /build

# --- A recipe of the dependencies only, so they are rebuilt only when the manifests change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- Dependencies (cached layers), then checks and the shipped binary (profile dist).
FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
# Release artefacts serve the tests; check artefacts serve clippy.
RUN cargo chef cook --locked --release --all-targets --recipe-path recipe.json \
    && cargo chef cook --locked --check --all-targets --recipe-path recipe.json
# The shipped binary is built with the dist profile (link-time optimisation); its
# dependencies get a cached layer of their own.
RUN cargo chef cook --locked --profile dist --bin page-tracker --recipe-path recipe.json
COPY . .
# The revision the binary reports in page_tracker_build_info.
ARG REVISION=unknown
RUN cargo fmt --check \
    && cargo clippy --locked --all-targets -- -D warnings \
    && cargo test --locked --release --test bdd -- --level unit \
    && PAGE_TRACKER_REVISION="${REVISION}" cargo build --locked --profile dist --bin page-tracker

# --- Runtime: the binary alone, as an unprivileged user.
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
RUN groupadd --system --gid 10001 page-tracker \
    && useradd --system --uid 10001 --gid page-tracker --no-create-home --shell /usr/sbin/nologin page-tracker
COPY --from=builder /build/target/dist/page-tracker /usr/local/bin/page-tracker
USER 10001:10001
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
