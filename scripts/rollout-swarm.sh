#!/usr/bin/env bash
# Rolling updates of page-tracker on Docker Swarm, proved under load through the
# load balancer.
#
#   scripts/rollout-swarm.sh [--replicas N] [--settle S] [--connections C]
#   scripts/rollout.sh --engine swarm [...]     the same
#
# Deploys deploy/swarm/stack.yml with its monitoring (stack.monitoring.yml) as
# stack ROLLOUT_STACK (default page-tracker-rollout-swarm; the load balancer on
# PAGE_TRACKER_PORT, default 18092, Prometheus on PROMETHEUS_PORT, default 18093, of
# this node) with PAGE_TRACKER_IMAGE (default page-tracker:latest), then, each
# phase under steady load from wrk through the load balancer (C connections,
# default 32), from S seconds (default 5) before the phase's action until S
# seconds after it:
#
#   scale     the web service scaled to N+2 replicas and back to N (default 3)
#   rolling   `docker service update --image` to the image re-tagged <image>-next:
#             Swarm replaces one replica at a time, the new one healthy first
#   rollback  an update whose replicas start but never serve where the load
#             balancer and the healthcheck look (PAGE_TRACKER_BIND=0.0.0.0:8001,
#             while both ask port 8000 for /serving): never healthy, so Swarm
#             rolls it back by itself; scripts/swarm-wait.sh must report it
#   sigkill   one replica is killed with SIGKILL; Swarm starts another
#
# Prometheus must scrape every replica, the load balancer and Redis once deployed,
# and the two added replicas too while scaled up, with no change to its configuration.
# For each phase: requests answered, non-2xx, socket errors, and the Redis
# counter's growth against the 2xx count. Fails when the scale, rolling or
# rollback phase lost a request, when Prometheus missed a replica, when SIGKILL
# lost more than the connections in flight, or when the counter and the 2xx
# answers differ by more than the requests in flight or failed. Last line:
# `rollout (swarm): N requests, F failed` (the rolling phase).
#
# The swarm: initialised (single node) only when `docker info` says it is
# inactive, and left again at the end (with the docker_gwbridge network that
# `swarm init` creates, when it did not exist before); a node label for Redis'
# placement is added only when missing and removed again. Everything the run
# creates (stack, volume, config, image tag) is removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
LIB_PROG=rollout
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

replicas=3 settle=5 connections=32
while [ $# -gt 0 ]; do
    case "$1" in
        --replicas) replicas=${2:?}; shift ;;
        --settle) settle=${2:?}; shift ;;
        --connections) connections=${2:?}; shift ;;
        -h | --help) help_from_header; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
# Up to N+2 replicas while scaling: within HAProxy's 10 server slots.
[[ "$replicas" =~ ^[1-5]$ ]] || die "--replicas must be 1 to 5"
[[ "$settle" =~ ^[0-9]+$ ]] && [ "$settle" -ge 1 ] || die "--settle must be a whole number of seconds, at least 1"
[[ "$connections" =~ ^[0-9]+$ ]] && [ "$connections" -ge 1 ] || die "--connections must be at least 1"

stack=${ROLLOUT_STACK:-page-tracker-rollout-swarm}
export PAGE_TRACKER_PORT=${PAGE_TRACKER_PORT:-18092}
export PROMETHEUS_PORT=${PROMETHEUS_PORT:-18093}
export PAGE_TRACKER_IMAGE=${PAGE_TRACKER_IMAGE:-page-tracker:latest}
export HAPROXY_IMAGE=${HAPROXY_IMAGE:-haproxy:2.6-bookworm}
export STACK_NAME=$stack
swarm_digests
next_image="$PAGE_TRACKER_IMAGE-next"
web="${stack}_web-service"
lb_url="http://127.0.0.1:$PAGE_TRACKER_PORT/"
prometheus_url="http://127.0.0.1:$PROMETHEUS_PORT"
load_url=$lb_url
work=$(mktemp -d)

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Every step is tried, whatever failed before.
    set +e
    stop_load
    if [ -n "${deployed:-}" ]; then
        # A failed phase has shown them already.
        if [ "$status" -ne 0 ] && [ -z "${lb_lines_shown:-}" ]; then on_load_failure; fi
        swarm_stack_remove "$stack"
    fi
    if [ -n "${next_tagged:-}" ]; then docker rmi "$next_image" >/dev/null 2>&1; fi
    swarm_leave
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v wrk >/dev/null || apt_install "the rollout is proved under load from wrk" wrk ||
    die "wrk is needed"
for image in "$PAGE_TRACKER_IMAGE" "$HAPROXY_IMAGE" redis:7.0.15-bookworm prom/prometheus:v2.42.0 \
    oliver006/redis_exporter:v1.45.0; do
    docker image inspect "$image" >/dev/null 2>&1 || die "no image $image: build it first"
done

# --- The swarm ------------------------------------------------------------------------

swarm_enter
swarm_label page-tracker.redis

# --- The stack and its load balancer --------------------------------------------------

task_of() { swarm_task "${stack}_$1"; }
views() { page_views "$(task_of redis-service)"; }
servers() { lb_servers "$(task_of load-balancer)"; }
in_rotation() { lb_in_rotation "$(task_of load-balancer)" "$1"; }
# What failed, as the load balancer logged it: requests answered other than 200 or
# ended abnormally, and its own lines (a replica going DOWN or UP, a slot changing
# address). A visit HAProxy closes unanswered because the replica closed first is
# not logged at all: then only the replicas' state changes show, and under load the
# log keeps only its last half minute or so (rotated at 10 MB, 5 files).
on_load_failure() {
    lb_lines_shown=1
    warn "the load balancer's last lines other than a clean 200:"
    docker logs "$(task_of load-balancer)" 2>&1 |
        grep -v '"status":200,.*"termination":"----"' | tail -n 20 >&2
}
update_started_at() { docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}' "$web"; }
# update OPTION...: `docker service update OPTION...` of the web service, then waits
# until Swarm has begun it, so that swarm-wait.sh never reads the last update's status.
update() {
    local before
    before=$(update_started_at)
    docker service update --detach --quiet --no-resolve-image "$@" "$web" >/dev/null
    wait_until 30 update_begun "$before" || warn "Swarm has not begun the update within 30s"
}
update_begun() { [ "$(update_started_at)" != "$1" ]; }
lb_ready() { curl -fsS --max-time 2 -o /dev/null "$lb_url"; }
# series QUERY: how many series Prometheus answers QUERY with.
series() {
    curl -fsS --max-time 2 "$prometheus_url/api/v1/query" --data-urlencode "query=$1" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["result"]))'
}
# scraped N: Prometheus scrapes N web replicas, one load balancer and Redis, all up.
scraped() {
    [ "$(series 'up{job="page-tracker"} == 1')" -eq "$1" ] && [ "$(series 'up{job="haproxy"} == 1')" -eq 1 ] &&
        [ "$(series 'redis_up == 1')" -eq 1 ] && [ "$(series 'up == 0')" -eq 0 ]
}
# expect_scraped PHASE N SECONDS: records a problem unless Prometheus comes to scrape
# N replicas, the load balancer and Redis within SECONDS.
expect_scraped() {
    if wait_until "$3" scraped "$2"; then
        log "$1: Prometheus scrapes $2 replicas, the load balancer and Redis"
    else
        warn "$1: FAILED: Prometheus does not scrape $2 replicas, the load balancer and Redis" \
            "(web targets: $(series 'up{job="page-tracker"}' 2>&1))"
        problems+=(monitoring)
    fi
}

log "deploying stack $stack: $PAGE_TRACKER_IMAGE behind $HAPROXY_IMAGE on port $PAGE_TRACKER_PORT"
deployed=1
docker stack deploy --resolve-image=never --compose-file deploy/swarm/stack.yml \
    --compose-file deploy/swarm/stack.monitoring.yml --compose-file deploy/swarm/stack.prometheus-port.yml \
    "$stack" | sed 's/^/    /'
scripts/swarm-wait.sh "${stack}_redis-service" redis:7.0.15-bookworm 120 | sed 's/^/    /'
scripts/swarm-wait.sh "$web" "$PAGE_TRACKER_IMAGE" 180 | sed 's/^/    /'
if [ "$replicas" -ne 3 ]; then
    docker service scale --detach=false "$web=$replicas" >/dev/null
fi
wait_until 120 in_rotation "$replicas" || die "the load balancer has not got $replicas replicas in rotation"
wait_until 30 lb_ready || die "nothing answers on $lb_url"
log "$replicas replicas in rotation: $(servers | awk '$6 == 2 { printf "%s=%s ", $4, $5 }')"

# --- The phases -----------------------------------------------------------------------

problems=()

expect_scraped monitoring "$replicas" 90

log "phase scale: load ($connections connections), $replicas -> $((replicas + 2)) -> $replicas replicas"
start_load
docker service scale --detach=false "$web=$((replicas + 2))" >/dev/null
wait_until 60 in_rotation $((replicas + 2)) || warn "scale: $((replicas + 2)) replicas not in rotation"
expect_scraped scale $((replicas + 2)) 60
log "scale: $((replicas + 2)) replicas in rotation; scaling back (the removed ones drain)"
docker service scale --detach=false "$web=$replicas" >/dev/null
finish_load scale 0

docker tag "$PAGE_TRACKER_IMAGE" "$next_image"
next_tagged=1
log "phase rolling: load, docker service update --image $next_image"
start_load
started=$SECONDS
update --image "$next_image"
scripts/swarm-wait.sh "$web" "$next_image" 300 | sed 's/^/    /' ||
    { warn "rolling: FAILED: the update did not converge"; problems+=(rolling); }
log "rolling: every replica on $next_image after $((SECONDS - started))s"
wait_until 60 in_rotation "$replicas" || warn "rolling: $replicas replicas not in rotation"
finish_load rolling 0
rolling_requests=$phase_requests rolling_failed=$phase_failed

log "phase rollback: load, an update whose replicas listen on port 8001 (PAGE_TRACKER_BIND=0.0.0.0:8001)"
start_load
started=$SECONDS
# The image changes too, so the update is one swarm-wait.sh can tell from the last.
update --image "$PAGE_TRACKER_IMAGE" --env-add PAGE_TRACKER_BIND=0.0.0.0:8001
if scripts/swarm-wait.sh "$web" "$PAGE_TRACKER_IMAGE" 300 >"$work/rollback" 2>&1; then
    sed 's/^/    /' "$work/rollback"
    warn "rollback: FAILED: Swarm accepted an update whose replicas never serve on port 8000"
    problems+=(rollback)
else
    sed 's/^/    /' "$work/rollback"
    read -r state current < <(docker service inspect --format \
        '{{.UpdateStatus.State}} {{.Spec.TaskTemplate.ContainerSpec.Image}}' "$web")
    bind=$(docker service inspect --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}' "$web" |
        grep '^PAGE_TRACKER_BIND=' || true)
    if [ "$state" != rollback_completed ] || [[ "$current" != "$next_image"* ]] || [ -n "$bind" ]; then
        warn "rollback: FAILED: the service is $state on $current${bind:+ with $bind}"
        problems+=(rollback)
    else
        log "rollback: Swarm rolled back to $current by itself after $((SECONDS - started))s"
    fi
fi
wait_until 120 in_rotation "$replicas" || warn "rollback: $replicas replicas not in rotation"
finish_load rollback 0

log "phase sigkill: load, one replica killed with SIGKILL"
start_load
victim=$(task_of web-service)
log "sigkill: killing replica $(container_ip "$victim")"
docker kill --signal KILL "$victim" >/dev/null
finish_load sigkill "$connections"
if wait_until 120 in_rotation "$replicas"; then
    log "sigkill: $replicas replicas in rotation again"
else
    warn "sigkill: FAILED: Swarm did not restore $replicas replicas"
    problems+=(sigkill)
fi

if [ ${#problems[@]} -gt 0 ]; then
    warn "failed phases: ${problems[*]}"
fi
echo "rollout (swarm): $rolling_requests requests, $rolling_failed failed"
[ ${#problems[@]} -eq 0 ]
