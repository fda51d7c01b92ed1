#!/bin/bash
# fuzz/mk-corpus.sh: regenerate the seed corpus in fuzz/corpus/.
#
#   fuzz/mk-corpus.sh [BUILDDIR]
#
# qcow2/: small real images made by qemu-img from a 1 MiB pattern image
#         (v2 and v3, 512-byte and 4 KiB clusters, compressed with zlib and
#         zstd, zero clusters, a backing file name, 1- and 64-bit
#         refcounts), plus every crafted image from tests/hostile/.
# probe/: a few of those and small images of other formats qemu-img
#         writes (vmdk, vpc, vdi, qcow v1), so the probe sees their magic.
# Needs qemu-img, qemu-io, python3 and gen-pattern (from BUILDDIR, or
# compiled here from tests/gen-pattern.c).  The whole corpus stays well
# under 1 MiB.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$src/build}
out=$src/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gp=$builddir/gen-pattern
if [ ! -x "$gp" ]; then
    gp=$tmp/gen-pattern
    cc -O2 -o "$gp" "$src/tests/gen-pattern.c"
fi

rm -rf "$out/qcow2" "$out/probe"
mkdir -p "$out/qcow2" "$out/probe"

# 1 MiB virtual; about 9 KiB of data in odd places, zeros, holes.
"$gp" 1m "$tmp/pat.raw" 'h4k,d4k,z4k,h52k,d1k,h3k,d512,z3584,h200k,d2k,h700k,d1k'

q=$out/qcow2
mk() { # NAME OPTIONS...
    local name=$1
    shift
    qemu-img convert -q -f raw -O qcow2 "$@" "$tmp/pat.raw" "$q/$name.qcow2"
}
mk v3-4k -o cluster_size=4096
mk v3-512 -o cluster_size=512
mk v2-512 -o compat=0.10,cluster_size=512
mk v3-4k-zlib -c -o cluster_size=4096
mk v3-512-zstd -c -o cluster_size=512,compression_type=zstd
mk v3-4k-refbits1 -o cluster_size=4096,refcount_bits=1
mk v3-4k-refbits64 -o cluster_size=4096,refcount_bits=64
mk v3-4k-lazy -o cluster_size=4096,lazy_refcounts=on

# Zero clusters and a discarded range written through qemu's own driver.
qemu-img create -q -f qcow2 -o cluster_size=4096 "$q/v3-4k-zero.qcow2" 1m
qemu-io -f qcow2 -c 'write -P 0x5a 0 12k' -c 'write -z 4k 4k' \
    -c 'write -z -u 64k 64k' -c 'discard 8k 4k' \
    -c 'write -P 0xa5 1020k 4k' "$q/v3-4k-zero.qcow2" >/dev/null

# An overlay with a backing file name (the fuzzers never open backing
# files) and a little data of its own.  qemu-img wants the backing file
# to exist while it works, so it does, briefly.
cp "$tmp/pat.raw" "$q/base.raw"
qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.raw -F raw \
    "$q/v3-4k-backing.qcow2" 1m
qemu-io -f qcow2 -c 'write -P 0x11 512 3k' "$q/v3-4k-backing.qcow2" \
    >/dev/null
rm -f "$q/base.raw"

python3 "$src/tests/hostile/mk-qcow2.py" "$tmp/hostile"
for f in "$tmp"/hostile/*.qcow2; do
    cp "$f" "$q/hostile-$(basename "$f")"
done

p=$out/probe
cp "$q/v3-4k.qcow2" "$q/v2-512.qcow2" "$q/v3-512-zstd.qcow2" "$p/"
cp "$tmp/hostile/truncated-30.qcow2" "$tmp/hostile/version-1.qcow2" "$p/"
: > "$p/empty"
head -c 4096 "$tmp/pat.raw" > "$p/raw-4k"
"$gp" 64k "$tmp/small.raw" 'd4k,h8k,d2k'
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse \
    "$tmp/small.raw" "$p/sparse.vmdk"
qemu-img create -q -f vpc "$p/dynamic.vpc" 1m
qemu-img create -q -f vdi "$p/dynamic.vdi" 1m
qemu-img create -q -f qcow "$p/v1.qcow" 1m

du -sh "$out"
