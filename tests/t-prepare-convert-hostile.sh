# prepare --target on hostile guests (mk-guest.py with hostile files):
# an initramfs that is not cpio, one whose cpio name length is 4 GB, one
# whose conf/modules is larger than vmferry merges; a modules.dep with a
# dependency loop and a path escaping the modules tree, one with a chain
# 40 deep; a 50 MB /etc/fstab.  Each gives a clear warning (the file left
# as it was, the rest of the conversion done) or a one-line error (and no
# output); e2fsck -fn stays clean; no sanitizer report; the source never
# changes.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk e2fsck debugfs cpio sha256sum zstd lz4 xz mkswap
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

part_off() {
    sfdisk -d "$1" | awk -v p="$1$2" '$1 == p { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { v = $(i+1); gsub(/[^0-9]/, "", v); print v * 512 } }'
}
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }

# prep_ok NAME WARNING ARGS...: prepare succeeds, warns WARNING, no
# sanitizer report, every ext filesystem clean, the source unchanged
prep_ok() {
    local name=$1 want=$2
    shift 2
    sha256sum "$name.raw" > src.sha
    local rc=0
    timeout 60 "$VMFERRY" prepare --json "$@" "$name.raw" "$name.out" \
        > "$name.json" 2> "$name.log" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$name.log"; die "$name: prepare exit $rc"; }
    ! grep -qE 'Sanitizer|runtime error' "$name.log" || { cat "$name.log"; die "$name: sanitizer report"; }
    grep -qF -- "$want" "$name.log" || { cat "$name.log"; die "$name: no warning '$want'"; }
    python3 - "$name.json" "$want" <<'PY' || die "$name: warning not in the JSON"
import json, sys
j = json.load(open(sys.argv[1]))
assert any(sys.argv[2] in w for w in j["warnings"]), j["warnings"]
PY
    sha256sum -c --quiet src.sha || die "$name: source changed"
    local n
    for n in 1 2 3 4 5; do
        local o
        o=$(part_off "$name.out" $n)
        [ -n "$o" ] || continue
        if dbg "$name.out?offset=$o" "stats" | grep -q "Filesystem magic number"; then
            e2fsck -fn "$name.out?offset=$o" > fsck.log 2>&1 ||
                { cat fsck.log; die "$name: e2fsck not clean on partition $n"; }
        fi
    done
    echo "$name: ok ($want)"
}

# ---- initramfs files vmferry cannot read: a warning, left unchanged ----
head -c 300000 /dev/urandom > junk.img
printf 'this is not an initramfs\n' > text.img
python3 - <<'PY'
# a newc header claiming a 4 GB name, then the start of a real archive
hdr = b"070701" + b"00000001" + b"000081A4" + b"0" * 32 + b"00000010" + b"0" * 32 + b"FFFFFFFF" + b"00000000"
open("bigname.img", "wb").write(hdr + b"x" * 4096)
PY
mkdir -p big/conf big/lib/modules
head -c 2000000 /dev/zero | tr '\0' 'a' > big/conf/modules
(cd big && find . | cpio -o -H newc --quiet) | zstd -q > bigconf.img
for f in junk text bigname bigconf; do
    python3 "$mk" debian "$f.raw" --conversion --no-virtio-initrd --initrd-file "$f.img" 2>/dev/null || die "mk $f"
    case $f in
    bigconf) want="larger than vmferry merges" ;;
    *) want="cannot read it as an initramfs" ;;
    esac
    prep_ok "$f" "$want" --target kvm -O raw
    b=$(part_off "$f.out" 1)
    dbg "$f.out?offset=$b" "dump /initrd.img-6.1.0-13-amd64 got.img"
    cmp -s got.img "$f.img" || die "$f: the initramfs was changed"
    dbg "$f.out?offset=$b" "stat /initrd.img-6.1.0-13-amd64.pre-vmferry" | grep -q Inode &&
        die "$f: a .pre-vmferry left for an unchanged initramfs"
    # the other conversion edits still ran
    o=$(part_off "$f.out" 2)
    dbg "$f.out?offset=$o" "cat /etc/fstab" | grep -q '^/dev/vda3 ' || die "$f: fstab not remapped"
done

# ---- modules.dep: a loop, and a path out of the tree ----
cat > loop.dep <<'EOT'
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko.zst
kernel/drivers/virtio/virtio_ring.ko.zst: kernel/drivers/virtio/virtio.ko.xz
kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/block/virtio_blk.ko ../../../../etc/shadow
../../../../etc/shadow:
kernel/drivers/virtio/virtio_pci.ko.zst:
kernel/drivers/net/virtio_net.ko.gz:
kernel/drivers/scsi/virtio_scsi.ko.xz:
EOT
python3 "$mk" debian loop.raw --conversion --no-virtio-initrd --moddep-file loop.dep 2>/dev/null || die "mk loop"
prep_ok loop "dependency loop" --target kvm -O raw
grep -q "needs ../../../../etc/shadow, which modules.dep does not list" loop.log || die "loop: escaping path not refused"
b=$(part_off loop.out 1)
dbg "loop.out?offset=$b" "dump /initrd.img-6.1.0-13-amd64 loop.img"
python3 - loop.img <<'PY' || die "loop: segment content"
import sys
d = open(sys.argv[1], "rb").read()
for m in (b"virtio_blk.ko", b"virtio_ring.ko.zst", b"virtio.ko.xz"):
    assert m in d, m
assert b"etc/shadow" not in d
PY

# ---- a dependency chain 40 deep: a one-line error, no output ----
python3 - <<'PY'
lines = ["kernel/drivers/block/virtio_blk.ko: kernel/x/m1.ko"]
for i in range(1, 40):
    lines.append("kernel/x/m%d.ko: kernel/x/m%d.ko" % (i, i + 1))
lines.append("kernel/x/m40.ko:")
open("deep.dep", "w").write("\n".join(lines) + "\n")
PY
python3 "$mk" debian deep.raw --conversion --no-virtio-initrd --moddep-file deep.dep 2>/dev/null || die "mk deep"
rc=0
"$VMFERRY" prepare --add-drivers virtio_blk deep.raw deep.out 2> deep.log || rc=$?
[ "$rc" -eq 1 ] || { cat deep.log; die "deep: exit $rc"; }
[ "$(wc -l < deep.log)" -eq 1 ] && grep -q "^vmferry: prepare: --add-drivers: kernel 6.1.0-13-amd64: modules.dep dependency chain deeper than 32" deep.log ||
    { cat deep.log; die "deep: not a one-line error"; }
[ -e deep.out ] && die "deep: a failed prepare left its output"

# ---- /boot too small for a second copy of the initramfs: a one-line
# error, no output (the new file is written beside the old first) ----
mkdir -p fat/lib/modules/6.1.0-13-amd64/kernel
head -c 7000000 /dev/urandom > fat/blob
(cd fat && find . | cpio -o -H newc --quiet) > fatinitrd.img
python3 "$mk" debian full.raw --conversion --no-virtio-initrd --initrd-file fatinitrd.img 2>/dev/null || die "mk full"
sha256sum full.raw > src.sha
rc=0
"$VMFERRY" prepare --target kvm full.raw full.out 2> full.log || rc=$?
[ "$rc" -eq 1 ] || { cat full.log; die "full: exit $rc"; }
[ "$(wc -l < full.log | tr -d ' ')" -ge 1 ] && tail -n 1 full.log | grep -q "^vmferry: prepare: --add-drivers: /boot/initrd.img-6.1.0-13-amd64: writing the new initramfs" ||
    { cat full.log; die "full: no clear error"; }
[ -e full.out ] && die "full: a failed prepare left its output"
sha256sum -c --quiet src.sha || die "full: source changed"
echo "full: ok"

# ---- a 50 MB /etc/fstab: a warning, left alone ----
python3 - <<'PY'
line = b"/dev/sda2 / ext4 defaults 0 1\n"
with open("fstab.big", "wb") as f:
    f.write(line * (50 * 1024 * 1024 // len(line) + 1))
PY
# (GPT layout: /boot is on the root filesystem, which inspection mounts
# without reading the fstab)
python3 "$mk" debian fat.raw --layout gpt --conversion --fstab-file fstab.big --root-mb 80 --size-mb 128 2>/dev/null || die "mk fat"
prep_ok fat "/etc/fstab: 52428" --target kvm -O raw
o=$(part_off fat.out 3)
dbg "fat.out?offset=$o" "stat /etc/fstab" | grep -q "Size: 5242" || die "fat: fstab changed"
# the boot configuration was still remapped
dbg "fat.out?offset=$o" "cat /boot/grub/grub.cfg" | grep -q 'root=/dev/vda3' || die "fat: grub.cfg not remapped"
echo ok
