#!/bin/sh
# Build a minimal busybox rootfs in DEST from Debian's busybox-static.
#   rootfs-scripts/busybox.sh DEST
set -eu
dest=${1:?usage: busybox.sh DEST}

bb=/bin/busybox
static() { ! command -v file >/dev/null || file -L "$bb" | grep -q 'statically linked'; }
if ! [ -x "$bb" ] || ! static; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "busybox.sh: installing busybox-static" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  else
    echo "busybox.sh: needs a static busybox at $bb (Debian: apt-get install busybox-static)" >&2
    exit 1
  fi
fi

tmp="$dest.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$tmp"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home run var/log
chmod 1777 tmp
chmod 700 root
cp "$bb" bin/busybox
for applet in $(bin/busybox --list-full); do
  [ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
cat > etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
PW
cat > etc/group <<'GR'
root:x:0:
tty:x:5:
nogroup:x:65534:
user:x:1000:
GR
echo 'hosts: files' > etc/nsswitch.conf
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > etc/hosts
cd - >/dev/null
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "busybox.sh: rootfs ready in $dest ($(ls "$dest/bin" | wc -l) applets in /bin)"
