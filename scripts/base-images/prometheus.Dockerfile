# Offline stand-in for the official prom/prometheus:v<version> image, built by
# scripts/build-base-images.sh from Debian's prometheus package (bookworm ships
# 2.42.0). Mirrors the official image's contract: /bin/prometheus and /bin/promtool,
# the configuration at /etc/prometheus/prometheus.yml, the console files under
# /usr/share/prometheus, data in the /prometheus volume (WORKDIR), user nobody
# (65534), EXPOSE 9090, and the same ENTRYPOINT and CMD.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG PROMETHEUS_VERSION
# Pin the upstream version (the Debian revision may move with updates), then
# verify what got installed. The package's service is never started in a build.
RUN set -eux; \
    test -n "${PROMETHEUS_VERSION}"; \
    apt-get update; \
    apt-get install -y --no-install-recommends "prometheus=${PROMETHEUS_VERSION}+ds-*"; \
    rm -rf /var/lib/apt/lists/*; \
    pkg="$(dpkg-query -W -f '${Version}' prometheus)"; \
    case "${pkg}" in \
        "${PROMETHEUS_VERSION}"+ds-*) ;; \
        *) echo "prometheus package is ${pkg}, expected upstream ${PROMETHEUS_VERSION}" >&2; exit 1 ;; \
    esac; \
    prometheus --version 2>&1 | grep -q "version ${PROMETHEUS_VERSION}"; \
    promtool --version; \
    mkdir -p /usr/share/prometheus/console_libraries /usr/share/prometheus/consoles /prometheus; \
    cp -R /etc/prometheus/console_libraries/. /usr/share/prometheus/console_libraries/; \
    cp -R /etc/prometheus/consoles/. /usr/share/prometheus/consoles/; \
    chown -R nobody:nogroup /etc/prometheus /prometheus

USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", \
     "--storage.tsdb.path=/prometheus", \
     "--web.console.libraries=/usr/share/prometheus/console_libraries", \
     "--web.console.templates=/usr/share/prometheus/consoles"]
