#!/bin/sh
# What the tests need from Debian, installed when missing: called by .ci/run and by the tests' global
# set-up (test/global-setup.ts), so that `npm test` as root on a fresh Debian machine has what it needs.
# Each entry is PACKAGE:A-FILE-IT-INSTALLS.
set -eu
deps='busybox-static:/bin/busybox iproute2:/sbin/ip util-linux:/usr/bin/setpriv procps:/bin/ps
uidmap:/usr/bin/newuidmap tmux:/usr/bin/tmux gcc:/usr/bin/cc libc6-dev:/usr/include/stdio.h
e2fsprogs:/sbin/mkfs.ext4 bsdutils:/usr/bin/script mount:/sbin/losetup strace:/usr/bin/strace
passwd:/usr/sbin/useradd podman:/usr/bin/podman containerd:/usr/bin/ctr containernetworking-plugins:/usr/lib/cni/bridge iptables:/usr/sbin/iptables
passt:/usr/bin/pasta slirp4netns:/usr/bin/slirp4netns python3:/usr/bin/python3
skopeo:/usr/bin/skopeo umoci:/usr/bin/umoci docker-registry:/usr/bin/docker-registry zstd:/usr/bin/zstd'

need=''
for d in $deps; do
  [ -e "${d#*:}" ] || need="$need ${d%%:*}"
done
[ -n "$need" ] || exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "test-deps.sh: missing Debian packages:$need (install them as root; tests that need them will fail)" >&2
  exit 0
fi
echo "test-deps.sh: installing$need" >&2
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
