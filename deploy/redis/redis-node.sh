#!/bin/sh
# Starts one Redis data node with its ACL users: the single Redis of the default
# topology (deploy/compose.acl.yml), or in the `ha` topology (deploy/compose.ha.yml,
# deploy/swarm/stack.ha.yml) the primary or a replica of REDIS_PRIMARY_HOST. The
# users and their rights are those of users.acl beside this script; each gets its
# password here, from the container's environment. The whole
# configuration goes to redis-server on its standard input, so no password is on a
# command line (`ps`, `docker inspect`), in the image or in a file.
#
# Environment:
#   REDIS_ANNOUNCE_HOST    this node's name on the network, announced to the
#                          primary and so to the sentinels and clients
#   REDIS_PRIMARY_HOST     empty on the primary; the primary's name on a replica.
#                          A node named as its own primary is the primary, so the
#                          pods of one StatefulSet can share one environment.
#                          After a failover the sentinels reconfigure every node,
#                          a returning one included, whatever it was started as.
#   REDIS_SENTINELS        optional, host:port,... of the sentinels (with
#                          REDIS_SENTINEL_PASSWORD, and REDIS_SENTINEL_SERVICE,
#                          default page-tracker): the node first asks them for the
#                          current primary and, when one answers, follows that
#                          instead of REDIS_PRIMARY_HOST (see below)
#   REDIS_SERVICE_PASSWORD        user page-tracker: the service
#   REDIS_TEST_PASSWORD           user page-tracker-test: the e2e level
#   REDIS_EXPORTER_PASSWORD       user exporter: redis_exporter
#   REDIS_ADMIN_PASSWORD          user admin: operators, healthchecks, scripts
#   REDIS_REPLICATION_PASSWORD    user replication: replicas syncing from the primary
#   REDIS_SENTINEL_USER_PASSWORD  user sentinel: the sentinels watching and reconfiguring
# The last two only with replicas and sentinels: unset, those users do not exist.
set -eu
here=$(dirname "$0")

# password_variable USER: the variable holding USER's password.
password_variable() {
    case $1 in
        page-tracker) echo REDIS_SERVICE_PASSWORD ;;
        page-tracker-test) echo REDIS_TEST_PASSWORD ;;
        exporter) echo REDIS_EXPORTER_PASSWORD ;;
        admin) echo REDIS_ADMIN_PASSWORD ;;
        replication) echo REDIS_REPLICATION_PASSWORD ;;
        sentinel) echo REDIS_SENTINEL_USER_PASSWORD ;;
        *) return 1 ;;
    esac
}

# Each user line of users.acl, with its password added. A password is spliced into
# configuration lines and client URLs: anything but URL-safe characters could break
# either, and redis-server would then print the offending line, password included,
# in its fatal error.
users=""
while read -r keyword name rules; do
    [ "$keyword" = user ] || continue
    if [ "$name" = default ]; then
        users="$users
user $name $rules"
        continue
    fi
    variable=$(password_variable "$name") || {
        echo "redis-node: users.acl names a user without a password variable: $name" >&2
        exit 2
    }
    password="" && eval "password=\${$variable:-}"
    case $name:$password in
        replication: | sentinel:) continue ;;
        *: | *:*[!A-Za-z0-9._~-]*)
            echo "redis-node: $variable must be set to letters, digits and ._~- only (e.g. openssl rand -hex 32)" >&2
            exit 2
            ;;
    esac
    users="$users
user $name $rules >$password"
done <"$here/users.acl"
: "${REDIS_ANNOUNCE_HOST:=$(hostname)}"

# The primary the sentinels name now, when they are asked and one answers. A
# primary restarted after a failover would otherwise come back as a second
# primary, with its old count, until the sentinels see it and demote it; asked
# first, it returns as a replica of its successor. No answer (the first start,
# before any sentinel runs) leaves REDIS_PRIMARY_HOST as given.
if [ -n "${REDIS_SENTINELS:-}" ]; then
    for sentinel in $(echo "$REDIS_SENTINELS" | tr , ' '); do
        answer=$(REDISCLI_AUTH="${REDIS_SENTINEL_PASSWORD:-}" timeout 3 redis-cli --raw \
            -h "${sentinel%:*}" -p "${sentinel##*:}" \
            SENTINEL get-master-addr-by-name "${REDIS_SENTINEL_SERVICE:-page-tracker}" 2>/dev/null) || continue
        # Two lines, a name and a port; anything else (an error, no such service) is no answer.
        set -f
        # shellcheck disable=SC2086 # split into its words on purpose, globbing off
        set -- $answer
        set +f
        if [ $# -ne 2 ] || [ "$2" != 6379 ]; then continue; fi
        echo "redis-node: the sentinel $sentinel names $1 as the primary"
        REDIS_PRIMARY_HOST=$1
        break
    done
fi
if [ "${REDIS_PRIMARY_HOST:-}" = "$REDIS_ANNOUNCE_HOST" ]; then
    REDIS_PRIMARY_HOST=""
fi

# Replicas authenticate as the replication user, and announce a name rather than
# an address, so a node restarted with another address is still found.
replication=""
if [ -n "${REDIS_REPLICATION_PASSWORD:-}" ]; then
    replication="replica-announce-ip $REDIS_ANNOUNCE_HOST
masteruser replication
masterauth $REDIS_REPLICATION_PASSWORD"
    if [ -n "${REDIS_PRIMARY_HOST:-}" ]; then
        replication="$replication
replicaof $REDIS_PRIMARY_HOST 6379"
    fi
elif [ -n "${REDIS_PRIMARY_HOST:-}" ]; then
    echo "redis-node: a replica needs REDIS_REPLICATION_PASSWORD" >&2
    exit 2
fi

exec redis-server - <<CONF
port 6379
protected-mode no
dir /data
appendonly yes
appendfsync everysec
$replication
$users
CONF
