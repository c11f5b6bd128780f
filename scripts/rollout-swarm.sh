#!/usr/bin/env bash
# Rolling updates of page-tracker on Docker Swarm, proved under load through the
# load balancer.
#
#   scripts/rollout-swarm.sh [--replicas N] [--duration S] [--connections C]
#
# Deploys deploy/swarm/stack.yml as stack ROLLOUT_STACK (default
# page-tracker-rollout; the load balancer on PAGE_TRACKER_PORT, default 18092, of
# this node) with PAGE_TRACKER_IMAGE (default page-tracker:latest), then, each
# phase under steady load from wrk (C connections, default 32):
#
#   scale     the web service scaled to N+2 replicas and back to N (default 3)
#   rolling   `docker service update --image` to the image re-tagged <image>-next:
#             Swarm replaces one replica at a time, the new one healthy first
#   rollback  an update whose replicas cannot start (an invalid setting): Swarm
#             rolls it back by itself; scripts/swarm-wait.sh must report it
#   sigkill   one replica is killed with SIGKILL; Swarm starts another
#
# For each phase: requests answered, non-2xx, socket errors, and the Redis
# counter's growth against the 2xx count. Fails when the scale, rolling or
# rollback phase lost a request, when SIGKILL lost more than the connections in
# flight, or when the counter and the 2xx answers differ by more than the
# requests in flight or failed. Last line:
# `rollout (swarm): N requests, F failed` (the rolling phase).
#
# The swarm: initialised (single node) only when `docker info` says it is
# inactive, and left again at the end; a node label for Redis' placement is
# added only when missing and removed again. Everything the run creates (stack,
# volume, config, image tag) is removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
LIB_PROG=rollout
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

replicas=3 duration=30 connections=32
while [ $# -gt 0 ]; do
    case "$1" in
        --replicas) replicas=${2:?}; shift ;;
        --duration) duration=${2:?}; shift ;;
        --connections) connections=${2:?}; shift ;;
        -h | --help) sed -n '2,30s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
# Up to N+2 replicas while scaling: within HAProxy's 10 server slots.
[[ "$replicas" =~ ^[1-5]$ ]] || die "--replicas must be 1 to 5"
[[ "$duration" =~ ^[0-9]+$ ]] && [ "$duration" -ge 10 ] || die "--duration must be at least 10 (seconds)"

stack=${ROLLOUT_STACK:-page-tracker-rollout}
export PAGE_TRACKER_PORT=${PAGE_TRACKER_PORT:-18092}
export PAGE_TRACKER_IMAGE=${PAGE_TRACKER_IMAGE:-page-tracker:latest}
export HAPROXY_IMAGE=${HAPROXY_IMAGE:-haproxy:2.6-bookworm}
export STACK_NAME=$stack HAPROXY_CONFIG_DIGEST
HAPROXY_CONFIG_DIGEST=$(sha256sum deploy/haproxy/haproxy.cfg | cut -c1-12)
next_image="$PAGE_TRACKER_IMAGE-next"
web="${stack}_web-service"
lb_url="http://127.0.0.1:$PAGE_TRACKER_PORT/"
work=$(mktemp -d)

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Every step is tried, whatever failed before.
    set +e
    [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null
    if [ -n "${deployed:-}" ]; then
        [ "$status" -ne 0 ] && docker service logs --tail 30 "${stack}_load-balancer" >&2 2>/dev/null
        docker stack rm "$stack" >/dev/null 2>&1 || true
        # The stack's containers and network go asynchronously; the volume only once they have.
        wait_until 90 stack_gone || warn "stack $stack: containers still there after 90s"
        wait_until 30 docker volume rm "${stack}_redis-volume" || warn "volume ${stack}_redis-volume not removed"
    fi
    [ -n "${next_tagged:-}" ] && docker rmi "$next_image" >/dev/null 2>&1
    [ -n "${labelled:-}" ] && docker node update --label-rm page-tracker.redis "$node" >/dev/null 2>&1
    if [ -n "${initialised:-}" ]; then
        docker swarm leave --force >/dev/null 2>&1 && log "left the swarm this run initialised"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v wrk >/dev/null || apt_install "the rollout is proved under load from wrk" wrk ||
    die "wrk is needed"
for image in "$PAGE_TRACKER_IMAGE" "$HAPROXY_IMAGE" redis:7.0.15-bookworm; do
    docker image inspect "$image" >/dev/null 2>&1 || die "no image $image: build it first"
done

# --- The swarm ------------------------------------------------------------------------

stack_gone() { [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ]; }

case $(docker info --format '{{.Swarm.LocalNodeState}}') in
    inactive)
        log "the engine is in no swarm: initialising a single-node swarm for this run"
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null
        initialised=1
        ;;
    active)
        [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] ||
            die "this node is in a swarm but not a manager: run on a manager"
        log "using the swarm this engine is in"
        ;;
    *) die "the swarm state is $(docker info --format '{{.Swarm.LocalNodeState}}'): expected inactive or active" ;;
esac
node=$(docker info --format '{{.Swarm.NodeID}}')
if [ "$(docker node inspect "$node" --format '{{index .Spec.Labels "page-tracker.redis"}}')" != true ]; then
    docker node update --label-add page-tracker.redis=true "$node" >/dev/null
    labelled=1
fi

# --- The stack and its load balancer --------------------------------------------------

task_of() { docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_$1" --filter status=running | head -n 1; }
redis() {
    docker exec ${REDIS_PASSWORD:+--env REDISCLI_AUTH="$REDIS_PASSWORD"} "$(task_of redis-service)" redis-cli "$@"
}
views() { redis GET page_views | sed 's/^$/0/'; }
servers() { haproxy_cli "$(task_of load-balancer)" "show servers state web" | awk '$2 == "web"'; }
# in_rotation N: N slots are up and taking visitors.
in_rotation() { [ "$(servers | awk '$6 == 2 && $7 == 0' | wc -l)" -eq "$1" ]; }
lb_ready() { curl -fsS --max-time 2 -o /dev/null "$lb_url"; }

log "deploying stack $stack: $PAGE_TRACKER_IMAGE behind $HAPROXY_IMAGE on port $PAGE_TRACKER_PORT"
deployed=1
docker stack deploy --resolve-image=never --compose-file deploy/swarm/stack.yml "$stack" | sed 's/^/    /'
scripts/swarm-wait.sh "${stack}_redis-service" redis:7.0.15-bookworm 120 | sed 's/^/    /'
scripts/swarm-wait.sh "$web" "$PAGE_TRACKER_IMAGE" 180 | sed 's/^/    /'
if [ "$replicas" -ne 3 ]; then
    docker service scale --detach=false "$web=$replicas" >/dev/null
fi
wait_until 120 in_rotation "$replicas" || die "the load balancer has not got $replicas replicas in rotation"
wait_until 30 lb_ready || die "nothing answers on $lb_url"
log "$replicas replicas in rotation: $(servers | awk '$6 == 2 { printf "%s=%s ", $4, $5 }')"

# --- Load and its accounting ----------------------------------------------------------

# start_load SECONDS URL: wrk in the background; its report goes to $work/wrk.
start_load() {
    views_before=$(views)
    timeout -k 5 $(($1 + 30)) wrk -t 2 -c "$connections" -d "${1}s" --timeout 5s \
        -s scripts/bench/wrk-report.lua "$2" >"$work/wrk" 2>&1 &
    load_pid=$!
}

# finish_load PHASE ALLOWED_FAILURES: waits for wrk and prints the phase's line;
# records the phase as failed when more requests failed than allowed or the
# counter disagrees with the 2xx answers.
finish_load() {
    local phase=$1 allowed=$2 line requests status errors ok grown
    wait "$load_pid" || { cat "$work/wrk" >&2; die "$phase: wrk failed"; }
    load_pid=""
    line=$(grep '^WRK_RESULT' "$work/wrk") || { cat "$work/wrk" >&2; die "$phase: no result from wrk"; }
    requests=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
    status=$(sed 's/.* status=\([0-9]*\).*/\1/' <<<"$line")
    errors=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(connect|read|write|timeout)=/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' <<<"$line")
    ok=$((requests - status))
    # Requests abandoned by wrk at its deadline may still be answered and counted.
    sleep 1
    grown=$(($(views) - views_before))
    phase_failed=$((status + errors))
    log "$phase: $requests requests answered, $status non-2xx, $errors socket errors; counter grew by $grown for $ok 2xx ($((grown - ok)) counted without a 2xx read by wrk: in flight when the load stopped, at most $connections, or failed after Redis counted them)"
    phase_requests=$requests
    if [ "$phase_failed" -gt "$allowed" ]; then
        warn "$phase: FAILED: $phase_failed failed requests, at most $allowed allowed; the load balancer's last non-200 answers:"
        docker logs "$(task_of load-balancer)" 2>&1 | awk '$6 ~ /^[0-9][0-9][0-9]$/ && $6 != 200' | tail -n 10 >&2
        problems+=("$phase")
    elif [ "$grown" -lt "$ok" ] || [ $((grown - ok)) -gt $((connections + phase_failed)) ]; then
        warn "$phase: FAILED: the counter grew by $grown for $ok answered visits"
        problems+=("$phase")
    fi
}

# --- The phases -----------------------------------------------------------------------

problems=()

log "phase scale: ${duration}s of load ($connections connections), $replicas -> $((replicas + 2)) -> $replicas replicas"
start_load "$duration" "$lb_url"
sleep 3
docker service scale --detach=false "$web=$((replicas + 2))" >/dev/null
wait_until 60 in_rotation $((replicas + 2)) || warn "scale: $((replicas + 2)) replicas not in rotation"
log "scale: $((replicas + 2)) replicas in rotation; scaling back (the removed ones drain)"
docker service scale --detach=false "$web=$replicas" >/dev/null
finish_load scale 0

docker tag "$PAGE_TRACKER_IMAGE" "$next_image"
next_tagged=1
# One replica at a time: start-first, 5s apart, watched 30s; long enough load to cover it.
rolling_duration=$((duration > 30 * replicas ? duration : 30 * replicas))
log "phase rolling: ${rolling_duration}s of load, docker service update --image $next_image after 3s"
start_load "$rolling_duration" "$lb_url"
sleep 3
started=$SECONDS
docker service update --detach --quiet --no-resolve-image --image "$next_image" "$web" >/dev/null
scripts/swarm-wait.sh "$web" "$next_image" 300 | sed 's/^/    /' ||
    { warn "rolling: FAILED: the update did not converge"; problems+=(rolling); }
log "rolling: every replica on $next_image after $((SECONDS - started))s"
finish_load rolling 0
rolling_requests=$phase_requests rolling_failed=$phase_failed

log "phase rollback: ${rolling_duration}s of load, an update whose replicas exit at start (REQUEST_TIMEOUT=0s)"
start_load "$rolling_duration" "$lb_url"
sleep 3
started=$SECONDS
docker service update --detach --quiet --no-resolve-image --image "$PAGE_TRACKER_IMAGE" --env-add REQUEST_TIMEOUT=0s "$web" >/dev/null
if scripts/swarm-wait.sh "$web" "$PAGE_TRACKER_IMAGE" 300 >"$work/rollback" 2>&1; then
    sed 's/^/    /' "$work/rollback"
    warn "rollback: FAILED: Swarm accepted an update whose replicas cannot start"
    problems+=(rollback)
else
    sed 's/^/    /' "$work/rollback"
    current=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$web")
    [[ "$current" == "$next_image"* ]] || { warn "rollback: FAILED: the service runs $current"; problems+=(rollback); }
    log "rollback: Swarm rolled back to $current by itself after $((SECONDS - started))s"
fi
wait_until 120 in_rotation "$replicas" || warn "rollback: $replicas replicas not in rotation"
finish_load rollback 0

log "phase sigkill: 20s of load, one replica killed with SIGKILL after 5s"
start_load 20 "$lb_url"
sleep 5
victim=$(task_of web-service)
log "sigkill: killing replica $(container_ip "$victim")"
docker kill --signal KILL "$victim" >/dev/null
finish_load sigkill "$connections"
wait_until 120 in_rotation "$replicas" || { warn "sigkill: Swarm did not restore $replicas replicas"; problems+=(sigkill); }
log "sigkill: $replicas replicas in rotation again"

if [ ${#problems[@]} -gt 0 ]; then
    warn "failed phases: ${problems[*]}"
fi
echo "rollout (swarm): $rolling_requests requests, $rolling_failed failed"
[ ${#problems[@]} -eq 0 ]
