#!/usr/bin/env bash
# Runs the e2e level inside the compose stack, through the load balancer in front
# of E2E_REPLICAS (default 3) replicas, brings its JUnit XML and Cucumber
# JSON back to target/bdd/e2e/, checks that the count survives a restart of the
# stack, and removes every container, network and volume it made.
#
#   scripts/e2e.sh            (PAGE_TRACKER_PORT: host port for the restart check, default 18080;
#                              E2E_PROJECT: compose project name, default page-tracker-e2e)
#   scripts/e2e.sh --ha       the ha stack instead (deploy/compose.ha.yml): the failover
#                              scenarios only, reports in target/bdd/e2e-ha/, no restart check
#   E2E_NO_BUILD=1            run the images as they are (built beforehand, as in CI)
#
# The monitoring profile runs too: the operator's scenarios read the metrics
# through Prometheus (PROMETHEUS_URL in the test-service). Redis runs with its ACL
# users (deploy/compose.acl.yml), with passwords made for the run unless the
# environment gives them.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# A project name of its own keeps a developer's running stack out of the way;
# E2E_PROJECT, PAGE_TRACKER_IMAGE and PAGE_TRACKER_TEST_IMAGE keep two runs on one engine apart.
project=${E2E_PROJECT:-page-tracker-e2e}
export PAGE_TRACKER_PORT="${PAGE_TRACKER_PORT:-18080}"
replicas=${E2E_REPLICAS:-3}
case "${1:-}" in
    "")
        export E2E_PROMETHEUS_URL=http://prometheus:9090
        redis_passwords SERVICE TEST EXPORTER ADMIN
        files=(-f docker-compose.yml -f deploy/compose.acl.yml --profile monitoring)
        reports=target/bdd/e2e
        ;;
    --ha)
        project+=-ha
        redis_passwords SERVICE TEST EXPORTER ADMIN REPLICATION SENTINEL_USER SENTINEL
        files=(-f docker-compose.yml -f deploy/compose.ha.yml)
        reports=target/bdd/e2e-ha
        ;;
    *) die "unknown argument $1 (expected nothing or --ha)" ;;
esac
stack() { "${COMPOSE[@]}" --project-name "$project" "${files[@]}" --profile testing "$@"; }

teardown() { stack down --volumes --remove-orphans >/dev/null 2>&1 || true; }
trap teardown EXIT
teardown

# The base images: the Dockerfile's FROM defaults and the images compose runs but
# does not build (Redis, HAProxy). Without a registry, compose would only report a
# failed pull; say what fixes it.
for image in $(sed -n 's/^ARG [A-Z_]*_IMAGE=//p' Dockerfile) \
             $(stack config | sed -n 's/^ *image: \(\(redis\|haproxy\):.*\)$/\1/p' | sort -u); do
    if ! docker image inspect "$image" >/dev/null 2>&1 &&
        ! timeout 60 docker pull --quiet "$image" >/dev/null 2>&1; then
        log "base image $image is missing and cannot be pulled: run scripts/build-base-images.sh once" >&2
        exit 1
    fi
done

if [ -z "${E2E_NO_BUILD:-}" ]; then
    log "building the images"
    stack build --force-rm
fi

log "running the e2e level in the test-service, through the load balancer to $replicas replicas"
started=$SECONDS
set +e
stack up --scale web-service="$replicas" --exit-code-from test-service
status=$?
# Every service's logs are kept by Docker's json-file driver: show Prometheus' few
# warnings and errors, if any, beside the result.
docker logs "$(stack ps -q prometheus)" 2>&1 | grep -E '"level":"(warn|error)"' | tail -n 20 || true
set -e
log "the e2e run took $((SECONDS - started)) s"

tester=$(stack ps -q test-service)
rm -rf "$reports"
mkdir -p "$reports"
docker cp "$tester:/reports/e2e/." "$reports/"
log "reports copied to $reports/: $(ls "$reports" | tr '\n' ' ')"
closing=$(docker logs "$tester" 2>&1 | tail -n 1)
passed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$closing")
failed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$closing")
if [ -z "$passed" ]; then
    log "the test-service ended without a closing line (last line: $closing)"
    passed=0 failed=1
fi

if [ "${1:-}" = --ha ]; then
    log "scenarios of the test-service in the ha stack:"
    echo "$passed passed, $failed failed"
    [ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
    exit
fi

# --- Counts survive a restart of the stack (down and up, keeping the volume).
views() { curl -fsS --max-time 5 "http://127.0.0.1:$PAGE_TRACKER_PORT/" | sed -n 's/^This page has been seen \([0-9]*\) times\.$/\1/p'; }
wait_healthy() { wait_until 60 curl -fsS --max-time 2 "http://127.0.0.1:$PAGE_TRACKER_PORT/ready"; }
restart_check=failed
stack up -d load-balancer
if wait_healthy && before=$(views) && [ -n "$before" ]; then
    stack down
    stack up -d load-balancer
    if wait_healthy && after=$(views) && [ "$after" = "$((before + 1))" ]; then
        restart_check=passed
    fi
    log "count before the restart: $before, first visit after it: ${after:-none}"
fi
log "stack restart keeps the count: $restart_check"
if [ "$restart_check" = passed ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

log "scenarios of the test-service plus the stack-restart check:"
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
