# Offline stand-in for the official oliver006/redis_exporter:v<version> image, built
# by scripts/build-base-images.sh from Debian's prometheus-redis-exporter package
# (bookworm ships 1.45.0). Mirrors the official image's contract: the binary at
# /redis_exporter as ENTRYPOINT, configured by REDIS_ADDR / REDIS_PASSWORD and the
# other REDIS_EXPORTER_* variables, user 59000, EXPOSE 9121.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG REDIS_EXPORTER_VERSION
RUN set -eux; \
    test -n "${REDIS_EXPORTER_VERSION}"; \
    apt-get update; \
    apt-get install -y --no-install-recommends "prometheus-redis-exporter=${REDIS_EXPORTER_VERSION}-*"; \
    rm -rf /var/lib/apt/lists/*; \
    pkg="$(dpkg-query -W -f '${Version}' prometheus-redis-exporter)"; \
    case "${pkg}" in \
        "${REDIS_EXPORTER_VERSION}"-*) ;; \
        *) echo "prometheus-redis-exporter package is ${pkg}, expected upstream ${REDIS_EXPORTER_VERSION}" >&2; exit 1 ;; \
    esac; \
    ln -s /usr/bin/prometheus-redis-exporter /redis_exporter; \
    /redis_exporter --version 2>&1 | grep -q "${REDIS_EXPORTER_VERSION}"

USER 59000:59000
EXPOSE 9121
ENTRYPOINT ["/redis_exporter"]
