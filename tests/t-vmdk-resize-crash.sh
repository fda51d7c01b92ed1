#!/bin/bash
# t-vmdk-resize-crash: growing a monolithicSparse image (made by qemu-img)
# so far that its grain directories must grow past their room moves grain
# tables, a grain and a directory; cut short at the Nth I/O
# (VMFERRY_TEST_CRASH_IO=N: that I/O and every later one fail, as if the
# machine stopped there) it must leave an image that qemu-img checks
# clean and that reads as the old disk at the old size or as the new disk
# at the new size.  N takes every value through the relocation and the
# last ones before the header says the new size.
. "$(dirname "$0")/lib.sh"

require qemu-img python3 cmp "$VMFERRY"

cd "$scratch"
gen_pattern --seed 71 8m src.raw d4k,h60k,d100k,z64k,h1m,d3m,z1m,d512 ||
    die "gen-pattern failed"
qemu-img convert -f raw -O vmdk src.raw base.vmdk
old=8388608

try() { # NEW N: resize a fresh copy to NEW bytes, crashing at the Nth
        # I/O; sets rc
    cp --sparse=always base.vmdk c.vmdk
    rc=0
    VMFERRY_TEST_CRASH_IO=$2 "$VMFERRY" resize c.vmdk "$1" \
        > /dev/null 2> err.txt || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] || die "crash at $2: exit $rc"
}

judge() { # NEW N
    qemu-img check -q c.vmdk || die "$1, crash at $2: qemu-img check"
    qemu-img info --output=json c.vmdk > info.json
    grep -E > /dev/null "\"virtual-size\": ($old|$1)," info.json ||
        die "$1, crash at $2: size neither old nor new: $(grep virtual-size info.json)"
    # at either size: the old content, then zeros
    qemu-img compare -q -f raw src.raw c.vmdk ||
        die "$1, crash at $2: the disk reads differently"
}

# 10 GiB: 320 directory entries (3 sectors) where there is room for 128,
# so the new second directory lands on the old one: every I/O up to the
# new grain tables, then the last ones (the number of I/Os a whole resize
# does is the first N that succeeds)
new=10737418240
lo=1 hi=1
while try $new $hi; [ "$rc" -ne 0 ]; do
    lo=$hi
    hi=$((hi * 2))
    [ "$hi" -lt 1000000 ] || die "resize never succeeds"
done
while [ $((hi - lo)) -gt 1 ]; do
    mid=$(((lo + hi) / 2))
    try $new $mid
    if [ "$rc" -eq 0 ]; then hi=$mid; else lo=$mid; fi
done
total=$lo
n=1 judged=0
while [ $n -le $((total + 1)) ]; do
    try $new $n
    [ $n -le $total ] && [ "$rc" -eq 0 ] && die "crash at $n: exit 0"
    judge $new $n
    judged=$((judged + 1))
    if [ $n -ge 36 ] && [ $n -lt $((total - 8)) ]; then
        n=$((total - 8))
    else
        n=$((n + 1))
    fi
done
echo "10 GiB: $judged of $total crash points judged"

# 220 GiB: directories of 55 sectors reach the first grain, which moves
# too: every I/O of the relocation
new=236223201280
for n in $(seq 1 50); do
    try $new $n
    [ "$rc" -eq 1 ] || die "220 GiB, crash at $n: exit $rc"
    judge $new $n
done
echo "220 GiB: 50 crash points judged"
