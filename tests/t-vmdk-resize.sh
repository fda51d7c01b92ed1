#!/bin/bash
# t-vmdk-resize: resizing every VMDK kind that can be resized, each step
# judged by independent readers: qemu-img check clean (where qemu-img
# checks the kind), qemu-img info shows the new virtual size, qemu-img
# compare against a raw copy of the old content truncated to the new size
# says identical, and libyal's vmdkinfo reports the new media size.
#   monolithicSparse, monolithicFlat, vmfs: grow, shrink;
#   twoGbMaxExtentSparse/Flat: grow past 2 GiB adds NAME-s002.vmdk ... /
#     NAME-f002.vmdk, shrinking drops whole extents and cuts the last;
#   monolithicSparse 64 MiB with data -> 1 TiB (and -> 100 GiB for a
#     vmferry image and one without a redundant directory): the grain
#     directory outgrows its room, so the grain tables and grains behind
#     it move to the end of the file (qemu-img dd reads the data back,
#     qemu-img map says what lies past it is unallocated);
#   ddb.geometry.cylinders follows the size (embedded and separate
#     descriptors, IDE and SCSI heads);
#   streamOptimized, a size past 2 TiB and a new extent whose name is
#     taken are refused with one line, and leave the image as it was.
. "$(dirname "$0")/lib.sh"

require qemu-img python3 cmp "$VMFERRY"

cd "$scratch"
gen_pattern --seed 61 70m src.raw d4k,h60k,d100k,z64k,h3m,d8m,z1m,d512,h20m,d10m ||
    die "gen-pattern failed"

# oracles IMAGE SIZE RAW [nocheck]: IMAGE must read as RAW cut or padded
# to SIZE bytes.
oracles() {
    local f=$1 size=$2 raw=$3
    if [ "${4:-}" != nocheck ]; then
        qemu-img check -q "$f" || die "$f at $size: qemu-img check"
    fi
    qemu-img info --output=json "$f" | grep > /dev/null "\"virtual-size\": $size," ||
        die "$f: qemu-img info does not say $size bytes"
    cp --sparse=always "$raw" want.raw
    truncate -s "$size" want.raw
    qemu-img compare -q -f raw want.raw "$f" ||
        die "$f at $size: content differs"
    rm -f want.raw
    if command -v vmdkinfo > /dev/null; then
        vmdkinfo "$f" | grep > /dev/null "Media size:.*($size bytes)" ||
            die "$f at $size: vmdkinfo media size"
    fi
    "$VMFERRY" check "$f" > /dev/null || die "$f at $size: vmferry check"
}

resize() { # IMAGE SIZE [--shrink]
    "$VMFERRY" resize ${3:-} "$1" "$2" > /dev/null ||
        die "vmferry resize ${3:-} $1 $2 failed"
}

# ---- one-extent kinds, made by qemu-img and by vmferry ----
for maker in qemu vmferry; do
    for sub in monolithicSparse monolithicFlat vmfs; do
        [ "$maker:$sub" = qemu:vmfs ] && continue    # qemu-img cannot
        d="$maker-$sub"
        mkdir "$d"
        f="$d/r.vmdk"
        if [ "$maker" = qemu ]; then
            qemu-img convert -f raw -O vmdk -o subformat=$sub src.raw "$f"
        else
            "$VMFERRY" convert -f raw -O vmdk -o subformat=$sub src.raw "$f"
        fi
        nocheck=
        [ "$sub" = vmfs ] && nocheck=nocheck     # qemu-img cannot check it
        resize "$f" 200M
        oracles "$f" 209715200 src.raw $nocheck
        resize "$f" 70M --shrink
        oracles "$f" 73400320 src.raw $nocheck
        rm -rf "$d"
    done
done
echo "one-extent kinds: ok"

# ---- twoGbMaxExtent: extents come and go ----
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    c=s
    [ "$sub" = twoGbMaxExtentFlat ] && c=f
    for maker in qemu vmferry; do
        d="$maker-$sub"
        mkdir "$d"
        if [ "$maker" = qemu ]; then
            qemu-img convert -f raw -O vmdk -o subformat=$sub src.raw "$d/t.vmdk"
        else
            "$VMFERRY" convert -f raw -O vmdk -o subformat=$sub src.raw "$d/t.vmdk"
        fi
        resize "$d/t.vmdk" 4100M
        oracles "$d/t.vmdk" 4299161600 src.raw
        [ "$(grep -c '^RW ' "$d/t.vmdk")" -eq 3 ] || die "$d: not 3 extents"
        grep -q "^RW 4194304 .* \"t-${c}002.vmdk\"" "$d/t.vmdk" &&
            grep -q "^RW 8192 .* \"t-${c}003.vmdk\"" "$d/t.vmdk" ||
            { cat "$d/t.vmdk"; die "$d: new extents not as VMware names them"; }
        resize "$d/t.vmdk" 2100M --shrink
        oracles "$d/t.vmdk" 2202009600 src.raw
        [ ! -e "$d/t-${c}003.vmdk" ] || die "$d: dropped extent still there"
        [ "$(stat -c %s "$d/t-${c}002.vmdk")" -lt 100000000 ] ||
            die "$d: the cut extent was not cut"
        resize "$d/t.vmdk" 70M --shrink
        oracles "$d/t.vmdk" 73400320 src.raw
        [ "$(ls "$d")" = "t-${c}001.vmdk
t.vmdk" ] || die "$d: files left: $(ls -A "$d")"
        rm -rf "$d"
    done
done
echo "twoGbMaxExtent: ok"

# ---- monolithicSparse 64 MiB -> 1 TiB: the grain directory moves ----
# grow_far IMAGE SIZE DIRS: grow a 64 MiB image holding src64.raw to SIZE
# bytes, far past its grain directory's room, with DIRS (1 or 2) grain
# directories; then shrink it back.
head -c 64M src.raw > src64.raw
grow_far() {
    local f=$1 size=$2 dirs=$3
    resize "$f" "$size"
    qemu-img check -q "$f" || die "$f at $size: qemu-img check"
    qemu-img info --output=json "$f" | grep > /dev/null "\"virtual-size\": $size," ||
        die "$f: qemu-img info does not say $size"
    if command -v vmdkinfo > /dev/null; then
        vmdkinfo "$f" | grep > /dev/null "Media size:.*($size bytes)" ||
            die "$f: vmdkinfo media size"
    fi
    qemu-img dd -f vmdk -O raw bs=1M count=64 if="$f" of=head.raw ||
        die "qemu-img dd failed"
    cmp src64.raw head.raw || die "$f at $size: the first 64 MiB differ"
    rm -f head.raw
    # qemu-img map walks the disk one grain at a time: look at two windows
    qemu-img map --output=json --start-offset=60M --max-length=1G "$f" \
        > map1.json
    qemu-img map --output=json --start-offset=$((size - (1 << 30))) "$f" \
        > map2.json
    python3 - map1.json map2.json "$f" "$size" "$dirs" <<'PY' ||
import json, struct, sys
for m in sys.argv[1:3]:
    for r in json.load(open(m)):
        if r["start"] + r["length"] > 64 << 20:
            assert not r["data"], r
h = open(sys.argv[3], "rb").read(512)
flags, = struct.unpack_from("<I", h, 8)
rgd, gd, overhead = struct.unpack_from("<QQQ", h, 48)
# the directories hold an LE32 per 32 MiB of disk, and do not overlap
need = -(-int(sys.argv[4]) // (32 << 20)) * 4 // 512
if sys.argv[5] == "2":
    assert flags & 2 and abs(gd - rgd) >= need, (rgd, gd)
assert overhead >= max(rgd if flags & 2 else 0, gd) + need, (gd, overhead)
PY
        die "$f at $size: map or layout wrong"
    resize "$f" 64M --shrink
    oracles "$f" 67108864 src64.raw
    rm -f "$f"
}
qemu-img convert -f raw -O vmdk src64.raw big-qemu.vmdk
grow_far big-qemu.vmdk 1099511627776 2
"$VMFERRY" convert -f raw -O vmdk -o zeroed_grain=on src64.raw big-vmferry.vmdk
grow_far big-vmferry.vmdk 107374182400 2
# no redundant directory: clear the RGD flag of a qemu-img image
qemu-img convert -f raw -O vmdk src64.raw big-nordg.vmdk
python3 - big-nordg.vmdk <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    flags, = struct.unpack_from("<I", f.read(12), 8)
    f.seek(8)
    f.write(struct.pack("<I", flags & ~2))
PY
grow_far big-nordg.vmdk 107374182400 1
echo "growing past the grain directory: ok"

# ---- geometry ----
"$VMFERRY" convert -f raw -O vmdk -o adapter_type=lsilogic src.raw geo.vmdk
resize geo.vmdk 100G
strings geo.vmdk | grep > /dev/null '^ddb.geometry.cylinders = "13054"$' ||
    die "embedded: cylinders not 100G/(255*63*512)"
strings geo.vmdk | grep > /dev/null '^RW 209715200 SPARSE' || die "embedded: extent size"
mkdir geo
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentFlat geo/g.vmdk 1G
resize geo/g.vmdk 3G
grep -q '^ddb.geometry.cylinders = "6241"$' geo/g.vmdk ||
    die "separate: cylinders not 3G/(16*63*512)"
resize geo/g.vmdk 20G
# past the BIOS's 16383 cylinders: what qemu-img itself writes for 20G
mkdir geo2
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentFlat geo2/g.vmdk 20G
want=$(grep '^ddb.geometry.cylinders' geo2/g.vmdk)
grep -qx "$want" geo/g.vmdk ||
    die "separate: cylinders differ from qemu-img's ($want)"
rm -rf geo2
rm -rf geo geo.vmdk
echo "geometry: ok"

# ---- refusals ----
"$VMFERRY" convert -f raw -O vmdk -o subformat=streamOptimized src.raw so.vmdk
before=$(sha256_of so.vmdk)
expect_rc 1 "$VMFERRY" resize so.vmdk 100M 2> err.txt
[ "$(wc -l < err.txt)" -eq 1 ] &&
    grep -q 'streamOptimized VMDK cannot be resized; convert it' err.txt ||
    die "stream: $(cat err.txt)"
[ "$(sha256_of so.vmdk)" = "$before" ] || die "a refused resize changed so.vmdk"

"$VMFERRY" convert -f raw -O vmdk src.raw g.vmdk
before=$(sha256_of g.vmdk)
expect_rc 1 "$VMFERRY" resize g.vmdk 3T 2> err.txt
grep -q 'beyond the 2 TiB' err.txt || die "3T: $(cat err.txt)"
[ "$(sha256_of g.vmdk)" = "$before" ] || die "a refused resize changed g.vmdk"

mkdir taken
qemu-img convert -f raw -O vmdk -o subformat=twoGbMaxExtentSparse src.raw taken/t.vmdk
echo "not mine" > taken/t-s002.vmdk
before=$(cat taken/t.vmdk taken/t-s001.vmdk | sha256sum)
expect_rc 1 "$VMFERRY" resize taken/t.vmdk 3G 2> err.txt
grep -q 't-s002.vmdk already exists' err.txt || die "taken: $(cat err.txt)"
[ "$(cat taken/t.vmdk taken/t-s001.vmdk | sha256sum)" = "$before" ] ||
    die "a refused resize changed the image"
[ "$(ls -A taken | tr '\n' ' ')" = "t-s001.vmdk t-s002.vmdk t.vmdk " ] ||
    die "a refused resize left files: $(ls -A taken)"
grep -qx "not mine" taken/t-s002.vmdk || die "someone else's file changed"
echo "refusals: ok"
