#!/bin/bash
# bench/gce.sh: `vmferry package --target gce` against the canonical
# `tar --format=oldgnu -Sczf OUT.tar.gz disk.raw` (GNU tar piping into
# gzip -6), the same file as disk.raw, same run (issue F6: the package is
# compressed on all cores, at least 3x faster).
#
# Input, made once in BENCH_CACHE:
#   - the Debian guest of bench/inspect.sh (debian12-inspect.qcow2 in
#     BENCH_CACHE or /var/cache/vmferry-bench) converted to raw, when it
#     is there and passes `vmferry preflight --target gce` but for its
#     size (package runs those rules);
#   - otherwise the F1 disk of bench/mkdisk.py (4 GiB raw, 1 GiB of real
#     data from /usr in 1 MiB runs, shared with convert.sh and vmdk.sh)
#     with the Debian fixture of tests/fixtures/mk-guest.py written over
#     its first 64 MiB, so that the package's preflight passes (MBR with
#     a bootable partition, virtio_scsi in the initramfs).
# BENCH_GCE_INPUT=FILE.raw uses FILE instead (linked as disk.raw).
#
# Both sides write to the page cache and neither fsyncs: vmferry with
# --unsafe, tar never does.  Tools alternate; sync (untimed) between
# runs; medians of BENCH_RUNS (default 5) after one warm-up.  The last
# vmferry archive is checked (untimed): GNU tar extracts it and qemu-img
# compare finds it equal to the input.
#
# Environment: as bench/convert.sh (VMFERRY, BENCH_CACHE, BENCH_OUT,
# BENCH_RUNS, BENCH_TIMEOUT, BENCH_QUICK=1), and BENCH_CASES:
#   unsafe   vmferry on all cores vs tar (the F6 goal)
#   single   vmferry -m 1 vs tar (what libdeflate alone gives)
# Output: a table, then one "BENCH " line per case.  Exit 1 on failure.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

cases=${BENCH_CASES:-unsafe}
for t in tar gzip fallocate; do
    command -v $t >/dev/null || die "$t not found"
done

# ---- the input ----------------------------------------------------------------

gdir=$dir/gce
gin=$gdir/disk.raw
mkdir -p "$gdir" || die "cannot create $gdir"
kind=
if [ -n "${BENCH_GCE_INPUT:-}" ]; then
    [ -f "$BENCH_GCE_INPUT" ] || die "$BENCH_GCE_INPUT not found"
    gdir=$out/gce-input
    rm -rf "$gdir" && mkdir -p "$gdir"
    ln "$BENCH_GCE_INPUT" "$gdir/disk.raw" 2>/dev/null ||
        cp --sparse=always "$BENCH_GCE_INPUT" "$gdir/disk.raw" ||
        die "cannot place $BENCH_GCE_INPUT as disk.raw"
    gin=$gdir/disk.raw kind="given: $BENCH_GCE_INPUT"
fi
if [ -z "$kind" ]; then
    for deb in "$cache/debian12-inspect.qcow2" \
               /var/cache/vmferry-bench/debian12-inspect.qcow2; do
        [ -f "$deb" ] || continue
        ddir=$cache/gce-debian dstamp="$(stat -c '%s %Y' "$deb")"
        mkdir -p "$ddir"
        if [ "$(cat "$ddir/stamp" 2>/dev/null)" != "$dstamp" ]; then
            rm -f "$ddir/disk.raw" "$ddir/stamp"
            "$QEMU_IMG" convert -O raw "$deb" "$ddir/disk.raw" &&
                echo "$dstamp" > "$ddir/stamp"
        fi
        [ -f "$ddir/stamp" ] || continue
        if "$VMFERRY" preflight --target gce "$ddir/disk.raw" 2>/dev/null |
               grep '^FAIL' | grep -qv gce-size-gb; then
            echo "bench/gce: $deb fails the gce preflight; not used" >&2
            continue
        fi
        gdir=$ddir gin=$ddir/disk.raw
        kind="bench/inspect.sh guest ($deb, $(cat "$(dirname "$deb")/debian12-inspect.kind" 2>/dev/null || echo unknown))"
        break
    done
fi
if [ -z "$kind" ]; then
    mkdisk "$sparse" "$size" "$data"
    echo "$stamp" > "$dir/stamp"
    gstamp="v1 $stamp guest=mk-guest-debian"
    if [ "$(cat "$gdir/stamp" 2>/dev/null)" != "$gstamp" ] || [ ! -e "$gin" ]; then
        echo "bench/gce: making $gin (once)" >&2
        rm -f "$gin" "$gdir/stamp" "$gdir/guest.raw"
        python3 "$src/tests/fixtures/mk-guest.py" debian "$gdir/guest.raw" \
            >/dev/null || die "mk-guest.py debian failed"
        gsize=$(stat -c %s "$gdir/guest.raw")
        cp --sparse=always "$sparse" "$gin.tmp" &&
            fallocate -p -o 0 -l "$gsize" "$gin.tmp" &&
            dd if="$gdir/guest.raw" of="$gin.tmp" bs=1M conv=notrunc,sparse \
                status=none &&
            mv "$gin.tmp" "$gin" || die "cannot make $gin"
        rm -f "$gdir/guest.raw"
        echo "$gstamp" > "$gdir/stamp"
    fi
    kind="bench/mkdisk.py disk with the mk-guest.py Debian fixture over its first 64 MiB"
fi

# ---- the runs -------------------------------------------------------------------

ov=$out/vmferry-gce otar=$out/tar-gce.tar.gz cpuf=$out/gce-cpu
rows=() machine=()

# run_side SIDE CASE: one timed run; also sets $cpu_s, the CPU seconds
# (user + system, children included: tar's gzip) it took.  On a shared
# machine, wall time near CPU time means vmferry got about one core.
run_side() {
    local rc=0
    rm -f "$cpuf"
    case $1:$2 in
    vmferry:unsafe)
        timed "$GNU_TIME" -f '%U %S' -o "$cpuf" \
            "$VMFERRY" package --target gce --unsafe -q "$gin" "$ov" || rc=$? ;;
    vmferry:single)
        timed "$GNU_TIME" -f '%U %S' -o "$cpuf" \
            "$VMFERRY" package --target gce --unsafe -q -m 1 "$gin" "$ov" ||
            rc=$? ;;
    tar:*)
        timed "$GNU_TIME" -f '%U %S' -o "$cpuf" \
            tar -C "$gdir" --format=oldgnu -Sczf "$otar" disk.raw || rc=$? ;;
    esac
    cpu_s=$(tail -n 1 "$cpuf" 2>/dev/null | awk '{ printf "%.2f", $1 + $2 }')
    return "$rc"
}

durability() { # SIDE
    case $1 in
    vmferry) echo "unsafe (--unsafe)" ;;
    tar) echo "no fsync (tar never does)" ;;
    esac
}

run_pair() { # CASE
    local c=$1 i side first second tv=() tt=() rv=() cv=() ct=() ok_v=1 ok_t=1
    for ((i = 1 - warm; i <= runs; i++)); do
        if ((i % 2)); then first=vmferry second=tar
        else first=tar second=vmferry; fi
        for side in $first $second; do
            rm -rf "$ov" "$ov.vmferry-partial" "$otar"
            sync
            if run_side "$side" "$c"; then
                if ((i >= 1)); then
                    if [ "$side" = vmferry ]; then
                        tv+=("$secs") rv+=("$rss_kib") cv+=("$cpu_s")
                    else
                        tt+=("$secs") ct+=("$cpu_s")
                    fi
                fi
            else
                if [ "$side" = vmferry ]; then ok_v=0; else ok_t=0; fi
            fi
        done
    done
    local mv mt speedup verdict=- bv=- bt=- stored=- members=- rss mcv mct
    mv=$(echo "${tv[*]:-}" | median)
    mt=$(echo "${tt[*]:-}" | median)
    mcv=$(echo "${cv[*]:-}" | median)
    mct=$(echo "${ct[*]:-}" | median)
    rss=$(echo "${rv[*]:-}" | median)
    ((ok_v)) || { mv=FAIL; failed=1; }
    ((ok_t)) || { mt=FAIL; failed=1; }
    speedup=$(ratio "$mt" "$mv")
    # sizes and content (untimed) from a last run of each
    if ((ok_v)); then
        [ -e "$ov" ] || run_side vmferry "$c"
        local gz
        gz=$(ls "$ov"/*.tar.gz 2>/dev/null | head -n 1)
        bv=$(stat -c %s "$gz")
        stored=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metadata"]; print(m["stored-bytes"], m["gzip-members"])' "$ov/manifest.json")
        members=${stored#* } stored=${stored% *}
        rm -rf "$out/x" && mkdir -p "$out/x"
        if tar -C "$out/x" -xSzf "$gz" &&
           "$QEMU_IMG" compare -q -f raw -F raw "$gin" "$out/x/disk.raw" 2>/dev/null
        then verdict=same
        else verdict=DIFFERS; failed=1; fi
        rm -rf "$out/x"
    fi
    if ((ok_t)); then
        [ -e "$otar" ] || run_side tar "$c"
        bt=$(stat -c %s "$otar")
    fi
    rm -rf "$ov" "$otar"
    rows+=("$(printf '%-8s %10s %10s %8s  %-7s %-18s %s' "$c" "$mv" "$mt" \
        "$speedup" "$verdict" "$(durability vmferry)" "$(durability tar)")")
    rows+=("  runs: vmferry ${tv[*]:-} s; tar ${tt[*]:-} s")
    rows+=("  CPU (median, user+sys): vmferry $mcv s, tar $mct s")
    rows+=("  size: vmferry $bv B, tar $bt B (ratio $(ratio "$bv" "$bt")); vmferry stored $stored B of disk.raw in $members gzip members; peak RSS $rss KiB")
    machine+=("BENCH case=gce-$c input=$(basename "$gin") vmferry_s=$mv tar_s=$mt speedup=$speedup goal=3 runs=$runs vmferry_durability=unsafe tar_durability=nofsync content=$verdict vmferry_cpu_s=$mcv tar_cpu_s=$mct vmferry_bytes=$bv tar_bytes=$bt size_ratio=$(ratio "$bv" "$bt") vmferry_rss_kib=$rss")
}

echo "bench: vmferry $("$VMFERRY" --version 2>/dev/null | head -n 1)," \
    "$(tar --version | head -n 1), $(gzip --version | head -n 1);" \
    "$(nproc) cores; $runs timed run(s), $warm warm-up"
echo "bench: input $gin: $kind; $(stat -c %s "$gin") bytes," \
    "$(du -B1 "$gin" | cut -f1) allocated"
for c in $cases; do
    echo "bench: $c ..." >&2
    case $c in
    unsafe|single) run_pair "$c" ;;
    *) die "unknown case $c" ;;
    esac
done

echo
printf '%-8s %10s %10s %8s  %-7s %-18s %s\n' case vmferry_s tar_s speedup \
    content "vmferry durability" "tar durability"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${machine[@]}"
rm -f "$log" "$rssf" "$cpuf"
exit "$failed"
