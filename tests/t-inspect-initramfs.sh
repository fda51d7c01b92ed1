# inspect: kernels, modules and the initramfs: every compressor (none,
# gzip, xz, lzma, zstd, lz4 legacy and frame, bzip2), an early microcode
# cpio before the compressed one, virtio present or absent in the
# initramfs, virtio built in via the config, modules found through
# modules.dep (Alpine) or a directory walk (RHEL fixture has none).
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio zstd lz4 xz bzip2 gzip
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

# q FILE EXPR: evaluate a python expression on the first kernel (k) of
# the first OS (o) of the report r.
q() {
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["operatingsystems"][0]
k = o["kernels"][0]
ic = k.get("initramfs-contents", {})
d = k["drivers"]
v = eval(sys.argv[2])
print(v)
sys.exit(0 if v else 1)
PY
}

for c in none gzip xz lzma zstd lz4 lz4frame bzip2; do
    python3 "$mk" alpine "a-$c.raw" --initrd "$c" 2>/dev/null || die "mk $c"
    "$VMFERRY" inspect --json "a-$c.raw" > "a-$c.json" || die "inspect $c"
    want=$c; [ "$c" = lz4frame ] && want=lz4
    q "a-$c.json" "ic['compression'] == '$want' and 'error' not in ic" >/dev/null ||
        die "$c: initramfs not parsed: $(q "a-$c.json" ic || true)"
    q "a-$c.json" "d['virtio_blk']['initramfs'] and d['virtio_pci']['initramfs'] and k['hypervisors']['virtio']['storage-at-boot']" >/dev/null ||
        die "$c: virtio not seen in the initramfs"
    q "a-$c.json" "not d['hv_storvsc']['initramfs'] and d['hv_storvsc']['module']" >/dev/null ||
        die "$c: hv_storvsc wrong"
    echo "$c: ok"
done

# microcode first, then a compressed archive
python3 "$mk" alpine mc.raw --initrd xz --microcode 2>/dev/null
"$VMFERRY" inspect --json mc.raw > mc.json
q mc.json "ic['early-microcode'] and [s['compression'] for s in ic['segments']] == ['none', 'xz']" >/dev/null ||
    die "microcode + xz segments wrong: $(q mc.json ic || true)"

# without virtio in the initramfs: modules exist but the disk is not
# found at boot
python3 "$mk" alpine nov.raw --no-virtio-initrd 2>/dev/null
"$VMFERRY" inspect --json nov.raw > nov.json
q nov.json "d['virtio_blk']['module'] and not d['virtio_blk']['initramfs'] and not k['hypervisors']['virtio']['storage-at-boot']" >/dev/null ||
    die "no-virtio initramfs wrong"

# built in through the config: available at boot without the initramfs
python3 "$mk" alpine bi.raw --no-virtio-initrd --builtin-virtio 2>/dev/null
"$VMFERRY" inspect --json bi.raw > bi.json
q bi.json "d['virtio_blk']['builtin'] and k['hypervisors']['virtio']['storage-at-boot']" >/dev/null ||
    die "built-in virtio not seen"

# RHEL fixture: no modules.dep (directory walk), hostonly initramfs
# without virtio, Xen module files named xen-blkfront.ko*
python3 "$mk" rhel rhel.raw 2>/dev/null
"$VMFERRY" inspect --json rhel.raw > rhel.json
q rhel.json "k['modules-source'] == 'directory walk' and k['modules'] == 13 and d['xen_blkfront']['module'] and not k['hypervisors']['virtio']['storage-at-boot'] and k['hypervisors']['vmware']['storage-at-boot']" >/dev/null ||
    die "rhel kernel facts wrong"
q rhel.json "k['config'] == '/boot/config-5.14.0-362.8.1.el9_3.x86_64' and k['initramfs'].startswith('/boot/initramfs-')" >/dev/null ||
    die "rhel kernel paths wrong"
# gzip through ISA-L: an initramfs of several read-ahead chunks (4 MiB of
# incompressible data before the modules) as two gzip members, the same
# with its CRC trailer damaged, and cut short.
mkdir -p big/lib/modules/6.1.0/kernel/drivers/block big/lib/modules/6.1.0/kernel/drivers/virtio
head -c 4194304 /dev/urandom > big/blob
: > big/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko
: > big/lib/modules/6.1.0/kernel/drivers/virtio/virtio_pci.ko
(cd big && printf 'blob\n' | cpio -o -H newc 2>/dev/null) | gzip -1 > big.gz
(cd big && find lib | cpio -o -H newc 2>/dev/null) | gzip > big2.gz
cat big.gz big2.gz > big.img
python3 "$mk" alpine big.raw --initrd-file big.img 2>/dev/null
"$VMFERRY" inspect --json big.raw > big.json
q big.json "'error' not in ic and [s['compression'] for s in ic['segments']] == ['gzip', 'gzip'] and d['virtio_blk']['initramfs'] and d['virtio_pci']['initramfs']" >/dev/null ||
    die "two gzip members wrong: $(q big.json ic || true)"
python3 - big.img bad.img <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
n = len(open("big.gz", "rb").read())
d[n - 8] ^= 0xff                # CRC-32 of the first member
open(sys.argv[2], "wb").write(d)
PY
python3 "$mk" alpine bad.raw --initrd-file bad.img 2>/dev/null
"$VMFERRY" inspect --json bad.raw > bad.json 2>/dev/null
q bad.json "'CRC-32' in ic.get('error', '')" >/dev/null ||
    die "bad gzip CRC not reported: $(q bad.json ic || true)"
head -c 3000000 big.gz > cut.img
python3 "$mk" alpine cut.raw --initrd-file cut.img 2>/dev/null
"$VMFERRY" inspect --json cut.raw > cut.json 2>/dev/null
q cut.json "'truncated' in ic.get('error', '')" >/dev/null ||
    die "truncated gzip not reported: $(q cut.json ic || true)"
# every driver inspect looks for, then 4 MiB more: the scan stops once
# all are found (complete: false), and says so
mkdir -p all
for m in block/virtio_blk scsi/virtio_scsi net/virtio_net virtio/virtio_pci \
         hv/hv_vmbus scsi/hv_storvsc net/hyperv/hv_netvsc block/xen-blkfront \
         net/xen-netfront scsi/vmw_pvscsi net/vmxnet3/vmxnet3; do
    mkdir -p "all/lib/modules/6.1.0/kernel/drivers/$(dirname $m)"
    : > "all/lib/modules/6.1.0/kernel/drivers/$m.ko"
done
head -c 4194304 /dev/urandom > all/zz-blob
(cd all && find lib zz-blob | cpio -o -H newc 2>/dev/null) | gzip -1 > all.img
python3 "$mk" alpine all.raw --initrd-file all.img 2>/dev/null
"$VMFERRY" inspect --json all.raw > all.json
q all.json "ic.get('complete') is False and ic['compression'] == 'gzip' and all(v['initramfs'] for v in d.values())" >/dev/null ||
    die "early stop wrong: $(q all.json ic || true)"
"$VMFERRY" inspect all.raw | grep -q 'files (read until every driver was found), gzip' ||
    die "text output does not say the scan stopped early"
echo ok
