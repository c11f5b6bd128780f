#!/usr/bin/env bash
# Make sure the Docker base images used by page-tracker exist locally:
#
#   debian:bookworm-slim        rust:1.95.0-slim-bookworm        redis:7.0.15-bookworm
#   lukemathwalker/cargo-chef:0.1.77-rust-1.95.0-slim-bookworm (the image builds' first stage)
#   haproxy:2.6-bookworm        (the load balancer in front of the service's replicas)
#   gcr.io/distroless/cc-debian12:nonroot
#   prom/prometheus:v2.42.0     oliver006/redis_exporter:v1.45.0 (the monitoring profile)
#
# For each image: present locally -> nothing to do; otherwise `docker pull` (short
# timeout); if the registry is unreachable, build it from Debian's package archive:
#   * debian  : debootstrap --variant=minbase from deb.debian.org, slimmed like the
#               official image (no docs/man/locales, apt "docker-*" config), plus
#               bookworm-updates/-security upgrades, then `docker import`.
#   * redis   : FROM that image, Debian's redis-server package (scripts/base-images/).
#   * rust    : FROM that image, gcc/libc6-dev + the host's rustup toolchain copy.
#   * cargo-chef: FROM the rust image, cargo-chef from its crates.io release.
#   * haproxy : FROM that image, Debian's haproxy package (scripts/base-images/).
#   * distroless: Debian's libc6, libgcc-s1, tzdata, ... unpacked FROM scratch, with the
#               official image's users, CA bundle and os-release (scripts/base-images/).
#   * prometheus, redis-exporter : FROM that image, Debian's prometheus and
#               prometheus-redis-exporter packages in the official images' layout.
# Names/tags are exactly the upstream ones so Dockerfiles, compose and
# testcontainers need no change. Run with --help for options.
set -euo pipefail

# ---- pinned versions (change deliberately) -----------------------------------
DEBIAN_SUITE="bookworm"                       # Debian 12
DEBIAN_MIRROR="http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR="http://deb.debian.org/debian-security"
REDIS_VERSION="7.0.15"                        # upstream version of bookworm's redis-server (5:7.0.15-1~deb12uN)
RUST_VERSION="1.95.0"                         # must equal the host's `rustc --version`
RUST_EXTRA_COMPONENTS="clippy rustfmt"        # must be installed in the host toolchain
RUST_DROP_COMPONENTS="rust-docs"              # ~800 MB of HTML; not in the official image either
CARGO_CHEF_VERSION="0.1.77"                   # the newest with an official image for Rust 1.95.0
HAPROXY_BRANCH="2.6"                          # the official image's tag names the branch
HAPROXY_VERSION="2.6.12"                      # upstream version of bookworm's haproxy (2.6.12-1+deb12uN)
GLIBC_VERSION="2.36"                          # upstream version of bookworm's libc6 (2.36-9+deb12uN)
DISTROLESS_PACKAGES="base-files netbase tzdata libc6 libgcc-s1"   # + the CA bundle of ca-certificates
PROMETHEUS_VERSION="2.42.0"                   # bookworm's prometheus (2.42.0+ds-5+deb12uN)
REDIS_EXPORTER_VERSION="1.45.0"               # bookworm's prometheus-redis-exporter (1.45.0-2+bN)

DEBIAN_IMAGE="debian:${DEBIAN_SUITE}-slim"
RUST_IMAGE="rust:${RUST_VERSION}-slim-${DEBIAN_SUITE}"
CARGO_CHEF_IMAGE="lukemathwalker/cargo-chef:${CARGO_CHEF_VERSION}-rust-${RUST_VERSION}-slim-${DEBIAN_SUITE}"
REDIS_IMAGE="redis:${REDIS_VERSION}-${DEBIAN_SUITE}"
HAPROXY_IMAGE="haproxy:${HAPROXY_BRANCH}-${DEBIAN_SUITE}"
DISTROLESS_IMAGE="gcr.io/distroless/cc-debian12:nonroot"
PROMETHEUS_IMAGE="prom/prometheus:v${PROMETHEUS_VERSION}"
REDIS_EXPORTER_IMAGE="oliver006/redis_exporter:v${REDIS_EXPORTER_VERSION}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"            # seconds per `docker pull` attempt
BUILT_BY_LABEL="org.page-tracker.built-by=scripts/build-base-images.sh"
SMOKE_LABEL="org.page-tracker.build-base-images.smoke=1"   # on our test containers

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELPER_DIR="${SCRIPT_DIR}/base-images"
PROG="$(basename "$0")"

usage() {
    cat <<EOF
Usage: ${PROG} [options] [debian|rust|cargo-chef|redis|haproxy|distroless|prometheus|redis-exporter ...]

Ensure these images exist locally (default: all of them):
  ${DEBIAN_IMAGE}
  ${RUST_IMAGE}
  ${CARGO_CHEF_IMAGE}
  ${REDIS_IMAGE}
  ${HAPROXY_IMAGE}
  ${DISTROLESS_IMAGE}
  ${PROMETHEUS_IMAGE}
  ${REDIS_EXPORTER_IMAGE}

An image that already exists is left alone. A missing one is pulled
(timeout ${PULL_TIMEOUT}s); if the pull fails it is built locally from Debian's
package archive (${DEBIAN_MIRROR}) and the host's Rust ${RUST_VERSION} toolchain
(cargo-chef from its crates.io release).

Options:
  -f, --force     rebuild locally even if the image exists (no pull attempt)
      --no-pull   never try the registry; build missing images locally
  -v, --verbose   stream debootstrap/apt/docker build output (default: quiet,
                  the tail of the failing step's log is shown on error)
  -h, --help      show this help

Environment: PULL_TIMEOUT (default 60), TMPDIR (work dir, default /var/tmp),
RUSTUP_HOME (host toolchains, default ~/.rustup).
Needs root (debootstrap, chroot) only when ${DEBIAN_IMAGE} has to be built.
EOF
}

# ---- logging / errors --------------------------------------------------------
log() { printf '%s [build-base-images] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s [build-base-images] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

FORCE=0 NO_PULL=0 VERBOSE=0
WANT=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        -f|--force) FORCE=1 ;;
        --no-pull) NO_PULL=1 ;;
        -v|--verbose) VERBOSE=1 ;;
        debian|rust|cargo-chef|redis|haproxy|distroless|prometheus|redis-exporter) WANT+=("$1") ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[ ${#WANT[@]} -gt 0 ] || WANT=(debian redis rust cargo-chef haproxy distroless prometheus redis-exporter)
wanted() { local w; for w in "${WANT[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

# ---- temp dir, cleanup, interruption safety ----------------------------------
# Everything is built under one temp dir (removed on exit), images are built
# untagged (by ID) and only tagged after a smoke test, so an interrupted run
# never leaves a half-built image under a final name; rerunning just redoes it.
WORK=""
CURRENT_LOG=""          # log of the step in progress (tail shown on failure)
STEP_PID=""             # process (group) id of the step in progress
CONTAINERS=()           # smoke-test containers to remove
PENDING_IMAGES=()       # built but not yet tagged: removed if we fail

cleanup() {
    local rc=$? m c i
    trap - EXIT INT TERM
    if [ -n "$STEP_PID" ]; then
        log "interrupted: stopping the running step"
        kill -TERM -- "-$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
        CURRENT_LOG=""
    fi
    if [ "$rc" -ne 0 ] && [ -n "$CURRENT_LOG" ] && [ -s "$CURRENT_LOG" ]; then
        printf -- '----- last lines of %s -----\n' "$(basename "$CURRENT_LOG")" >&2
        tail -n 40 "$CURRENT_LOG" >&2 || true
        printf -- '-----\n' >&2
    fi
    for c in ${CONTAINERS[@]+"${CONTAINERS[@]}"}; do docker rm -f -v "$c" >/dev/null 2>&1 || true; done
    # our /proc mount and, after an interrupted debootstrap, its own mounts
    if [ -n "$WORK" ]; then
        for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
    fi
    for i in ${PENDING_IMAGES[@]+"${PENDING_IMAGES[@]}"}; do docker rmi "$i" >/dev/null 2>&1 || true; done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then rm -rf --one-file-system "$WORK" || true; fi
    [ "$rc" -eq 0 ] || log "failed (exit $rc); nothing was tagged by the failing step"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

workdir() {
    if [ -z "$WORK" ]; then
        WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/build-base-images.XXXXXX")"
    fi
}

# Run "$@" with output to $WORK/<name>.log (or the terminal with --verbose).
# It runs in its own process group and is waited for, so that on SIGINT/SIGTERM
# cleanup() runs at once and stops the whole step (debootstrap's dpkg, docker
# build, ...) instead of waiting for it. A failing step makes `wait` fail, so
# `set -e` exits through cleanup(), which prints the log tail.
step() {
    local name="$1"; shift
    workdir
    CURRENT_LOG="$WORK/$name.log"
    if [ "$VERBOSE" -eq 1 ]; then
        setsid "$@" > >(tee "$CURRENT_LOG" >&2) 2>&1 &
    else
        setsid "$@" >"$CURRENT_LOG" 2>&1 &
    fi
    STEP_PID=$!          # == its process group id (setsid, not a group leader)
    local rc=0
    wait "$STEP_PID" || rc=$?
    STEP_PID=""
    [ "$rc" -eq 0 ] || exit "$rc"
    CURRENT_LOG=""
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Remember a freshly built image for removal if we fail before tagging it, unless
# it is already tagged (a fully cached rebuild returns the existing image).
mark_pending() {
    PENDING_IMAGES=()
    if [ "$(docker image inspect -f '{{len .RepoTags}}' "$1")" = 0 ]; then PENDING_IMAGES=("$1"); fi
}

# Tag a verified image ID; drop the image the tag pointed to before if it is now
# unused (ignored if other tags or child images still need it).
tag_image() {
    local id="$1" name="$2" old=""
    old="$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)"
    docker tag "$id" "$name"
    PENDING_IMAGES=()
    if [ -n "$old" ] && [ "$old" != "$id" ]; then
        docker rmi "$old" >/dev/null 2>&1 || true
    fi
    log "tagged $name ($(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# Returns 0 if the image is (now) present without building.
present_or_pulled() {
    local name="$1"
    if [ "$FORCE" -eq 1 ]; then
        log "$name: --force given: rebuilding it locally"
        return 1
    fi
    if image_exists "$name"; then
        log "$name: present locally, nothing to do"
        return 0
    fi
    if [ "$NO_PULL" -eq 1 ]; then
        log "$name: not found locally, --no-pull: building it locally"
        return 1
    fi
    log "$name: not found locally, trying docker pull (timeout ${PULL_TIMEOUT}s)"
    workdir
    if timeout "$PULL_TIMEOUT" docker pull "$name" >"$WORK/pull.log" 2>&1; then
        log "$name: pulled from registry"
        return 0
    fi
    log "$name: not found locally, pull failed ($(tail -n 1 "$WORK/pull.log" | cut -c1-120)): building it locally"
    return 1
}

# An image needed only as another's base: one that exists is reused even with
# --force; a missing one is pulled or built with the function BUILD.
ensure_base() {
    local image="$1" build="$2" force="$FORCE"
    FORCE=0
    if ! present_or_pulled "$image"; then "$build"; fi
    FORCE="$force"
}

# ---- docker build networking ----------------------------------------------------
# Decision: rust/redis are built with `docker build` (layers shared with the
# debian base, Dockerfiles readable/reusable) rather than chroot+import. That
# needs RUN containers to reach deb.debian.org. On the reference machine the
# default bridge network has working DNS and HTTP (the daemon copies the host's
# resolv.conf), so no flag is needed; if the probe below fails (e.g. the host's
# resolver is 127.0.0.x, unreachable from the bridge) we retry with
# `--network host`, and only give up if that fails too. No proxy support: the
# archive is reached directly. The probe is a real (throwaway) `docker build`.
BUILD_NET_ARGS=()
BUILD_NET_CHECKED=0
mirror_host() { local h="${DEBIAN_MIRROR#*://}"; echo "${h%%/*}"; }

probe_build_network() {
    [ "$BUILD_NET_CHECKED" -eq 0 ] || return 0
    local host net iidfile id
    host="$(mirror_host)"
    workdir
    for net in default host; do
        iidfile="$WORK/probe.iid"; rm -f "$iidfile"
        if printf 'FROM %s\nRUN getent hosts %s && timeout 15 bash -c "exec 3<>/dev/tcp/%s/80"\n' \
                "$DEBIAN_IMAGE" "$host" "$host" \
            | docker build --network "$net" --force-rm --iidfile "$iidfile" - >"$WORK/probe-$net.log" 2>&1; then
            id="$(cat "$iidfile")"
            docker rmi "$id" >/dev/null 2>&1 || true
            if [ "$net" = host ]; then
                log "docker build containers cannot reach $host on the default bridge network; using --network host"
                BUILD_NET_ARGS=(--network host)
            else
                log "docker build containers reach $host on the default bridge network"
            fi
            BUILD_NET_CHECKED=1
            return 0
        fi
    done
    sed 's/^/    /' "$WORK/probe-default.log" >&2
    die "docker build containers cannot reach $host (neither bridge nor host network). Fix Docker's DNS (\"dns\" in /etc/docker/daemon.json) and rerun."
}

# ---- debian:bookworm-slim ---------------------------------------------------------
ensure_debootstrap() {
    [ "$(id -u)" -eq 0 ] || die "building $DEBIAN_IMAGE needs root (debootstrap/chroot)"
    if ! command -v debootstrap >/dev/null 2>&1 || [ ! -s /usr/share/keyrings/debian-archive-keyring.gpg ]; then
        log "installing debootstrap and debian-archive-keyring with apt-get"
        step apt-install-debootstrap sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap debian-archive-keyring'
    fi
}

# Slim the rootfs the way the official (debuerreotype) images are: apt/dpkg
# "docker-*" config, no docs/man/locales (also for later installs), no caches.
slim_rootfs() {
    local r="$1"
    printf '#!/bin/sh\n# no services are started inside image builds\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 0755 "$r/usr/sbin/policy-rc.d"
    printf 'force-unsafe-io\n' >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# slim image: keep docs, man pages and translations out (copyright files stay)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
    cat >"$r/etc/apt/apt.conf.d/docker-clean" <<EOF
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
    echo 'Acquire::GzipIndexes "true";' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"

    find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    local d
    for d in groff info linda lintian/overrides locale man; do
        if [ -d "$r/usr/share/$d" ]; then find "$r/usr/share/$d" -mindepth 1 -delete; fi
    done
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
           "$r"/var/cache/apt/archives/partial/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
           "$r"/var/cache/ldconfig/aux-cache "$r"/tmp/* "$r"/var/tmp/* "$r"/root/.bash_history
    find "$r/var/log" -type f -delete
    # host-specific files; docker bind-mounts its own at run time
    : >"$r/etc/resolv.conf"
    : >"$r/etc/hostname"
}

build_debian() {
    ensure_debootstrap
    workdir
    local r="$WORK/rootfs"
    log "$DEBIAN_IMAGE: debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (about 30 s)"
    step debootstrap debootstrap --variant=minbase --components=main \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$DEBIAN_SUITE" "$r" "$DEBIAN_MIRROR"

    # Same sources as the official image, then apply bookworm-updates/-security
    # (debootstrap only knows the main suite) inside a chroot.
    rm -f "$r/etc/apt/sources.list"
    cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${DEBIAN_MIRROR}
Suites: ${DEBIAN_SUITE} ${DEBIAN_SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_SECURITY_MIRROR}
Suites: ${DEBIAN_SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    slim_rootfs "$r"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    mountpoint -q "$r/proc" || mount -t proc proc "$r/proc"     # undone by cleanup() on failure
    log "$DEBIAN_IMAGE: applying ${DEBIAN_SUITE}-updates/-security upgrades in chroot"
    step upgrade chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update && apt-get -y -o Dpkg::Options::=--force-confold dist-upgrade'
    umount "$r/proc"
    slim_rootfs "$r"
    [ "$(cut -d. -f1 "$r/etc/debian_version")" = 12 ] || die "unexpected /etc/debian_version: $(cat "$r/etc/debian_version")"

    log "$DEBIAN_IMAGE: docker import ($(du -sh "$r" | cut -f1) rootfs)"
    local id
    id="$(tar --numeric-owner -C "$r" --exclude='./proc/*' --exclude='./sys/*' -c . \
        | docker import \
            --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "LABEL ${BUILT_BY_LABEL}" \
            --message "debootstrap --variant=minbase ${DEBIAN_SUITE} ${DEBIAN_MIRROR} (+updates/security), slimmed" -)"
    mark_pending "$id"
    rm -rf --one-file-system "$r"

    local v
    v="$(docker run --rm --network none "$id" cat /etc/debian_version)"
    log "$DEBIAN_IMAGE: smoke test ok (debian_version $v)"
    tag_image "$id" "$DEBIAN_IMAGE"
}

# build_from_helper NAME IMAGE DOCKERFILE [--entrypoint FILE] BUILD_ARG...: docker build
# FROM the Debian image with scripts/base-images/DOCKERFILE (and FILE, executable, beside
# it), each BUILD_ARG (KEY=VALUE) passed on; leaves the image id in $WORK/NAME.iid, its
# smoke test is the caller's.
build_from_helper() {
    local name="$1" image="$2" dockerfile="$3" base="$DEBIAN_IMAGE"
    shift 3
    probe_build_network
    workdir
    local ctx="$WORK/$name-ctx" arg args=()
    mkdir -p "$ctx"
    cp "$HELPER_DIR/$dockerfile" "$ctx/Dockerfile"
    if [ "${1:-}" = --from ]; then base="$2"; shift 2; fi
    if [ "${1:-}" = --entrypoint ]; then
        cp "$HELPER_DIR/$2" "$ctx/$2"
        chmod 0755 "$ctx/$2"
        shift 2
    fi
    for arg in "$@"; do args+=(--build-arg "$arg"); done
    log "$image: docker build FROM $base ($*)"
    step "$name-build" docker build ${BUILD_NET_ARGS[@]+"${BUILD_NET_ARGS[@]}"} --force-rm \
        --build-arg "BASE_IMAGE=$base" "${args[@]}" \
        --label "$BUILT_BY_LABEL" --iidfile "$WORK/$name.iid" "$ctx"
    mark_pending "$(cat "$WORK/$name.iid")"
}

# ---- redis:7.0.15-bookworm ----------------------------------------------------------
build_redis() {
    build_from_helper redis "$REDIS_IMAGE" redis.Dockerfile --entrypoint redis-entrypoint.sh \
        "REDIS_VERSION=$REDIS_VERSION"
    local id; id="$(cat "$WORK/redis.iid")"

    # smoke test: starts, logs readiness on stdout, answers PING, runs as redis
    local c="build-base-images-redis-$$" i out="" pkg
    CONTAINERS+=("$c")
    docker run -d --name "$c" --label "$SMOKE_LABEL" --network none "$id" >/dev/null
    for i in $(seq 1 50); do
        out="$(docker logs "$c" 2>/dev/null)"      # stdout only, like testcontainers
        [[ "$out" == *"Ready to accept connections"* ]] && break
        sleep 0.2
    done
    [[ "$out" == *"Ready to accept connections"* ]] \
        || { docker logs "$c" >&2 || true; die "$REDIS_IMAGE: no 'Ready to accept connections' on stdout"; }
    [ "$(docker exec "$c" redis-cli ping)" = PONG ] || die "$REDIS_IMAGE: redis-cli ping did not answer PONG"
    [ "$(docker exec "$c" redis-cli config get protected-mode | tail -n 1)" = no ] || die "$REDIS_IMAGE: protected-mode is not off"
    [ "$(docker exec "$c" stat -c %U /proc/1)" = redis ] || die "$REDIS_IMAGE: redis-server does not run as user redis"
    pkg="$(docker exec "$c" dpkg-query -W -f '${Version}' redis-server)"
    case "$pkg" in
        *:"${REDIS_VERSION}"-*) ;;
        *) die "$REDIS_IMAGE: installed redis-server package is $pkg, not upstream $REDIS_VERSION" ;;
    esac
    docker rm -f -v "$c" >/dev/null; CONTAINERS=()
    log "$REDIS_IMAGE: smoke test ok (redis-server package $pkg, PONG, user redis)"
    tag_image "$id" "$REDIS_IMAGE"
}

# ---- haproxy:2.6-bookworm -----------------------------------------------------------
build_haproxy() {
    build_from_helper haproxy "$HAPROXY_IMAGE" haproxy.Dockerfile --entrypoint haproxy-entrypoint.sh \
        "HAPROXY_VERSION=$HAPROXY_VERSION"
    local id; id="$(cat "$WORK/haproxy.iid")"

    # smoke test: a configuration at the official path is loaded and served, as user haproxy
    local c="build-base-images-haproxy-$$" i out=""
    CONTAINERS+=("$c")
    printf 'defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:8080\n  http-request return status 200 content-type text/plain string ok\n' \
        >"$WORK/haproxy-smoke.cfg"
    docker create --name "$c" --label "$SMOKE_LABEL" --network none "$id" >/dev/null
    docker cp "$WORK/haproxy-smoke.cfg" "$c:/usr/local/etc/haproxy/haproxy.cfg"
    docker start "$c" >/dev/null
    for i in $(seq 1 50); do
        out="$(docker exec "$c" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null || true)"
        [[ "$out" == *" 200 "* ]] && break
        sleep 0.2
    done
    [[ "$out" == *" 200 "* ]] || { docker logs "$c" >&2 || true; die "$HAPROXY_IMAGE: the smoke configuration was not served"; }
    [ "$(docker exec "$c" stat -c %U /proc/1)" = haproxy ] || die "$HAPROXY_IMAGE: haproxy does not run as user haproxy"
    # Not `| grep -q`: grep would stop reading at the match and, under pipefail, the
    # SIGPIPE haproxy then gets would fail the check now and then.
    [[ "$(docker exec "$c" haproxy -v)" == *"version ${HAPROXY_VERSION}"* ]] || die "$HAPROXY_IMAGE: haproxy is not ${HAPROXY_VERSION}"
    docker rm -f -v "$c" >/dev/null; CONTAINERS=()
    log "$HAPROXY_IMAGE: smoke test ok (haproxy ${HAPROXY_VERSION}, /usr/local/etc/haproxy/haproxy.cfg served, user haproxy)"
    tag_image "$id" "$HAPROXY_IMAGE"
}

# ---- rust:1.95.0-slim-bookworm -----------------------------------------------------
build_rust() {
    # The host toolchain is the source of truth: check versions before anything else.
    local host_rustc host_rustup_home triple tc_name tc_dir tc_rustc rustup_bin installed comp
    export PATH="$PATH:${HOME:-/root}/.cargo/bin"
    command -v rustc >/dev/null || die "rustc not found on the host (needed to build $RUST_IMAGE)"
    host_rustc="$(rustc --version)"
    case "$host_rustc" in
        "rustc ${RUST_VERSION} "*) ;;
        *) die "host rustc is '${host_rustc}' but this script pins RUST_VERSION=${RUST_VERSION} (image ${RUST_IMAGE}); install/select ${RUST_VERSION} or update the pin deliberately" ;;
    esac
    triple="$(rustc -vV | sed -n 's/^host: //p')"
    host_rustup_home="${RUSTUP_HOME:-${HOME:-/root}/.rustup}"
    tc_name="${RUST_VERSION}-${triple}"
    tc_dir="$(readlink -f "$host_rustup_home/toolchains/$tc_name" || true)"
    [ -n "$tc_dir" ] && [ -x "$tc_dir/bin/rustc" ] \
        || die "toolchain $tc_name not found under $host_rustup_home/toolchains (rustup toolchain install ${RUST_VERSION})"
    tc_rustc="$("$tc_dir/bin/rustc" --version)"
    [ "$tc_rustc" = "$host_rustc" ] || die "toolchain $tc_name reports '$tc_rustc', host rustc reports '$host_rustc'"
    rustup_bin="$(readlink -f "$(command -v rustup)")" || die "rustup not found on the host"
    installed="$(RUSTUP_HOME="$host_rustup_home" rustup component list --installed --toolchain "$tc_name")"
    for comp in $RUST_EXTRA_COMPONENTS; do
        grep -qx "${comp}\(-preview\)\?-${triple}" <<<"$installed" \
            || die "host toolchain $tc_name lacks component '$comp' (rustup component add --toolchain $tc_name $comp)"
    done
    log "$RUST_IMAGE: host toolchain $tc_name ($host_rustc) has: $(sed "s/-${triple}//" <<<"$installed" | tr '\n' ' ')"

    probe_build_network
    workdir
    local ctx="$WORK/rust-ctx" rh dst ex pkg p
    rh="$ctx/usr-local/rustup"; dst="$rh/toolchains/$tc_name"
    local ch="$ctx/usr-local/cargo"
    mkdir -p "$dst" "$rh/downloads" "$rh/tmp" "$rh/update-hashes" "$ch/bin"
    cp "$HELPER_DIR/rust.Dockerfile" "$ctx/Dockerfile"

    # Copy only this toolchain (dereferencing a toolchain symlink such as
    # 1.95.0 -> stable), leaving out the files of dropped components and
    # removing those components from rustup's metadata so rustup stays consistent.
    ex="$WORK/rust-excludes"; : >"$ex"
    for comp in $RUST_DROP_COMPONENTS; do
        [ -f "$tc_dir/lib/rustlib/manifest-${comp}-${triple}" ] || continue
        sed -n 's#^\(file\|dir\):#./#p' "$tc_dir/lib/rustlib/manifest-${comp}-${triple}" >>"$ex"
    done
    log "$RUST_IMAGE: copying toolchain $tc_dir (without: ${RUST_DROP_COMPONENTS:-nothing})"
    tar -C "$tc_dir" --exclude-from="$ex" -cf - . | tar -C "$dst" -xf -
    for comp in $RUST_DROP_COMPONENTS; do
        pkg="${comp}-${triple}"
        [ -f "$dst/lib/rustlib/manifest-$pkg" ] || continue
        rm -f "$dst/lib/rustlib/manifest-$pkg"
        sed -i "/^${pkg}\$/d" "$dst/lib/rustlib/components"
        awk -v pkg="$comp" -v tgt="$triple" 'BEGIN { RS = ""; ORS = "\n\n" }
            !(index($0, "pkg = \"" pkg "\"") && index($0, "target = \"" tgt "\""))' \
            "$dst/lib/rustlib/multirust-config.toml" >"$WORK/multirust-config.toml"
        mv "$WORK/multirust-config.toml" "$dst/lib/rustlib/multirust-config.toml"
    done
    cat >"$rh/settings.toml" <<EOF
version = "12"
default_toolchain = "${tc_name}"
profile = "minimal"

[overrides]
EOF
    # rustup and its proxies, like rustup-init creates them in CARGO_HOME/bin
    cp "$rustup_bin" "$ch/bin/rustup"
    for p in cargo cargo-clippy cargo-fmt cargo-miri clippy-driver rls rust-analyzer \
             rust-gdb rust-gdbgui rust-lldb rustc rustdoc rustfmt; do
        ln -s rustup "$ch/bin/$p"
    done
    # A stand-in built on this host trusts the certificate authorities the host
    # added itself: behind a TLS-inspecting proxy, cargo in the image then reaches
    # crates.io as the host's cargo does. A pulled official image is not changed.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        mkdir -p "$ctx/usr-local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$ctx/usr-local/share/ca-certificates/"
        log "$RUST_IMAGE: trusting the host's own CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
    fi
    chmod -R a+w "$rh" "$ch"             # as the official image does (works with --user)
    chmod 0755 "$ctx/usr-local"

    log "$RUST_IMAGE: docker build FROM $DEBIAN_IMAGE (gcc, libc6-dev, make, ca-certificates + toolchain, $(du -sh "$rh" | cut -f1))"
    step rust-build docker build ${BUILD_NET_ARGS[@]+"${BUILD_NET_ARGS[@]}"} --force-rm \
        --build-arg "BASE_IMAGE=$DEBIAN_IMAGE" --build-arg "RUST_VERSION=$RUST_VERSION" \
        --label "$BUILT_BY_LABEL" --iidfile "$WORK/rust.iid" "$ctx"
    local id; id="$(cat "$WORK/rust.iid")"
    mark_pending "$id"
    rm -rf "$ctx"

    # smoke test offline: what the project's Dockerfile needs from the image
    step rust-smoke docker run --rm --label "$SMOKE_LABEL" --network none "$id" sh -ec \
        "rustc --version | grep -q '^rustc ${RUST_VERSION} '; cargo --version; make --version >/dev/null; rustup component add ${RUST_EXTRA_COMPONENTS}; cargo clippy --version; cargo fmt --version"
    log "$RUST_IMAGE: smoke test ok (offline: rustc/cargo ${RUST_VERSION}, rustup component add ${RUST_EXTRA_COMPONENTS})"
    tag_image "$id" "$RUST_IMAGE"
}

# ---- lukemathwalker/cargo-chef:<version>-rust-<rust tag> ------------------------------
build_cargo_chef() {
    ensure_base "$RUST_IMAGE" build_rust
    build_from_helper cargo-chef "$CARGO_CHEF_IMAGE" cargo-chef.Dockerfile --from "$RUST_IMAGE" \
        "CARGO_CHEF_VERSION=$CARGO_CHEF_VERSION"
    local id; id="$(cat "$WORK/cargo-chef.iid")"
    # smoke test offline: cargo-chef plans a crate's dependencies
    step cargo-chef-smoke docker run --rm --label "$SMOKE_LABEL" --network none "$id" sh -ec \
        "cd /tmp && cargo new -q smoke && cd smoke && cargo chef prepare --recipe-path recipe.json && test -s recipe.json"
    log "$CARGO_CHEF_IMAGE: smoke test ok (cargo chef prepare, offline)"
    tag_image "$id" "$CARGO_CHEF_IMAGE"
}

# ---- gcr.io/distroless/cc-debian12:nonroot ------------------------------------------
build_distroless() {
    # The packages are unpacked FROM scratch in the Dockerfile's last stage.
    build_from_helper distroless "$DISTROLESS_IMAGE" distroless-cc.Dockerfile \
        "PACKAGES=$DISTROLESS_PACKAGES" "GLIBC_VERSION=$GLIBC_VERSION"
    local id; id="$(cat "$WORK/distroless.iid")"

    # smoke test: glibc's loader runs, the layout is the official one, and there is
    # no shell or package manager
    local v files
    v="$(docker run --rm --label "$SMOKE_LABEL" --network none --entrypoint /lib64/ld-linux-x86-64.so.2 "$id" --version | head -n 1)"
    [[ "$v" == *" ${GLIBC_VERSION}"* ]] || die "$DISTROLESS_IMAGE: the loader reports '$v', not glibc ${GLIBC_VERSION}"
    [ "$(docker image inspect -f '{{.Config.User}}' "$id")" = 65532 ] || die "$DISTROLESS_IMAGE: does not run as 65532"
    local c="build-base-images-distroless-$$"
    CONTAINERS+=("$c")
    docker create --name "$c" --label "$SMOKE_LABEL" "$id" /never-run >/dev/null   # never started
    files="$WORK/distroless-files"
    docker export "$c" | tar -t >"$files"
    docker cp "$c:/etc/passwd" "$WORK/distroless-passwd"
    docker rm -f -v "$c" >/dev/null; CONTAINERS=()
    local f
    for f in etc/ssl/certs/ca-certificates.crt etc/os-release etc/group etc/nsswitch.conf \
             usr/lib/x86_64-linux-gnu/libc.so.6 usr/lib/x86_64-linux-gnu/libgcc_s.so.1 \
             usr/share/zoneinfo/UTC home/nonroot/; do
        grep -qx "$f" "$files" || die "$DISTROLESS_IMAGE: /$f is missing"
    done
    for f in bin/sh usr/bin/sh usr/bin/bash usr/bin/dpkg usr/bin/apt-get; do
        if grep -qx "$f" "$files"; then die "$DISTROLESS_IMAGE: /$f should not be there"; fi
    done
    grep -qx 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' "$WORK/distroless-passwd" \
        || die "$DISTROLESS_IMAGE: no nonroot (65532) entry in /etc/passwd"
    log "$DISTROLESS_IMAGE: smoke test ok ($v; user 65532; CA bundle; no shell)"
    tag_image "$id" "$DISTROLESS_IMAGE"
}

# ---- prom/prometheus and oliver006/redis_exporter ---------------------------------
build_prometheus() {
    build_from_helper prometheus "$PROMETHEUS_IMAGE" prometheus.Dockerfile "PROMETHEUS_VERSION=$PROMETHEUS_VERSION"
    local id; id="$(cat "$WORK/prometheus.iid")"
    # smoke test offline: version, user, and the default command's configuration
    step prometheus-smoke docker run --rm --label "$SMOKE_LABEL" --network none --entrypoint sh "$id" -ec \
        "prometheus --version 2>&1 | grep -q 'version ${PROMETHEUS_VERSION}'; test \"\$(id -u)\" = 65534;
         test -w /prometheus; promtool check config /etc/prometheus/prometheus.yml"
    log "$PROMETHEUS_IMAGE: smoke test ok (prometheus ${PROMETHEUS_VERSION}, user nobody, promtool)"
    tag_image "$id" "$PROMETHEUS_IMAGE"
}

build_redis_exporter() {
    build_from_helper redis-exporter "$REDIS_EXPORTER_IMAGE" redis-exporter.Dockerfile \
        "REDIS_EXPORTER_VERSION=$REDIS_EXPORTER_VERSION"
    local id; id="$(cat "$WORK/redis-exporter.iid")"
    # smoke test offline: the binary at the official path names its version, as user 59000
    step redis-exporter-smoke docker run --rm --label "$SMOKE_LABEL" --network none --entrypoint sh "$id" -ec \
        "/redis_exporter --version 2>&1 | grep -q 'Exporter ${REDIS_EXPORTER_VERSION}'; test \"\$(id -u)\" = 59000"
    log "$REDIS_EXPORTER_IMAGE: smoke test ok (redis_exporter ${REDIS_EXPORTER_VERSION})"
    tag_image "$id" "$REDIS_EXPORTER_IMAGE"
}

# ---- main ------------------------------------------------------------------------------
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine (is it running? are you in the docker group?)"
for f in redis.Dockerfile redis-entrypoint.sh rust.Dockerfile cargo-chef.Dockerfile haproxy.Dockerfile \
         haproxy-entrypoint.sh distroless-cc.Dockerfile prometheus.Dockerfile redis-exporter.Dockerfile; do
    [ -f "$HELPER_DIR/$f" ] || die "missing helper file $HELPER_DIR/$f"
done

# One run at a time (a second run would race on tags).
exec 9>"${TMPDIR:-/var/tmp}/build-base-images.lock"
flock -n 9 || die "another build-base-images.sh run is in progress"
# containers left by a run that was killed hard (SIGKILL) before its cleanup
docker ps -aq --filter "label=$SMOKE_LABEL" | xargs -r docker rm -f -v >/dev/null

# The images are built FROM the local debian image (cargo-chef FROM the rust image),
# so it is ensured first whenever one of them has to be built.
need_debian=0
if wanted debian; then need_debian=1; fi
if wanted redis && { [ "$FORCE" -eq 1 ] || ! image_exists "$REDIS_IMAGE"; }; then need_debian=1; fi
if wanted rust  && { [ "$FORCE" -eq 1 ] || ! image_exists "$RUST_IMAGE"; }; then need_debian=1; fi
if wanted haproxy && { [ "$FORCE" -eq 1 ] || ! image_exists "$HAPROXY_IMAGE"; }; then need_debian=1; fi
if wanted cargo-chef && { [ "$FORCE" -eq 1 ] || ! image_exists "$CARGO_CHEF_IMAGE"; } \
    && ! image_exists "$RUST_IMAGE"; then need_debian=1; fi
if wanted distroless && { [ "$FORCE" -eq 1 ] || ! image_exists "$DISTROLESS_IMAGE"; }; then need_debian=1; fi
if wanted prometheus && { [ "$FORCE" -eq 1 ] || ! image_exists "$PROMETHEUS_IMAGE"; }; then need_debian=1; fi
if wanted redis-exporter && { [ "$FORCE" -eq 1 ] || ! image_exists "$REDIS_EXPORTER_IMAGE"; }; then need_debian=1; fi

if [ "$need_debian" -eq 1 ]; then
    if wanted debian; then
        if ! present_or_pulled "$DEBIAN_IMAGE"; then build_debian; fi
    else
        ensure_base "$DEBIAN_IMAGE" build_debian
    fi
fi
# NB: `if ! check; then build; fi`, not `check || build`: bash ignores set -e
# inside a function called on the left of || or &&.
if wanted redis && ! present_or_pulled "$REDIS_IMAGE"; then build_redis; fi
if wanted rust  && ! present_or_pulled "$RUST_IMAGE";  then build_rust;  fi
if wanted cargo-chef && ! present_or_pulled "$CARGO_CHEF_IMAGE"; then build_cargo_chef; fi
if wanted haproxy && ! present_or_pulled "$HAPROXY_IMAGE"; then build_haproxy; fi
if wanted distroless && ! present_or_pulled "$DISTROLESS_IMAGE"; then build_distroless; fi
if wanted prometheus && ! present_or_pulled "$PROMETHEUS_IMAGE"; then build_prometheus; fi
if wanted redis-exporter && ! present_or_pulled "$REDIS_EXPORTER_IMAGE"; then build_redis_exporter; fi

log "done: $(for n in "$DEBIAN_IMAGE" "$REDIS_IMAGE" "$RUST_IMAGE" "$CARGO_CHEF_IMAGE" "$HAPROXY_IMAGE" "$DISTROLESS_IMAGE" \
    "$PROMETHEUS_IMAGE" "$REDIS_EXPORTER_IMAGE"; do
    image_exists "$n" && printf '%s ' "$n"; done)"
