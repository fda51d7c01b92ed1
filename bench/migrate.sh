#!/bin/bash
# bench/migrate.sh: issue F6's numbers for vmferry migrate on the 4 GiB
# Debian 12 guest of bench/inspect.sh (built once and cached) with GRUB 2
# and open-vm-tools added (virt-v2v refuses a guest without a boot
# loader; the tools make it a VMware guest to convert), as a VMDK
# (qemu-img convert -O vmdk: monolithicSparse, what VMware hands over):
#
#   local:  vmferry migrate GUEST.vmdk --to local -o OUT     (qcow2 + XML)
#   aws:    vmferry migrate GUEST.vmdk --to aws -o OUT       (OVA)
#
# both durable (every artifact fsynced) and verified (read back), medians
# of BENCH_RUNS (5) after one warm-up; and, when virt-v2v is installed,
#   virt-v2v -i disk GUEST.vmdk -o local -os DIR -of qcow2
# (virt-v2v, nbdkit and libnbd-bin; LIBGUESTFS_BACKEND=direct, forced
# TCG: KVM does not work here; it
# does not fsync its output) BENCH_V2V_RUNS times (default 5), with the
# ratio of the medians (goal: vmferry at least 20x faster for local).
#
# Environment: VMFERRY, BENCH_CACHE, BENCH_RUNS, BENCH_V2V_RUNS.
# Output: a table and one "BENCH migrate ..." line.  Exit 1 on failure or
# a goal missed.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
VMFERRY=${VMFERRY:-build/vmferry}
case $VMFERRY in /*) ;; *) VMFERRY=$src/$VMFERRY ;; esac
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmferry-bench}
runs=${BENCH_RUNS:-5}
v2v_runs=${BENCH_V2V_RUNS:-5}
img=$cache/debian12-migrate.qcow2
vmdk=$cache/debian12-migrate.vmdk
out=$cache/migrate.out
die() { echo "bench/migrate: $*" >&2; exit 1; }
[ -x "$VMFERRY" ] || die "$VMFERRY is not built"
. "$src/bench/lib-guest.sh"
mirror=${BENCH_MIRROR:-http://deb.debian.org/debian}
if [ ! -f "$img" ]; then
    if [ ! -d "$cache/rootfs" ]; then
        BENCH_RUNS=1 BENCH_CACHE=$cache VMFERRY=$VMFERRY bash "$src/bench/inspect.sh" \
            > /dev/null || true
    fi
    [ -d "$cache/rootfs" ] || die "no debootstrap tree in $cache/rootfs (bench/inspect.sh builds it; root and the mirror are needed)"
    r=$cache/rootfs-grub
    if [ ! -d "$r" ]; then
        echo "bench/migrate: adding grub-pc and open-vm-tools to the guest (once)"
        rm -rf "$r.tmp" && cp -a "$cache/rootfs" "$r.tmp" || die "copy of the rootfs failed"
        cp /etc/resolv.conf "$r.tmp/etc/resolv.conf" 2>/dev/null
        echo "deb $mirror bookworm main" > "$r.tmp/etc/apt/sources.list"
        chroot "$r.tmp" env DEBIAN_FRONTEND=noninteractive sh -c \
            'apt-get update && apt-get install -y --no-install-recommends grub-pc open-vm-tools' \
            > "$cache/grub.log" 2>&1 || die "apt-get in the guest failed (see $cache/grub.log)"
        k=$(cd "$r.tmp/boot" && ls vmlinuz-* | sort -V | tail -n 1)
        mkdir -p "$r.tmp/boot/grub"
        cat > "$r.tmp/boot/grub/grub.cfg" <<CFG
set default=0
set timeout=1
menuentry 'Debian GNU/Linux' {
    insmod ext2
    search --no-floppy --fs-uuid --set=root 22222222-3333-4444-8555-666666666601
    linux /$k root=UUID=22222222-3333-4444-8555-666666666602 ro console=ttyS0
    initrd /initrd.img-${k#vmlinuz-}
}
CFG
        mv "$r.tmp" "$r"
    fi
    build_image "$r" debootstrap+grub "$img" || die "image build failed"
fi
if [ ! -f "$vmdk" ] || [ "$vmdk" -ot "$img" ]; then
    qemu-img convert -O vmdk "$img" "$vmdk.tmp" && mv "$vmdk.tmp" "$vmdk" ||
        die "qemu-img convert to VMDK failed"
fi
mkdir -p "$out"

timed() { # sets secs
    local t0 t1
    t0=$(date +%s%N)
    "$@" > "$out/log" 2>&1 || { tail -n 5 "$out/log" >&2; die "failed: $*"; }
    t1=$(date +%s%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

tl=() ta=()
for ((i = 0; i <= runs; i++)); do
    rm -rf "$out/local" "$out/aws"
    sync
    timed "$VMFERRY" migrate -q "$vmdk" --to local -o "$out/local"
    ((i)) && tl+=("$secs")
    sync
    timed "$VMFERRY" migrate -q "$vmdk" --to aws -o "$out/aws"
    ((i)) && ta+=("$secs")
done
ml=$(echo "${tl[*]}" | median) ma=$(echo "${ta[*]}" | median)
# what one run spends per stage (the last local run, --json)
rm -rf "$out/local"
"$VMFERRY" migrate --json "$vmdk" --to local -o "$out/local" > "$out/local.json" ||
    die "migrate --json failed"
stages=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("%s=%.2f" % (s["stage"], s["seconds"]) for s in r["stages"]))' "$out/local.json")
lsize=$(du -k "$out/local"/*.qcow2 | awk '{ print $1 * 1024 }')
asize=$(stat -c %s "$out/aws"/*.ova)

echo
printf '%-36s %s\n' "guest" "$vmdk ($(qemu-img info "$vmdk" | sed -n 's/^virtual size: //p'))"
printf '%-36s %s\n' "migrate --to local (median, durable)" "${ml}s (${tl[*]})"
printf '%-36s %s\n' "  stages of one run" "$stages"
printf '%-36s %s\n' "migrate --to aws (median, durable)" "${ma}s (${ta[*]}), OVA $((asize >> 20)) MiB"

v2v=none ratio=none status=0
if command -v virt-v2v >/dev/null; then
    tv=()
    for ((i = 0; i < v2v_runs; i++)); do
        rm -rf "$out/v2v" && mkdir -p "$out/v2v"
        sync
        timed env LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
            virt-v2v -i disk "$vmdk" -o local -os "$out/v2v" -of qcow2
        tv+=("$secs")
    done
    v2v=$(echo "${tv[*]}" | median)
    ratio=$(awk -v a="$v2v" -v b="$ml" 'BEGIN { printf "%.1f", a / b }')
    printf '%-36s %s\n' "virt-v2v -o local -of qcow2 (TCG)" "${v2v}s (${tv[*]}), not fsynced"
    printf '%-36s %s\n' "ratio virt-v2v / vmferry (local)" "${ratio}x (goal >= 20x)"
    awk -v r="$ratio" 'BEGIN { exit !(r >= 20) }' || { echo "GOAL MISSED: ${ratio}x < 20x"; status=1; }
    rm -rf "$out/v2v"
else
    echo "virt-v2v is not installed (apt-get install -y virt-v2v nbdkit libnbd-bin): no ratio"
fi
echo
echo "BENCH migrate local_s=$ml aws_s=$ma virt_v2v_s=$v2v ratio=$ratio runs=$runs v2v_runs=$v2v_runs vmferry=durable+verified virt_v2v=not-fsynced"
exit $status
