#!/bin/sh
# Entrypoint for the locally built redis image (see redis.Dockerfile).
# Same behaviour as the official image's docker-entrypoint.sh, using util-linux
# setpriv instead of gosu, plus one addition: the official image compiles Redis
# with protected-mode defaulting to "no", Debian's binary defaults to "yes" (which
# refuses non-loopback clients when no password is set), so "--protected-mode no"
# is inserted right after the optional config file, before the user's own options
# (which therefore still win). It is not inserted when the config file sets
# protected-mode itself, or for one-shot flags such as --version.
set -e

# first arg is `-f` or `--some-option`, or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

if [ "$1" = 'redis-server' ]; then
	shift
	case "${1:-}" in
		-v|--version|-h|--help|--test-memory|--check-system)
			set -- redis-server "$@"
			;;
		*)
			conf=
			case "${1:-}" in
				''|--*) ;;
				*) conf="$1"; shift ;;
			esac
			if [ -n "$conf" ] && [ -f "$conf" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$conf"; then
				set -- redis-server "$conf" "$@"
			elif [ -n "$conf" ]; then
				set -- redis-server "$conf" --protected-mode no "$@"
			else
				set -- redis-server --protected-mode no "$@"
			fi
			;;
	esac
fi

exec "$@"
