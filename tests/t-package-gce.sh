#!/bin/bash
# package --target gce: NAME.tar.gz holding disk.raw as the one sparse
# member of an oldgnu tar, its size rounded up to a whole GiB, gzip in
# several independent members.  Guests: the Debian fixture of mk-guest.py
# (it passes the gce preflight rules) with 32 MiB more of data, written
# zeros and holes after its partitions; sources raw, qcow2, of a size that
# is not a multiple of 512 and of exactly 1 GiB.  Oracles: gzip -t, GNU tar
# (-tvzf, -xSzf), qemu-img compare (src against the extracted disk.raw;
# the padding must read as zeros), cmp, sha256sum, and Python's gzip/zlib
# for the header fields and the gzip members.  Also that the
# workers' count does not change the archive, and that two disks (or a
# disk format other than raw) are refused with nothing left behind.  The
# bound on the sparse map's runs is unit-tested (t-unit).
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio zstd qemu-img tar gzip cmp sha256sum
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"
GIB=$((1 << 30))

# add_data RAW SIZE: grow RAW to SIZE bytes and lay out, from 64 MiB:
# 8 MiB random, 4 MiB written zeros, a 4 MiB hole, 2 MiB of text,
# 1 MiB random at 90 MiB, and the last 100 bytes (or fewer) non-zero.
add_data() {
    python3 - "$1" "$2" <<'PY' || die "add_data $1"
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
MIB = 1 << 20
r = random.Random(7)
with open(path, "r+b") as f:
    f.truncate(size)
    def put(off, data):
        f.seek(off)
        f.write(data)
    put(64 * MIB, r.randbytes(8 * MIB))
    put(72 * MIB, bytes(4 * MIB))
    line = b"".join(b"line %d of a compressible text region\n" % i
                    for i in range(60000))
    put(80 * MIB, line[:2 * MIB])
    put(90 * MIB, r.randbytes(MIB))
    tail = min(100, size - 91 * MIB)
    put(size - tail, bytes([0x5a]) * tail)
PY
}

# jq-less manifest reads: mf DIR EXPR (a Python expression over m)
mf() {
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1] + "/manifest.json")); print(eval(sys.argv[2]))' "$1" "$2"
}

# check_pkg SRC OUTDIR NAME REALSIZE: every oracle on OUTDIR/NAME.tar.gz.
check_pkg() {
    local src=$1 out=$2 name=$3 real=$4 gz=$2/$3.tar.gz
    [ -f "$gz" ] || die "$gz missing"
    [ "$(ls "$out" | sort | tr '\n' ' ')" = \
      "$(printf '%s\n' "$name.tar.gz" manifest.json | sort | tr '\n' ' ')" ] ||
        die "$out holds $(ls "$out")"
    gzip -t "$gz" || die "gzip -t $gz"
    tar -tvzf "$gz" > list || die "tar -tvzf $gz"
    [ "$(wc -l < list)" -eq 1 ] || die "more than one member: $(cat list)"
    awk '{ print $3, $6 }' list | grep -qx "$real disk.raw" ||
        die "listing is not disk.raw of $real bytes: $(cat list)"
    [ $((real % GIB)) -eq 0 ] || die "size $real not a whole GiB"
    # the header, the members, the stream's end
    python3 - "$gz" "$real" "$out/manifest.json" <<'PY' || die "$gz: header or gzip members"
import gzip, json, sys, zlib
gz, real, man = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
with gzip.open(gz) as f:                       # multi-member, as one stream
    h = f.read(512)
    total = 512 + sum(len(b) for b in iter(lambda: f.read(1 << 20), b""))
assert h[0:9] == b"disk.raw\0", h[0:9]
assert h[156:157] == b"S", "typeflag %r" % h[156:157]
assert h[257:265] == b"ustar  \0", "magic %r" % h[257:265]
def num(field):
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    return int(field.strip(b"\0 ") or b"0", 8)
assert num(h[483:495]) == real, "realsize %d" % num(h[483:495])
s = sum(h[:148]) + 8 * 32 + sum(h[156:])
assert num(h[148:156]) == s, "checksum"
# count the members one by one with zlib
data = open(gz, "rb").read()
members, out_len = 0, 0
while data:
    d = zlib.decompressobj(31)
    out_len += len(d.decompress(data)) + len(d.flush())
    assert d.eof, "truncated member"
    data = d.unused_data
    members += 1
assert out_len == total, (out_len, total)
meta = man["metadata"]
assert members == meta["gzip-members"], (members, meta["gzip-members"])
assert total == meta["tar-size"] and total % 512 == 0
assert meta["disk-raw-size"] == real
a = man["artifacts"]
assert len(a) == 1 and a[0]["role"] == "archive" and a[0]["format"] == "tar.gz"
print(members)
PY
    [ "$(mf "$out" 'm["artifacts"][0]["sha256"]')" = "$(sha256_of "$gz")" ] ||
        die "$gz: manifest sha256 is not the file's"
    [ "$(mf "$out" 'm["artifacts"][0]["size"]')" -eq "$(stat -c %s "$gz")" ] ||
        die "$gz: manifest size"
    rm -rf x && mkdir x
    tar -C x -xSzf "$gz" || die "tar -xSzf $gz"
    [ "$(stat -c %s x/disk.raw)" -eq "$real" ] || die "extracted size"
    qemu-img compare -q -f raw -F raw "$src" x/disk.raw ||
        die "$src and the extracted disk.raw differ"
    # sparse: allocated well under the size
    [ $(($(stat -c '%b * %B' x/disk.raw))) -lt $((real / 4)) ] ||
        die "extracted disk.raw is not sparse"
}

python3 "$mk" debian g.raw >/dev/null || die "mk-guest debian"
add_data g.raw $((96 << 20))

# raw source (durable default)
"$VMFERRY" package --target gce g.raw out1 > pkg.log 2>&1 || { cat pkg.log; die "package g.raw"; }
members=$(check_pkg g.raw out1 g $GIB | tail -1)
[ "$members" -gt 1 ] || die "one gzip member for 96 MiB"
cmp -n $((96 << 20)) g.raw x/disk.raw || die "cmp of the first 96 MiB"
# the written zeros and the hole after them are a hole in the output
python3 - x/disk.raw <<'PY' || die "written zeros stored as data"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.lseek(fd, 72 << 20, os.SEEK_DATA) >= 80 << 20
PY
[ "$(mf out1 'm["metadata"]["image-name"]')" = g ] || die "image-name"
[ "$(mf out1 'm["metadata"]["stored-bytes"] < (64 << 20)')" = True ] ||
    die "stored bytes: $(mf out1 'm["metadata"]["stored-bytes"]')"

# the archive does not depend on the workers' count: members after the
# first (which holds the header and its mtime) are byte for byte equal
"$VMFERRY" package -q --unsafe -m 1 --target gce --name one g.raw out2 || die "-m 1"
"$VMFERRY" package -q --unsafe -m 3 --target gce --name one g.raw out3 || die "-m 3"
python3 - out2/one.tar.gz out3/one.tar.gz <<'PY' || die "-m 1 and -m 3 archives differ"
import sys, zlib
def members(p):
    data, ms = open(p, "rb").read(), []
    while data:
        d = zlib.decompressobj(31)
        d.decompress(data)
        ms.append(data[:len(data) - len(d.unused_data)])
        data = d.unused_data
    return ms
a, b = members(sys.argv[1]), members(sys.argv[2])
assert len(a) == len(b) > 1 and a[1:] == b[1:]
PY

# a qcow2 source
qemu-img convert -f raw -O qcow2 g.raw g.qcow2
"$VMFERRY" package -q --target gce g.qcow2 out4 || die "package g.qcow2"
check_pkg g.raw out4 g $GIB > /dev/null

# a size that is not a multiple of 512, past 1 GiB: 2 GiB
cp --sparse=always g.raw odd.raw
add_data odd.raw $((GIB + 100))
"$VMFERRY" package -q --unsafe --target gce odd.raw out5 || die "package odd.raw"
check_pkg odd.raw out5 odd $((2 * GIB)) > /dev/null
[ "$(mf out5 'm["metadata"]["source-size"]')" -eq $((GIB + 100)) ] || die "source-size"
cmp -i $((GIB - 4096)) -n 4196 odd.raw x/disk.raw || die "odd.raw's tail"

# exactly 1 GiB, data up to its last byte (no hole at the end)
cp --sparse=always g.raw whole.raw
add_data whole.raw $GIB
"$VMFERRY" package -q --unsafe --target gce whole.raw out6 || die "package whole.raw"
check_pkg whole.raw out6 whole $GIB > /dev/null
cmp -i $((GIB - 4096)) -n 4096 whole.raw x/disk.raw || die "whole.raw's tail"

# two disks: refused, nothing left behind
expect_rc 1 "$VMFERRY" package --target gce g.raw g.qcow2 out7 2> err.log
grep -q "one disk" err.log || die "two disks: $(cat err.log)"
[ ! -e out7 ] && [ ! -e out7.vmferry-partial ] || die "two disks left a directory"
# a disk format other than raw: refused
expect_rc 1 "$VMFERRY" package --target gce -O qcow2 g.raw out8 2> err.log
grep -q "always raw" err.log || die "-O qcow2: $(cat err.log)"
[ ! -e out8 ] && [ ! -e out8.vmferry-partial ] || die "-O qcow2 left a directory"

# SOURCE_DATE_EPOCH dates the archive: two runs, the same bytes
SOURCE_DATE_EPOCH=1700000000 "$VMFERRY" package -q --unsafe --target gce g.raw out9 || die "SOURCE_DATE_EPOCH run 1"
SOURCE_DATE_EPOCH=1700000000 "$VMFERRY" package -q --unsafe -m 1 --target gce g.raw out10 || die "SOURCE_DATE_EPOCH run 2"
cmp -s out9/g.tar.gz out10/g.tar.gz || die "SOURCE_DATE_EPOCH: archives differ"
tar -tvzf out9/g.tar.gz | grep -q ' 2023-11-14 ' || die "SOURCE_DATE_EPOCH: not the member's date"
exit 0
