#!/bin/sh
# minimal-root.sh - stage the root file system of s6gate:minimal in DIR, inside the full
# s6gate image (Dockerfile.minimal runs it there; the final image is FROM scratch + DIR).
#
# Usage: minimal-root.sh DIR
#
# DIR gets only what /init, the gateways and s6 need:
#   - the multi-call binary /usr/local/bin/s6gate with its links (/init, gateway, gw-*,
#     with-contenv, printcontenv, s6-rc) and the /command links to the tools below;
#   - util-linux's setpriv: gw-svscan starts an isolated slot's s6-supervise through it, with
#     a real uid other than its effective one (docs/gw-svscan.md);
#   - no execline: s6-rc oneshots (execline scripts, docs/s6-rc.md) need the full image;
#   - the s6 programs s6gate runs (boot, stop, verbs, slot scripts) and those they run
#     themselves by absolute path: s6-svscan starts /usr/bin/s6-supervise, s6-setuidgid
#     runs /usr/bin/s6-envuidgid and /usr/bin/s6-applyuidgid, s6-svc -w runs
#     /usr/bin/s6-svlisten1, and libs6's event subscriptions (s6-svwait) /usr/bin/s6-ftrigrd;
#   - /bin/sh (dash): the services' run scripts are `#!/command/with-contenv /bin/sh`, a
#     slot's scripts and finish are #!/bin/sh;
#   - the external commands of the scripts: `id` (the gateways' tree; a slot's run and log run
#     only when started as root), `mkdir` (log run, a missing log directory); `/usr/bin/env`
#     (slot run scripts used it before `gateway run --setenv`; kept for gateway commands like
#     `env K=V prog`), and `cat`, `test`, `sleep` for `docker exec` checks and gateway commands
#     like `sh -c '...; sleep 1'`;
#   - every shared library they load (ldd: libc, the loader, skalibs, libs6, libselinux and
#     libpcre2 for id and mkdir, libcap-ng for setpriv) and the Debian copyright file of each
#     package copied;
#   - /etc/passwd and /etc/group with root and the service user only, nsswitch.conf (files);
#     /opt/data (the service user's, 0755), /tmp and /run (1777, as in the Dockerfile),
#     /var/run -> /run, and the s6-overlay directories under /etc from rootfs/.
set -eu

dir=${1:?usage: minimal-root.sh DIR}
[ ! -e "$dir" ] || { echo "minimal-root: $dir exists" >&2; exit 1; }

S6_TOOLS="s6-svscan s6-supervise s6-svscanctl s6-svc s6-svstat s6-svwait s6-svok s6-log
s6-setuidgid s6-envuidgid s6-applyuidgid s6-svlisten1 s6-ftrigrd"
CORE="dash id env mkdir cat test sleep setpriv"
S6GATE_LINKS="gateway gw-reconcile gw-render gw-mark gw-svscan with-contenv printcontenv s6-rc"

# Debian bookworm's merged /usr: /bin, /lib, /lib64 and /sbin are links into /usr.
mkdir -p "$dir/usr/bin" "$dir/usr/lib/x86_64-linux-gnu" "$dir/usr/lib64" "$dir/usr/local/bin" \
	"$dir/usr/share/doc" "$dir/etc" "$dir/command" "$dir/var" "$dir/opt/data" "$dir/tmp" "$dir/run"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$dir/$l"; done
ln -s /run "$dir/var/run"
chmod 1777 "$dir/tmp" "$dir/run"
chown gateway:gateway "$dir/opt/data"
chmod 0755 "$dir/opt/data"

copied=""
for t in $S6_TOOLS $CORE; do
	cp -p "/usr/bin/$t" "$dir/usr/bin/$t"
	copied="$copied /usr/bin/$t"
done
ln -s dash "$dir/usr/bin/sh"

# The multi-call binary and its links, exactly as the full image has them.
cp -p /usr/local/bin/s6gate "$dir/usr/local/bin/s6gate"
for c in $S6GATE_LINKS; do ln -s s6gate "$dir/usr/local/bin/$c"; done
ln -s /usr/local/bin/s6gate "$dir/init"
for t in $S6_TOOLS; do ln -s "/usr/bin/$t" "$dir/command/$t"; done
ln -s /usr/local/bin/with-contenv /usr/local/bin/printcontenv /usr/local/bin/s6-rc "$dir/command/"

# Shared libraries, under the name the loader looks for (the soname ldd prints), as files.
libs=$(for f in $copied; do ldd "$f"; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for lib in $libs; do
	case $lib in
	/lib64/*) cp -L "$lib" "$dir/usr/lib64/${lib##*/}" ;;
	*) cp -L "$lib" "$dir/usr/lib/x86_64-linux-gnu/${lib##*/}" ;;
	esac
	copied="$copied $lib"
done

# The copyright file of every Debian package a file came from.
for f in $copied; do
	p=$(dpkg -S "$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null || true)
	p=${p%%:*}
	[ -n "$p" ] && [ -f "/usr/share/doc/$p/copyright" ] || continue
	mkdir -p "$dir/usr/share/doc/$p"
	cp -p "/usr/share/doc/$p/copyright" "$dir/usr/share/doc/$p/copyright"
done

# Users: root and the service user (uid/gid from the full image), nothing else.
user=${GATEWAY_USER:-gateway}
grep -E "^(root|$user):" /etc/passwd >"$dir/etc/passwd"
grep -E "^(root|$user):" /etc/group >"$dir/etc/group"
chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
printf 'passwd: files\ngroup: files\n' >"$dir/etc/nsswitch.conf"

# The s6-overlay directories with s6gate's hooks (rootfs/), modes and owners kept.
cp -a /etc/cont-init.d /etc/services.d /etc/cont-finish.d "$dir/etc/"

echo "minimal-root: $(du -sk "$dir" | cut -f1) kB in $dir"
