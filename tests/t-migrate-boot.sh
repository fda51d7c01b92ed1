# vmferry migrate --to local, end to end on a real guest: the Debian 12
# guest of t-prepare-boot (as VMware hands it over: a monolithicSparse
# VMDK, fstab on /dev/sda*, VMware tools on, no virtio in its initramfs)
# migrated in one command; the package's libvirt XML passes
# virt-xml-validate and its run.sh boots the guest under TCG to login:
# with / and /boot mounted from the remapped fstab (direct kernel boot
# with the guest's own kernel and initramfs, read from the package).
# The summary lists the changes, artifacts and stages; the source is
# unchanged.
# test-timeout: 1200
. "$(dirname "$0")/lib.sh"
require qemu-system-x86_64 debugfs python3 sfdisk qemu-img virt-xml-validate
cache=${VMFERRY_TEST_CACHE:-/var/cache/vmferry-test}
G=$cache/debian12-boot
"$TESTS_DIR/boot/mk-debian-guest.sh" "$G" || die "cannot build the Debian guest (root and the Debian mirror are needed)"
cd "$scratch"
serial="$TESTS_DIR/boot/serial.py"
sha=$(sha256sum < "$G/guest.vmdk")

"$VMFERRY" migrate "$G/guest.vmdk" --to local -o out --name deb12 --memory 768 > summary.txt 2> log.txt ||
    { cat log.txt; die "migrate failed"; }
cat summary.txt
grep -q '^Migrated deb12 to local in out' summary.txt || die "summary heading"
grep -q 'Time per stage: inspect .* prepare .* package .* verify' summary.txt || die "summary stages"
grep -q 'vda' summary.txt || die "summary: no device remap listed"
grep -q 'Copying disk 1/1' log.txt || die "no copy stage line"
[ "$(sha256sum < "$G/guest.vmdk")" = "$sha" ] || die "the source changed"
virt-xml-validate out/deb12.xml domain || die "virt-xml-validate"
qemu-img check -q out/deb12.qcow2 || die "qemu-img check"

# the kernel and initramfs the package holds (the edited one)
qemu-img convert -O raw out/deb12.qcow2 boot.raw
off=$(( $(sfdisk -d boot.raw | sed -n 's/.*start= *\([0-9]*\).*bootable.*/\1/p' | head -n 1) * 512 ))
k=$(debugfs -R "ls -p /" "boot.raw?offset=$off" 2>/dev/null | awk -F/ '$6 ~ /^vmlinuz-/ { print $6 }' | sort | tail -n 1)
debugfs -R "dump /$k kernel" "boot.raw?offset=$off" >/dev/null 2>&1
debugfs -R "dump /initrd.img-${k#vmlinuz-} initrd" "boot.raw?offset=$off" >/dev/null 2>&1
[ -s kernel ] && [ -s initrd ] || die "no kernel/initramfs in the package"
rm -f boot.raw
rc=0
python3 "$serial" --script out/run.sh --kernel kernel --initrd initrd \
    --append "root=/dev/vda2 ro console=ttyS0 panic=-1" --timeout 600 \
    --log boot.log --login root:vmferry \
    --run "findmnt -n -o SOURCE /" --run "findmnt -n -o SOURCE /boot" > session.txt || rc=$?
cat session.txt
[ $rc -eq 0 ] || { tail -n 30 boot.log; die "run.sh did not boot the guest to login: (rc $rc)"; }
grep -qx '/dev/vda2' session.txt || die "/ is not /dev/vda2"
grep -qx '/dev/vda1' session.txt || die "/boot is not mounted from /dev/vda1"
echo ok
