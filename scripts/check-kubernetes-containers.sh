#!/usr/bin/env bash
# Runs the Redis pods of the Kubernetes manifests as rendered, in Docker, without a
# cluster: the base's single Redis, then the ha overlay's three data nodes
# (StatefulSet redis) and three sentinels (StatefulSet redis-sentinel), each
# container exactly as its pod's template says
# (scripts/kubernetes-pod.py: image, command, args, env with made-up Secret
# values, the ConfigMap's files at their mountPath, read-only root, user 999,
# dropped capabilities, the readiness probe as health check) on a network of its
# own where each has its pod's DNS name as alias. Then it checks:
#
#   - base: user page-tracker may INCRBY page_views and is refused GET (NOPERM),
#     and a connection that does not sign in is refused (the default user is off);
#   - ha: the sentinels agree on redis-0 as primary, with 2 replicas and 3 sentinels;
#   - the same users on the primary;
#   - `docker kill` of redis-0: the sentinels promote a replica within 20 s;
#   - redis-0 started again asks the sentinels and returns as a replica of the
#     new primary, with the count;
#   - the three sentinels stopped and started afresh (their files gone) find the
#     new primary by asking the data nodes;
#   - no made-up password is in a container's command line or log.
#
#   scripts/check-kubernetes-containers.sh [BASE_RENDERED HA_RENDERED]
#
# The renders default to target/kubernetes-{base,ha}-rendered.yaml, as
# scripts/check-kubernetes.sh leaves them; a missing one is rendered with kubectl.
# Needs Docker, the images the render names (never pulled here: see
# scripts/build-base-images.sh), and python3 with PyYAML. Everything it creates is
# labelled page-tracker.bdd and removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

base_rendered=${1:-target/kubernetes-base-rendered.yaml}
ha_rendered=${2:-target/kubernetes-ha-rendered.yaml}
for overlay in base ha; do
    file=${overlay}_rendered
    if [ ! -s "${!file}" ]; then
        mkdir -p "$(dirname "${!file}")"
        kubectl kustomize "deploy/kubernetes/$overlay" >"${!file}"
    fi
done
while read -r image; do
    docker image inspect "$image" >/dev/null 2>&1 ||
        die "no image $image here (scripts/build-base-images.sh builds it, or docker pull it)"
done < <(sed -n 's/^ *image: *//p' "$base_rendered" "$ha_rendered" | grep '^redis' | sort -u)

run=k8s-$$
label=page-tracker.bdd=$run
network=page-tracker-$run
work=$(mktemp -d)
service=page-tracker
fqdn_domain=$(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "StatefulSet" and d["metadata"]["name"] == "redis":
        print("redis." + d["metadata"]["namespace"] + ".svc.cluster.local")' "$ha_rendered")
redis_fqdn() { echo "redis-$1.$fqdn_domain"; }

cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        for container in $(docker ps -aq --filter "label=$label"); do
            warn "--- log of $(docker inspect -f '{{.Name}}' "$container")"
            docker logs --tail 30 "$container" 2>&1 | sed 's/^/    /' >&2
        done
    fi
    docker ps -aq --filter "label=$label" | xargs -r docker rm -f -v >/dev/null
    docker network rm "$network" >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=$label" | xargs -r docker volume rm >/dev/null
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Made-up values for the Secret keys of the ha render (the base's are among them).
python3 scripts/kubernetes-pod.py secrets "$ha_rendered" >"$work/secrets.json"
docker network create --label "$label" "$network" >/dev/null

# The render start_pod reads, and the prefix of its containers' names.
rendered=$base_rendered
prefix=page-tracker-$run-base

# start_pod STATEFULSET ORDINAL: runs that pod's container as rendered.
start_pod() {
    local args=()
    mapfile -d '' args < <(python3 scripts/kubernetes-pod.py docker-args "$rendered" "$1" "$2" \
        "$work/secrets.json" "$work" "$network" "$prefix" "$label")
    [ "${#args[@]}" -gt 0 ] || die "no docker arguments for $1-$2"
    docker run "${args[@]}" >/dev/null
}
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$prefix-$1")" = healthy ]; }

# as_user POD PASSWORD_VARIABLE USER COMMAND...: redis-cli on a data node as USER,
# with the password from the container's own environment.
as_user() {
    local pod=$1 variable=$2 user=$3
    shift 3
    # shellcheck disable=SC2016 # expanded by the container's shell
    docker exec "$prefix-$pod" sh -c 'eval "export REDISCLI_AUTH=\$$1"; shift; exec redis-cli --raw "$@"' \
        _ "$variable" --user "$user" "$@" 2>&1 || true
}
admin() { as_user "$1" REDIS_ADMIN_PASSWORD admin "${@:2}"; }
# sentinel N COMMAND...: one sentinel, asked with the sentinels' password.
sentinel() {
    # shellcheck disable=SC2016 # expanded by the container's shell
    docker exec "$prefix-redis-sentinel-$1" sh -c \
        'REDISCLI_AUTH="$REDIS_SENTINEL_PASSWORD" exec redis-cli --raw -p 26379 "$@"' _ "${@:2}" 2>&1 || true
}
primary_of() { sentinel "$1" SENTINEL get-master-addr-by-name "$service" | head -n 1; }
# master_field N FIELD: a field of `SENTINEL master` as sentinel N sees it.
master_field() { sentinel "$1" SENTINEL master "$service" | awk -v f="$2" 'NR % 2 == 1 && $0 == f { getline; print }'; }
# all_sentinels_see PRIMARY: each sentinel names PRIMARY, knows 2 other sentinels
# and 2 replicas, and holds neither replica down.
all_sentinels_see() {
    local primary=$1 n flags
    for n in 0 1 2; do
        if [ "$(primary_of "$n")" != "$primary" ] ||
            [ "$(master_field "$n" num-slaves)" != 2 ] ||
            [ "$(master_field "$n" num-other-sentinels)" != 2 ]; then
            return 1
        fi
        flags=$(sentinel "$n" SENTINEL replicas "$service" |
            awk 'NR % 2 == 1 && $0 == "flags" { getline; print }' | sort -u)
        [ "$flags" = slave ] || return 1
    done
}
# replica_of POD PRIMARY: ROLE on POD says it replicates PRIMARY, link up.
replica_of() {
    local role
    role=$(admin "$1" ROLE | head -n 4 | tr '\n' ' ')
    [ "$role" = "slave $2 6379 connected " ]
}
passed=0
ok() { log "ok: $*"; passed=$((passed + 1)); }

# users_checked POD: page-tracker may count and nothing more, no user may nothing.
users_checked() {
    local answer
    answer=$(as_user "$1" REDIS_SERVICE_PASSWORD page-tracker INCRBY page_views 5)
    [ "$answer" = 5 ] || die "$1: INCRBY page_views as page-tracker: $answer"
    answer=$(as_user "$1" REDIS_SERVICE_PASSWORD page-tracker GET page_views)
    [[ "$answer" == NOPERM* ]] || die "$1: GET page_views as page-tracker was not refused: $answer"
    answer=$(docker exec "$prefix-$1" redis-cli --raw PING 2>&1 || true)
    [[ "$answer" == NOAUTH* ]] || die "$1: a connection without a user was not refused: $answer"
}

log "$base_rendered: the pod of StatefulSet redis in Docker (network $network)"
start_pod redis 0
wait_until 60 healthy redis-0 || die "redis-0 did not become ready (its readiness probe as admin)"
users_checked redis-0
ok "base: redis-0 ready; page-tracker may INCRBY page_views, is refused GET; no user gets NOAUTH"
docker rm -f -v "$prefix-redis-0" >/dev/null

rendered=$ha_rendered
prefix=page-tracker-$run-ha
log "$ha_rendered: the pods of StatefulSets redis and redis-sentinel in Docker (network $network)"
# The data nodes one after another, each ready before the next (the
# StatefulSet's OrderedReady), then the sentinels together (Parallel).
for n in 0 1 2; do
    start_pod redis "$n"
    wait_until 60 healthy "redis-$n" || die "redis-$n did not become ready (its readiness probe as admin)"
done
for n in 0 1 2; do start_pod redis-sentinel "$n"; done
for n in 0 1 2; do
    wait_until 60 healthy "redis-sentinel-$n" || die "redis-sentinel-$n did not become ready"
done
ok "ha: 3 data nodes and 3 sentinels ready (their readiness probes as rendered)"

primary=$(redis_fqdn 0)
wait_until 60 all_sentinels_see "$primary" ||
    die "the sentinels do not agree on $primary with 2 replicas and 2 other sentinels"
ok "every sentinel names $primary as primary, with 2 replicas and 2 other sentinels"
for n in 1 2; do
    wait_until 30 replica_of "redis-$n" "$primary" || die "redis-$n does not replicate $primary"
done
ok "redis-1 and redis-2 replicate redis-0 under its DNS name"

users_checked redis-0
ok "page-tracker may INCRBY page_views on the primary, is refused GET; no user gets NOAUTH"
# Both replicas have the count before the primary goes.
[ "$(admin redis-0 WAIT 2 5000)" = 2 ] || die "the replicas did not acknowledge the count"

docker kill "$prefix-redis-0" >/dev/null
# Microseconds since the epoch.
now() { echo "${EPOCHREALTIME/./}"; }
killed=$(now)
promoted=""
until [ -n "$promoted" ]; do
    current=$(primary_of 1)
    if [ -n "$current" ] && [ "$current" != "$primary" ]; then
        promoted=$current
    elif [ $(($(now) - killed)) -gt 20000000 ]; then
        die "no replica promoted within 20 s of the kill"
    else
        sleep 0.2
    fi
done
tenths=$((($(now) - killed) / 100000))
seconds=$((tenths / 10)).$((tenths % 10))
new_pod=${promoted%%."$fqdn_domain"}
[ "$(admin "$new_pod" ROLE | head -n 1)" = master ] || die "$promoted does not say it is master"
[ "$(admin "$new_pod" GET page_views)" = 5 ] || die "the count on $promoted is not 5"
ok "redis-0 killed: the sentinels promoted $new_pod in $seconds s, count 5 kept"

docker start "$prefix-redis-0" >/dev/null
wait_until 60 replica_of redis-0 "$promoted" || die "redis-0 started again does not replicate $promoted"
docker logs "$prefix-redis-0" 2>&1 | grep -F "names $promoted as the primary" >/dev/null ||
    die "redis-0 did not learn the primary from the sentinels at its start"
[ "$(admin redis-0 GET page_views)" = 5 ] || die "the count on redis-0 is not 5"
wait_until 30 all_sentinels_see "$promoted" || die "the sentinels do not see redis-0 as a replica again"
ok "redis-0 started again asked the sentinels and returned as a replica of $new_pod, count 5"

# All three sentinels stopped, their files (tmpfs, as the pods' memory emptyDir)
# gone, and started again: they ask the data nodes which is primary.
for n in 0 1 2; do docker stop -t 1 "$prefix-redis-sentinel-$n" >/dev/null; done
for n in 0 1 2; do docker start "$prefix-redis-sentinel-$n" >/dev/null; done
wait_until 60 all_sentinels_see "$promoted" || die "the sentinels started afresh do not find $promoted"
docker logs "$prefix-redis-sentinel-0" 2>&1 | grep -F "$promoted says it is the primary" >/dev/null ||
    die "redis-sentinel-0 did not learn the primary from the data nodes"
ok "all 3 sentinels started afresh found $new_pod as primary from the data nodes, with 2 replicas"

leaks=0
while read -r password; do
    for container in $(docker ps -q --filter "label=$label"); do
        # grep reads everything (no -q): an early exit would fail the pipe, not the search.
        if docker exec "$container" cat /proc/1/cmdline | tr '\0' ' ' | grep -F "$password" >/dev/null ||
            docker logs "$container" 2>&1 | grep -F "$password" >/dev/null; then
            warn "a password is in the command line or log of $(docker inspect -f '{{.Name}}' "$container")"
            leaks=$((leaks + 1))
        fi
    done
done < <(python3 -c 'import json, sys; [print(v) for s in json.load(open(sys.argv[1])).values() for v in s.values()]' \
    "$work/secrets.json")
[ "$leaks" -eq 0 ] || die "$leaks password(s) leaked"
ok "no password in any container's command line or log"

log "$passed checks passed"
