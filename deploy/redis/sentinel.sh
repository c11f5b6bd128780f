#!/bin/sh
# Starts one sentinel of the `ha` topology (deploy/compose.ha.yml). A sentinel
# rewrites its configuration file as it learns the topology (CONFIG REWRITE), so
# the file is written at each start into /data, a tmpfs: its passwords never
# reach a disk, an image or a command line. A restarted sentinel starts from
# the primary it was configured with and learns the current one from the other
# sentinels' hello messages within seconds.
#
# Environment:
#   SENTINEL_ANNOUNCE_HOST        this sentinel's name on the network
#   REDIS_PRIMARY_HOST            the primary the topology starts with
#   REDIS_SENTINEL_SERVICE        the primary's name for clients (default page-tracker)
#   REDIS_SENTINEL_PASSWORD       the sentinels' own password (requirepass): clients
#                                 and the other sentinels authenticate with it
#   REDIS_SENTINEL_USER_PASSWORD  user sentinel on the data nodes
#   REDIS_NODES                   optional, host,... of every data node: the sentinel
#                                 first asks them which is primary now (see below)
#   SENTINEL_QUORUM, SENTINEL_DOWN_AFTER_MS, SENTINEL_FAILOVER_TIMEOUT_MS
#                                 see the defaults below
set -eu

for name in REDIS_SENTINEL_PASSWORD REDIS_SENTINEL_USER_PASSWORD; do
    value="" && eval "value=\${$name:-}"
    case $value in
        '' | *[!A-Za-z0-9._~-]*)
            echo "sentinel: $name must be set to letters, digits and ._~- only (e.g. openssl rand -hex 32)" >&2
            exit 2
            ;;
    esac
done
: "${SENTINEL_ANNOUNCE_HOST:?sentinel: SENTINEL_ANNOUNCE_HOST must name this sentinel}"
: "${REDIS_PRIMARY_HOST:?sentinel: REDIS_PRIMARY_HOST must name the primary}"
service=${REDIS_SENTINEL_SERVICE:-page-tracker}

# The primary now, when the data nodes are named: the one whose ROLE says master.
# Sentinels that all start afresh after a failover would otherwise watch the node
# they were configured with, a replica by then, and find no primary; one sentinel
# started alone learns the current primary from the others either way. No node
# answering master leaves REDIS_PRIMARY_HOST as given.
primary=$REDIS_PRIMARY_HOST
if [ -n "${REDIS_NODES:-}" ]; then
    for node in $(echo "$REDIS_NODES" | tr , ' '); do
        role=$(REDISCLI_AUTH="$REDIS_SENTINEL_USER_PASSWORD" timeout 3 redis-cli --raw --user sentinel \
            -h "$node" ROLE 2>/dev/null | head -n 1) || continue
        if [ "$role" = master ]; then
            [ "$node" = "$primary" ] || echo "sentinel: $node says it is the primary"
            primary=$node
            break
        fi
    done
fi

# Two of the three sentinels must agree that the primary is down. It is judged
# down after 2 s without a valid answer (it is pinged every second); with the
# vote, the promotion and the clients' new lookup, a failover takes about 5 s.
# A failover that has not completed in 10 s is abandoned and may be retried
# after twice that by the same sentinel.
quorum=${SENTINEL_QUORUM:-2}
down_after=${SENTINEL_DOWN_AFTER_MS:-2000}
failover_timeout=${SENTINEL_FAILOVER_TIMEOUT_MS:-10000}

conf=/data/sentinel.conf
cat >"$conf" <<CONF
port 26379
dir /data
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SENTINEL_ANNOUNCE_HOST
requirepass $REDIS_SENTINEL_PASSWORD
sentinel monitor $service $primary 6379 $quorum
sentinel auth-user $service sentinel
sentinel auth-pass $service $REDIS_SENTINEL_USER_PASSWORD
sentinel down-after-milliseconds $service $down_after
sentinel failover-timeout $service $failover_timeout
sentinel parallel-syncs $service 1
CONF
exec redis-server "$conf" --sentinel
