#!/bin/bash
# bench/convert.sh: vmferry convert against qemu-img convert, same input,
# same run, on a 4 GiB raw disk holding 1 GiB of real data (1 MiB runs cut
# from /usr/lib and /usr/bin files, spread over the disk).
#
# Builds nothing.  Environment:
#   VMFERRY        the binary (default build/vmferry, from the repo root)
#   QEMU_IMG       default qemu-img
#   BENCH_CACHE    where the input disks are made once (default
#                  ${XDG_CACHE_HOME:-$HOME/.cache}/vmferry-bench)
#   BENCH_OUT      scratch for the outputs (default BENCH_CACHE/out)
#   BENCH_RUNS     timed runs per tool and case (default 5, 1 warm-up)
#   BENCH_TIMEOUT  seconds any one command may take (default 900)
#   BENCH_QUICK=1  a 256 MiB disk (64 MiB data), one run, no warm-up: to
#                  check the script works
#   BENCH_CASES    space-separated subset of the case names below
#
# Cases (inputs: "sparse" = the rest is holes, "alloc" = written zeros):
#   sparse-durable  sparse raw -> qcow2; vmferry default (fsync, rename,
#                   fsync dir) vs qemu-img -t writeback + sync OUT DIR
#   sparse-unsafe   sparse raw -> qcow2; vmferry --unsafe vs qemu-img's
#                   default cache=unsafe
#   alloc-unsafe    alloc raw -> qcow2, both unsafe
#   alloc-durable   alloc raw -> qcow2, both durable
#   zlib            sparse raw -> qcow2 -c (zlib), both unsafe; also the
#                   output sizes and their ratio
#   rss-4g, rss-64g peak RSS (GNU time %M) of one convert of the 4 GiB
#                   disk and of a 64 GiB sparse disk with the same 1 GiB
# qemu-img always runs with -m 16 -W.  Tools alternate; sync (untimed)
# between runs; medians reported; the last vmferry output of every case is
# compared with the source by qemu-img compare (untimed).
#
# Output: a table, then one line per case starting "BENCH " with
# key=value fields for machines.  Exit 1 if a command failed.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

cases=${BENCH_CASES:-sparse-durable sparse-unsafe alloc-unsafe alloc-durable zlib rss-4g rss-64g}

mkdisk "$sparse" "$size" "$data"
mkdisk "$alloc" "$size" "$data" --alloc
case " $cases " in
*" rss-64g "*) mkdisk "$sparse_big" "$big" "$data" --from "$sparse" ;;
esac
echo "$stamp" > "$dir/stamp"

rows=() machine=()

# run_side SIDE CASE OUT SRC: one timed convert by one tool.
run_side() {
    case $1:$2 in
    vmferry:*-durable)
        timed "$VMFERRY" convert -f raw -O qcow2 "$4" "$3" ;;
    vmferry:*-unsafe)
        timed "$VMFERRY" convert --unsafe -f raw -O qcow2 "$4" "$3" ;;
    vmferry:zlib)
        timed "$VMFERRY" convert --unsafe -c -o compression_type=zlib \
            -f raw -O qcow2 "$4" "$3" ;;
    qemu-img:*-durable)
        # fsync of the file and of its directory inside the timed span
        timed sh -c '"$0" convert -t writeback -m 16 -W -f raw -O qcow2 \
            "$1" "$2" && sync "$2" "$3"' "$QEMU_IMG" "$4" "$3" "$out" ;;
    qemu-img:*-unsafe)
        timed "$QEMU_IMG" convert -m 16 -W -f raw -O qcow2 "$4" "$3" ;;
    qemu-img:zlib)
        timed "$QEMU_IMG" convert -c -o compression_type=zlib -m 16 -W \
            -f raw -O qcow2 "$4" "$3" ;;
    esac
}

durability() { # CASE SIDE
    case $1:$2 in
    *-durable:vmferry) echo "fsync+rename+dirsync" ;;
    *-durable:qemu-img) echo "writeback+sync" ;;
    *:vmferry) echo "unsafe (--unsafe)" ;;
    *:qemu-img) echo "unsafe (default)" ;;
    esac
}

# run_pair CASE SRC: warm-up + $runs timed runs per tool, alternating.
run_pair() {
    local c=$1 in=$2 i side first second
    local ov=$out/vmferry.qcow2 oq=$out/qemu.qcow2
    local tv=() tq=() ok_v=1 ok_q=1
    for ((i = 1 - warm; i <= runs; i++)); do
        if ((i % 2)); then first=vmferry second=qemu-img
        else first=qemu-img second=vmferry; fi
        for side in $first $second; do
            if [ "$side" = vmferry ]; then rm -f "$ov"; else rm -f "$oq"; fi
            sync
            if [ "$side" = vmferry ]; then
                if run_side vmferry "$c" "$ov" "$in"; then
                    ((i >= 1)) && tv+=("$secs")
                else
                    ok_v=0
                fi
            else
                if run_side qemu-img "$c" "$oq" "$in"; then
                    ((i >= 1)) && tq+=("$secs")
                else
                    ok_q=0
                fi
            fi
        done
    done
    local mv mq
    mv=$(echo "${tv[*]:-}" | median)
    mq=$(echo "${tq[*]:-}" | median)
    ((ok_v)) || { mv="FAIL"; failed=1; }
    ((ok_q)) || { mq="FAIL"; failed=1; }

    # Redo the last vmferry output if needed and check its content.
    local verdict=-
    if ((ok_v)); then
        [ -e "$ov" ] || run_side vmferry "$c" "$ov" "$in"
        if "$QEMU_IMG" compare -q -f raw -F qcow2 "$in" "$ov" 2>/dev/null
        then verdict=same
        else verdict=DIFFERS; failed=1; fi
    fi
    local extra="" sizes=""
    if [ "$c" = zlib ] && ((ok_v && ok_q)); then
        [ -e "$oq" ] || run_side qemu-img "$c" "$oq" "$in"
        local bv bq
        bv=$(stat -c %s "$ov") bq=$(stat -c %s "$oq")
        sizes="vmferry_bytes=$bv qemu_bytes=$bq size_ratio=$(ratio "$bv" "$bq")"
        extra="  size: vmferry $((bv / MIB)) MiB, qemu-img $((bq / MIB)) MiB, ratio $(ratio "$bv" "$bq")"
    fi
    rm -f "$ov" "$oq"
    rows+=("$(printf '%-16s %10s %10s %7s  %-7s %-22s %s' "$c" "$mv" "$mq" \
        "$(ratio "$mv" "$mq")" "$verdict" "$(durability "$c" vmferry)" \
        "$(durability "$c" qemu-img)")")
    [ -n "$extra" ] && rows+=("$extra")
    machine+=("BENCH case=$c input=$(basename "$in") vmferry_s=$mv qemu_s=$mq ratio=$(ratio "$mv" "$mq") runs=$runs vmferry_durability=$(durability "$c" vmferry | cut -d' ' -f1) qemu_durability=$(durability "$c" qemu-img | cut -d' ' -f1) content=$verdict${sizes:+ $sizes}")
}

# run_rss CASE SRC: one unsafe convert per tool, peak RSS.
run_rss() {
    local c=$1 in=$2 rv=FAIL rq=FAIL tv=- tq=-
    local ov=$out/vmferry.qcow2 oq=$out/qemu.qcow2
    rm -f "$ov" "$oq"; sync
    if timed "$VMFERRY" convert --unsafe -f raw -O qcow2 "$in" "$ov"; then
        rv=$rss_kib tv=$secs
    else failed=1; fi
    rm -f "$ov"; sync
    if timed "$QEMU_IMG" convert -m 16 -W -f raw -O qcow2 "$in" "$oq"; then
        rq=$rss_kib tq=$secs
    else failed=1; fi
    rm -f "$oq"
    rows+=("$(printf '%-16s %10s %10s %7s  peak RSS KiB: vmferry %s, qemu-img %s (virtual %d MiB)' \
        "$c" "$tv" "$tq" "$(ratio "$tv" "$tq")" "$rv" "$rq" \
        $(($(stat -c %s "$in") >> 20)))")
    machine+=("BENCH case=$c input=$(basename "$in") vmferry_rss_kib=$rv qemu_rss_kib=$rq vmferry_s=$tv qemu_s=$tq")
}

echo "bench: vmferry $("$VMFERRY" --version 2>/dev/null | head -n 1)," \
    "$("$QEMU_IMG" --version | head -n 1); $(nproc) cores;" \
    "inputs in $dir; $runs timed run(s), $warm warm-up"
for c in $cases; do
    echo "bench: $c ..." >&2
    case $c in
    sparse-durable|sparse-unsafe|zlib) run_pair "$c" "$sparse" ;;
    alloc-durable|alloc-unsafe) run_pair "$c" "$alloc" ;;
    rss-4g) run_rss "$c" "$sparse" ;;
    rss-64g) run_rss "$c" "$sparse_big" ;;
    *) die "unknown case $c" ;;
    esac
done

echo
printf '%-16s %10s %10s %7s  %-7s %-22s %s\n' case vmferry_s qemu_s ratio \
    content "vmferry durability" "qemu-img durability"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${machine[@]}"
rm -f "$log" "$rssf"
exit "$failed"
