#!/bin/sh
# Starts one Redis data node with ACL users: the single Redis of the default
# topology (deploy/compose.acl.yml), or in the `ha` topology (deploy/compose.ha.yml)
# the primary or a replica of REDIS_PRIMARY_HOST. The configuration, ACL users and
# their passwords included, goes to redis-server on its standard input, so no
# password is on a command line (`ps`, `docker inspect`), in the image or in a
# file; it comes from the container's environment alone.
#
# Environment:
#   REDIS_ANNOUNCE_HOST    this node's name on the network, announced to the
#                          primary and so to the sentinels and clients
#   REDIS_PRIMARY_HOST     empty on the primary; the primary's name on a replica.
#                          After a failover the sentinels reconfigure every node,
#                          a returning one included, whatever it was started as.
#   REDIS_SERVICE_PASSWORD        user page-tracker: the service
#   REDIS_TEST_PASSWORD           user page-tracker-test: the e2e level
#   REDIS_EXPORTER_PASSWORD       user exporter: redis_exporter
#   REDIS_ADMIN_PASSWORD          user admin: operators and the healthcheck
#   REDIS_REPLICATION_PASSWORD    user replication: replicas syncing from the primary
#   REDIS_SENTINEL_USER_PASSWORD  user sentinel: the sentinels watching and reconfiguring
# The last two only with replicas and sentinels: unset, those users do not exist.
set -eu

# A password is spliced into configuration lines and client URLs: anything but
# URL-safe characters could break either, and redis-server would then print the
# offending line, password included, in its fatal error.
for name in REDIS_SERVICE_PASSWORD REDIS_TEST_PASSWORD REDIS_EXPORTER_PASSWORD \
    REDIS_ADMIN_PASSWORD REDIS_REPLICATION_PASSWORD REDIS_SENTINEL_USER_PASSWORD; do
    value="" && eval "value=\${$name-unset}"
    case $name:$value in
        REDIS_REPLICATION_PASSWORD:unset | REDIS_SENTINEL_USER_PASSWORD:unset) ;;
        *:unset | *:*[!A-Za-z0-9._~-]* | *:)
            echo "redis-node: $name must be set to letters, digits and ._~- only (e.g. openssl rand -hex 32)" >&2
            exit 2
            ;;
    esac
done
: "${REDIS_ANNOUNCE_HOST:=$(hostname)}"

replication=""
if [ -n "${REDIS_REPLICATION_PASSWORD:-}" ]; then
    replication="replica-announce-ip $REDIS_ANNOUNCE_HOST
masteruser replication
masterauth $REDIS_REPLICATION_PASSWORD
user replication on >$REDIS_REPLICATION_PASSWORD resetchannels -@all +psync +replconf +ping"
    if [ -n "${REDIS_PRIMARY_HOST:-}" ]; then
        replication="$replication
replicaof $REDIS_PRIMARY_HOST 6379"
    fi
elif [ -n "${REDIS_PRIMARY_HOST:-}" ]; then
    echo "redis-node: a replica needs REDIS_REPLICATION_PASSWORD" >&2
    exit 2
fi
sentinel=""
if [ -n "${REDIS_SENTINEL_USER_PASSWORD:-}" ]; then
    sentinel="user sentinel on >$REDIS_SENTINEL_USER_PASSWORD allchannels -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill"
fi

# The users' rules follow what each client sends, checked against ACL LOG:
# - HELLO and AUTH are open to every connection: they are how it authenticates.
# - page-tracker: INCRBY page_views, PING for /ready, and ROLE, which the Sentinel
#   client asks of the primary it is given. CLIENT SETINFO (Redis 7.2) does not
#   exist in 7.0; the client ignores its error.
# - page-tracker-test: sets, reads and deletes the counter, and pauses clients
#   (CLIENT PAUSE) to stage a store that stops answering.
# - exporter: what redis_exporter 1.45 reads (INFO, CONFIG GET, SLOWLOG, LATENCY
#   LATEST, its CLIENT SETNAME) and no key.
# - replication and sentinel: the rules Redis' ACL documentation gives for
#   replicas and for Sentinel.
# `default` is off: a connection that does not authenticate can do nothing.
exec redis-server - <<CONF
port 6379
protected-mode no
dir /data
appendonly yes
appendfsync everysec
user default off resetpass resetkeys resetchannels -@all
user page-tracker on >$REDIS_SERVICE_PASSWORD resetchannels ~page_views -@all +incrby +ping +role
user page-tracker-test on >$REDIS_TEST_PASSWORD resetchannels ~page_views -@all +ping +get +set +del +client|pause
user exporter on >$REDIS_EXPORTER_PASSWORD resetchannels -@all +ping +info +config|get +client|setname +slowlog|get +slowlog|len +latency|latest
user admin on >$REDIS_ADMIN_PASSWORD ~* &* +@all
$replication
$sentinel
CONF
