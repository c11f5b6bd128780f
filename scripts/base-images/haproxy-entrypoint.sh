#!/bin/sh
# Entrypoint for the locally built haproxy image (see haproxy.Dockerfile), as the
# official image's docker-entrypoint.sh: options alone run haproxy with them, and
# haproxy runs in master-worker mode (-W) in the foreground (-db).
set -e

# first arg is `-f` or `--some-option`
if [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi

if [ "$1" = 'haproxy' ]; then
	shift
	set -- haproxy -W -db "$@"
fi

exec "$@"
