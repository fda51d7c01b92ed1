# prepare --target: the conversion edits on the Debian (MBR, and GPT),
# Ubuntu (GPT), RHEL (LVM on GPT), SUSE (GPT) and Alpine fixtures built with
# mk-guest.py --conversion, from qcow2, VMDK, VHDX and raw sources, for
# kvm, openstack, gce and azure.  Oracles: e2fsck -fn on every ext
# filesystem of the output (the RHEL root and home LVs reassembled from
# their stripes), debugfs for the remapped fstab / crypttab / GRUB / BLS /
# grubenv lines and the other files, GNU cpio for the appended initramfs
# segment (-t, and -idmu of every segment in order after decompressing the
# original's with the compressor's own tool, as the kernel unpacks them),
# kmod's modprobe --show-depends on that tree (the merged modules.dep.bin),
# vmferry inspect of the output (the drivers are in the initramfs), the
# .pre-vmferry file equal to the original initramfs, the source's SHA-256
# unchanged.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk e2fsck debugfs qemu-img cpio sha256sum \
    modprobe zstd lz4 xz bzip2 sqlite3 mkswap
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

# part_off RAW N: byte offset of partition N
part_off() {
    sfdisk -d "$1" | awk -v p="$1$2" '$1 == p { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { v = $(i+1); gsub(/[^0-9]/, "", v); print v * 512 } }'
}
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }
fsck_ok() { e2fsck -fn "$1" > fsck.log 2>&1 || { cat fsck.log; die "$2: e2fsck not clean: $1"; }; }

# RHEL's root LV is striped over two PVs (64 KiB chunks), home linear on
# the first: reassemble them as mk-guest.py laid them out.
lvm_extract() { # RAW
    local p2 p3
    p2=$(part_off "$1" 2) p3=$(part_off "$1" 3)
    python3 - "$1" "$p2" "$p3" <<'PY'
import sys
raw, p2, p3 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MIB, chunk, rootsz = 1 << 20, 64 * 1024, 28
with open(raw, "rb") as f, open("lv-root.img", "wb") as o:
    for i in range(rootsz * MIB // chunk):
        base = (p2 if i % 2 == 0 else p3) + MIB
        f.seek(base + (i // 2) * chunk)
        o.write(f.read(chunk))
    f.seek(p2 + MIB + (rootsz // 2) * MIB)
    open("lv-home.img", "wb").write(f.read(4 * MIB))
PY
}

# kernel_unpack ORIG NEW DIR: the segments of NEW (= ORIG, NULs, one
# appended newc archive) unpacked in order into DIR, each by an outside
# tool; checks the appended archive ends in NULs only.
kernel_unpack() {
    rm -rf "$3" && mkdir -p "$3"
    python3 - "$1" "$2" <<'PY' || die "segments of $2"
import sys
orig, new = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert new[:len(orig)] == orig, "the new initramfs does not start with the old one"
def cpio_end(d, o):
    # newc headers until TRAILER!!! (what lib/earlycpio.c walks)
    while True:
        assert d[o:o + 5] == b"07070", "not newc at %d" % o
        namesize = int(d[o + 94:o + 102], 16)
        filesize = int(d[o + 54:o + 62], 16)
        name = d[o + 110:o + 110 + namesize - 1]
        o = (o + 110 + namesize + 3) & ~3
        o = (o + filesize + 3) & ~3
        if name == b"TRAILER!!!":
            return o
segs, o = [], 0
while o < len(orig):
    while o < len(orig) and orig[o] == 0:
        o += 1
    if o >= len(orig):
        break
    if orig[o:o + 5] == b"07070":
        e = cpio_end(orig, o)
        segs.append(("cpio", orig[o:e]))
        o = e
    else:
        segs.append(("packed", orig[o:]))     # the compressed rest
        o = len(orig)
rest = new[len(orig):]
pad = len(rest) - len(rest.lstrip(b"\0"))
assert pad >= 4 and (len(orig) + pad) % 4 == 0, "padding %d" % pad
seg = rest[pad:]
e = cpio_end(seg, 0)
assert seg[e:].strip(b"\0") == b"", "data after the appended archive"
segs.append(("cpio", seg[:e]))
for i, (kind, data) in enumerate(segs):
    open("seg%d.%s" % (i, kind), "wb").write(data)
open("seg.appended", "wb").write(seg[:e])
PY
    local s tool i=0
    while s=$(ls seg$i.* 2>/dev/null); do
        i=$((i + 1))
        case $s in
        *.cpio) (cd "$3" && cpio -idmu --quiet) < "$s" || die "cpio -idm $s" ;;
        *.packed)
            case $(head -c 4 "$s" | od -An -tx1 | tr -d ' ') in
            28b52ffd) tool="zstd -dc" ;;
            02214c18) tool="lz4 -dc" ;;
            fd377a58) tool="xz -dc" ;;
            425a6839) tool="bzip2 -dc" ;;
            1f8b*) tool="gzip -dc" ;;
            *) die "unknown compression in $s" ;;
            esac
            $tool < "$s" | (cd "$3" && cpio -idmu --quiet) || die "$tool | cpio $s"
            ;;
        esac
    done
    [ "$i" -ge 2 ] || die "fewer than two segments"
    rm -f seg[0-9]*.*
}

# case: NAME DISTRO MK-OPTIONS SOURCE-FORMAT TARGET
run_case() {
    local name=$1 distro=$2 mkopts=$3 sfmt=$4 target=$5
    echo "== $name: $distro ($mkopts) from $sfmt for $target"
    # shellcheck disable=SC2086
    python3 "$mk" "$distro" "$name.raw" --conversion $mkopts 2>/dev/null || die "mk-guest $name"
    local src=$name.raw
    if [ "$sfmt" != raw ]; then
        src=$name.src.$sfmt
        qemu-img convert -O "$sfmt" "$name.raw" "$src" || die "qemu-img -O $sfmt"
    fi
    sha256sum "$src" > src.sha
    "$VMFERRY" inspect --json "$src" > "$name.in.json" || die "inspect source"
    "$VMFERRY" prepare --target "$target" --json -O qcow2 "$src" "$name.qcow2" \
        > "$name.json" 2> "$name.log" || { cat "$name.log"; die "$name: prepare failed"; }
    sha256sum -c --quiet src.sha || die "$name: source changed"
    ! grep -qE 'Sanitizer|runtime error' "$name.log" || { cat "$name.log"; die "$name: sanitizer report"; }
    qemu-img check "$name.qcow2" > /dev/null || die "$name: qemu-img check"
    qemu-img convert -O raw "$name.qcow2" out.raw
    python3 - "$name.json" <<'PY' || die "$name: JSON changes"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["changes"] and all(c["why"] and c["change"] for c in j["changes"])
PY
    "$VMFERRY" inspect --json out.raw > "$name.out.json" || die "$name: inspect output"
}

# q JSON EXPR: a python expression on the report's first OS (o), its
# first kernel (k) and that kernel's drivers (d)
q() {
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["operatingsystems"][0]
k = o["kernels"][0]
d = k["drivers"]
v = eval(sys.argv[2])
sys.exit(0 if v else 1)
PY
}

# check_initrd NAME SRC OUT BOOTDIR KVER INITRD MODS...: the initramfs
# INITRD under BOOTDIR ("" or /boot) of the output filesystem OUT against
# the source's SRC (debugfs specs), MODS in the appended segment and
# resolvable by modprobe in the unpacked tree
check_initrd() {
    local name=$1 src=$2 fs=$3 bdir=$4 kver=$5 initrd=$6
    shift 6
    dbg "$src" "dump $bdir/$initrd orig.img"
    dbg "$fs" "dump $bdir/$initrd new.img"
    dbg "$fs" "dump $bdir/$initrd.pre-vmferry pre.img"
    [ -s orig.img ] && [ -s new.img ] && [ -s pre.img ] || die "$name: initramfs files missing"
    [ "$(sha256_of pre.img)" = "$(sha256_of orig.img)" ] || die "$name: .pre-vmferry differs from the original"
    kernel_unpack orig.img new.img tree
    cpio -t --quiet < seg.appended > seg.list || die "$name: cpio -t on the segment"
    local m
    for m in "$@"; do
        grep -q "/$m\.ko" seg.list || die "$name: $m not in the appended segment: $(cat seg.list)"
        find -L tree/lib/modules/"$kver" -name "$m.ko*" | grep -q . ||
            die "$name: $m not in the unpacked tree"
        modprobe -d tree -S "$kver" --show-depends "$m" > dep.txt 2>&1 ||
            { cat dep.txt; die "$name: modprobe cannot resolve $m in the new initramfs"; }
    done
}

# check_tools NAME ROOTFS UNIT PACKAGE: the tools service UNIT masked
# (a symlink to /dev/null in /etc/systemd/system, its multi-user wants
# link gone) and a first-boot script removing PACKAGE, as prepare.h's
# contract for prep_service_disable / prep_firstboot_add says.
check_tools() {
    local name=$1 fs=$2 unit=$3 pkg=$4
    dbg "$fs" "stat /etc/systemd/system/$unit.service" | grep -q 'Fast link dest: "/dev/null"' ||
        die "$name: $unit not masked"
    dbg "$fs" "stat /etc/systemd/system/multi-user.target.wants/$unit.service" | grep -q Inode &&
        die "$name: $unit still wanted"
    python3 - "$name.json" > fb.list <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["changes"]:
    if (c["why"] or "").startswith("--remove-tools") and c["file"]:
        print(c["file"])
PY
    local f found=
    while read -r f; do
        dbg "$fs" "cat $f" | grep -q "$pkg" && found=$f
    done < fb.list
    [ -n "$found" ] || die "$name: no first-boot script removes $pkg"
    echo "$name: tools: $unit masked, $pkg removed at first boot by $found"
}

# ---- Debian 12, MBR, qcow2 source, --target kvm ----
run_case deb debian "--no-virtio-initrd" qcow2 kvm
o=$(part_off deb.raw 2) b=$(part_off deb.raw 1) s5=$(part_off deb.raw 5)
for x in $b $o $s5; do fsck_ok "out.raw?offset=$x" deb; done
R="out.raw?offset=$o" B="out.raw?offset=$b"
dbg "$R" "cat /etc/fstab" | grep -q '^/dev/vda3 none swap' || die "deb: fstab not remapped"
dbg "$R" "cat /etc/fstab" | grep -q '^UUID=11111111-2222-4333-8444-555555555501 / ' || die "deb: UUID= line changed"
dbg "$R" "cat /etc/crypttab" | grep -q '^cswap /dev/vda3 /dev/urandom' || die "deb: crypttab"
dbg "$B" "cat /grub/grub.cfg" | grep -q 'root=/dev/vda2 ro quiet resume=/dev/vda3' || die "deb: grub.cfg"
dbg "$R" "cat /etc/default/grub" | grep -q 'GRUB_CMDLINE_LINUX_DEFAULT="quiet resume=/dev/vda3"' || die "deb: default/grub"
check_initrd deb "deb.raw?offset=$b" "$B" "" 6.1.0-13-amd64 initrd.img-6.1.0-13-amd64 \
    virtio_blk virtio_scsi virtio_pci virtio_net virtio_ring virtio virtio_pci_modern_dev
# initramfs-tools: conf/modules keeps its lines and gains the names
[ "$(head -n 2 tree/conf/modules)" = "$(printf '# from /etc/initramfs-tools/modules\nahci')" ] || die "deb: old conf/modules lines lost"
for m in virtio_pci virtio_blk virtio_scsi virtio_net; do
    grep -qx "$m" tree/conf/modules || die "deb: $m not in conf/modules"
done
# Debian's initramfs keeps modules in usr/lib (lib -> usr/lib): no "lib" directory entry added
[ -L tree/lib ] || die "deb: the initramfs' lib symlink was replaced"
grep -q '^kernel/drivers/ata/ahci.ko.*:' tree/usr/lib/modules/6.1.0-13-amd64/modules.dep || die "deb: old modules.dep lines lost"
modprobe -d tree -S 6.1.0-13-amd64 --show-depends virtio_blk | grep -c insmod | grep -qx 3 || die "deb: virtio_blk's dependencies"
dbg "$R" "cat /etc/initramfs-tools/modules" | grep -qx virtio_blk || die "deb: /etc/initramfs-tools/modules"
q deb.out.json "all(d[m]['initramfs'] for m in ['virtio_blk','virtio_scsi','virtio_pci','virtio_net']) and k['hypervisors']['virtio']['storage-at-boot']" ||
    die "deb: inspect does not see virtio in the initramfs"
q deb.in.json "not d['virtio_blk']['initramfs']" || die "deb: the source already had virtio"
dbg "$R" "stat /etc/blkid.tab" | grep -q Inode && die "deb: blkid.tab kept"
dbg "$R" "cat /etc/X11/xorg.conf.d/20-vmware.conf" | grep -q 'Driver "modesetting"' || die "deb: xorg driver"
dbg "$R" "cat /etc/X11/xorg.conf.d/20-vmware.conf" | grep -q 'Driver "vmmouse"' || die "deb: xorg input driver changed"
dbg "$R" "cat /etc/cloud/cloud.cfg.d/99_vmferry-datasource.cfg" | grep -q 'datasource_list: \[ NoCloud, None \]' || die "deb: datasource"
for x in instance instances sem; do
    dbg "$R" "stat /var/lib/cloud/$x" | grep -q Inode && die "deb: /var/lib/cloud/$x kept"
done
check_tools deb "$R" open-vm-tools open-vm-tools
echo "deb: ok"

# ---- Ubuntu 22.04, GPT, VMDK source, --target openstack ----
run_case ubu ubuntu "--no-virtio-initrd" vmdk openstack
o=$(part_off ubu.raw 3) h=$(part_off ubu.raw 4)
for x in $o $h; do fsck_ok "out.raw?offset=$x" ubu; done
R="out.raw?offset=$o"
dbg "$R" "cat /boot/grub/grub.cfg" | grep -q 'root=/dev/vda3 ro' || die "ubu: grub.cfg"
dbg "$R" "cat /boot/grub/device.map" | grep -q '(hd0).*/dev/vda' || die "ubu: device.map"
dbg "$R" "cat /etc/modprobe.d/hyperv.conf" | grep -qx 'alias eth0 virtio_net' || die "ubu: modprobe alias"
check_initrd ubu "ubu.raw?offset=$o" "$R" /boot 5.15.0-88-generic initrd.img-5.15.0-88-generic \
    virtio_blk virtio_pci virtio_net virtio_scsi
# no modules.dep in Ubuntu's fixture initramfs: one is made from its files
grep -q 'hv_storvsc' tree/lib/modules/5.15.0-88-generic/modules.dep || die "ubu: synthesised modules.dep lacks the old modules"
grep -qx virtio_blk tree/conf/modules || die "ubu: conf/modules"
# the aliases: kmod finds virtio_blk by its device alias
modprobe -d tree -S 5.15.0-88-generic -R 'virtio:d00000002v00001AF4' | grep -qx virtio_blk || die "ubu: modules.alias.bin"
dbg "$R" "cat /etc/cloud/cloud.cfg.d/99_vmferry-datasource.cfg" | grep -q 'ConfigDrive, OpenStack' || die "ubu: datasource"
grep -q 'netplan/50-cloud-init.yaml matches the NIC by macaddress' ubu.log || die "ubu: netplan warning"
q ubu.out.json "k['hypervisors']['virtio']['storage-at-boot']" || die "ubu: inspect"
echo "ubu: ok"

# ---- RHEL 9, LVM on GPT, VHDX source, --target kvm ----
run_case rhel rhel "" vhdx kvm
b=$(part_off rhel.raw 1)
fsck_ok "out.raw?offset=$b" rhel
lvm_extract out.raw
fsck_ok lv-root.img rhel-root
fsck_ok lv-home.img rhel-home
dbg lv-root.img "cat /etc/fstab" | grep -q '^/dev/vdb1 /data xfs' || die "rhel: fstab"
dbg lv-root.img "cat /etc/fstab" | grep -q '^/dev/mapper/rhel-root / ' || die "rhel: mapper name changed"
dbg lv-root.img "cat /etc/default/grub" | grep -q 'resume=/dev/vdb2 rd.lvm.lv' || die "rhel: default/grub"
B="out.raw?offset=$b"
dbg "$B" "cat /loader/entries/0123-5.14.0-362.8.1.el9_3.x86_64.conf" | grep -q 'root=/dev/mapper/rhel-root ro resume=/dev/vdb2' || die "rhel: BLS entry"
check_initrd rhel "rhel.raw?offset=$b" "$B" "" 5.14.0-362.8.1.el9_3.x86_64 initramfs-5.14.0-362.8.1.el9_3.x86_64.img \
    virtio_blk virtio_scsi virtio_pci virtio_net virtio_ring
# dracut: rd.driver.pre, beside the image's own cmdline.d file
grep -q '^rd.driver.pre=virtio_pci,virtio_blk,virtio_scsi,virtio_net$' tree/etc/cmdline.d/50-vmferry.conf || die "rhel: rd.driver.pre"
[ -f tree/etc/cmdline.d/00-hostonly.conf ] || die "rhel: old cmdline.d lost"
dbg lv-root.img "cat /etc/dracut.conf.d/50-vmferry.conf" | grep -q 'add_drivers+=" virtio_pci virtio_blk virtio_scsi virtio_net "' || die "rhel: dracut.conf.d"
dbg lv-root.img "cat /etc/modprobe.d/vmware.conf" > mp.txt
[ "$(cat mp.txt)" = "$(printf 'alias eth0 virtio_net\nalias scsi_hostadapter virtio_blk\noptions vmw_pvscsi x=1')" ] || die "rhel: modprobe.d: $(cat mp.txt)"
for f in /etc/blkid/blkid.tab /etc/lvm/cache/.cache /etc/lvm/devices/system.devices /etc/udev/rules.d/70-persistent-net.rules; do
    dbg lv-root.img "stat $f" | grep -q Inode && die "rhel: $f kept"
done
dbg lv-root.img "cat /etc/sysconfig/network-scripts/ifcfg-eth0" | grep -q HWADDR && die "rhel: HWADDR kept"
dbg lv-root.img "cat /etc/sysconfig/network-scripts/ifcfg-eth0" | grep -q '^DEVICE=eth0' || die "rhel: ifcfg damaged"
dbg lv-root.img "cat /etc/X11/xorg.conf" | grep -q 'Driver      "modesetting"' || die "rhel: xorg.conf"
grep -q 'eth0.nmconnection binds the connection to mac-address' rhel.log || die "rhel: NM warning"
q rhel.out.json "k['hypervisors']['virtio']['storage-at-boot'] and d['virtio_net']['initramfs']" || die "rhel: inspect"
check_tools rhel lv-root.img vmtoolsd open-vm-tools
echo "rhel: ok"

# ---- SUSE 15, GPT, raw source, --target azure (UUIDs, then Hyper-V names) ----
run_case sle suse "" raw azure
o=$(part_off sle.raw 3) h=$(part_off sle.raw 4)
for x in $o $h; do fsck_ok "out.raw?offset=$x" sle; done
R="out.raw?offset=$o"
dbg "$R" "cat /boot/grub2/grub.cfg" | grep -q 'root=UUID=11111111-2222-4333-8444-555555555501 ro' || die "sle: grub.cfg root= not a UUID"
dbg "$R" "dump /boot/grub2/grubenv grubenv"
[ "$(stat -c %s grubenv)" = 1024 ] || die "sle: grubenv not 1024 bytes"
grep -q 'kernelopts=root=UUID=11111111-2222-4333-8444-555555555501 resume=/dev/sda9$' grubenv || die "sle: grubenv: $(head -2 grubenv)"
# /dev/vda9 has no UUID (no such partition): renamed for Hyper-V instead
dbg "$R" "cat /etc/fstab" | grep -q '^/dev/sda9 none swap' || die "sle: fstab swap"
grep -q 'no UUID known for /dev/vda9' sle.log || die "sle: no warning for vda9"
check_initrd sle "sle.raw?offset=$o" "$R" /boot 5.14.21-150500.55.31-default initrd-5.14.21-150500.55.31-default \
    hv_vmbus hv_storvsc hv_netvsc scsi_transport_fc
grep -q '^rd.driver.pre=hv_vmbus,hv_storvsc,hv_netvsc$' tree/etc/cmdline.d/50-vmferry.conf || die "sle: rd.driver.pre"
modprobe -d tree -S 5.14.21-150500.55.31-default --show-depends hv_storvsc | grep -c insmod | grep -qx 3 || die "sle: hv_storvsc's dependencies"
dbg "$R" "cat /etc/modprobe.d/50-xen.conf" | grep -qx 'alias eth0 hv_netvsc' || die "sle: modprobe alias"
q sle.out.json "k['hypervisors']['hyperv']['storage-at-boot'] and d['hv_netvsc']['initramfs']" || die "sle: inspect"
check_tools sle "$R" xe-linux-distribution xe-guest-utilities
echo "sle: ok"

# ---- Debian on GPT, raw source, --target gce (UUIDs, then virtio-scsi) ----
run_case dgpt debian "--layout gpt --no-virtio-initrd" raw gce
o=$(part_off dgpt.raw 3)
fsck_ok "out.raw?offset=$o" dgpt
R="out.raw?offset=$o"
dbg "$R" "cat /boot/grub/grub.cfg" | grep -q 'root=UUID=11111111-2222-4333-8444-555555555501 ro quiet$' || die "dgpt: grub.cfg"
check_initrd dgpt "dgpt.raw?offset=$o" "$R" /boot 6.1.0-13-amd64 initrd.img-6.1.0-13-amd64 virtio_scsi virtio_pci virtio_net
grep -qx virtio_blk tree/conf/modules && die "dgpt: virtio_blk added for gce"
dbg "$R" "cat /etc/cloud/cloud.cfg.d/99_vmferry-datasource.cfg" | grep -q '\[ GCE \]' || die "dgpt: datasource"
echo "dgpt: ok"

# ---- Alpine (mkinitfs, neither initramfs-tools nor dracut), extlinux,
# a kernel named vmlinuz-lts whose modules are in 6.1.62-0-lts ----
run_case alp alpine "--no-virtio-initrd" raw kvm
o=$(part_off alp.raw 1)
fsck_ok "out.raw?offset=$o" alp
R="out.raw?offset=$o"
dbg "$R" "cat /boot/extlinux.conf" | grep -q 'APPEND root=/dev/vda1 ' || die "alp: extlinux.conf"
check_initrd alp "alp.raw?offset=$o" "$R" /boot 6.1.62-0-lts initramfs-lts virtio_blk virtio_pci virtio_net virtio_ring
grep -q 'will load only when udev or mdev matches a device alias' alp.log || die "alp: no warning about the unknown generator"
modprobe -d tree -S 6.1.62-0-lts -R 'virtio:d00000002v00001AF4' | grep -qx virtio_blk || die "alp: alias index"
q alp.out.json "k['hypervisors']['virtio']['storage-at-boot']" || die "alp: inspect"
echo "alp: ok"

# ---- an initramfs path that is a symlink: the file it names is edited ----
python3 "$mk" debian ln.raw --conversion --no-virtio-initrd 2>/dev/null || die "mk ln"
b=$(part_off ln.raw 1)
dbg "ln.raw?offset=$b" "dump /initrd.img-6.1.0-13-amd64 ln-orig.img"
"$VMFERRY" prepare -q --in-place --upload ln-orig.img:/boot/initrd-real.img \
    --link initrd-real.img:/boot/initrd.img-6.1.0-13-amd64 ln.raw || die "ln: making the link"
"$VMFERRY" prepare -q --add-drivers virtio_blk ln.raw ln.out 2> ln.log || { cat ln.log; die "ln: prepare"; }
B="ln.out?offset=$b"
fsck_ok "$B" ln
dbg "$B" "stat /initrd.img-6.1.0-13-amd64" | grep -q 'Fast link dest: "initrd-real.img"' || die "ln: the link was replaced"
dbg "$B" "dump /initrd-real.img ln-new.img"
dbg "$B" "dump /initrd-real.img.pre-vmferry ln-pre.img"
cmp -s ln-pre.img ln-orig.img || die "ln: backup of the real file"
kernel_unpack ln-orig.img ln-new.img lntree
find lntree -name 'virtio_blk.ko*' | grep -q . || die "ln: virtio_blk not added to the real file"
echo "ln: ok"

# ---- running twice: nothing more to add, the backup is kept ----
cp deb.qcow2 again.qcow2
"$VMFERRY" prepare --target kvm --json --in-place again.qcow2 > again.json 2> again.log || { cat again.log; die "second run failed"; }
python3 - again.json <<'PY' || die "second run changed the initramfs again"
import json, sys
j = json.load(open(sys.argv[1]))
assert not [c for c in j["changes"] if "initrd" in (c["file"] or "")], j["changes"]
PY

# ---- every edit word is in --help and the man page ----
"$VMFERRY" prepare --help > help.txt
sed 's/\\-/-/g' "$SRCDIR/docs/vmferry.1" > man.txt
for w in remap-devices fstab-uuids add-drivers fix-leftovers cloud-init-datasource; do
    grep -q -- "--$w" help.txt || die "--$w missing from prepare --help"
    grep -q -- "--$w" man.txt || die "--$w missing from the man page"
done
# a target nobody knows lists the known ones
"$VMFERRY" prepare --target mars deb.raw x.qcow2 2> err.txt && die "unknown target accepted"
grep -q "unknown target 'mars' (known: kvm, openstack" err.txt || die "unknown target message: $(cat err.txt)"
echo ok
