#!/bin/bash
# bench/vmdk.sh: VMDK writing and reading, vmferry against qemu-img, same
# input, same run: the F1 benchmark disk (4 GiB raw holding 1 GiB of real
# data, made by bench/mkdisk.py once and cached outside the tree, shared
# with bench/convert.sh).
#
# Environment: as bench/convert.sh (VMFERRY, QEMU_IMG, BENCH_CACHE,
# BENCH_OUT, BENCH_RUNS (default 5, after 1 warm-up), BENCH_TIMEOUT,
# BENCH_QUICK=1, BENCH_CASES).
#
# Cases:
#   sparse-unsafe   raw -> monolithicSparse; vmferry --unsafe vs qemu-img's
#                   default cache=unsafe (neither fsyncs)
#   sparse-durable  raw -> monolithicSparse; vmferry default (fsync, rename,
#                   fsync dir) vs qemu-img -t writeback + sync OUT DIR
#   stream          raw -> streamOptimized, both unsafe; also output sizes
#   read-sparse     monolithicSparse (written by qemu-img) -> raw, unsafe;
#   read-stream     streamOptimized (qemu-img's) -> raw, unsafe (its
#                   qcow2 peer is compressed too: qemu-img convert -c);
#   read-flat       monolithicFlat (qemu-img's) -> raw, unsafe: each also
#                   times vmferry reading the same content as qcow2 when
#                   vmferry has a qcow2 driver ("as fast as qcow2")
# qemu-img always runs with -m 16 -W.  Tools alternate; sync (untimed)
# between runs; medians reported; every vmferry output is compared with
# the source by qemu-img compare (untimed).
#
# Output: a table, then one "BENCH " line per case.  Exit 1 on failure.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

cases=${BENCH_CASES:-sparse-unsafe sparse-durable stream read-sparse read-stream read-flat}

mkdisk "$sparse" "$size" "$data"
echo "$stamp" > "$dir/stamp"

rows=() machine=()

# run_side TOOL CASE OUT IN: one timed run.
run_side() {
    case $1:$2 in
    vmferry:sparse-unsafe)
        timed "$VMFERRY" convert --unsafe -f raw -O vmdk "$4" "$3" ;;
    vmferry:sparse-durable)
        timed "$VMFERRY" convert -f raw -O vmdk "$4" "$3" ;;
    vmferry:stream)
        timed "$VMFERRY" convert --unsafe -f raw -O vmdk \
            -o subformat=streamOptimized "$4" "$3" ;;
    vmferry:read-*)
        timed "$VMFERRY" convert --unsafe -O raw "$4" "$3" ;;
    qemu-img:sparse-unsafe)
        timed "$QEMU_IMG" convert -m 16 -W -f raw -O vmdk "$4" "$3" ;;
    qemu-img:sparse-durable)
        timed sh -c '"$0" convert -t writeback -m 16 -W -f raw -O vmdk \
            "$1" "$2" && sync "$2" "$3"' "$QEMU_IMG" "$4" "$3" "$out" ;;
    qemu-img:stream)
        timed "$QEMU_IMG" convert -m 16 -W -f raw -O vmdk \
            -o subformat=streamOptimized "$4" "$3" ;;
    qemu-img:read-*)
        timed "$QEMU_IMG" convert -m 16 -W -O raw "$4" "$3" ;;
    vmferry-qcow2:*)
        timed "$VMFERRY" convert --unsafe -O raw "$4" "$3" ;;
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

rmout() { rm -f "$1" "${1%.vmdk}"-*.vmdk; }

# run_pair CASE IN [QCOW2_IN]: warm-up + $runs timed runs per tool.
run_pair() {
    local c=$1 in=$2 q2=${3:-} i side
    local ext=vmdk
    case $c in read-*) ext=raw ;; esac
    local ov=$out/vmferry.$ext oq=$out/qemu.$ext o2=$out/vmferry-q2.raw
    local tv=() tq=() t2=() ok_v=1 ok_q=1 ok_2=1 sides
    for ((i = 1 - warm; i <= runs; i++)); do
        if ((i % 2)); then sides="vmferry qemu-img"; else sides="qemu-img vmferry"; fi
        [ -n "$q2" ] && sides="$sides vmferry-qcow2"
        for side in $sides; do
            rmout "$ov"; rmout "$oq"; rm -f "$o2"
            sync
            case $side in
            vmferry)
                if run_side vmferry "$c" "$ov" "$in"; then
                    ((i >= 1)) && tv+=("$secs")
                else ok_v=0; fi ;;
            qemu-img)
                if run_side qemu-img "$c" "$oq" "$in"; then
                    ((i >= 1)) && tq+=("$secs")
                else ok_q=0; fi ;;
            vmferry-qcow2)
                if run_side vmferry-qcow2 "$c" "$o2" "$q2"; then
                    ((i >= 1)) && t2+=("$secs")
                else ok_2=0; fi ;;
            esac
        done
    done
    local mv mq m2=-
    mv=$(echo "${tv[*]:-}" | median)
    mq=$(echo "${tq[*]:-}" | median)
    [ -n "$q2" ] && m2=$(echo "${t2[*]:-}" | median)
    ((ok_v)) || { mv="FAIL"; failed=1; }
    ((ok_q)) || { mq="FAIL"; failed=1; }
    ((ok_2)) || m2="FAIL"

    local verdict=- sizes="" extra=""
    if ((ok_v)); then
        [ -e "$ov" ] || run_side vmferry "$c" "$ov" "$in"
        if "$QEMU_IMG" compare -q "$sparse" "$ov" 2>/dev/null
        then verdict=same
        else verdict=DIFFERS; failed=1; fi
    fi
    if [ "$c" = stream ] && ((ok_v && ok_q)); then
        [ -e "$oq" ] || run_side qemu-img "$c" "$oq" "$in"
        local bv bq
        bv=$(stat -c %s "$ov") bq=$(stat -c %s "$oq")
        sizes="vmferry_bytes=$bv qemu_bytes=$bq size_ratio=$(ratio "$bv" "$bq")"
        extra="  size: vmferry $bv B, qemu-img $bq B, ratio $(ratio "$bv" "$bq")"
    fi
    [ -n "$q2" ] && extra="$extra  vmferry reading qcow2: $m2 s (vmdk/qcow2 $(ratio "$mv" "$m2"))"
    rmout "$ov"; rmout "$oq"; rm -f "$o2"
    rows+=("$(printf '%-16s %10s %10s %7s  %-7s %-22s %s' "$c" "$mv" "$mq" \
        "$(ratio "$mv" "$mq")" "$verdict" "$(durability "$c" vmferry)" \
        "$(durability "$c" qemu-img)")")
    [ -n "$extra" ] && rows+=("$extra")
    machine+=("BENCH case=$c input=$(basename "$in") vmferry_s=$mv qemu_s=$mq ratio=$(ratio "$mv" "$mq") runs=$runs vmferry_durability=$(durability "$c" vmferry | cut -d' ' -f1) qemu_durability=$(durability "$c" qemu-img | cut -d' ' -f1) content=$verdict${sizes:+ $sizes}${q2:+ vmferry_qcow2_s=$m2}")
}

# Inputs for the read cases, made by qemu-img once per cache.
mkvmdk() { # SUBFORMAT
    local f=$dir/in-$1.vmdk
    if [ ! -e "$f.done" ]; then
        echo "bench: making $f (once)" >&2
        rm -f "$dir/in-$1"*.vmdk
        "$QEMU_IMG" convert -f raw -O vmdk -o subformat=$1 "$sparse" "$f" ||
            die "qemu-img could not make $f"
        touch "$f.done"
    fi
    echo "$f"
}
qcow2_in=
if "$VMFERRY" convert --help 2>&1 | grep -q . &&
   "$VMFERRY" info "$sparse" >/dev/null 2>&1; then
    q=$dir/in.qcow2
    if [ ! -e "$q.done" ]; then
        "$QEMU_IMG" convert -f raw -O qcow2 "$sparse" "$q" && touch "$q.done"
    fi
    # only when vmferry can read qcow2
    "$VMFERRY" info "$q" 2>/dev/null | grep -q 'file format: qcow2' &&
        qcow2_in=$q
fi

echo "bench: vmferry $("$VMFERRY" --version 2>/dev/null | head -n 1)," \
    "$("$QEMU_IMG" --version | head -n 1); $(nproc) cores;" \
    "inputs in $dir; $runs timed run(s), $warm warm-up"
for c in $cases; do
    echo "bench: $c ..." >&2
    case $c in
    sparse-unsafe|sparse-durable|stream) run_pair "$c" "$sparse" ;;
    read-sparse) run_pair "$c" "$(mkvmdk monolithicSparse)" "$qcow2_in" ;;
    read-stream)
        # like for like: the same content as a deflate-compressed qcow2
        qc=
        if [ -n "$qcow2_in" ]; then
            qc=$dir/in-c.qcow2
            [ -e "$qc.done" ] || { "$QEMU_IMG" convert -c -f raw -O qcow2 "$sparse" "$qc" &&
                touch "$qc.done"; } || qc=
        fi
        run_pair "$c" "$(mkvmdk streamOptimized)" "$qc" ;;
    read-flat) run_pair "$c" "$(mkvmdk monolithicFlat)" "$qcow2_in" ;;
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
