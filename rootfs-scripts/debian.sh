#!/bin/sh
# Build a Debian minbase rootfs in DEST with debootstrap, showing its progress.
#   rootfs-scripts/debian.sh DEST [SUITE] [MIRROR]
set -eu
dest=${1:?usage: debian.sh DEST [SUITE] [MIRROR]}
suite=${2:-bookworm}
mirror=${3:-http://deb.debian.org/debian}

if ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "debian.sh: installing debootstrap" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  else
    echo "debian.sh: needs debootstrap (Debian: apt-get install debootstrap), run as root" >&2
    exit 1
  fi
fi
[ "$(id -u)" = 0 ] || { echo "debian.sh: debootstrap needs root" >&2; exit 1; }

tmp="$dest.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "debian.sh: debootstrap --variant=minbase $suite into $dest from $mirror" >&2
# --verbose prints each package as it is retrieved, validated, unpacked and configured.
debootstrap --verbose --variant=minbase "$suite" "$tmp" "$mirror"
rm -rf "$tmp/var/cache/apt/archives/"*.deb
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "debian.sh: rootfs ready in $dest ($(du -sh "$dest" | cut -f1))"
