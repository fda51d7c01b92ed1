# prepare --add-drivers judged by a real kernel: a guest made of this
# host's kernel, its initramfs-tools initramfs, its modules.dep /
# modules.alias / modules.builtin and the module files a driver needs;
# the edit appends a segment adding a driver the host's initramfs lacks;
# the host's kernel then boots under qemu (TCG) with the new initramfs
# and stops after initramfs-tools loaded conf/modules (break=premount):
# the driver must be in /proc/modules and the kernel must not report
# "Initramfs unpacking failed".  kmod's modprobe on the unpacked tree
# must resolve the driver exactly as on the host.  Skipped on hosts
# without a readable kernel, an initramfs-tools initramfs or such a
# driver.
. "$(dirname "$0")/lib.sh"
require python3 qemu-system-x86_64 lsinitramfs mkfs.ext4 sfdisk e2fsck \
    debugfs modprobe cpio
# the newest installed kernel with its initramfs and modules (not
# necessarily the running one: containers run their host's); a machine
# without one (a CI container) uses the Debian guest of t-prepare-boot
# (tests/boot/mk-debian-guest.sh, built once and cached)
find_kernel() { # ROOT
    local k
    for k in $(ls "$1"/boot/vmlinuz-* 2>/dev/null | sed 's#^.*/boot/vmlinuz-##' | sort -V -r); do
        if [ -r "$1/boot/vmlinuz-$k" ] && [ -r "$1/boot/initrd.img-$k" ] &&
           [ -r "$1/lib/modules/$k/modules.dep" ]; then
            echo "$k"
            return
        fi
    done
}
kroot= kv=
[ "${VMFERRY_TEST_NO_HOST_KERNEL:-}" = 1 ] || kv=$(find_kernel "")
if [ -z "$kv" ]; then
    groot=${VMFERRY_TEST_CACHE:-/var/cache/vmferry-test}/debian12-boot
    "$TESTS_DIR/boot/mk-debian-guest.sh" "$groot" >&2 ||
        die "no kernel in /boot and the Debian guest cannot be built"
    kroot=$groot/rootfs kv=$(find_kernel "$kroot")
fi
[ -n "$kv" ] || die "no readable kernel with its initramfs and modules.dep"
kernel=$kroot/boot/vmlinuz-$kv initrd=$kroot/boot/initrd.img-$kv mods=$kroot/lib/modules/$kv
# modprobe reads the modules of that root
mpd=(); [ -n "$kroot" ] && mpd=(-d "$kroot")
cd "$scratch"
lsinitramfs "$initrd" > host.list 2>/dev/null || skip "lsinitramfs cannot read $initrd"
grep -qx 'conf/initramfs.conf' host.list || skip "$initrd is not made by initramfs-tools"
# a driver with dependencies that the host's initramfs lacks
mod=
for m in snd_hda_intel snd_intel8x0 snd_ens1371 parport_pc floppy; do
    modprobe "${mpd[@]}" -S "$kv" --show-depends "$m" > deps.raw 2>/dev/null || continue
    if [ -n "$kroot" ]; then sed "s#$kroot##g" deps.raw > deps.txt; else cp deps.raw deps.txt; fi
    grep -q '^insmod ' deps.txt || continue          # built in
    f=$(echo "$m" | tr _ -)
    grep -qE "/($m|$f)\.ko" host.list && continue
    mod=$m
    break
done
[ -n "$mod" ] || skip "every candidate driver is built in or already in $initrd"
echo "driver: $mod ($(grep -c '^insmod ' deps.txt) module files)"

# the guest: a Debian-like root with this kernel, /lib -> usr/lib
r=root
mkdir -p $r/etc/initramfs-tools $r/usr/bin $r/usr/sbin $r/usr/lib/modules/"$kv" $r/boot
ln -s usr/bin $r/bin
ln -s usr/lib $r/lib
ln -s usr/sbin $r/sbin
cp /bin/sh $r/usr/bin/sh
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' > $r/etc/os-release
echo "/dev/sda1 / ext4 defaults 0 1" > $r/etc/fstab
printf "# modules\n" > $r/etc/initramfs-tools/modules
cp "$kernel" "$initrd" $r/boot/
for f in modules.dep modules.alias modules.builtin modules.order; do
    [ -r "$mods/$f" ] && cp "$mods/$f" $r/usr/lib/modules/"$kv"/
done
for f in $(awk '$1 == "insmod" { print $2 }' deps.raw); do
    rel=${f#"$mods"/}
    mkdir -p "$r/usr/lib/modules/$kv/$(dirname "$rel")"
    cp "$f" "$r/usr/lib/modules/$kv/$rel"
done
isize=$(stat -c %s "$initrd")
tree_bytes=$(du -sb $r | cut -f1)
mb=$(( (isize * 2 + tree_bytes) / 1048576 + 64 ))
truncate -s ${mb}M fs.img
mkfs.ext4 -q -F -d $r fs.img || die "mkfs"
truncate -s $((mb + 2))M guest.raw
printf 'label: dos\nstart=1MiB, type=83\n' | sfdisk -q guest.raw
dd if=fs.img of=guest.raw bs=1M seek=1 conv=notrunc status=none
sha256sum guest.raw > src.sha

"$VMFERRY" prepare --add-drivers "$mod" guest.raw out.raw 2> prep.log ||
    { cat prep.log; die "prepare failed"; }
sha256sum -c --quiet src.sha || die "source changed"
grep -q "Adding $mod to /boot/initrd.img-$kv" prep.log || { cat prep.log; die "driver not added"; }
e2fsck -fn "out.raw?offset=1048576" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck not clean"; }
debugfs -R "dump /boot/initrd.img-$kv new.img" "out.raw?offset=1048576" 2>/dev/null
cmp -s -n "$isize" new.img "$initrd" || die "the new initramfs does not start with the old one"

# kmod on the unpacked tree (the old archive, then the appended one)
mkdir tree
python3 - "$isize" <<'PY'
import sys
d = open("new.img", "rb").read()[int(sys.argv[1]):]
open("seg.cpio", "wb").write(d[len(d) - len(d.lstrip(b"\0")):])
PY
(cd tree && unmkinitramfs "$initrd" . >/dev/null 2>&1) || die "unmkinitramfs of the original"
base=tree
[ -d tree/main ] && base=tree/main
(cd "$base" && cpio -idmu --quiet) < seg.cpio || die "cpio -idmu of the segment"
grep -qx "$mod" "$base/conf/modules" || die "$mod not in conf/modules"
diff <(modprobe -d "$base" -S "$kv" --show-depends "$mod" | sed "s#$PWD/$base##; s#//#/#g") deps.txt ||
    die "modprobe resolves $mod differently in the new initramfs"

# the kernel's judgement
python3 - "$kernel" new.img "$mod" > boot.log <<'PY' || { tail -c 3000 boot.log; die "boot check failed"; }
import os, re, select, subprocess, sys, time
kernel, initrd, mod = sys.argv[1:4]
p = subprocess.Popen(["qemu-system-x86_64", "-m", "768", "-smp", "1",
                      "-nographic", "-no-reboot", "-kernel", kernel,
                      "-initrd", initrd, "-append",
                      "console=ttyS0 break=premount quiet"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
buf, t0, sent = b"", time.time(), False
# shell builtins only: an initramfs without busybox has no grep
cmd = ("n=0; while read m rest; do [ \"$m\" = %s ] && n=1; done < /proc/modules;"
       " u=0; [ -r /dev/kmsg ] && while read -t 1 l; do case \"$l\" in"
       " *'nitramfs unpacking failed'*) u=1;; esac; done < /dev/kmsg;"
       " echo RES $n $u\n" % mod).encode()
try:
    while time.time() - t0 < 240:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            d = os.read(p.stdout.fileno(), 65536)
            if not d:
                break
            buf += d
        if not sent and b"(initramfs)" in buf:
            p.stdin.write(cmd)
            p.stdin.flush()
            sent = True
        if re.search(rb"^RES [01] [01]\r?$", buf, re.M):
            break
        if b"Kernel panic" in buf or b"reboot: Restarting" in buf:
            break
finally:
    p.kill()
    p.wait()
out = buf.decode(errors="replace").replace("\r", "")
print(out)
m = re.search(r"^RES ([01]) ([01])$", out, re.M)
sys.exit(0 if sent and m and m.groups() == ("1", "0") else 1)
PY
echo "$mod loaded by initramfs-tools from the appended segment; $(grep -o 'elapsed.*' boot.log || true)"
echo ok
