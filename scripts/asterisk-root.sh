#!/usr/bin/env bash
# Build (once) a Debian sid root filesystem with Debian's asterisk package, for the e2e tests.
#
#   scripts/asterisk-root.sh [ROOT]      # default: $CALLSCREEN_ASTERISK_ROOT or ~/.cache/callscreen/asterisk-root
#
# Idempotent: a finished root is marked with .callscreen-ready and reused. A half-finished
# earlier build (no marker) is removed and rebuilt. Needs root and access to Debian's mirror.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
INSTALL="$HERE/../docker/asterisk/install-asterisk.sh"
ROOT=${1:-${CALLSCREEN_ASTERISK_ROOT:-$HOME/.cache/callscreen/asterisk-root}}
MARKER="$ROOT/.callscreen-ready"

die() { echo "asterisk-rootfs: $*" >&2; exit 1; }

if [ -f "$MARKER" ] && [ -x "$ROOT/usr/sbin/asterisk" ]; then
    echo "asterisk-rootfs: reusing $ROOT ($(cat "$MARKER"))"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "asterisk-rootfs: installing debootstrap"
    apt-get update -qq || die "apt-get update failed: no network or no Debian mirror reachable"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
        || die "could not install debootstrap"
fi

# A root without the marker is a leftover of a failed or interrupted build: start over.
if [ -e "$ROOT" ]; then
    echo "asterisk-rootfs: removing unfinished build at $ROOT"
    for m in proc sys dev; do umount -l "$ROOT/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$(dirname "$ROOT")"
TMP="$ROOT.partial"
for m in proc sys dev; do umount -l "$TMP/$m" 2>/dev/null || true; done
rm -rf --one-file-system "$TMP"

echo "asterisk-rootfs: debootstrap sid into $TMP (about 30 s)"
debootstrap --variant=minbase sid "$TMP" >"$TMP.log" 2>&1 \
    || { tail -20 "$TMP.log" >&2; die "debootstrap failed (network? see $TMP.log)"; }

echo "asterisk-rootfs: installing asterisk in the root (about 20 s)"
cp "$INSTALL" "$TMP/tmp/install-asterisk.sh"
cp /etc/resolv.conf "$TMP/etc/resolv.conf" 2>/dev/null || true
chroot "$TMP" /bin/sh /tmp/install-asterisk.sh >>"$TMP.log" 2>&1 \
    || { tail -20 "$TMP.log" >&2; die "installing asterisk in the root failed (see $TMP.log)"; }
rm -f "$TMP/tmp/install-asterisk.sh"

version=$(chroot "$TMP" asterisk -V)
mv "$TMP" "$ROOT"
echo "$version built $(date -u +%FT%TZ)" >"$MARKER"
rm -f "$TMP.log"
echo "asterisk-rootfs: ready: $ROOT ($version)"
