# Offline stand-in for cargo-chef's official image,
# lukemathwalker/cargo-chef:<cargo-chef version>-rust-<rust image tag>, built by
# scripts/build-base-images.sh: the rust image with cargo-chef from its crates.io
# release in CARGO_HOME's bin, nothing else. Built without optimisation: it only
# plans and starts cargo.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

ARG CARGO_CHEF_VERSION
RUN set -eux; \
    test -n "${CARGO_CHEF_VERSION}"; \
    cargo install cargo-chef --locked --debug --version "${CARGO_CHEF_VERSION}"; \
    rm -rf "${CARGO_HOME}/registry"; \
    version="$(cargo chef --version)"; \
    case "${version}" in \
        *" ${CARGO_CHEF_VERSION}") ;; \
        *) echo "cargo chef --version says '${version}', expected ${CARGO_CHEF_VERSION}" >&2; exit 1 ;; \
    esac
