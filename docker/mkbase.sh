#!/usr/bin/env bash
# mkbase.sh - build the local s6gate base image (Debian bookworm minbase + s6 + execline)
# with debootstrap and `docker import`. No registry is involved: nothing is pulled.
#
# Usage: docker/mkbase.sh            (usually through `make base`)
#        docker/mkbase.sh --check    exit 0 if BASE_IMAGE is current, 1 if it is to be built
# Env:   BASE_IMAGE     image tag to produce           (default s6gate-base:bookworm)
#        DEBIAN_MIRROR  Debian mirror URL for debootstrap (default: read from apt sources)
#        FORCE=1        rebuild even if BASE_IMAGE already exists
#        VERBOSE=1      stream debootstrap output and print the mirror URL (else: one
#                       progress line per debootstrap stage)
# An existing BASE_IMAGE is reused only if its io.s6gate.base.recipe label is RECIPE below;
# an image of an older recipe (or none) is rebuilt.
# Exit:  0 built or reused, 1 build failure, 2 usage or precondition problem.
#
# No mirror or registry host name may ever be written in this file: the mirror comes
# from the machine's apt configuration at build time.
set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly INCLUDE=s6,execline
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# RECIPE is written into the image (label io.s6gate.base.recipe). Bump it whenever what this
# script puts into the tree changes (packages, trimming), so that a machine that still has an
# image of an older recipe under the same tag (CI runners, developers) rebuilds it instead of
# reusing it. 2: glibc's iconv modules and bash completions trimmed (issue 9, smaller images).
readonly RECIPE=2
readonly APT_ETC=${MKBASE_APT_ETC:-/etc/apt}   # overridable for tests only
readonly APT_LISTS=${MKBASE_APT_LISTS:-/var/lib/apt/lists}
IMAGE=${BASE_IMAGE:-s6gate-base:bookworm}
PROG=mkbase

log() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$2" >&2; exit "$1"; }
is_true() { [[ ${1:-} =~ ^(1|[Tt]rue|[Yy]es|on)$ ]]; }

usage() {
	sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------------------------------
# Mirror detection.
# Emits one candidate per line, fields separated by \037 (so empty fields survive `read`):
#   <file> <types> <uris> <suites> <components> <signed-by> <enabled>
# in apt's reading order (sources.list, then sources.list.d/* sorted).
# ---------------------------------------------------------------------------------------
list_sources() {
	local f files=()
	[[ -f $APT_ETC/sources.list ]] && files+=("$APT_ETC/sources.list")
	if [[ -d $APT_ETC/sources.list.d ]]; then
		while IFS= read -r f; do files+=("$f"); done < <(
			find "$APT_ETC/sources.list.d" -maxdepth 1 -type f \( -name '*.list' -o -name '*.sources' \) |
				LC_ALL=C sort)
	fi
	for f in "${files[@]}"; do
		[[ -r $f ]] || continue
		case $f in
		*.sources) parse_deb822 "$f" ;;
		*) parse_oneline "$f" ;;
		esac
	done
}

parse_deb822() {
	awk -v file="$1" -v S=$'\037' '
	function flush() {
		if (types != "") print file S types S uris S suites S comps S signed S enabled
		types = uris = suites = comps = signed = field = ""; enabled = "yes"
	}
	function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
	BEGIN { enabled = "yes" }
	/^#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^[ \t]/ {                       # continuation line of a multi-line field
		if (field == "signed-by") signed = "<inline-key>"
		else if (field == "uris") uris = trim(uris " " trim($0))
		else if (field == "suites") suites = trim(suites " " trim($0))
		else if (field == "components") comps = trim(comps " " trim($0))
		else if (field == "types") types = trim(types " " trim($0))
		next
	}
	{
		i = index($0, ":"); if (i == 0) next
		field = tolower(trim(substr($0, 1, i - 1))); value = trim(substr($0, i + 1))
		if (field == "types") types = value
		else if (field == "uris") uris = value
		else if (field == "suites") suites = value
		else if (field == "components") comps = value
		else if (field == "signed-by") signed = (value == "" ? "<inline-key>" : value)
		else if (field == "enabled") enabled = tolower(value)
	}
	END { flush() }' "$1"
}

parse_oneline() {
	awk -v file="$1" -v S=$'\037' '
	{
		sub(/#.*/, "")
		if ($1 != "deb") next
		n = 2; signed = ""
		if ($2 ~ /^\[/) {                 # [ option=value ... ]
			opts = ""
			for (; n <= NF; n++) { opts = opts " " $n; if ($n ~ /\]$/) { n++; break } }
			gsub(/[\[\]]/, " ", opts)
			k = split(opts, o, /[ \t]+/)
			for (j = 1; j <= k; j++) if (o[j] ~ /^signed-by=/) signed = substr(o[j], 11)
		}
		uri = $n; suite = $(n + 1); comps = ""
		for (j = n + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
		if (uri != "" && suite != "") print file S "deb" S uri S suite S comps S signed S "yes"
	}' "$1"
}

has_word() { [[ " $1 " == *" $2 "* ]]; }

# Is this Signed-By value Debian's own archive keyring (or unset)?
debian_signed() {
	local v=${1//,/ } k
	[[ -z $v ]] && return 0
	for k in $v; do
		case ${k##*/} in
		debian-archive-*) ;;
		*) return 1 ;;
		esac
	done
}

# If apt has already fetched this repository's Release file, require Origin: Debian.
debian_origin() {
	local uri=$1 name rel
	name=${uri#*://}
	name=${name#*@}
	name=${name%/}
	name=${name//\//_}_dists_${SUITE}_
	for rel in "$APT_LISTS/${name}InRelease" "$APT_LISTS/${name}Release"; do
		[[ -r $rel ]] || continue
		grep -qE '^Origin: Debian$' "$rel"
		return
	done
	return 0
}

# Sets MIRROR and MIRROR_FROM, or returns 1.
find_mirror() {
	local file types uris suites comps signed enabled uri
	while IFS=$'\037' read -r file types uris suites comps signed enabled; do
		has_word "$types" deb || continue
		[[ $enabled == no ]] && continue
		has_word "$suites" "$SUITE" || continue  # exact suite: skips -updates, -security, -backports
		has_word "$comps" main || continue
		debian_signed "$signed" || continue      # third-party repos carry their own keyring
		for uri in $uris; do
			case $uri in
			http://* | https://* | ftp://* | file:/*) ;;
			*) continue ;;
			esac
			[[ $uri == *security* ]] && continue
			debian_origin "$uri" || continue
			MIRROR=${uri%/}
			MIRROR_FROM="the first $SUITE deb URI in $file"
			return 0
		done
	done < <(list_sources)
	return 1
}

# ---------------------------------------------------------------------------------------
# Progress: keeps debootstrap's whole output in the log file $1 and prints one line per
# stage (package lists, retrieve and validate, extract, install) with its package count and
# seconds, plus a line every 15 s within a long stage. No URL is printed (VERBOSE=1 shows all).
# ---------------------------------------------------------------------------------------
progress() {
	local out=$1 line stage=lists next n=0 m=0 t=$SECONDS beat=$SECONDS
	local -A verb=([lists]="package lists checked, dependencies resolved" [retrieve]="retrieved and validated"
		[extract]=extracted)
	report() {
		case $stage in
		lists) log "debootstrap: ${verb[lists]} ($((SECONDS - t)) s)" ;;
		install) log "debootstrap: installed: $n unpacked, $m configured ($((SECONDS - t)) s)" ;;
		*) log "debootstrap: ${verb[$stage]} $n packages ($((SECONDS - t)) s)" ;;
		esac
	}
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$out"
		case $line in
		"I: Retrieving "*" "*) next=retrieve ;; # a package and its version; not "Retrieving Packages"
		"I: Validating "*" "*) next=retrieve ;; # interleaved with the retrieving
		"I: Extracting "*) next=extract ;;
		"I: Installing "* | "I: Unpacking "* | "I: Configuring "* | "I: Base system "*) next=install ;;
		*) continue ;;
		esac
		if [[ $next != "$stage" ]]; then
			report
			stage=$next n=0 m=0 t=$SECONDS beat=$SECONDS
		fi
		case $line in
		"I: Unpacking "* | "I: Configuring "*)
			# "I: Unpacking libc6:amd64..." counts; "I: Unpacking required packages..." does not
			[[ ${line#I: * } == *" "* ]] || { [[ $line == "I: Unpacking "* ]] && n=$((n + 1)) || m=$((m + 1)); } ;;
		"I: Validating "* | "I: Installing "* | "I: Base system "*) ;;
		*) n=$((n + 1)) ;;
		esac
		if ((SECONDS - beat >= 15)); then
			log "debootstrap: ${stage}: $n packages so far ($((SECONDS - t)) s)"
			beat=$SECONDS
		fi
	done
	report
}

# ---------------------------------------------------------------------------------------
# Cleanup: unmount anything debootstrap may have left mounted (interrupted second stage),
# then remove the temp dir without crossing file systems; drop a half-made image.
# ---------------------------------------------------------------------------------------
TMP=""
NEW_ID=""
DONE=""
cleanup() {
	local rc=$? m
	if [[ -n $NEW_ID && -z $DONE ]]; then
		docker image rm "$NEW_ID" >/dev/null 2>&1 || true
	fi
	if [[ -n $TMP && -d $TMP ]]; then
		while IFS= read -r m; do
			umount -l "$m" 2>/dev/null || true
		done < <(awk -v p="$TMP/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r)
		rm -rf --one-file-system "$TMP" 2>/dev/null || rm -rf --one-file-system "$TMP" || true
	fi
	exit "$rc"
}

main() {
	local check=""
	case ${1:-} in
	"") ;;
	-h | --help) usage; exit 0 ;;
	--check) check=1 ;;
	*) die 2 "unexpected argument: $1 (takes no arguments but --check; configure with env BASE_IMAGE, DEBIAN_MIRROR, FORCE; see --help)" ;;
	esac
	[[ $# -le 1 ]] || die 2 "too many arguments"
	[[ $IMAGE =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || die 2 "BASE_IMAGE '$IMAGE' is not a valid lowercase image reference"
	[[ $IMAGE == *:* && ${IMAGE##*/} == *:* ]] || IMAGE=$IMAGE:latest

	command -v docker >/dev/null 2>&1 || die 2 "docker CLI not found (apt-get install -y docker.io)"

	# Fast path: one inspect call, no engine/root/debootstrap checks.
	local info id size created recipe
	if ! is_true "${FORCE:-}" && info=$(docker image inspect -f \
		'{{.Id}} {{.Size}} {{.Created}} {{with .Config.Labels}}{{index . "io.s6gate.base.recipe"}}{{end}}' "$IMAGE" 2>/dev/null); then
		read -r id size created recipe <<<"$info"
		if [[ $recipe == "$RECIPE" ]]; then
			[[ -n $check ]] && exit 0
			log "reusing $IMAGE (${id#sha256:}; $((size / 1000000)) MB; created ${created%%.*}); FORCE=1 rebuilds"
			exit 0
		fi
		[[ -n $check ]] && exit 1
		log "$IMAGE (${id#sha256:}) is of recipe ${recipe:-1}, this script makes recipe $RECIPE: rebuilding it"
	fi
	[[ -n $check ]] && exit 1

	# Preconditions (exit 2).
	[[ $(id -u) -eq 0 ]] || die 2 "must run as root to build $IMAGE (debootstrap needs it): sudo make base"
	local err
	if ! err=$(docker info 2>&1 >/dev/null); then
		err=$(printf '%s\n' "$err" | grep -v '^[[:space:]]*$' | tail -n1)
		die 2 "the Docker engine does not answer ('docker info' failed${err:+: $err}); start it or fix DOCKER_HOST"
	fi
	command -v debootstrap >/dev/null 2>&1 || die 2 "debootstrap not found: apt-get install -y debootstrap"
	[[ -r $KEYRING ]] || die 2 "$KEYRING missing: apt-get install -y debian-archive-keyring"
	for tool in tar awk find flock; do
		command -v "$tool" >/dev/null 2>&1 || die 2 "$tool not found"
	done

	MIRROR="" MIRROR_FROM=""
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		[[ $DEBIAN_MIRROR =~ ^(https?|ftp)://.+|^file:/.+ ]] || die 2 "DEBIAN_MIRROR must be an http(s)://, ftp:// or file:/ URL"
		MIRROR=${DEBIAN_MIRROR%/} MIRROR_FROM="DEBIAN_MIRROR"
	else
		find_mirror || die 2 "no Debian $SUITE mirror found in $APT_ETC/sources.list{,.d/*.list,.d/*.sources}: set DEBIAN_MIRROR=<url>"
	fi

	# Serialise concurrent builds (make -j, parallel E2E); re-check once we hold the lock.
	local lockfile=${TMPDIR:-/tmp}/s6gate-mkbase.lock
	exec 9>"$lockfile"
	if ! flock -n 9; then
		log "another mkbase is building; waiting for it"
		flock -w 900 9 || die 1 "timed out waiting for $lockfile"
		if ! is_true "${FORCE:-}" && [[ $(docker image inspect -f '{{with .Config.Labels}}{{index . "io.s6gate.base.recipe"}}{{end}}' "$IMAGE" 2>/dev/null) == "$RECIPE" ]]; then
			log "reusing $IMAGE (built by the other run)"
			exit 0
		fi
	fi

	local t0=$SECONDS
	TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/s6gate-base.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	local root=$TMP/rootfs dblog=$TMP/debootstrap.log

	log "building $IMAGE: debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE (mirror: $MIRROR_FROM)"
	is_true "${VERBOSE:-}" && log "mirror URL: $MIRROR"
	local rc=0
	if is_true "${VERBOSE:-}"; then
		debootstrap --variant="$VARIANT" --include="$INCLUDE" --keyring="$KEYRING" \
			"$SUITE" "$root" "$MIRROR" 2>&1 | tee "$dblog" || rc=$?
	else
		debootstrap --variant="$VARIANT" --include="$INCLUDE" --keyring="$KEYRING" \
			"$SUITE" "$root" "$MIRROR" 2>&1 | progress "$dblog" || rc=$?
	fi
	if ((rc != 0)); then
		{
			echo "--- last lines of debootstrap output ---"
			tail -n 25 "$dblog"
			[[ -f $root/debootstrap/debootstrap.log ]] && {
				echo "--- last lines of $root/debootstrap/debootstrap.log ---"
				tail -n 15 "$root/debootstrap/debootstrap.log"
			}
		} >&2
		die 1 "debootstrap failed (exit $rc) after $((SECONDS - t0)) s"
	fi
	grep -E '^W: ' "$dblog" | sed "s/^/$PROG: debootstrap warning: /" >&2 || true
	log "debootstrap done in $((SECONDS - t0)) s ($(du -sm --one-file-system "$root" | cut -f1) MB)"

	# Facts for labels, read before trimming (no host names: versions and Release date only).
	local s6_ver el_ver rel_date
	s6_ver=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' s6 2>/dev/null || true)
	el_ver=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' execline 2>/dev/null || true)
	[[ -n $s6_ver && -n $el_ver ]] || die 1 "s6 or execline is not installed in the debootstrap tree"
	rel_date=$(sed -n 's/^Date: //p' "$root"/var/lib/apt/lists/*_dists_"$SUITE"_*Release 2>/dev/null | head -n1 || true)

	# Trim what a container never reads, so the image stays small (issue 9: s6gate:latest
	# <= 80 MB): docs (keep the copyright files, as Debian's own slim images do), man/info
	# pages, message catalogues (/usr/share/locale; the C.UTF-8 locale itself is in
	# /usr/lib/locale and stays), lintian overrides, apt lists and caches, logs, and bash
	# completions. Also glibc's iconv modules (/usr/lib/*/gconv, 8 MB): conversions between
	# UTF-8/16/32, ASCII and Latin-1 are built into libc; the modules only serve legacy
	# charsets (EBCDIC, ISO-2022-*, ...), which nothing here converts. Only files are removed,
	# never a package: dpkg and apt keep working (`dpkg --verify` lists the removed files as
	# missing; `apt-get install --reinstall libc6` brings the modules back).
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
		"$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/bash-completion/*
	find "$root"/usr/lib/*-linux-gnu*/gconv -mindepth 1 -delete 2>/dev/null || true
	find "$root/var/lib/apt/lists" "$root/var/cache/apt" "$root/var/log" -type f -delete
	rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
	# Keep later `apt-get install` layers just as lean (same rules as Debian's slim images).
	mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
	cat >"$root/etc/dpkg/dpkg.cfg.d/s6gate-slim" <<-'EOF'
		# s6gate-base: no docs, man pages or locales in derived images
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/lintian/*
	EOF
	cat >"$root/etc/apt/apt.conf.d/s6gate-slim" <<-'EOF'
		// s6gate-base: small images
		Acquire::Languages "none";
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	EOF
	# debootstrap copies the host's resolv.conf and hostname: never ship them (Docker provides both).
	: >"$root/etc/resolv.conf"
	chmod 0644 "$root/etc/resolv.conf"
	rm -f "$root/etc/hostname"
	[[ -f $root/etc/machine-id ]] && : >"$root/etc/machine-id"
	log "trimmed tree: $(du -sm --one-file-system "$root" | cut -f1) MB"

	# Import. The tag is only moved after the sanity check passes.
	local created old_id
	created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
	NEW_ID=$(tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		--exclude='./run/*' --exclude='./tmp/*' --exclude='./debootstrap' -cf - . |
		docker import \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' \
			--change 'CMD ["/bin/bash"]' \
			--change "LABEL org.opencontainers.image.title=s6gate-base \
org.opencontainers.image.description=\"Debian $SUITE $VARIANT with s6 and execline (debootstrap)\" \
org.opencontainers.image.created=$created \
io.s6gate.base.recipe=$RECIPE \
io.s6gate.base.suite=$SUITE io.s6gate.base.variant=$VARIANT io.s6gate.base.include=$INCLUDE \
io.s6gate.base.release-date=\"${rel_date:-unknown}\" \
io.s6gate.base.s6-version=$s6_ver io.s6gate.base.execline-version=$el_ver" \
			--message "debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE" \
			- ) || die 1 "docker import failed"
	[[ $NEW_ID == sha256:* ]] || die 1 "docker import returned '$NEW_ID' instead of an image id"

	# Sanity check, offline: s6 and execline present and runnable.
	local out
	if ! out=$(docker run --rm --network none --entrypoint /bin/sh "$NEW_ID" -c '
		set -e
		for f in /usr/bin/s6-svscan /usr/bin/s6-supervise /usr/bin/s6-svscanctl /usr/bin/s6-svc \
			/usr/bin/s6-svstat /usr/bin/s6-svok /usr/bin/execlineb /usr/lib/execline/bin/execlineb; do
			[ -x "$f" ] || { echo "missing $f"; exit 1; }
		done
		[ "$(/usr/bin/execlineb -Pc "echo execline-ok")" = execline-ok ] || { echo "execlineb does not run"; exit 1; }
		dpkg-query -W dpkg s6 execline >/dev/null || { echo "dpkg does not answer"; exit 1; }
		dpkg --audit >/dev/null || { echo "dpkg --audit failed"; exit 1; }
		rc=0; /usr/bin/s6-svok / || rc=$?
		[ "$rc" -eq 1 ] || { echo "s6-svok does not run (exit $rc)"; exit 1; }
		echo ok' 2>&1) || [[ $out != ok ]]; then
		printf '%s\n' "$out" >&2
		die 1 "sanity check failed: s6/execline missing or broken in the imported image (image removed)"
	fi

	docker tag "$NEW_ID" "$IMAGE" || die 1 "docker tag $IMAGE failed"
	DONE=1
	# Best effort: drop the image we replaced if nothing else uses it (no -f).
	if [[ -n $old_id && $old_id != "$NEW_ID" ]]; then
		if docker image rm "$old_id" >/dev/null 2>&1; then
			log "removed the previous image ${old_id#sha256:}"
		fi
	fi

	local size
	size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
	log "built $IMAGE (${NEW_ID#sha256:}): $((size / 1000000)) MB, s6 $s6_ver, execline $el_ver, in $((SECONDS - t0)) s"
}

main "$@"
