#!/usr/bin/env bash
# Runs a command in a clean clone of the committed HEAD on a brand-new, minimal Debian 12 (bookworm) root, as a
# newcomer's machine would be: nothing installed by hand on this machine is visible there, so a package that
# scripts/setup.sh forgets to install fails here as it would for a user.
#
#   scripts/fresh-check.sh [COMMAND [ARG...]]      default COMMAND: scripts/demo.sh (the README's demo command)
#   scripts/fresh-check.sh scripts/test.sh         the README's test command
#
# Needs root (debootstrap, chroot, mount namespaces) and Debian's package mirror. The base root is made once with
# `debootstrap --variant=minbase` and kept in OE_FRESH_CACHE; every run works on a fresh copy of it, which is
# removed afterwards (OE_FRESH_KEEP=1 keeps it and prints where). The command runs as root in a chroot inside its own
# mount and PID namespaces, so its mounts and any process it leaves behind end with it, even on kill -9. Its output
# goes to the terminal and to OE_FRESH_WORK/last-run.log; the exit code is the command's.
#
# From this machine only two things go in, both facts of the network rather than of this machine's software: the
# DNS setup (/etc/resolv.conf) and the local certificate authorities (/usr/local/share/ca-certificates/*.crt; some
# networks re-sign TLS with their own CA, and npm's registry is reached over TLS). Inside, update-ca-certificates
# adds them to the system store once the ca-certificates package is installed, and NODE_EXTRA_CA_CERTS points Node.js
# at them. The environment is emptied (env -i) but for HOME, PATH, LANG, TERM and that variable.
#
# Environment:
#   OE_FRESH_CACHE   the cached base root (default /var/cache/omni-embed/fresh-bookworm)
#   OE_FRESH_WORK    where each run's root and log go (default /var/tmp/omni-embed-fresh)
#   OE_FRESH_MIRROR  the Debian mirror (default http://deb.debian.org/debian)
#   OE_FRESH_KEEP    1: keep the run's root afterwards
set -euo pipefail
PROJECT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${OE_FRESH_CACHE:-/var/cache/omni-embed/fresh-bookworm}
WORK=${OE_FRESH_WORK:-/var/tmp/omni-embed-fresh}
MIRROR=${OE_FRESH_MIRROR:-http://deb.debian.org/debian}
NETWORK_CA=/usr/local/share/ca-certificates/omni-embed-network-ca.pem  # inside the root

die() { echo "fresh-check: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mount namespaces)"
[ $# -gt 0 ] || set -- scripts/demo.sh
for tool in git unshare chroot; do command -v "$tool" >/dev/null || die "needs $tool on this machine"; done

make_base() {
  if ! command -v debootstrap >/dev/null; then
    echo "fresh-check: installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  local tmp="$CACHE.partial"
  rm -rf "$tmp"; mkdir -p "$(dirname "$CACHE")"
  echo "fresh-check: making a minimal Debian 12 root (debootstrap --variant=minbase bookworm, once) in $CACHE"
  debootstrap --variant=minbase bookworm "$tmp" "$MIRROR" > "$(dirname "$CACHE")/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $(dirname "$CACHE")/debootstrap.log"
  # A stock install's sources: the release, its updates and the security archive.
  cat > "$tmp/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  rm -rf "$CACHE"; mv "$tmp" "$CACHE"
}
[ -x "$CACHE/bin/bash" ] || make_base

head=$(git -C "$PROJECT" rev-parse HEAD)
mkdir -p "$WORK"
run=$(mktemp -d "$WORK/run.XXXXXX")
root="$run/root"
cleanup() { if [ "${OE_FRESH_KEEP:-0}" = 1 ]; then echo "fresh-check: kept $root"; else rm -rf "$run"; fi; }
trap cleanup EXIT

cp -a "$CACHE" "$root"
git clone -q --no-hardlinks "$PROJECT" "$root/project"
git -C "$root/project" checkout -q --detach "$head" || die "commit $head is not reachable from a branch of $PROJECT"
git -C "$root/project" status --porcelain | grep -q . && die "the clone of $head is not clean"

cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/usr/local/share/ca-certificates"
: > "$root$NETWORK_CA"
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$crt" ] && cp "$crt" "$root/usr/local/share/ca-certificates/" && cat "$crt" >> "$root$NETWORK_CA"
done

# Inside new mount and PID namespaces: /proc of the new PID namespace, /dev and /sys bound from this machine (device
# nodes and CPU topology; nothing installed lives there), then the command in the chroot. Mounts are private to the
# namespace and go when its last process exits.
inner='set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_EXTRA_CA_CERTS='"$NETWORK_CA"' \
  /bin/bash -c '\''cd /project && "$@"'\'' fresh-check "$@"'

echo "fresh-check: running '$*' in a clean clone of $(git -C "$PROJECT" rev-parse --short HEAD) on a new Debian 12 root"
start=$(date +%s)
set +e
unshare --mount --propagation private --pid --fork bash -c "$inner" fresh-check "$root" "$@" 2>&1 | tee "$WORK/last-run.log"
rc=${PIPESTATUS[0]}
set -e
echo "fresh-check: '$*' exited $rc after $(( $(date +%s) - start )) s"
exit "$rc"
