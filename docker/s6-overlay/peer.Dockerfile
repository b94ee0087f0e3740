# The s6-overlay peer: a real s6-overlay 3.2.3.0, built from source by mkpeer.sh, installed the
# way upstream's README says, on the same local Debian base as s6gate:latest (whose Debian s6
# and execline are purged first, as the peer's README shows, so only one s6 is present).
# The build context is the directory holding the release tarballs (S6_OVERLAY_DIST).
# Build with `make peer-image` (docker/s6-overlay/mkpeer.sh); nothing is pulled.
ARG BASE_IMAGE=s6gate-base:bookworm
FROM ${BASE_IMAGE}
RUN dpkg --purge --force-depends s6 execline
ADD s6-overlay-noarch.tar.xz /
ADD s6-overlay-x86_64.tar.xz /
ENTRYPOINT ["/init"]
