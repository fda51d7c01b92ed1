#!/bin/bash
# t-tar: vmferry's tar headers read by GNU tar (the oracle): ustar members,
# a pax path for a long name, an oldgnu sparse member of 20 GiB with
# header-extension blocks, headers padded into reserved space (also read
# by Python's tarfile); and tar_parse reading GNU tar's own archives.
. "$(dirname "$0")/lib.sh"
require tar python3
MK="$BUILDDIR/tar-mk"

"$MK" ustar "$scratch/u.tar"
tar -tf "$scratch/u.tar" > "$scratch/list"
[ "$(head -1 "$scratch/list")" = hello.ovf ] || die "first member is not hello.ovf"
[ "$(sed -n 2p "$scratch/list" | wc -c)" -eq 151 ] || die "long name not kept: $(sed -n 2p "$scratch/list")"
mkdir "$scratch/x"
tar -C "$scratch/x" -xf "$scratch/u.tar"
[ "$(cat "$scratch/x/hello.ovf")" = "<hello/>" ] || die "hello.ovf content"
[ -f "$scratch/x/empty" ] && [ ! -s "$scratch/x/empty" ] || die "empty member"
grep -q 'long name content' "$scratch"/x/n*/dir/n* || die "long-name content"
tar --format=ustar -tvf "$scratch/u.tar" >/dev/null 2>&1 || true

for n in 0 3 4 5 30; do
    "$MK" sparse "$scratch/s$n.tar" "$n"
    tar -tvf "$scratch/s$n.tar" > "$scratch/sl" || die "tar cannot list sparse n=$n"
    grep -q 'disk.raw' "$scratch/sl" || die "no disk.raw (n=$n)"
    grep -q "^-.* 21474836992 .*disk.raw" "$scratch/sl" || die "size not 20 GiB + 512 (n=$n): $(cat "$scratch/sl")"
    rm -rf "$scratch/x" && mkdir "$scratch/x"
    tar -C "$scratch/x" -xSf "$scratch/s$n.tar" || die "tar cannot extract n=$n"
    python3 - "$scratch/x/disk.raw" "$n" <<'PY' || die "sparse content wrong (n=$n)"
import os, sys
p, n = sys.argv[1], int(sys.argv[2])
assert os.path.getsize(p) == (20 << 30) + 512
with open(p, "rb") as f:
    for i in range(n):
        f.seek(i * (300 << 20))
        assert f.read(4096) == bytes([ord('a') + i % 26]) * 4096, i
        assert f.read(4096) == bytes(4096), "after run %d" % i
    f.seek((20 << 30) - 4096)
    assert f.read() == bytes(4096 + 512)
PY
    rm -f "$scratch/x/disk.raw"
done

# a member of 9 GiB: pax size record (ustar's octal field stops at 8 GiB)
"$MK" big "$scratch/big.tar"
tar -tvf "$scratch/big.tar" | grep -q ' 9663676416 .*big.vmdk' || die "9 GiB member: $(tar -tvf "$scratch/big.tar" 2>&1)"
{ "$MK" parse "$scratch/big.tar" 2>/dev/null || true; } | head -1 | grep -qx "0 9663676416 big.vmdk" || die "tar_parse of the pax size"
rm -f "$scratch/big.tar"

# headers filled into reserved space: padded with a pax comment record
"$MK" sized "$scratch/z.tar" || die "tar-mk sized"
tar -tvf "$scratch/z.tar" > "$scratch/zl" || die "GNU tar cannot list padded headers"
[ "$(wc -l < "$scratch/zl")" -eq 3 ] || die "padded headers: $(cat "$scratch/zl")"
grep -q ' 10 .* small.vmdk$' "$scratch/zl" || die "small.vmdk: $(cat "$scratch/zl")"
grep -q " 5 .* $(printf 'm%.0s' {1..150})\$" "$scratch/zl" || die "long name: $(cat "$scratch/zl")"
grep -q ' 5 .* exact.ovf$' "$scratch/zl" || die "exact.ovf: $(cat "$scratch/zl")"
rm -rf "$scratch/x" && mkdir "$scratch/x"
tar -C "$scratch/x" -xf "$scratch/z.tar" || die "GNU tar cannot extract padded headers"
[ "$(cat "$scratch/x/small.vmdk")" = 0123456789 ] || die "small.vmdk content"
[ "$(cat "$scratch/x/exact.ovf")" = "<x/>" ] || die "exact.ovf content"
[ "$(ls "$scratch/x" | wc -l)" -eq 3 ] || die "extra files: $(ls "$scratch/x")"
python3 - "$scratch/z.tar" <<'PY' || die "python tarfile reads the padded headers differently"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    got = [(m.name, m.size) for m in t.getmembers()]
    assert got == [("small.vmdk", 10), ("m" * 150, 5), ("exact.ovf", 5)], got
    assert t.extractfile("small.vmdk").read() == b"0123456789"
PY
"$MK" parse "$scratch/z.tar" > "$scratch/zp" || die "tar_parse of padded headers"
[ "$(cut -d' ' -f1,2 "$scratch/zp" | tr '\n' ' ')" = "0 10 0 5 0 5 " ] || die "tar_parse: $(cat "$scratch/zp")"

# tar_parse on archives GNU tar wrote: ustar, pax (long name), gnu (long name)
mkdir -p "$scratch/in/$(printf 'd%.0s' {1..120})"
echo one > "$scratch/in/a.ovf"
echo two > "$scratch/in/$(printf 'd%.0s' {1..120})/b.vmdk"
for fmt in ustar pax gnu; do
    if [ $fmt = ustar ]; then
        tar -C "$scratch/in" --format=$fmt -cf "$scratch/g.tar" a.ovf
        want="0 4 a.ovf"
    else
        tar -C "$scratch/in" --format=$fmt -cf "$scratch/g.tar" a.ovf "$(printf 'd%.0s' {1..120})/b.vmdk"
        want="0 4 a.ovf
0 4 $(printf 'd%.0s' {1..120})/b.vmdk"
    fi
    got=$("$MK" parse "$scratch/g.tar" | grep -v '^5 ')
    [ "$got" = "$want" ] || die "tar_parse of GNU tar --format=$fmt: got '$got'"
done
# tar_parse on our own archive
"$MK" parse "$scratch/u.tar" | head -1 | grep -qx '0 9 hello.ovf' || die "tar_parse of our ustar"
# a corrupted checksum is caught
cp "$scratch/u.tar" "$scratch/bad.tar"
printf 'X' | dd of="$scratch/bad.tar" bs=1 seek=10 conv=notrunc 2>/dev/null
"$MK" parse "$scratch/bad.tar" 2> "$scratch/err" && die "bad checksum accepted"
grep -q checksum "$scratch/err" || die "bad checksum message: $(cat "$scratch/err")"
echo "t-tar: ok"
