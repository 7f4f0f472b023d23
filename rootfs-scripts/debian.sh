#!/bin/sh
# Build a Debian minbase rootfs in DEST with debootstrap, saying its progress in a few lines.
usage='usage: rootfs-scripts/debian.sh [--include PKG,...] [--help] DEST [SUITE] [MIRROR]
  DEST             where the root filesystem goes (replaced when it is built)
  SUITE            Debian suite (default bookworm)
  MIRROR           Debian mirror (default http://deb.debian.org/debian)
  --include PKGS   extra packages, comma-separated (e.g. --include busybox,curl)
  --verbose        show every line debootstrap prints'
set -eu
include='' verbose=''
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) echo "$usage"; exit 0 ;;
    --include) [ $# -ge 2 ] || { echo "debian.sh: --include needs a list of packages" >&2; exit 2; }; include=$2; shift 2 ;;
    --include=*) include=${1#--include=}; shift ;;
    --verbose) verbose=1; shift ;;
    --) shift; break ;;
    -*) echo "debian.sh: unknown option $1" >&2; echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
dest=${1:-}
[ -n "$dest" ] || { echo "$usage" >&2; exit 2; }
suite=${2:-bookworm}
mirror=${3:-http://deb.debian.org/debian}
case $include in *[!a-z0-9.+,-]*) echo "debian.sh: --include: invalid package list: $include" >&2; exit 2 ;; esac

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
log="$dest.log.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp" "$log"' EXIT
echo "debian.sh: debootstrap --variant=minbase $suite${include:+ with $include} into $dest from $mirror" >&2
set -- --variant=minbase ${include:+--include=$include} "$suite" "$tmp" "$mirror"
if [ -n "$verbose" ]; then
  debootstrap --verbose "$@"
else
  # One line a stage (retrieving, validating, extracting, unpacking, configuring), the rest kept in a
  # log that is shown when debootstrap fails.
  if ! debootstrap "$@" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "debian.sh: debootstrap failed (the last lines above)" >&2
    exit 1
  fi
  stages='Retrieving|Validating|Extracting|Unpacking|Configuring'
  n=$(grep -cE "^I: Retrieving " "$log" || true)
  grep -E "^I: ($stages|Base system installed)" "$log" | awk '!seen[$2]++ { print $1, $2, ($2 == "Base" ? $0 : "...") }' \
    | sed -E "s/^I: Retrieving \.\.\./I: Retrieving $n packages .../; s/^I: Base I: /I: /" >&2 || true
fi
rm -rf "$tmp/var/cache/apt/archives/"*.deb
rm -rf "$dest"
mv "$tmp" "$dest"
echo "debian.sh: rootfs ready in $dest ($(du -sh "$dest" | cut -f1))"
