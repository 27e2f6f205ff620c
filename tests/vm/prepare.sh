#!/usr/bin/env bash
# Builds (once, cached) the small VM that tests needing kernel features this host may lack
# (VRF: tests/tests/bgp_vrf_frr.rs; netem: bench/membership/vm-soak.sh) run in: Debian's own
# kernel (the version that linux-image-amd64 depends on, fetched with `apt-get download`),
# its few modules (virtio + 9p to see the host's / read-only, vrf, veth, dummy, sch_netem, bridge),
# and an initramfs of busybox-static with tests/vm/init.sh as /init. Needs qemu-system-x86, busybox-static and cpio
# (scripts/install-deps.sh installs them). No root needed, except for `apt-get update` when
# the package lists are missing.
#
# Usage: tests/vm/prepare.sh  -> prints the cache directory holding `vmlinuz` and
# `initrd.gz`. Cache: $FERROLB_VM_CACHE, else /var/cache/ferrolb-vm when writable, else
# target/vm next to this checkout; one subdirectory per kernel package version.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Order matters: virtio_ring before virtio, 9p's helpers before 9p.
MODULES=(drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
    drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/9p/9pnet
    net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p drivers/net/vrf
    drivers/net/veth drivers/net/dummy net/sched/sch_netem net/llc/llc net/802/stp
    net/bridge/bridge)

die() { echo "tests/vm/prepare.sh: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian tools needed)"
done
busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list 2>/dev/null | grep -qx insmod \
    || die "$busybox (package busybox-static) is missing"

pkg_of() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
pkg=$(pkg_of)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 || true
    pkg=$(pkg_of)
fi
[ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"

if [ -n "${FERROLB_VM_CACHE:-}" ]; then
    cache=$FERROLB_VM_CACHE
elif mkdir -p /var/cache/ferrolb-vm 2>/dev/null && [ -w /var/cache/ferrolb-vm ]; then
    cache=/var/cache/ferrolb-vm
else
    cache=$(cd "$here/../.." && pwd)/target/vm
fi
dest=$cache/$pkg
# The init script is part of the image: a changed init.sh builds a new one.
stamp=$(sha256sum "$here/init.sh" "$0" | sha256sum | cut -c1-16)
if [ -f "$dest/ready" ] && [ "$(cat "$dest/ready")" = "$stamp" ]; then
    echo "$dest"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 600 9 || die "timed out waiting for $cache/.lock"
if [ -f "$dest/ready" ] && [ "$(cat "$dest/ready")" = "$stamp" ]; then
    echo "$dest"
    exit 0
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Downloaded as this user (apt's _apt sandbox user cannot write to a private directory).
download() { (cd "$work" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg" >&2); }
download || {
    [ "$(id -u)" = 0 ] && apt-get update -qq >&2 && download
} || die "apt-get download $pkg failed"
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/root"
kernel=$(find "$work/root/boot" -name 'vmlinuz-*' -type f 2>/dev/null | head -1)
[ -n "$kernel" ] && [ -f "$kernel" ] || die "no kernel in $pkg"
kver=$(basename "$kernel" | sed 's/^vmlinuz-//')

ird=$work/initrd
mkdir -p "$ird"/{bin,mod,host,out,proc,sys,dev}
cp "$busybox" "$ird/bin/busybox"
for m in "${MODULES[@]}"; do
    base=$work/root/lib/modules/$kver/kernel/$m
    name=$(basename "$m")
    if [ -f "$base.ko" ]; then
        cp "$base.ko" "$ird/mod/$name.ko"
    elif [ -f "$base.ko.xz" ]; then
        xz -dc "$base.ko.xz" > "$ird/mod/$name.ko"
    elif [ -f "$base.ko.zst" ]; then
        zstd -qdc "$base.ko.zst" > "$ird/mod/$name.ko"
    else
        # Built into this kernel: nothing to load.
        echo "note: no module $m in $pkg (built in?)" >&2
        continue
    fi
    echo "$name" >> "$ird/mod/order"
done
install -m 0755 "$here/init.sh" "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

rm -rf "$dest.new" && mkdir -p "$dest.new"
cp "$kernel" "$dest.new/vmlinuz"
mv "$work/initrd.gz" "$dest.new/initrd.gz"
echo "$stamp" > "$dest.new/ready"
rm -rf "$dest" && mv "$dest.new" "$dest"
echo "$dest"
