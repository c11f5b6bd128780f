#!/usr/bin/env bash
# Waits until a Swarm service has converged on an image, and fails if Swarm
# rolled the update back (or paused it) instead.
#
#   scripts/swarm-wait.sh SERVICE IMAGE [TIMEOUT_SECONDS]
#
# SERVICE is the full name (`<stack>_<service>`); IMAGE the reference deployed,
# e.g. docker.io/me/page-tracker:<full SHA> (a digest Swarm pinned after it is
# accepted). Talks to whichever engine DOCKER_HOST / DOCKER_CONTEXT names.
# Exit status: 0 converged, 1 rolled back, paused, or not converged in time.
set -euo pipefail

[ $# -ge 2 ] || { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
service=$1 image=$2 timeout=${3:-600}
log() { printf 'swarm-wait: %s\n' "$*"; }

deadline=$((SECONDS + timeout))
last=""
while :; do
    read -r state spec < <(docker service inspect --format \
        '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}none{{end}} {{.Spec.TaskTemplate.ContainerSpec.Image}}' \
        "$service")
    message=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}' "$service")
    replicas=$(docker service ls --filter "name=$service" --format '{{.Name}} {{.Replicas}}' |
        awk -v s="$service" '$1 == s { print $2 }')
    now="$state $replicas $spec"
    [ "$now" = "$last" ] || log "$service: update ${state}, ${replicas:-?} running, image $spec${message:+ ($message)}"
    last=$now
    case $state in
        rollback_completed | rollback_paused | paused)
            log "$service was not updated to $image: ${message:-$state}" >&2
            exit 1
            ;;
        completed | none)
            running=${replicas%%/*} desired=${replicas#*/}
            desired=${desired%% *}
            if [[ "$spec" == "$image" || "$spec" == "$image@"* ]] &&
                [ -n "$running" ] && [ "$running" = "$desired" ] && [ "$desired" -gt 0 ]; then
                log "$service converged: $replicas on $image"
                exit 0
            fi
            ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "$service did not converge on $image within ${timeout}s" >&2
        exit 1
    fi
    sleep 2
done
