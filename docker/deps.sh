#!/usr/bin/env bash
# deps.sh - check what a make goal needs on a Debian 12 machine; as root, install what is
# missing from Debian's packages (saying so first), otherwise stop with one line naming the
# command to run. Silent when everything is present.
#
# Usage: docker/deps.sh base|up|test      (usually through `make base`, `make up`, `make test`)
#   base  debootstrap, debian-archive-keyring           (only while the base image is missing or outdated)
#   up    base, docker-compose, go, a Docker engine that answers
#   test  up, s6, execline, strace (without an engine: only those three, and the E2E tests skip;
#         under CI=true a missing engine fails); with an engine and while the s6-overlay peer
#         image is missing and its tarballs are not built yet: build-essential, musl-tools,
#         xz-utils, linux-libc-dev (docker/s6-overlay/mkpeer.sh compiles s6-overlay from source)
# Env:  S6GATE_NO_INSTALL=1  never install: name the command instead
#       BASE_IMAGE, FORCE     as for mkbase.sh (is the base image to be built?)
#       GO                    the go command (default go)
#       PEER_IMAGE, S6_OVERLAY_DIST  as for docker/s6-overlay/mkpeer.sh (is the peer to be built?)
# Exit: 0 all present (or installed), 1 the installation failed, 2 something is missing.
#
# Go and the Docker engine are never installed here. No mirror host is named: apt-get uses
# the machine's own apt sources.
set -euo pipefail

PROG=deps
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
IMAGE=${BASE_IMAGE:-s6gate-base:bookworm}
PEER_IMAGE=${PEER_IMAGE:-s6gate-peer:s6-overlay-3.2.3.0}
S6_OVERLAY_DIST=${S6_OVERLAY_DIST:-$(dirname "${BASH_SOURCE[0]}")/../build/s6-overlay-dist}
GO=${GO:-go}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: %s\n' "$PROG" "$2" >&2; exit "$1"; }
is_true() { [[ ${1:-} =~ ^(1|[Tt]rue|[Yy]es|on)$ ]]; }

usage() { sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# Each need is "package:probe"; the probe is an absolute path that must exist, or a command
# looked up in PATH plus /usr/sbin and /sbin (debootstrap lives there, outside a user's PATH).
BASE_NEEDS=("debootstrap:debootstrap" "debian-archive-keyring:$KEYRING")
UP_NEEDS=("docker-compose:docker-compose")
TEST_NEEDS=("s6:/usr/bin/s6-svscan" "execline:/usr/bin/execlineb" "strace:strace")
PEER_NEEDS=("build-essential:/usr/share/build-essential/essential-packages-list" "musl-tools:musl-gcc"
	"xz-utils:xz" "linux-libc-dev:/usr/include/linux/version.h")

present() {
	case $1 in
	/*) [[ -e $1 ]] ;;
	*) PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null 2>&1 ;;
	esac
}

# Sets ENGINE_ERR to why `docker info` fails ("" when an engine answers).
ENGINE_ERR=""
check_engine() {
	local err
	if ! command -v docker >/dev/null 2>&1; then
		ENGINE_ERR="no docker CLI in PATH"
	elif ! err=$(docker info 2>&1 >/dev/null); then
		ENGINE_ERR="'docker info' failed: $(printf '%s\n' "$err" | grep -v '^[[:space:]]*$' | tail -n1)"
	fi
}
engine_line() {
	case $ENGINE_ERR in
	*"permission denied"*) printf '%s' "no access to the Docker engine ($ENGINE_ERR): run as root or as a member of the docker group" ;;
	*) printf '%s' "no Docker engine answers ($ENGINE_ERR): install or start one, or fix DOCKER_HOST" ;;
	esac
}

# apt-get with a log; the log's tail goes to stderr on failure.
APT_LOG=""
apt() {
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 "$@" >>"$APT_LOG" 2>&1
}
fresh_lists() {
	local p
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || return 1
	for p in "$@"; do
		apt-cache policy "$p" 2>/dev/null | grep -q '^  Candidate: [^(]' || return 1
	done
}
apt_install() {
	local t0=$SECONDS updated=""
	APT_LOG=$(mktemp "${TMPDIR:-/tmp}/s6gate-deps.XXXXXX")
	trap 'rm -f "$APT_LOG"' EXIT
	say "installing from Debian's packages: $*"
	# apt-get update only when the lists are missing or do not know a package, or once more
	# when an install from lists that may be stale fails.
	if ! fresh_lists "$@"; then
		apt update || { tail -n 15 "$APT_LOG" >&2; die 1 "apt-get update failed"; }
		updated=1
	fi
	if ! apt install -y --no-install-recommends "$@"; then
		[[ -z $updated ]] && apt update && apt install -y --no-install-recommends "$@" ||
			{ tail -n 15 "$APT_LOG" >&2; die 1 "apt-get install -y --no-install-recommends $* failed"; }
	fi
	say "installed $* in $((SECONDS - t0)) s"
}

main() {
	local profile=${1:-}
	case $profile in
	base | up | test) ;;
	-h | --help) usage; exit 0 ;;
	*) die 2 "usage: docker/deps.sh base|up|test (see --help)" ;;
	esac
	[[ $# -eq 1 ]] || die 2 "usage: docker/deps.sh base|up|test (see --help)"

	# Not installable here: Go (the build) and a Docker engine (base image, image, demo, E2E).
	if [[ $profile != base ]] && ! "$GO" version >/dev/null 2>&1; then
		die 2 "'$GO version' does not answer: install Go (go.mod names the version) and put it in PATH"
	fi
	check_engine
	if [[ -n $ENGINE_ERR ]]; then
		# make test without an engine runs the host tests and skips E2E (a failure under CI=true).
		[[ $profile == test && ${CI:-} != true ]] || die 2 "$(engine_line)"
	fi

	local needs=() need missing=()
	if [[ -n ${S6GATE_DEPS_PACKAGES:-} ]]; then
		read -r -a needs <<<"$S6GATE_DEPS_PACKAGES" # tests only: replaces the list
	else
		# The base image is built (debootstrap) only when it is missing, of an older recipe
		# (mkbase.sh --check: its io.s6gate.base.recipe label), or FORCE=1.
		if [[ -z $ENGINE_ERR ]] && { is_true "${FORCE:-}" || ! BASE_IMAGE=$IMAGE "$(dirname "${BASH_SOURCE[0]}")/mkbase.sh" --check; }; then
			needs+=("${BASE_NEEDS[@]}")
		fi
		[[ $profile != base && -z $ENGINE_ERR ]] && needs+=("${UP_NEEDS[@]}")
		[[ $profile == test ]] && needs+=("${TEST_NEEDS[@]}")
		# The s6-overlay peer (the differential tests, s6gate:overlay) is compiled from source
		# only while neither its image nor its tarballs exist.
		if [[ $profile == test && -z $ENGINE_ERR ]] && ! compgen -G "$S6_OVERLAY_DIST/s6-overlay-*.tar.xz" >/dev/null &&
			! docker image inspect "$PEER_IMAGE" >/dev/null 2>&1; then
			needs+=("${PEER_NEEDS[@]}")
		fi
	fi
	for need in "${needs[@]}"; do
		present "${need#*:}" || missing+=("${need%%:*}")
	done
	((${#missing[@]})) || exit 0

	local cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	if is_true "${S6GATE_NO_INSTALL:-}"; then
		die 2 "missing Debian packages ${missing[*]} (S6GATE_NO_INSTALL is set); run as root: $cmd"
	fi
	if [[ $(id -u) -ne 0 ]]; then
		die 2 "missing Debian packages ${missing[*]}; run as root: $cmd"
	fi
	command -v apt-get >/dev/null 2>&1 ||
		die 2 "missing ${missing[*]} and no apt-get here (s6gate is built on Debian 12): install them yourself"
	apt_install "${missing[@]}"
	for need in "${needs[@]}"; do
		present "${need#*:}" || die 1 "${need%%:*} is installed but ${need#*:} is still missing"
	done
}

main "$@"
