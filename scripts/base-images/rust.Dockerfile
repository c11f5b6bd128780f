# Offline stand-in for the official rust:<version>-slim-bookworm image, built by
# scripts/build-base-images.sh. Same environment as the official image; the
# toolchain is copied from the host's rustup installation instead of being
# downloaded by rustup-init (the build context holds rustup/ and cargo/).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG RUST_VERSION
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH \
    RUST_VERSION=${RUST_VERSION}

# Linker/C toolchain needed by rustc and by crates with build scripts / cc, and
# make (beyond the official image), so the project's builds need no apt-get.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make; \
    rm -rf /var/lib/apt/lists/*

# usr-local/ holds rustup/ (RUSTUP_HOME) and cargo/ (CARGO_HOME). Modes (a+w,
# like the official image's chmod -R) are prepared in the context: a chmod layer
# would duplicate the whole toolchain, and copying the parent directory keeps
# the mode of /usr/local/rustup and /usr/local/cargo themselves.
COPY usr-local/ /usr/local/

RUN set -eux; \
    rustup --version; \
    cargo --version; \
    rustc --version; \
    rustc --version | grep -q "^rustc ${RUST_VERSION} "; \
    rustup component list --installed

# Certificate authorities the host added itself (copied into usr-local/share by
# the script, if any) join the system store that cargo uses.
RUN update-ca-certificates
