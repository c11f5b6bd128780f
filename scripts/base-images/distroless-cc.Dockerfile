# Offline stand-in for gcr.io/distroless/cc-debian12:nonroot, built by
# scripts/build-base-images.sh from Debian's packages. Same layout as the official
# image: base-files, netbase, tzdata, libc6 and libgcc-s1 unpacked without their
# maintainer scripts into a merged-/usr tree, the CA bundle at
# /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with root, nobody
# and nonroot (65532), /etc/os-release saying "Distroless", /tmp (1777),
# /home/nonroot, one file per package in /var/lib/dpkg/status.d/ for scanners;
# no shell, no package manager. The official image also carries libssl3, openssl,
# libstdc++6 and libgomp1; nothing built FROM this one links them.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE} AS rootfs

ARG PACKAGES
ARG GLIBC_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /debs

RUN set -eux; \
    test -n "${PACKAGES}" && test -n "${GLIBC_VERSION}"; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    mkdir -p /rootfs/usr/bin /rootfs/usr/lib /rootfs/usr/lib64 /rootfs/usr/sbin \
        /rootfs/var/lib/dpkg/status.d; \
    for d in bin lib lib64 sbin; do ln -s "usr/$d" "/rootfs/$d"; done; \
    apt-get download ${PACKAGES}; \
    rm -rf /var/lib/apt/lists/*; \
    for deb in /debs/*.deb; do \
        pkg="$(dpkg-deb -f "$deb" Package)"; \
        dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C /rootfs; \
        dpkg-deb -f "$deb" >"/rootfs/var/lib/dpkg/status.d/${pkg}"; \
    done; \
    libc="$(dpkg-deb -f /debs/libc6_*.deb Version)"; \
    case "${libc}" in \
        "${GLIBC_VERSION}"-*) ;; \
        *) echo "libc6 is ${libc}, expected upstream ${GLIBC_VERSION}" >&2; exit 1 ;; \
    esac; \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/usr/share/doc/ca-certificates; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    cp /usr/share/doc/ca-certificates/copyright /rootfs/usr/share/doc/ca-certificates/; \
    dpkg-query -s ca-certificates | sed '/^Status:/d' >/rootfs/var/lib/dpkg/status.d/ca-certificates; \
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >/rootfs/etc/passwd; \
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' \
        >/rootfs/etc/group; \
    printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' \
        'networks: files' 'protocols: files' 'services: files' 'ethers: files' 'rpc: files' \
        >/rootfs/etc/nsswitch.conf; \
    rm -f /rootfs/etc/os-release /rootfs/usr/lib/os-release; \
    printf '%s\n' 'PRETTY_NAME="Distroless"' 'NAME="Debian GNU/Linux"' 'ID="debian"' \
        'VERSION_ID="12"' 'VERSION="Debian GNU/Linux 12 (bookworm)"' \
        >/rootfs/etc/os-release; \
    install -d -m 1777 /rootfs/tmp; \
    install -d -m 0700 -o 65532 -g 65532 /rootfs/home/nonroot; \
    install -d -m 0700 /rootfs/root; \
    find /rootfs/usr/share/doc -mindepth 2 -not -name copyright -delete; \
    rm -rf /rootfs/usr/share/man /rootfs/usr/share/info /rootfs/usr/share/lintian

FROM scratch
COPY --from=rootfs /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532
WORKDIR /home/nonroot
