# Shell functions the project's scripts share; sourced, never run:
#
#   . "$(dirname "$0")/lib.sh"
#
# Logging under the script's name, the compose command, waiting for a condition,
# apt-get installs and the load balancer's runtime API.

# Prefix of log lines; a script may set it before sourcing.
LIB_PROG=${LIB_PROG:-$(basename "$0" .sh)}

log() { printf '%s: %s\n' "$LIB_PROG" "$*"; }
warn() { printf '%s: %s\n' "$LIB_PROG" "$*" >&2; }
die() {
    warn "error: $*"
    exit 1
}

# COMPOSE: `docker compose` (v2) where the plugin exists, else docker-compose (v1).
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    COMPOSE=(docker-compose)
fi

# wait_until SECONDS COMMAND...: runs COMMAND every half second until it succeeds;
# fails when SECONDS have passed without success.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# apt_install WHY PACKAGE...: installs Debian packages when run as root, else says
# what is missing and fails.
apt_install() {
    local why=$1
    shift
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing $* with apt-get ($why)"
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        warn "$why: install $*"
        return 1
    fi
}

# container_ip CONTAINER: its address on its (first) network.
container_ip() {
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'
}

# haproxy_cli CONTAINER COMMAND: one command to HAProxy's runtime API, which
# deploy/haproxy/haproxy.cfg opens on the container's own loopback (port 9999).
haproxy_cli() {
    docker exec "$1" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9999 && printf "%s\n" "$1" >&3 && cat <&3' _ "$2"
}
