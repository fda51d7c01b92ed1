#!/bin/bash
# t-qcow2-read: qemu-img writes qcow2 in every variant, vmferry reads it.
#
# Variants: compat 0.10 and 1.1; zlib and zstd compressed clusters;
# cluster sizes 512 B, 4 KiB, 64 KiB, 2 MiB; refcount_bits 1..64;
# extended L2 entries (subclusters allocated, zeroed and unallocated);
# every preallocation mode; zero clusters; internal snapshots; a dirty
# bitmap; a three-deep backing chain.  For each: `vmferry convert -O raw`
# must equal `qemu-img convert -O raw`, `vmferry map --json` must agree
# with `qemu-img map --output=json` on which bytes hold data, and
# `vmferry check` must find nothing wrong.  Finally a leaked cluster and
# a bad refcount must be found by check.
set -eu
if [ -f "$(dirname "$0")/lib.sh" ]; then
    . "$(dirname "$0")/lib.sh"
fi
: "${VMFERRY:?VMFERRY must point at the vmferry binary}"
for t in qemu-img qemu-io python3; do
    command -v $t >/dev/null || { echo "$t missing: skip"; exit 77; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/t-qcow2-read.XXXXXX")
trap 'rm -rf "$work" ${scratch:+"$scratch"}' EXIT
cd "$work"

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# 16 MiB source: offset pattern in runs, holes, written zeros
python3 - src.raw <<'EOF'
import struct, sys
size = 16 << 20
runs = [(0, 1 << 20), (3 << 20, 1 << 20), ((6 << 20) + 4096, 300000),
        (8 << 20, 3 << 20), ((12 << 20) + 512, 70000), (14 << 20, 3 << 19)]
with open(sys.argv[1], "wb") as f:
    f.truncate(size)
    for off, length in runs:
        f.seek(off)
        start = off - off % 8
        blob = b"".join(struct.pack("<Q", w)
                        for w in range(start, off + length + 8, 8))
        f.write(blob[off - start:off - start + length])
    f.seek(11 << 20)
    f.write(bytes(1 << 19))          # written zeros
EOF

# data=true byte ranges of a map, merged, one "start end" per line
norm_map() {
    python3 -c '
import json, sys
runs = []
for e in json.load(sys.stdin):
    if not e.get("data"):
        continue
    s, l = e["start"], e["length"]
    if runs and runs[-1][1] == s:
        runs[-1][1] = s + l
    else:
        runs.append([s, s + l])
for s, e in runs:
    print(s, e)
'
}

# verify NAME IMAGE: content, map and check against qemu-img
verify() {
    local name=$1 img=$2
    qemu-img convert -O raw "$img" ref.raw
    if ! "$VMFERRY" convert -O raw "$img" out.raw; then
        fail "$name: vmferry convert failed"
    elif ! cmp -s ref.raw out.raw; then
        fail "$name: content differs from qemu-img's reading"
    fi
    rm -f ref.raw out.raw
    local a b
    a=$(qemu-img map --output=json "$img" | norm_map) || a=qemu-failed
    b=$("$VMFERRY" map --json "$img" | norm_map) || b=vmferry-failed
    if [ "$a" != "$b" ]; then
        fail "$name: map data ranges differ"
        diff <(echo "$a") <(echo "$b") | head -10 >&2 || true
    fi
    local rc=0
    "$VMFERRY" check "$img" >check.out 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name: vmferry check exit $rc"
        head -5 check.out >&2
    fi
}

# plain conversions by qemu-img
for compat in 0.10 1.1; do
    qemu-img convert -f raw -O qcow2 -o compat=$compat src.raw c.qcow2
    verify "compat-$compat" c.qcow2
    qemu-img convert -c -f raw -O qcow2 -o compat=$compat src.raw c.qcow2
    verify "compat-$compat-zlib" c.qcow2
done
for cs in 512 4k 64k 2M; do
    qemu-img convert -f raw -O qcow2 -o cluster_size=$cs src.raw c.qcow2
    verify "cluster-$cs" c.qcow2
    qemu-img convert -c -f raw -O qcow2 -o cluster_size=$cs src.raw c.qcow2
    verify "zlib-$cs" c.qcow2
    qemu-img convert -c -f raw -O qcow2 \
        -o cluster_size=$cs,compression_type=zstd src.raw c.qcow2
    verify "zstd-$cs" c.qcow2
done
for rb in 1 2 4 8 16 32 64; do
    qemu-img convert -f raw -O qcow2 -o refcount_bits=$rb src.raw c.qcow2
    verify "refcount-$rb" c.qcow2
done
for pa in off metadata falloc full; do
    qemu-img create -q -f qcow2 -o preallocation=$pa p.qcow2 16M
    qemu-io -f qcow2 -c 'write -P 0x61 1M 64k' -c 'write -P 0x62 5000k 4k' \
        -c 'write -z 8M 1M' p.qcow2 >/dev/null
    verify "prealloc-$pa" p.qcow2
done

# zero clusters (v3 zero flag), over data and over nothing
qemu-img convert -f raw -O qcow2 src.raw z.qcow2
qemu-io -f qcow2 -c 'write -z 0 512k' -c 'write -z 9M 128k' \
    -c 'write -z 12M 64k' -c 'write -z 15M 1M' z.qcow2 >/dev/null
verify zero-clusters z.qcow2

# extended L2: subclusters allocated, zeroed, unallocated, over a backing
qemu-img create -q -f qcow2 -o cluster_size=64k xb.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x71 0 16M' xb.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k \
    -b xb.qcow2 -F qcow2 x.qcow2
qemu-io -f qcow2 -c 'write -P 0x72 4k 4k' -c 'write -P 0x73 66k 6k' \
    -c 'write -z 128k 8k' -c 'write -z 1M 64k' -c 'write -P 0x74 2M 1M' \
    -c 'write -P 0x75 5000k 3k' x.qcow2 >/dev/null
verify extended-l2 x.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k x2.qcow2 8M
qemu-io -f qcow2 -c 'write -P 0x76 4k 4k' -c 'write -z 256k 8k' \
    -c 'write -P 0x77 1M 300k' x2.qcow2 >/dev/null
verify extended-l2-nobacking x2.qcow2

# internal snapshot: the active layer is read; check counts both
qemu-img convert -f raw -O qcow2 src.raw s.qcow2
qemu-img snapshot -c snap1 s.qcow2
qemu-io -f qcow2 -c 'write -P 0x41 0 256k' -c 'write -z 3M 1M' \
    -c 'write -P 0x42 15M 64k' s.qcow2 >/dev/null
verify snapshot s.qcow2

# a persistent dirty bitmap: its clusters are referenced too
qemu-img convert -f raw -O qcow2 src.raw bm.qcow2
if qemu-img bitmap --add bm.qcow2 b0 2>/dev/null; then
    qemu-io -f qcow2 -c 'write -P 0x43 64k 64k' bm.qcow2 >/dev/null
    verify bitmap bm.qcow2
fi

# backing chain three deep: raw <- qcow2 <- qcow2 (compressed bits too)
qemu-img create -q -f raw base.raw 16M
qemu-io -f raw -c 'write -P 0x11 0 6M' -c 'write -P 0x12 12M 2M' \
    base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x21 1M 2M' -c 'write -z 4M 512k' \
    -c 'write -c -P 0x22 10M 64k' -c 'write -P 0x23 13M 4k' \
    mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x31 1500k 100k' -c 'write -z 12M 64k' \
    -c 'write -P 0x32 15M 1M' top.qcow2 >/dev/null
verify chain-top top.qcow2
verify chain-mid mid.qcow2
# a backing file shorter than the overlay reads as zeros past its end
qemu-img create -q -f qcow2 short.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x51 0 4M' short.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b short.qcow2 -F qcow2 long.qcow2 12M
qemu-io -f qcow2 -c 'write -P 0x52 3M 2M' long.qcow2 >/dev/null
verify short-backing long.qcow2

# an external data file: refused unless --allow-data-file, then read
qemu-img create -q -f qcow2 -o data_file=df.raw df.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x44 1M 2M' -c 'write -z 5M 1M' \
    -c 'write -P 0x45 15M 4k' df.qcow2 >/dev/null
if "$VMFERRY" convert -O raw df.qcow2 out.raw 2>err.txt; then
    fail "data-file: opened without --allow-data-file"
fi
grep -q "external data file 'df.raw' refused" err.txt ||
    fail "data-file: wrong refusal: $(cat err.txt)"
qemu-img convert -O raw df.qcow2 ref.raw
if ! "$VMFERRY" convert --allow-data-file -O raw df.qcow2 out.raw ||
   ! cmp -s ref.raw out.raw; then
    fail "data-file: content differs with --allow-data-file"
fi
rm -f ref.raw out.raw

# check must find a leak (exit 3) and a refcount too small (exit 2)
qemu-img convert -f raw -O qcow2 src.raw leak.qcow2
cp leak.qcow2 bad.qcow2
python3 - leak.qcow2 bad.qcow2 <<'EOF'
import struct, sys
def patch(path, leak):
    with open(path, "r+b") as f:
        h = f.read(104)
        cb = struct.unpack(">I", h[20:24])[0]
        cs = 1 << cb
        rt = struct.unpack(">Q", h[48:56])[0]
        f.seek(rt)
        rb = struct.unpack(">Q", f.read(8))[0]   # first refcount block
        f.seek(0, 2)
        end = f.tell()
        if leak:                       # one more cluster, counted, unused
            f.truncate(end + cs)
            idx = end // cs
            val = 1
        else:                          # the header cluster counted 0
            idx, val = 0, 0
        f.seek(rb + idx * 2)
        f.write(struct.pack(">H", val))
patch(sys.argv[1], True)
patch(sys.argv[2], False)
EOF
rc=0; "$VMFERRY" check leak.qcow2 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "leak: vmferry check exit $rc, wanted 3"
rc=0; "$VMFERRY" check bad.qcow2 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "corruption: vmferry check exit $rc, wanted 2"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "t-qcow2-read: ok"
