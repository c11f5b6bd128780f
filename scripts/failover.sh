#!/usr/bin/env bash
# Failover of the `ha` topology (deploy/compose.ha.yml, deploy/swarm/stack.ha.yml)
# under load, measured.
#
#   scripts/failover.sh [--engine compose|swarm] [--rounds N] [--replicas N] [--connections C]
#                       [--settle S] [--target S]
#
# Starts the ha stack under a compose project of its own (FAILOVER_PROJECT, default
# page-tracker-failover), or with --engine swarm as a Swarm stack of that name
# (deploy/swarm/stack.yml and stack.ha.yml; the swarm and the three placement
# labels as scripts/rollout-swarm.sh sets them up and removes them), with N web
# replicas (default 3) of PAGE_TRACKER_IMAGE (default page-tracker:latest), the
# load balancer on PAGE_TRACKER_PORT (default: the first free port from 18100), and
# passwords of its own for every Redis user (those set in the environment are used
# instead; none is printed). Then, for each of N
# rounds (default 5), under steady load from wrk through the load balancer
# (C connections, default 32) from S seconds (default 5) before the kill until S
# seconds after the first 200:
#
#   - asks a sentinel which node is the primary (SENTINEL get-master-addr-by-name)
#     and kills it (`docker kill`: SIGKILL, no chance to hand anything over);
#   - sends one visit after another until one is answered 200, and takes the time
#     from the kill to that answer, and to the first +switch-master in the
#     sentinels' logs (their failover events are shown for a round over --target);
#   - counts the apologies (non-2xx answers) and socket errors meanwhile, and the
#     visits lost: those answered 200 that the counter on the new primary does not
#     hold (acknowledged by the old primary, not yet copied to its replicas; up to
#     C requests abandoned in flight when wrk stops can hide as many losses);
#   - starts the old primary again (on Swarm, Swarm starts a new task for it) and
#     waits until it follows the new one, the
#     sentinels see both replicas and the topology is back to one primary and two
#     replicas in sync.
#
# Prints one line per round and, last, `failover: median X s, max Y s to the first
# 200 over N rounds; A apologies, L visits lost`. Fails when a round did not get a
# 200 within 60 s, when the median exceeds --target seconds (default 10), or when the
# counter grew by more than the answered visits plus those that may have been counted
# without an answer (a visit counted twice). Everything it starts is removed at the
# end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

engine=compose rounds=5 replicas=3 connections=32 settle=5 target=10 recovery_limit=60
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) engine=${2:?}; shift ;;
        --rounds) rounds=${2:?}; shift ;;
        --replicas) replicas=${2:?}; shift ;;
        --connections) connections=${2:?}; shift ;;
        --settle) settle=${2:?}; shift ;;
        --target) target=${2:?}; shift ;;
        -h | --help) help_from_header; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
[[ "$replicas" =~ ^([1-9]|10)$ ]] || die "--replicas must be 1 to 10 (the load balancer has 10 slots)"
[[ "$engine" =~ ^(compose|swarm)$ ]] || die "--engine compose or --engine swarm"

project=${FAILOVER_PROJECT:-page-tracker-failover}
image=${PAGE_TRACKER_IMAGE:-page-tracker:latest}
service_name=page-tracker
data_nodes=(redis-service redis-replica-1 redis-replica-2)

# The first port from 18100 on which nothing listens on this host.
free_port() {
    local port
    for port in $(seq 18100 18999); do
        if ! ss -Htln | awk '{ print $4 }' | grep ":$port\$" >/dev/null; then
            echo "$port"
            return
        fi
    done
    return 1
}
if [ -z "${PAGE_TRACKER_PORT:-}" ]; then
    PAGE_TRACKER_PORT=$(free_port) || die "no free port from 18100 to 18999"
fi
export PAGE_TRACKER_PORT PAGE_TRACKER_IMAGE=$image
load_url="http://127.0.0.1:$PAGE_TRACKER_PORT/"

# Passwords for this stack alone, unless the environment gives them.
redis_passwords SERVICE TEST EXPORTER ADMIN REPLICATION SENTINEL_USER SENTINEL

stack() { "${COMPOSE[@]}" --project-name "$project" -f docker-compose.yml -f deploy/compose.ha.yml "$@"; }
# container_of SERVICE: the service's (running) container.
container_of() {
    if [ "$engine" = swarm ]; then swarm_task "${project}_$1"; else stack ps -q "$1"; fi
}
if [ "$engine" = swarm ]; then
    # stack deploy reads no .env file: what deploy/swarm/*.yml take from the environment.
    export STACK_NAME=$project HAPROXY_IMAGE=${HAPROXY_IMAGE:-haproxy:2.6-bookworm}
    swarm_digests
fi
work=$(mktemp -d)

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    stop_load
    if [ "$status" -ne 0 ] && [ -n "${project_started:-}" ]; then
        docker logs --tail 20 "$(container_of redis-sentinel-1)" >&2 2>&1
    fi
    if [ "$engine" = compose ]; then
        stack down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
    else
        if [ -n "${project_started:-}" ]; then swarm_stack_remove "$project"; fi
        swarm_leave
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- The topology, asked with each container's own credentials -------------------------

# sentinel_cli ARG...: a command to the first sentinel.
sentinel_cli() {
    # shellcheck disable=SC2016 # expanded by the container's shell
    docker exec "$(container_of redis-sentinel-1)" \
        sh -c 'REDISCLI_AUTH="$REDIS_SENTINEL_PASSWORD" exec redis-cli -p 26379 "$@"' _ "$@"
}
# node_cli CONTAINER ARG...: a command to a data node, as its operator user.
node_cli() {
    local container=$1
    shift
    # shellcheck disable=SC2016 # expanded by the container's shell
    docker exec "$container" sh -c 'REDISCLI_AUTH="$REDIS_ADMIN_PASSWORD" exec redis-cli --user admin "$@"' _ "$@"
}
# switched_after SINCE_NS: seconds from SINCE_NS (epoch nanoseconds) to the first
# +switch-master a sentinel logged since then (the elected one's, the others learn
# it from its announcements); empty if none.
switched_after() {
    local since sentinel line stamp first=""
    since=$(date -u -d "@$(($1 / 1000000000))" --iso-8601=seconds)
    for sentinel in redis-sentinel-1 redis-sentinel-2 redis-sentinel-3; do
        # 1:X 27 Nov 2026 18:29:00.904 # +switch-master ...
        line=$(docker logs --since "$since" "$(container_of "$sentinel")" 2>&1 | grep -m 1 -- '+switch-master') ||
            continue
        stamp=$(date -u -d "$(awk '{ print $2, $3, $4, $5 }' <<<"$line")" +%s%N)
        if [ -z "$first" ] || [ "$stamp" -lt "$first" ]; then first=$stamp; fi
    done
    [ -z "$first" ] || awk -v t="$first" -v s="$1" 'BEGIN { printf "%.1f", (t - s) / 1e9 }'
}
# sentinel_events SINCE_NS: the sentinels' accounts of the failover since then, for a
# slow or failed round.
sentinel_events() {
    local since sentinel
    since=$(date -u -d "@$(($1 / 1000000000))" --iso-8601=seconds)
    for sentinel in redis-sentinel-1 redis-sentinel-2 redis-sentinel-3; do
        docker logs --since "$since" "$(container_of "$sentinel")" 2>&1 |
            grep -E -- '[-+](sdown master|odown|try-failover|elected-leader|failover-abort[a-z-]*|switch-master|vote-for-leader|new-epoch|selected-slave|failover-end) ' |
            sed "s/^/    $sentinel: /" >&2
    done
}
# primary_host: the primary's name as the sentinels announce it (a compose service name).
primary_host() { sentinel_cli SENTINEL get-master-addr-by-name "$service_name" | head -n 1; }
views() { page_views "$(container_of "$(primary_host)")"; }
# not_primary HOST: the first sentinel names another primary than HOST.
not_primary() { local now; now=$(primary_host) && [ -n "$now" ] && [ "$now" != "$1" ]; }

# settled PRIMARY: PRIMARY is a primary with two replicas in sync, the two others
# follow it with their link up, and the sentinels see both replicas as healthy.
settled() {
    local primary=$1 node info
    for node in "${data_nodes[@]}"; do
        info=$(node_cli "$(container_of "$node")" INFO replication | tr -d '\r') || return 1
        if [ "$node" = "$primary" ]; then
            grep -qx 'role:master' <<<"$info" && grep -qx 'connected_slaves:2' <<<"$info" || return 1
        else
            grep -qx 'role:slave' <<<"$info" && grep -qx "master_host:$primary" <<<"$info" &&
                grep -qx 'master_link_status:up' <<<"$info" || return 1
        fi
    done
    [ "$(sentinel_cli SENTINEL replicas "$service_name" | grep -A1 -x flags | grep -cx slave)" -eq 2 ] &&
        sentinel_cli SENTINEL ckquorum "$service_name" | grep '^OK' >/dev/null
}

# --- The stack ---------------------------------------------------------------------------

command -v wrk >/dev/null || apt_install "the failover is measured under load from wrk" wrk ||
    die "wrk is needed"
docker image inspect "$image" >/dev/null 2>&1 || die "no image $image: build it first (docker compose build)"

log "starting the ha stack ($engine): $replicas replicas of $image, 3 Redis nodes, 3 sentinels (project $project, port $PAGE_TRACKER_PORT)"
if [ "$engine" = compose ]; then
    stack down --volumes --remove-orphans >/dev/null 2>&1 || true
    project_started=1
    stack up -d --no-build --scale web-service="$replicas" load-balancer "${data_nodes[@]:1}" 2>&1 | sed 's/^/    /'
else
    swarm_enter
    # Every data node's volume on this node.
    swarm_label page-tracker.redis page-tracker.redis-replica-1 page-tracker.redis-replica-2
    ! docker stack ls --format '{{.Name}}' | grep -qx "$project" || die "a stack $project already runs"
    project_started=1
    docker stack deploy --resolve-image=never -c deploy/swarm/stack.yml -c deploy/swarm/stack.ha.yml "$project" 2>&1 |
        grep -v -e 'detach=false' -e 'future release' | sed 's/^/    /'
    docker service scale --detach "${project}_web-service=$replicas" >/dev/null
    lb_running() { [ -n "$(container_of load-balancer)" ]; }
    wait_until 120 lb_running || die "the load balancer has not started"
fi
lb_id=$(container_of load-balancer)
wait_until 120 lb_in_rotation "$lb_id" "$replicas" || die "the load balancer has not got $replicas replicas in rotation"
wait_until 120 settled "$(primary_host)" || die "the topology did not settle: one primary and two replicas in sync"
wait_until 60 curl -fsS --max-time 2 "${load_url}ready" || die "the service is not ready through the load balancer"
log "$replicas replicas in rotation; primary $(primary_host), replicas in sync"

# --- Rounds --------------------------------------------------------------------------------

problems=() recoveries=() total_apologies=0 total_lost=0
for round in $(seq 1 "$rounds"); do
    phase="round $round"
    primary=$(primary_host)
    victim=$(container_of "$primary")
    start_load
    started=$(date +%s%N)
    docker kill "$victim" >/dev/null
    # Visits one after another until one is counted again.
    probe_apologies=0 code=000
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$load_url") || true
        [ "$code" = 200 ] && break
        probe_apologies=$((probe_apologies + 1))
        if [ $(($(date +%s%N) - started)) -gt $((recovery_limit * 1000000000)) ]; then
            break
        fi
    done
    recovered=$(($(date +%s%N) - started))
    recovery=$(awk -v ns="$recovered" 'BEGIN { printf "%.1f", ns / 1e9 }')
    sleep "$settle"
    collect_load "$phase"
    # Requests abandoned by wrk when it stopped may still be answered and counted.
    sleep 1
    # The service may have heard of the new primary from another sentinel first:
    # the first one learns it from the elected one's announcements, within seconds.
    if ! wait_until 30 not_primary "$primary"; then
        sentinel_events "$started"
        die "$phase: the first sentinel still names $primary"
    fi
    successor=$(primary_host)
    switched=$(switched_after "$started")
    grown=$(($(views) - views_before))
    # The probe's last visit was answered 200; the others were apologies or errors.
    acknowledged=$((load_ok + 1))
    apologies=$((load_non2xx + probe_apologies))
    lost=$((acknowledged > grown ? acknowledged - grown : 0))
    unanswered=$((grown > acknowledged ? grown - acknowledged : 0))
    log "$phase: killed primary $primary, $successor took over (sentinels switched after ${switched:-?} s); first 200 after $recovery s;" \
        "$apologies apologies, $load_errors socket errors; $acknowledged visits answered 200, counter grew by $grown:" \
        "$lost lost, $unanswered counted without a 200 read (in flight when the load stopped, or apologised after Redis counted them)"
    if awk -v r="$recovery" -v t="$target" 'BEGIN { exit !(r > t) }'; then
        sentinel_events "$started"
    fi
    if [ "$code" != 200 ]; then
        warn "$phase: FAILED: no 200 within ${recovery_limit}s of the kill (last answer $code)"
        problems+=("$phase")
        break
    fi
    if [ "$unanswered" -gt $((connections + apologies + load_errors)) ]; then
        warn "$phase: FAILED: the counter grew by $grown for $acknowledged visits answered: counted twice?"
        problems+=("$phase")
    fi
    recoveries+=("$recovery")
    total_apologies=$((total_apologies + apologies))
    total_lost=$((total_lost + lost))

    # The old primary returns and must follow the new one. Swarm starts a new task by itself.
    if [ "$engine" = compose ]; then docker start "$victim" >/dev/null; fi
    if ! wait_until 90 settled "$successor"; then
        warn "$phase: FAILED: $primary did not rejoin as a replica of $successor within 90 s"
        problems+=("$phase rejoin")
        break
    fi
    log "$phase: $primary follows $successor again; two replicas in sync"
done

if [ ${#recoveries[@]} -gt 0 ]; then
    read -r median max < <(printf '%s\n' "${recoveries[@]}" | sort -g |
        awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f\n", m, v[NR] }')
    if awk -v m="$median" -v t="$target" 'BEGIN { exit !(m > t) }'; then
        warn "FAILED: the median time to the first 200, $median s, exceeds the target of $target s"
        problems+=(target)
    fi
    echo "failover: median $median s, max $max s to the first 200 over ${#recoveries[@]} rounds; $total_apologies apologies, $total_lost visits lost"
fi
if [ ${#problems[@]} -gt 0 ]; then
    warn "failed: ${problems[*]}"
fi
[ ${#problems[@]} -eq 0 ] && [ ${#recoveries[@]} -eq "$rounds" ]
