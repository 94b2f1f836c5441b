#!/usr/bin/env bash
# Podman and the base images the Dockerfiles in docker/ start FROM, without a registry.
#
#   scripts/container-bases.sh            # default cache: $CALLSCREEN_BASES_CACHE or ~/.cache/callscreen/bases
#
# - installs podman and runc (apt) when missing;
# - for each FROM image that podman does not have yet, imports a root filesystem built with
#   `debootstrap --variant=minbase` (what Debian's official images are made from), tagged with
#   the exact name the Dockerfile uses:
#       debian:sid            <- docker/asterisk/Dockerfile
#       debian:bookworm-slim  <- docker/callscreen/Dockerfile (slimmed like the official image:
#                                no docs, man pages or locales; dpkg keeps them out)
# - each root filesystem is kept as a tarball in the cache (marked ready when complete) and
#   reused: across runs on one machine nothing is built twice, and an image already in podman's
#   store is not imported again. A half-built tarball (no marker) is rebuilt.
# Needs root and Debian's mirror. podman-compose comes from PyPI (the project's `dev` extra).
set -euo pipefail

CACHE=${CALLSCREEN_BASES_CACHE:-$HOME/.cache/callscreen/bases}
# image name (as in FROM)  suite  slim?
BASES=(
    "debian:sid sid no"
    "debian:bookworm-slim bookworm yes"
)

say() { echo "container-bases: $*"; }
die() { echo "container-bases: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, and podman with runc here)"

apt_install() {
    say "installing $*"
    apt-get update -qq || die "apt-get update failed: no network or no Debian mirror reachable"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "could not install $*"
}
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# The settings podman needs on these machines (see docker/README.md, "Testing").
PODMAN=(podman --runtime runc)

# What Debian's -slim images leave out (debuerreotype's slimify), kept out for later installs.
slimify() {
    local root=$1
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# Like Debian's official -slim images: no documentation, manual pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* "$root"/usr/share/lintian/overrides/*
}

build_tarball() {
    local suite=$1 slim=$2 tarball=$3
    local tmp="$tarball.partial.d"
    rm -rf --one-file-system "$tmp" "$tarball" "$tarball.ready"
    say "debootstrap --variant=minbase $suite (about 30-60 s)"
    debootstrap --variant=minbase "$suite" "$tmp" >"$tarball.log" 2>&1 \
        || { tail -20 "$tarball.log" >&2; die "debootstrap $suite failed (network? see $tarball.log)"; }
    [ "$slim" = yes ] && slimify "$tmp"
    # Like the official images: no package lists or .debs inside; the container runtime
    # provides resolv.conf and hostname.
    rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/archives/*.deb
    rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"
    tar --numeric-owner -C "$tmp" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf --one-file-system "$tmp" "$tarball.log"
    echo "$suite minbase slim=$slim built $(date -u +%FT%TZ)" >"$tarball.ready"
}

mkdir -p "$CACHE"
for spec in "${BASES[@]}"; do
    read -r image suite slim <<<"$spec"
    if "${PODMAN[@]}" image exists "$image"; then
        say "$image: in podman's store, reused"
        continue
    fi
    tarball="$CACHE/${image//[:\/]/_}.tar"
    if [ -f "$tarball.ready" ] && [ -f "$tarball" ]; then
        say "$image: reusing $tarball ($(cat "$tarball.ready"))"
    else
        build_tarball "$suite" "$slim" "$tarball"
    fi
    say "$image: podman import"
    "${PODMAN[@]}" import -q --change 'CMD ["bash"]' "$tarball" "$image" >/dev/null \
        || die "podman import of $tarball as $image failed"
done
say "ready: $(for spec in "${BASES[@]}"; do read -r i _ <<<"$spec"; printf '%s ' "$i"; done)"
