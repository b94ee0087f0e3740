#!/usr/bin/env bash
# mkpeer.sh - build the s6-overlay peer: the release tarballs of a real s6-overlay, compiled
# offline from the sources in S6_OVERLAY_PEER (its build.sh), and the image PEER_IMAGE: the
# local base image with Debian's s6/execline purged and the tarballs ADDed (peer.Dockerfile).
# Both are reused: the tarballs when present and built from the same sources (a key of the
# peer's build.sh and src/ is kept beside them), the image when it carries that key as label.
#
# Usage: docker/s6-overlay/mkpeer.sh [dist|image]   (usually through `make peer-image`;
#        default image; dist stops after the tarballs)
# Env:   S6_OVERLAY_PEER  the peer's source directory (default ../shared/peers/s6-overlay,
#                         relative to the repository root)
#        S6_OVERLAY_DIST  where the tarballs go (default build/s6-overlay-dist)
#        PEER_IMAGE       image tag (default s6gate-peer:s6-overlay-3.2.3.0)
#        BASE_IMAGE       base image (default s6gate-base:bookworm; `make base`)
#        FORCE=1          rebuild both
# Exit:  0 built or reused, 1 build failure, 2 usage or precondition problem.
#
# Nothing fetched or built here is committed: build/ is ignored by git and by docker builds.
set -euo pipefail

PROG=mkpeer
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PEER=${S6_OVERLAY_PEER:-../shared/peers/s6-overlay}
DIST=${S6_OVERLAY_DIST:-build/s6-overlay-dist}
IMAGE=${PEER_IMAGE:-s6gate-peer:s6-overlay-3.2.3.0}
BASE=${BASE_IMAGE:-s6gate-base:bookworm}
TARBALLS=(s6-overlay-noarch.tar.xz s6-overlay-x86_64.tar.xz)

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$2" >&2; exit "$1"; }
is_true() { [[ ${1:-} =~ ^(1|[Tt]rue|[Yy]es|on)$ ]]; }

what=${1:-image}
case $what in
dist | image) ;;
-h | --help) sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
*) die 2 "usage: docker/s6-overlay/mkpeer.sh [dist|image]" ;;
esac

# The key of what the tarballs are made from: the peer's build script and its sources.
key() {
	[[ -x $PEER/build.sh && -d $PEER/src ]] ||
		die 2 "no s6-overlay sources in $PEER (S6_OVERLAY_PEER): expected build.sh and src/"
	(cd "$PEER" && sha256sum build.sh src/*) | sha256sum | cut -c1-16
}

dist_current() {
	local t
	[[ -f $DIST/.s6gate-key && $(<"$DIST/.s6gate-key") == "$1" ]] || return 1
	for t in "${TARBALLS[@]}"; do [[ -s $DIST/$t ]] || return 1; done
}

build_dist() {
	local k=$1 t0=$SECONDS log
	if ! is_true "${FORCE:-}" && dist_current "$k"; then return 0; fi
	mkdir -p "$DIST"
	log=$DIST/build.log
	say "building s6-overlay from $PEER into $DIST (about 2 minutes; log in $log)"
	rm -f "$DIST/.s6gate-key"
	if ! "$PEER/build.sh" "$DIST" >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die 1 "$PEER/build.sh failed (Debian needs build-essential musl-tools xz-utils linux-libc-dev: make deps)"
	fi
	# The compile tree (DIST/work, ~60 MB) stays: build.sh skips compiling while it is current.
	# It is no part of the image's build context.
	printf '%s\n' work build.log '*.sha256' >"$DIST/.dockerignore"
	echo "$k" >"$DIST/.s6gate-key"
	say "built the s6-overlay tarballs in $((SECONDS - t0)) s"
}

build_image() {
	local k=$1 t0=$SECONDS have
	have=$(docker image inspect -f '{{index .Config.Labels "io.s6gate.peer.key"}}' "$IMAGE" 2>/dev/null || true)
	if ! is_true "${FORCE:-}" && [[ $have == "$k" ]]; then return 0; fi
	docker image inspect "$BASE" >/dev/null 2>&1 || die 2 "base image $BASE is missing: make base"
	build_dist "$k"
	say "docker build -t $IMAGE on $BASE"
	docker build -q -t "$IMAGE" --label "io.s6gate.peer.key=$k" --build-arg "BASE_IMAGE=$BASE" \
		-f "$ROOT/docker/s6-overlay/peer.Dockerfile" "$DIST" >/dev/null || die 1 "docker build of $IMAGE failed"
	say "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')) in $((SECONDS - t0)) s"
}

# One build at a time (tests of several packages may ask at once); the second one reuses.
mkdir -p build
exec 9>build/.mkpeer.lock
flock 9
k=$(key)
if [[ $what == dist ]]; then build_dist "$k"; else build_image "$k"; fi
