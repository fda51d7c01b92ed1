#!/bin/bash
# tests/boot/mk-debian-guest.sh DIR: build (once, cached in DIR) the real
# Debian 12 guest of issue F5's boot test, as VMware would hand it over:
#   debootstrap --variant=minbase --include=linux-image-amd64,systemd,
#     systemd-sysv,initramfs-tools,open-vm-tools bookworm
#   /etc/fstab on /dev/sda1 (/boot) and /dev/sda2 (/), ext4, MBR, 2 GiB
#   its initramfs repacked without the virtio modules (so it cannot find
#     its root disk on virtio-blk)
#   root's password "vmferry" (the test logs in on the serial console)
# Output: DIR/guest.vmdk (monolithicSparse) and DIR/guest.raw, and
# DIR/stamp.  Needs root (debootstrap, chroot) and the Debian mirror
# (MIRROR, default http://deb.debian.org/debian).  Exit 0 when ready.
set -euo pipefail
dir=$1
mirror=${MIRROR:-http://deb.debian.org/debian}
stamp="v1 bookworm minbase+linux-image+systemd+initramfs-tools+open-vm-tools"
[ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp" ] && exit 0
[ "$(id -u)" -eq 0 ] || { echo "mk-debian-guest: needs root" >&2; exit 1; }
mkdir -p "$dir"
work=$dir/work
rm -rf "$work" "$dir/stamp"
mkdir -p "$work"
root=$work/root
# the debootstrap tree is kept (rootfs/), the rest is rebuilt from a copy
if [ ! -e "$dir/rootfs.done" ]; then
    echo "mk-debian-guest: debootstrap bookworm (minutes, once)" >&2
    rm -rf "$dir/rootfs"
    debootstrap --variant=minbase \
        --include=linux-image-amd64,systemd,systemd-sysv,initramfs-tools,open-vm-tools,udev,kmod \
        bookworm "$dir/rootfs" "$mirror" > "$dir/debootstrap.log" 2>&1 ||
        { tail -n 20 "$dir/debootstrap.log" >&2; exit 1; }
    touch "$dir/rootfs.done"
fi
cp -a "$dir/rootfs" "$root"

echo vmguest > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmguest\n' > "$root/etc/hosts"
cat > "$root/etc/fstab" <<'EOT'
# the names VMware's LSI/PVSCSI disk gets: they change on a new hypervisor
/dev/sda2  /      ext4  errors=remount-ro  0 1
/dev/sda1  /boot  ext4  defaults           0 2
EOT
# root password "vmferry" (sha512), a serial console login
hash=$(openssl passwd -6 -salt vmferrysalt vmferry)
sed -i "s|^root:[^:]*:|root:$hash:|" "$root/etc/shadow"
ln -sf /lib/systemd/system/serial-getty@.service \
    "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# the VMware tools service enabled, as on the source hypervisor
w=$root/etc/systemd/system/multi-user.target.wants/open-vm-tools.service
[ -L "$w" ] || [ -e "$w" ] ||
    ln -s /lib/systemd/system/open-vm-tools.service \
        "$root/etc/systemd/system/multi-user.target.wants/open-vm-tools.service"

# repack the initramfs without virtio (what a VMware-only guest has)
kver=$(ls "$root/usr/lib/modules")
initrd=$root/boot/initrd.img-$kver
x=$work/initrd
mkdir -p "$x"
(cd "$x" && zcat -f "$initrd" | cpio -idm --quiet) ||
    { echo "mk-debian-guest: cannot unpack $initrd" >&2; exit 1; }
find "$x" -name 'virtio*.ko*' -delete
[ -d "$x/usr/lib/modules/$kver" ] && depmod -b "$x/usr" "$kver" 2>/dev/null || true
(cd "$x" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) > "$initrd.new"
mv "$initrd.new" "$initrd"
if (zcat "$initrd" | cpio -t --quiet) | grep -q virtio_blk; then
    echo "mk-debian-guest: virtio still in the initramfs" >&2; exit 1
fi

# the disk: MBR, p1 /boot 256 MiB, p2 / the rest of 2 GiB
mkdir -p "$work/boot"
mv "$root/boot/"* "$work/boot/"
raw=$work/guest.raw
truncate -s 2G "$raw"
printf 'label: dos\nstart=2048, size=524288, type=83, bootable\nstart=526336, type=83\n' |
    sfdisk -q "$raw"
truncate -s $((524288 * 512)) "$work/p1"
mkfs.ext4 -q -F -L boot -d "$work/boot" "$work/p1"
truncate -s $(((4194304 - 526336) * 512)) "$work/p2"
mkfs.ext4 -q -F -L root -d "$root" "$work/p2"
dd if="$work/p1" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/p2" of="$raw" bs=512 seek=526336 conv=notrunc,sparse status=none
qemu-img convert -f raw -O vmdk "$raw" "$dir/guest.vmdk"
mv "$raw" "$dir/guest.raw"
rm -rf "$work"
echo "$stamp" > "$dir/stamp"
echo "mk-debian-guest: ready in $dir" >&2
