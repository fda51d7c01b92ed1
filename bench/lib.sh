# bench/lib.sh: what the convert benchmarks share: tools, the cached
# input disks (bench/mkdisk.py, made once outside the tree), timing with
# peak RSS, medians and ratios.  Sourced by bench/convert.sh and
# bench/vmdk.sh after `set -uo pipefail`; they make their disks with
# mkdisk, then write the stamp (echo "$stamp" > "$dir/stamp").

src=$(cd "$(dirname "$0")/.." && pwd)
VMFERRY=${VMFERRY:-build/vmferry}
case $VMFERRY in
/*) ;;
*) [ -x "$VMFERRY" ] && VMFERRY=$(pwd)/$VMFERRY || VMFERRY=$src/$VMFERRY ;;
esac
QEMU_IMG=${QEMU_IMG:-qemu-img}
GNU_TIME=/usr/bin/time
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmferry-bench}
tmo=${BENCH_TIMEOUT:-900}

MIB=$((1 << 20))
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    size=$((256 * MIB)) data=$((64 * MIB)) big=$((16 << 30))
    runs=1 warm=0 tag=quick
else
    size=$((4 << 30)) data=$((1 << 30)) big=$((64 << 30))
    runs=${BENCH_RUNS:-5} warm=1 tag=full
fi


die() { echo "bench: $*" >&2; exit 1; }
[ -x "$VMFERRY" ] || die "$VMFERRY is not built (make build)"
command -v "$QEMU_IMG" >/dev/null || die "$QEMU_IMG not found"
[ -x "$GNU_TIME" ] || die "$GNU_TIME (GNU time) not found: scripts/install-deps"
command -v python3 >/dev/null || die "python3 not found"

# ---- inputs, made once ------------------------------------------------------

dir=$cache/$tag
out=${BENCH_OUT:-$cache/out}
mkdir -p "$dir" "$out" || die "cannot create $dir"
sparse=$dir/sparse.raw alloc=$dir/alloc.raw sparse_big=$dir/sparse-big.raw
stamp="v1 size=$size data=$data big=$big"
if [ "$(cat "$dir/stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$sparse" "$alloc" "$sparse_big" "$dir/stamp"
fi
mkdisk() {
    [ -e "$1" ] && return 0
    echo "bench: making $1 (once)" >&2
    timeout "$tmo" python3 "$src/bench/mkdisk.py" "$@" ||
        die "could not make $1"
}


# ---- measuring ----------------------------------------------------------------

log=$out/log rssf=$out/rss
failed=0

# timed CMD...: run once; sets $secs and $rss_kib; returns CMD's status.
timed() {
    local t0 t1 rc=0
    rm -f "$rssf"
    t0=$(date +%s%N)
    timeout "$tmo" "$GNU_TIME" -f %M -o "$rssf" "$@" >"$log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    rss_kib=$(tail -n 1 "$rssf" 2>/dev/null | tr -dc 0-9)
    if [ "$rc" -ne 0 ]; then
        echo "bench: exit $rc: $*" >&2
        tail -n 5 "$log" >&2
    fi
    return "$rc"
}

median() {
    tr ' ' '\n' | grep . | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-";
              else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || b + 0 == 0) print "-";
        else printf "%.2f\n", a / b }'
}
