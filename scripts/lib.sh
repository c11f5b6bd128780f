# Shell functions the project's scripts share; sourced, never run:
#
#   . "$(dirname "$0")/lib.sh"
#
# Logging under the script's name, the compose command, waiting for a condition,
# apt-get installs, a swarm for a run, the load balancer's runtime API, and steady load with its accounting.

# Prefix of log lines; a script may set it before sourcing.
LIB_PROG=${LIB_PROG:-$(basename "$0" .sh)}

log() { printf '%s: %s\n' "$LIB_PROG" "$*"; }
warn() { printf '%s: %s\n' "$LIB_PROG" "$*" >&2; }
die() {
    warn "error: $*"
    exit 1
}
# help_from_header: the script's header comment (line 2 to `set -euo`), as its --help.
help_from_header() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//p}' "$0"; }

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

# redis_passwords NAME...: sets and exports REDIS_<NAME>_PASSWORD for each NAME to a
# new random, URL-safe password, unless the environment already has one; for a
# stack started with deploy/compose.acl.yml or deploy/compose.ha.yml. Nothing is printed.
redis_passwords() {
    local user name
    for user in "$@"; do
        name="REDIS_${user}_PASSWORD"
        [ -n "${!name:-}" ] || printf -v "$name" %s "$(openssl rand -hex 32)"
        export "${name?}"
    done
}

# --- A swarm for a run -----------------------------------------------------------------
#
# swarm_enter: uses the swarm this engine manages, or initialises a single-node one
# when `docker info` says it is in none (recorded for swarm_leave, with whether the
# docker_gwbridge network that `swarm init` creates existed before); sets
# swarm_node to this node's id. Dies when the node is in a swarm but no manager.
swarm_enter() {
    case $(docker info --format '{{.Swarm.LocalNodeState}}') in
        inactive)
            log "the engine is in no swarm: initialising a single-node swarm for this run"
            if docker network inspect docker_gwbridge >/dev/null 2>&1; then swarm_gwbridge_existed=1; fi
            swarm_initialised=1
            docker swarm init --advertise-addr 127.0.0.1 >/dev/null
            ;;
        active)
            [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] ||
                die "this node is in a swarm but not a manager: run on a manager"
            log "using the swarm this engine is in"
            ;;
        *) die "the swarm state is $(docker info --format '{{.Swarm.LocalNodeState}}'): expected inactive or active" ;;
    esac
    swarm_node=$(docker info --format '{{.Swarm.NodeID}}')
}

# swarm_label LABEL...: sets each node label LABEL=true on this node where it is
# missing; swarm_leave removes those it added.
swarm_labels_added=()
swarm_label() {
    local label
    for label in "$@"; do
        if [ "$(docker node inspect "$swarm_node" --format "{{index .Spec.Labels \"$label\"}}")" != true ]; then
            docker node update --label-add "$label=true" "$swarm_node" >/dev/null
            swarm_labels_added+=("$label")
        fi
    done
}

# swarm_leave: undoes swarm_label and swarm_enter: removes the labels added, leaves
# the swarm if swarm_enter initialised it, and removes docker_gwbridge if it was not
# there before (it outlives the swarm). Never fails: cleanups call it.
swarm_leave() {
    local label
    for label in "${swarm_labels_added[@]}"; do
        docker node update --label-rm "$label" "$swarm_node" >/dev/null 2>&1 || warn "node label $label not removed"
    done
    swarm_labels_added=()
    [ -n "${swarm_initialised:-}" ] || return 0
    if docker swarm leave --force >/dev/null 2>&1; then
        log "left the swarm this run initialised"
    else
        warn "could not leave the swarm this run initialised"
    fi
    swarm_initialised=""
    if [ -z "${swarm_gwbridge_existed:-}" ]; then
        wait_until 30 docker network rm docker_gwbridge || warn "network docker_gwbridge not removed"
    fi
    return 0
}

# swarm_stack_gone STACK: no container of stack STACK is left.
swarm_stack_gone() { [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$1")" ]; }

# swarm_stack_remove STACK: removes stack STACK and then its volumes, which Swarm
# lets go only once the containers, removed asynchronously, are gone. Never fails:
# cleanups call it.
swarm_stack_remove() {
    local volume
    docker stack rm "$1" >/dev/null 2>&1
    wait_until 90 swarm_stack_gone "$1" || warn "stack $1: containers still there after 90s"
    for volume in $(docker volume ls -q --filter "label=com.docker.stack.namespace=$1"); do
        wait_until 30 docker volume rm "$volume" || warn "volume $volume not removed"
    done
    return 0
}

# swarm_digests: exports the digests deploy/swarm/*.yml name their configs after
# (a config cannot change in place): HAPROXY_CONFIG_DIGEST, REDIS_SCRIPTS_DIGEST and
# PROMETHEUS_CONFIG_DIGEST.
swarm_digests() {
    HAPROXY_CONFIG_DIGEST=$(sha256sum deploy/haproxy/haproxy.cfg | cut -c1-12)
    REDIS_SCRIPTS_DIGEST=$(cat deploy/redis/*.sh deploy/redis/users.acl | sha256sum | cut -c1-12)
    PROMETHEUS_CONFIG_DIGEST=$(cat deploy/prometheus/prometheus.yml deploy/prometheus/rules.yml | sha256sum | cut -c1-12)
    export HAPROXY_CONFIG_DIGEST REDIS_SCRIPTS_DIGEST PROMETHEUS_CONFIG_DIGEST
}

# swarm_task SERVICE: a running container of swarm service SERVICE (its full name).
swarm_task() {
    docker ps -q --filter "label=com.docker.swarm.service.name=$1" --filter status=running | head -n 1
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

# lb_servers CONTAINER: the load balancer's slots for the replicas (backend web),
# one line each as `show servers state` prints them.
lb_servers() { haproxy_cli "$1" "show servers state web" | awk '$2 == "web"'; }

# lb_in_rotation CONTAINER N: N slots are up and taking visitors.
lb_in_rotation() { [ "$(lb_servers "$1" | awk '$6 == 2 && $7 == 0' | wc -l)" -eq "$2" ]; }

# page_views CONTAINER: the counter in that Redis container (0 before the first visit),
# read with the container's own credentials, so none is on a command line here: the
# admin user where the container has its password (deploy/compose.ha.yml), else the
# default user with REDIS_PASSWORD when that is set.
page_views() {
    # shellcheck disable=SC2016 # expanded by the container's shell
    docker exec "$1" sh -c '
        if [ -n "${REDIS_ADMIN_PASSWORD:-}" ]; then
            export REDISCLI_AUTH="$REDIS_ADMIN_PASSWORD"
            set -- --user admin
        elif [ -n "${REDIS_PASSWORD:-}" ]; then
            export REDISCLI_AUTH="$REDIS_PASSWORD"
        fi
        exec redis-cli "$@" GET page_views' | sed 's/^$/0/'
}

# --- Load through the load balancer, and its accounting --------------------------------
#
# The caller sets `work` (a temporary directory), `connections`, `settle` (seconds of
# load before and after a phase's action), `load_url`, an array `problems`, and
# defines `views` (the counter now); it may define `on_load_failure`, run when a
# phase fails, to show what it knows.

# start_load: wrk in the background (at most 10 minutes, until finish_load), then
# `settle` seconds of load before the caller acts; its report goes to $work/wrk.
start_load() {
    views_before=$(views)
    timeout -k 5 600 wrk -t 2 -c "$connections" -d 600s --timeout 5s \
        -s scripts/bench/wrk-report.lua "$load_url" >"$work/wrk" 2>&1 &
    load_pid=$!
    sleep "$settle"
}

# stop_load: stops wrk if it runs; never fails (cleanups call it).
stop_load() {
    [ -n "${load_pid:-}" ] || return 0
    kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    load_pid=""
}

# collect_load PHASE: stops wrk (SIGINT: it reports what it has) and reads its report:
# sets load_requests (answers read in full), load_non2xx, load_errors (socket errors),
# load_error_kinds (them by kind, as wrk counts them) and load_ok (2xx answers).
collect_load() {
    local phase=$1 line
    kill -INT "$load_pid" 2>/dev/null || true
    wait "$load_pid" || { cat "$work/wrk" >&2; die "$phase: wrk failed"; }
    load_pid=""
    line=$(grep '^WRK_RESULT' "$work/wrk") || { cat "$work/wrk" >&2; die "$phase: no result from wrk"; }
    load_requests=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
    load_non2xx=$(sed 's/.* status=\([0-9]*\).*/\1/' <<<"$line")
    load_error_kinds=$(grep -oE '(connect|read|write|timeout)=[0-9]+' <<<"$line" | paste -sd' ')
    load_errors=$(tr ' ' '\n' <<<"$load_error_kinds" | awk -F= '{ s += $2 } END { print s + 0 }')
    load_ok=$((load_requests - load_non2xx))
}

# finish_load PHASE ALLOWED_FAILURES: after `settle` more seconds of load, stops wrk
# and prints the phase's line. Records the phase in
# `problems` when more requests failed than allowed, or when the counter's growth
# differs from the 2xx answers by more than the requests in flight or failed.
# Sets phase_requests and phase_failed.
finish_load() {
    local phase=$1 allowed=$2 requests status errors ok grown
    sleep "$settle"
    collect_load "$phase"
    requests=$load_requests status=$load_non2xx errors=$load_errors ok=$load_ok
    # Requests abandoned by wrk when it stopped may still be answered and counted.
    sleep 1
    grown=$(($(views) - views_before))
    phase_failed=$((status + errors))
    phase_requests=$requests
    log "$phase: $requests requests answered, $status non-2xx, $errors socket errors ($load_error_kinds); counter grew by $grown for $ok 2xx ($((grown - ok)) counted without a 2xx read by wrk: in flight when the load stopped, at most $connections, or failed after Redis counted them)"
    if [ "$phase_failed" -gt "$allowed" ]; then
        warn "$phase: FAILED: $phase_failed failed requests, at most $allowed allowed"
        if declare -F on_load_failure >/dev/null; then on_load_failure; fi
        problems+=("$phase")
    elif [ "$grown" -lt "$ok" ] || [ $((grown - ok)) -gt $((connections + phase_failed)) ]; then
        warn "$phase: FAILED: the counter grew by $grown for $ok answered visits"
        problems+=("$phase")
    fi
}
