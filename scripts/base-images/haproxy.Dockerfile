# Offline stand-in for the official haproxy:<2.6>-bookworm image, built by
# scripts/build-base-images.sh from Debian's haproxy package (bookworm ships
# upstream 2.6.12). Mirrors the official image's contract: user haproxy (uid/gid 99),
# the configuration at /usr/local/etc/haproxy/haproxy.cfg, WORKDIR /var/lib/haproxy,
# STOPSIGNAL SIGUSR1 (soft stop), ENTRYPOINT docker-entrypoint.sh running
# haproxy in master-worker mode in the foreground.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG HAPROXY_VERSION
ENV HAPROXY_VERSION=${HAPROXY_VERSION}

# Pin the upstream version (the Debian revision may move with security updates),
# then verify what got installed. The package's postinst creates the haproxy
# account (adduser refuses ids below 100 as system ids); it is then given the
# official image's fixed uid/gid 99.
RUN set -eux; \
    test -n "${HAPROXY_VERSION}"; \
    apt-get update; \
    apt-get install -y --no-install-recommends "haproxy=${HAPROXY_VERSION}-*"; \
    rm -rf /var/lib/apt/lists/*; \
    pkg="$(dpkg-query -W -f '${Version}' haproxy)"; \
    case "${pkg}" in \
        "${HAPROXY_VERSION}"-*) ;; \
        *) echo "haproxy package is ${pkg}, expected upstream ${HAPROXY_VERSION}" >&2; exit 1 ;; \
    esac; \
    groupmod --gid 99 haproxy; \
    usermod --uid 99 --gid 99 haproxy; \
    ln -s /usr/sbin/haproxy /usr/local/sbin/haproxy; \
    mkdir -p /usr/local/etc/haproxy /var/lib/haproxy; \
    chown haproxy:haproxy /var/lib/haproxy; \
    haproxy -v | grep -q "version ${HAPROXY_VERSION}"

# The official image ships no configuration: one is mounted or copied in.
STOPSIGNAL SIGUSR1

COPY haproxy-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]

USER haproxy
WORKDIR /var/lib/haproxy
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
