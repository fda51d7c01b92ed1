# It boots: a real Debian 12 guest (debootstrap, built once and cached by
# tests/boot/mk-debian-guest.sh: fstab on /dev/sda1 and /dev/sda2, VMware
# tools enabled, its initramfs repacked without virtio) is booted under
# qemu-system-x86_64 -accel tcg on virtio-blk with its own kernel and
# initramfs (direct kernel boot).  Control: the source gives up waiting
# for its root device.  After `vmferry prepare --target kvm`: the guest
# reaches login:, / and /boot are mounted from the remapped fstab, and
# the VMware tools service did not start.  The source is unchanged.
# test-timeout: 1500
. "$(dirname "$0")/lib.sh"
require qemu-system-x86_64 debugfs python3 sfdisk mkfs.ext4 qemu-img
cache=${VMFERRY_TEST_CACHE:-/var/cache/vmferry-test}
G=$cache/debian12-boot
"$TESTS_DIR/boot/mk-debian-guest.sh" "$G" || die "cannot build the Debian guest (root and the Debian mirror are needed)"
cd "$scratch"
serial="$TESTS_DIR/boot/serial.py"
sha=$(sha256sum < "$G/guest.vmdk")

# the guest's own kernel and initramfs, from its /boot (partition 1)
extract() { # RAW
    local off=$(( $(sfdisk -d "$1" | sed -n 's/.*start= *\([0-9]*\).*bootable.*/\1/p' | head -n 1) * 512 ))
    local k i
    k=$(debugfs -R "ls -p /" "$1?offset=$off" 2>/dev/null | awk -F/ '$6 ~ /^vmlinuz-/ { print $6 }' | sort | tail -n 1)
    i=initrd.img-${k#vmlinuz-}
    debugfs -R "dump /$k kernel" "$1?offset=$off" >/dev/null 2>&1
    debugfs -R "dump /$i initrd" "$1?offset=$off" >/dev/null 2>&1
    [ -s kernel ] && [ -s initrd ] || die "no kernel/initramfs in $1"
}
append="root=/dev/vda2 ro console=ttyS0 panic=-1"

# control: without virtio in its initramfs it cannot find its root disk
extract "$G/guest.raw"
rc=0
python3 "$serial" --disk "$G/guest.raw" --kernel kernel --initrd initrd \
    --append "$append" --timeout 300 --log control.log || rc=$?
[ $rc -eq 3 ] || { tail -n 20 control.log; die "control: expected the boot to give up (rc 3), got $rc"; }
echo "control: gave up waiting for its root device, as expected"

# prepare from the VMware disk, as a migration would
"$VMFERRY" prepare --target kvm -O raw "$G/guest.vmdk" prepared.raw 2> prepare.log ||
    { cat prepare.log; die "prepare --target kvm failed"; }
cat prepare.log
[ "$(sha256sum < "$G/guest.vmdk")" = "$sha" ] || die "the source changed"
rm -f kernel initrd
extract prepared.raw
rc=0
python3 "$serial" --disk prepared.raw --kernel kernel --initrd initrd \
    --append "$append" --timeout 600 --log boot.log --login root:vmferry \
    --run "findmnt -n -o SOURCE /" --run "findmnt -n -o SOURCE /boot" \
    --run "systemctl is-active open-vm-tools.service; systemctl is-enabled open-vm-tools.service" \
    > session.txt || rc=$?
cat session.txt
[ $rc -eq 0 ] || { tail -n 30 boot.log; die "prepared guest did not reach login: (rc $rc)"; }
grep -qx '/dev/vda2' session.txt || die "/ is not /dev/vda2"
grep -qx '/dev/vda1' session.txt || die "/boot is not mounted from /dev/vda1"
grep -qx 'active' session.txt && die "open-vm-tools is active"
grep -qx 'masked' session.txt || die "open-vm-tools is not masked"
echo ok
