# s6gate image: Debian's s6 under our s6-overlay compatible /init, the s6gate binaries, a
# cont-init hook that reconciles the gateways, and the gateways' own scanner, gw-svscan, whose
# supervisors run as the service user (/etc/services.d/s6gate-gateways; it starts an isolated
# slot's supervisor through util-linux's setpriv, in the base image).
# /run is 1777, like /tmp, so that `docker run --user 10000 --tmpfs /run:exec` works: Docker
# copies the image's /run mode (not its owner) onto the tmpfs, and /init accepts a root-owned
# sticky /run for a non-root user as s6-overlay does; /init run as root makes it 0755 at every
# boot. Every /command link is baked in, so /init writes nothing outside /run on a read-only
# root. See docs/init.md, "Non-root and read-only".
# Build with `make image` (the base image is made locally by `make base`; nothing is pulled).
ARG BASE_IMAGE=s6gate-base:bookworm
FROM ${BASE_IMAGE}

ARG GATEWAY_UID=10000
RUN groupadd --system --gid "${GATEWAY_UID}" gateway \
 && useradd --system --uid "${GATEWAY_UID}" --gid gateway --home-dir /opt/data --no-create-home \
      --shell /usr/sbin/nologin gateway \
 && install -d -o gateway -g gateway -m 0755 /opt/data \
 && mkdir -p /command /etc/cont-init.d /etc/services.d /etc/cont-finish.d \
 && for f in /usr/bin/s6-* /usr/bin/ucspilogd /usr/lib/execline/bin/*; do ln -sf "$f" /command/; done \
 && chmod 1777 /run

# One static multi-call binary (cmd/s6gate) holds every s6gate command: each name is a link to
# it, /init included (it runs the command named by argv[0]; see docs/init.md, "Files"). s6-rc is
# the runtime command for s6-overlay's s6-rc.d trees (docs/s6-rc.md). s6-overlay's helpers and
# the s6-portable-utils commands scripts use are in it too: in /command, and in /usr/bin as
# s6-overlay's symlinks tarballs put them (so `#!/usr/bin/with-contenv bash` works).
COPY bin/s6gate /usr/local/bin/s6gate
RUN for c in gateway gw-reconcile gw-render gw-mark gw-svscan with-contenv printcontenv s6-rc; do \
      ln -s s6gate "/usr/local/bin/$c"; done \
 && ln -s /usr/local/bin/s6gate /init \
 && ln -sf /usr/local/bin/with-contenv /usr/local/bin/printcontenv /usr/local/bin/s6-rc /command/ \
 && for c in s6-mkdir s6-echo s6-rmrf s6-chown s6-chmod s6-sleep s6-cat s6-ln s6-touch s6-hiercopy \
      with-retries logutil-service logutil-newfifo; do ln -s /usr/local/bin/s6gate "/command/$c"; done \
 && for c in s6-mkdir s6-echo s6-rmrf s6-chown s6-chmod s6-sleep s6-cat s6-ln s6-touch s6-hiercopy \
      with-retries logutil-service logutil-newfifo with-contenv printcontenv; do ln -s "../../command/$c" "/usr/bin/$c"; done
# gw-http, the read-only HTTP endpoint (docs/metrics.md), is a binary of its own: the Prometheus
# client would grow the binary every gateway runs. It runs only when GATEWAY_HTTP_ADDR is set
# (/etc/cont-init.d/30-s6gate-http).
COPY bin/gw-http /usr/local/bin/gw-http
COPY rootfs/ /

ENV PATH=/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GATEWAY_HOME=/opt/data \
    GATEWAY_SCANDIR=/run/gateways \
    S6_COMMAND_DIR=/command \
    GATEWAY_USER=gateway \
    GATEWAY_BIN=/usr/local/bin/gateway

VOLUME /opt/data
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/gateway", "status", "--check"]
ENTRYPOINT ["/init"]
