#!/usr/bin/env bash
# Blue-green deploy of page-tracker behind its load balancer, proved under load.
#
#   scripts/rollout.sh --engine compose [--replicas N] [--settle S] [--connections C]
#   scripts/rollout.sh --engine compose --deploy IMAGE --project NAME
#   scripts/rollout.sh --engine swarm [OPTIONS]     scripts/rollout-swarm.sh (see its --help)
#
# With --deploy, the one blue-green deploy of IMAGE on a running stack (compose
# project NAME), without load, proof or teardown: exit 0 when green serves, 1 after
# a rollback. Later `docker compose` commands on that stack need
# PAGE_TRACKER_IMAGE=IMAGE, or they recreate the replicas from the old image.
#
# Without it, a proof on a compose stack of its own (project --project or ROLLOUT_PROJECT,
# default page-tracker-rollout;
# the load balancer on 127.0.0.1:PAGE_TRACKER_PORT, default 18090) with N replicas
# (default 3) of PAGE_TRACKER_IMAGE (default page-tracker:latest); then each phase
# under steady load from wrk through the load balancer (C connections, default 32),
# from S seconds (default 5) before the phase's action until S seconds after it:
#
#   deploy    green replicas (the image re-tagged <image>-green) start beside blue,
#             out of rotation (HAProxy's runtime API puts their slots in maintenance);
#             each must answer /ready; they enter rotation, blue is set to drain,
#             then stopped (SIGTERM: the service drains, finishes in flight, exits)
#   rollback  a green that cannot reach Redis (PAGE_TRACKER_REDIS_HOST=127.0.0.1, its
#             own loopback) fails its readiness check: it is removed and blue keeps
#             serving (the script says so)
#   sigkill   one replica is killed with SIGKILL
#   bench     figures only: throughput and p99 through the load balancer with 1 and
#             N replicas, and of one replica reached directly
#
# For each phase: requests answered, non-2xx, socket errors, and the Redis counter's
# growth against the 2xx count. Fails when a deploy or rollback phase lost a request,
# when the SIGKILL phase lost more than the connections in flight, or when the counter
# and the 2xx answers differ by more than the requests in flight when the load stopped.
# Last line: `rollout (compose): N requests, F failed` (F: the deploy phase's non-2xx
# and socket errors). Everything it starts is removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# The swarm engine's proof is a script of its own.
if [ "${1:-}" = --engine ] && [ "${2:-}" = swarm ]; then
    shift 2
    exec scripts/rollout-swarm.sh "$@"
fi

engine="" replicas=3 settle=5 connections=32 ready_timeout=60 deploy_image="" project=""
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) engine=${2:?}; shift ;;
        --replicas) replicas=${2:?}; shift ;;
        --settle) settle=${2:?}; shift ;;
        --connections) connections=${2:?}; shift ;;
        --deploy) deploy_image=${2:?}; shift ;;
        --project) project=${2:?}; shift ;;
        -h | --help) help_from_header; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[ "$engine" = compose ] || die "--engine compose or --engine swarm (scripts/rollout-swarm.sh, its own options)"
[[ "$replicas" =~ ^[1-5]$ ]] || die "--replicas must be 1 to 5 (the load balancer has 10 slots: blue and green)"

if [ -n "$deploy_image" ]; then
    [ -n "$project" ] || die "--deploy needs --project: the compose project of the running stack"
else
    project=${project:-${ROLLOUT_PROJECT:-page-tracker-rollout}}
fi
export PAGE_TRACKER_PORT=${PAGE_TRACKER_PORT:-18090}
blue_image=${PAGE_TRACKER_IMAGE:-page-tracker:latest}
green_image="$blue_image-green"
direct_port=$((PAGE_TRACKER_PORT + 1))
direct_container="$project-direct"
lb_url="http://127.0.0.1:$PAGE_TRACKER_PORT/"
load_url=$lb_url
work=$(mktemp -d)

stack() { PAGE_TRACKER_IMAGE=$image "${COMPOSE[@]}" --project-name "$project" "$@"; }
image=$blue_image

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Every step is tried, whatever failed before.
    set +e
    if [ -z "$deploy_image" ]; then
        stop_load
        docker rm -f "$direct_container" >/dev/null 2>&1
        if [ "$status" -ne 0 ] && [ -n "${project_started:-}" ]; then
            stack logs --no-color --tail 30 load-balancer >&2 2>/dev/null
        fi
        stack down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
        if [ -n "${green_tagged:-}" ]; then docker rmi "$green_image" >/dev/null 2>&1; fi
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# --- The stack and its load balancer ---------------------------------------------

# Container ids of the load balancer and Redis, known once the stack runs.
lb_id="" redis_id=""
views() { page_views "$redis_id"; }
servers() { lb_servers "$lb_id"; }
# slot_of IP: the load balancer's server slot holding that address.
slot_of() { servers | awk -v ip="$1" '$5 == ip { print $4 }'; }
# resolved IP: the load balancer has given the address a slot.
resolved() { [ -n "$(slot_of "$1")" ]; }
# emptied SLOT: the slot holds no address any more.
emptied() { [ "$(servers | awk -v s="$1" '$4 == s { print $5 }')" = - ]; }
in_rotation() { lb_in_rotation "$lb_id" "$1"; }
set_state() { haproxy_cli "$lb_id" "set server web/$1 state $2" >/dev/null; }
running_replicas() { docker ps -q --no-trunc --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=web-service" --filter status=running; }


# --- Figures ----------------------------------------------------------------------------

# measure LABEL URL: throughput and p99 of GET / at URL, printed, never judged.
measure() {
    timeout -k 5 40 wrk -t 2 -c "$connections" -d 8s --timeout 5s \
        -s scripts/bench/wrk-report.lua "$2" >"$work/bench" 2>&1 || { cat "$work/bench" >&2; die "bench: wrk failed"; }
    awk -v label="$1" -v prog="$LIB_PROG" '/^WRK_RESULT/ {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
        printf "%s: bench: %-44s %8.0f requests/s  p99 %6.2f ms  (%d non-2xx, %d socket errors)\n",
            prog, label, r["requests"] / (r["duration_us"] / 1e6), r["p99_us"] / 1000, r["status"],
            r["connect"] + r["read"] + r["write"] + r["timeout"]
    }' "$work/bench"
}

# --- Blue-green ----------------------------------------------------------------------

# deploy IMAGE [REDIS_HOST]: green replicas of IMAGE beside blue; returns 1 after
# a rollback. REDIS_HOST, when given, is where green looks for Redis.
deploy() {
    local new=$1 redis_host=${2:-${PAGE_TRACKER_REDIS_HOST:-redis-service}} blue=() green=() free=() slots=() ip slot g b id
    mapfile -t blue < <(running_replicas)
    # Empty slots go into maintenance first: green replicas that resolve into them
    # take no visitors until they are checked and put in rotation.
    mapfile -t free < <(servers | awk '$5 == "-" { print $4 }')
    for slot in "${free[@]}"; do set_state "$slot" maint; done

    log "deploy: starting ${#blue[@]} green replicas of $new beside ${#blue[@]} blue"
    image=$new PAGE_TRACKER_REDIS_HOST=$redis_host stack up -d --no-deps --no-build --no-recreate \
        --scale web-service=$((2 * ${#blue[@]})) web-service 2>&1 | sed 's/^/    /'
    for id in $(running_replicas); do
        [[ " ${blue[*]} " == *" $id "* ]] || green+=("$id")
    done

    local ready=true
    for g in "${green[@]}"; do
        ip=$(container_ip "$g")
        if ! wait_until "$ready_timeout" curl -fsS --max-time 2 "http://$ip:8000/ready"; then
            ready=false
            warn "deploy: green replica $ip not ready within ${ready_timeout}s: $(curl -sS --max-time 2 "http://$ip:8000/ready" 2>&1)"
        fi
    done
    if ! $ready; then
        log "rollback: green is not ready; removing it, blue keeps serving"
        docker stop -t 30 "${green[@]}" >/dev/null
        docker rm "${green[@]}" >/dev/null
        for slot in "${free[@]}"; do set_state "$slot" ready; done
        # The load balancer lets go of green's addresses within a DNS hold and a check.
        wait_until 30 in_rotation "${#blue[@]}" || die "rollback: blue is not fully in rotation"
        log "rollback: done, ${#blue[@]} blue replicas in rotation"
        return 1
    fi

    for g in "${green[@]}"; do
        ip=$(container_ip "$g")
        wait_until 30 resolved "$ip" || true
        slot=$(slot_of "$ip")
        [ -n "$slot" ] || die "deploy: the load balancer has not resolved green replica $ip"
        set_state "$slot" ready
    done
    wait_until 30 in_rotation $((2 * ${#blue[@]})) || die "deploy: green did not come into rotation"
    log "deploy: green in rotation; draining blue"
    for b in "${blue[@]}"; do
        slot=$(slot_of "$(container_ip "$b")")
        slots+=("$slot")
        set_state "$slot" drain
    done
    # SIGTERM: each blue replica keeps serving for its drain delay, finishes what is
    # in flight and exits.
    docker stop -t 30 "${blue[@]}" >/dev/null
    docker rm "${blue[@]}" >/dev/null
    for slot in "${slots[@]}"; do
        wait_until 30 emptied "$slot" || warn "deploy: slot $slot still holds an address"
        set_state "$slot" ready
    done
    for slot in "${free[@]}"; do set_state "$slot" ready; done
    log "deploy: blue stopped; ${#green[@]} green replicas of $new serve"
}

# --- A deploy on a running stack --------------------------------------------------------

if [ -n "$deploy_image" ]; then
    docker image inspect "$deploy_image" >/dev/null 2>&1 || die "no image $deploy_image"
    lb_id=$(stack ps -q load-balancer)
    [ -n "$lb_id" ] || die "project $project has no load balancer running"
    [ -n "$(running_replicas)" ] || die "project $project has no replica running"
    if deploy "$deploy_image"; then
        exit 0
    fi
    exit 1
fi

# --- The proof -------------------------------------------------------------------------

command -v wrk >/dev/null || apt_install "the rollout is proved under load from wrk" wrk ||
    die "wrk is needed"
docker image inspect "$blue_image" >/dev/null 2>&1 || die "no image $blue_image: build it first (docker compose build)"

log "starting $replicas replicas of $blue_image behind the load balancer (project $project)"
stack down --volumes --remove-orphans >/dev/null 2>&1 || true
project_started=1
stack up -d --no-build --scale web-service="$replicas" load-balancer
lb_id=$(stack ps -q load-balancer)
redis_id=$(stack ps -q redis-service)
wait_until 120 in_rotation "$replicas" || die "the load balancer has not got $replicas replicas in rotation"
log "$replicas replicas in rotation: $(servers | awk '$6 == 2 { printf "%s=%s ", $4, $5 }')"


problems=()
docker tag "$blue_image" "$green_image"
green_tagged=1

log "phase deploy: load ($connections connections), a blue-green deploy"
start_load
started=$SECONDS
deploy "$green_image" || die "deploy: rolled back although green is healthy"
log "deploy: took $((SECONDS - started))s"
finish_load deploy 0
deploy_requests=$phase_requests deploy_failed=$phase_failed

log "phase rollback: load, a deploy of a green that cannot reach Redis"
start_load
saved_timeout=$ready_timeout ready_timeout=10
if deploy "$blue_image" 127.0.0.1; then
    warn "rollback: FAILED: a green replica that cannot reach Redis was put in rotation"
    problems+=(rollback)
fi
ready_timeout=$saved_timeout
finish_load rollback 0

log "phase sigkill: load, one replica killed with SIGKILL"
start_load
victim=$(running_replicas | head -n 1)
victim_ip=$(container_ip "$victim")
[ -n "$victim_ip" ] || die "sigkill: replica $victim has no address"
log "sigkill: killing replica $victim_ip"
docker kill --signal KILL "$victim" >/dev/null
finish_load sigkill "$connections"

# Figures only: they vary with whatever else runs on the machine.
image=$green_image
log "phase bench: GET / for 8s at $connections connections, wrk on this host"
docker rm -f "$victim" >/dev/null
stack up -d --no-deps --no-build --no-recreate --scale web-service="$replicas" web-service 2>&1 | sed 's/^/    /'
wait_until 60 in_rotation "$replicas" || die "bench: $replicas replicas are not in rotation"
measure "through the load balancer, $replicas replicas" "$lb_url"
mapfile -t extra < <(running_replicas | tail -n +2)
docker stop -t 30 "${extra[@]}" >/dev/null
docker rm "${extra[@]}" >/dev/null
wait_until 60 in_rotation 1 || die "bench: one replica is not in rotation: $(servers | awk '{ printf "%s=%s/%s/%s ", $4, $5, $6, $7 }')"
measure "through the load balancer, 1 replica" "$lb_url"
network=$(docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}' \
    "$redis_id" | awk '{print $1}')
docker run -d --name "$direct_container" --network "$network" -p "127.0.0.1:$direct_port:8000" \
    -e REDIS_URL=redis://redis-service:6379 "$green_image" >/dev/null
wait_until 30 curl -fsS --max-time 2 "http://127.0.0.1:$direct_port/ready" || die "bench: the direct replica is not ready"
measure "one replica directly (published port)" "http://127.0.0.1:$direct_port/"

if [ ${#problems[@]} -gt 0 ]; then
    warn "failed phases: ${problems[*]}"
fi
echo "rollout (compose): $deploy_requests requests, $deploy_failed failed"
[ ${#problems[@]} -eq 0 ]
