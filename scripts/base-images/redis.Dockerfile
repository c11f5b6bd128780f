# Offline stand-in for the official redis:<version>-bookworm image, built by
# scripts/build-base-images.sh from Debian's redis-server package (bookworm ships
# upstream 7.0.15). Mirrors the official image's contract: user redis (uid/gid 999),
# WORKDIR + VOLUME /data, EXPOSE 6379, ENTRYPOINT docker-entrypoint.sh, CMD redis-server.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG REDIS_VERSION
ENV REDIS_VERSION=${REDIS_VERSION}

# Same fixed ids as the official image; created before the package so that
# redis-server's postinst (adduser --system) reuses this account.
RUN set -eux; \
    groupadd -r -g 999 redis; \
    useradd -r -g redis -u 999 redis

# Pin the upstream version (Debian revision may move with security updates),
# then verify what actually got installed.
RUN set -eux; \
    test -n "${REDIS_VERSION}"; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        "redis-server=5:${REDIS_VERSION}-*" "redis-tools=5:${REDIS_VERSION}-*"; \
    rm -rf /var/lib/apt/lists/*; \
    pkg="$(dpkg-query -W -f '${Version}' redis-server)"; \
    case "${pkg}" in \
        *:"${REDIS_VERSION}"-*) ;; \
        *) echo "redis-server package is ${pkg}, expected upstream ${REDIS_VERSION}" >&2; exit 1 ;; \
    esac; \
    redis-server --version; \
    redis-server --version | grep -q " v=${REDIS_VERSION} "; \
    redis-cli --version

RUN mkdir /data && chown redis:redis /data
VOLUME /data
WORKDIR /data

COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]

EXPOSE 6379
CMD ["redis-server"]
