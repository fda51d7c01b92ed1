#!/bin/bash
# bench/vhd.sh: VHD, VHDX and VDI (issue F3's performance section), on the
# F1 benchmark disk (4 GiB raw holding 1 GiB of real data, bench/mkdisk.py,
# cached outside the tree and shared with bench/convert.sh).
#
# Cases (A vs B, same input, same run, alternating, medians):
#   read-vhdx     dynamic VHDX (made by qemu-img) -> raw: vmferry vs
#                 qemu-img convert -m 16 -W            goal: ratio <= 0.33
#                 Input: the 4 GiB Debian guest of bench/inspect.sh (run
#                 before this script by make bench; a real VM disk, its
#                 data where ext4 put it) when cached, else the F1 disk
#   vhdx-floor    vmferry vhdx->raw vs vmferry raw->raw of the same guest
#                 (its raw form, sparse): how close the VHDX read is to
#                 only writing the output, the floor any reader has:
#                 reported, no goal
#   read-vhdx-f1  the same from the F1 disk, whose 1 MiB data runs are
#                 spread so that every VHDX block is allocated (qemu-img
#                 leaves their zero parts as holes of the file; vmferry
#                 skips those holes too): reported, no goal
#   fixed-vhd     raw -> fixed VHD vs raw -> raw, both vmferry
#                                                      goal: ratio <= 1.10
#   write-vhd     raw -> dynamic VHD vs raw -> qcow2, both vmferry
#   write-vdi     raw -> dynamic VDI vs raw -> qcow2, both vmferry
#   read-vhd      dynamic VHD -> raw vs qcow2 -> raw, both vmferry (inputs
#                 made by qemu-img)
#   read-vdi      dynamic VDI -> raw vs qcow2 -> raw, both vmferry
#                                           goal (last four): ratio <= 1.10
# Every side runs unsafe (vmferry --unsafe, qemu-img's default
# cache=unsafe): nobody fsyncs.  Each vmferry output is checked against the
# source with qemu-img compare (untimed).
#
# Environment: as bench/vmdk.sh (VMFERRY, QEMU_IMG, BENCH_CACHE, BENCH_OUT,
# BENCH_RUNS (default 5, after 1 warm-up), BENCH_TIMEOUT, BENCH_QUICK=1,
# BENCH_CASES).
# Output: a table, then one "BENCH " line per case.  Exit 1 on failure
# (a command failed or an output differs); a missed goal is reported
# (goal=missed), not a failure.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

cases=${BENCH_CASES:-read-vhdx vhdx-floor read-vhdx-f1 fixed-vhd write-vhd write-vdi read-vhd read-vdi}

mkdisk "$sparse" "$size" "$data"
echo "$stamp" > "$dir/stamp"

# Inputs for the read cases, made by qemu-img once per cache.
mkin() { # FORMAT [SOURCE]
    local from=${2:-$sparse} f=$dir/in.$1
    [ -n "${2:-}" ] && f=$dir/guest.$1
    if [ ! -e "$f.done" ]; then
        echo "bench: making $f (once)" >&2
        "$QEMU_IMG" convert -O "$1" "$from" "$f" ||
            die "qemu-img could not make $f"
        touch "$f.done"
    fi
    echo "$f"
}
guest=$cache/debian12-inspect.qcow2
[ -f "$guest" ] || guest=/var/cache/vmferry-bench/debian12-inspect.qcow2
if [ -f "$guest" ]; then
    vhdx_in=$(mkin vhdx "$guest") vhdx_ref=$guest vhdx_raw=$(mkin raw "$guest")
else
    echo "bench: no Debian guest (bench/inspect.sh makes it): read-vhdx uses the F1 disk" >&2
    vhdx_in=$(mkin vhdx) vhdx_ref=$sparse vhdx_raw=$sparse
fi

# side CASE A|B OUT: one timed run of that side.
side() {
    local c=$1 s=$2 o=$3
    case $c:$s in
    read-vhdx:A) timed "$VMFERRY" convert --unsafe -O raw "$vhdx_in" "$o" ;;
    read-vhdx:B) timed "$QEMU_IMG" convert -m 16 -W -O raw "$vhdx_in" "$o" ;;
    vhdx-floor:A) timed "$VMFERRY" convert --unsafe -O raw "$vhdx_in" "$o" ;;
    vhdx-floor:B) timed "$VMFERRY" convert --unsafe -f raw -O raw "$vhdx_raw" "$o" ;;
    read-vhdx-f1:A) timed "$VMFERRY" convert --unsafe -O raw "$(mkin vhdx)" "$o" ;;
    read-vhdx-f1:B) timed "$QEMU_IMG" convert -m 16 -W -O raw "$(mkin vhdx)" "$o" ;;
    fixed-vhd:A) timed "$VMFERRY" convert --unsafe -f raw -O vpc \
                     -o subformat=fixed "$sparse" "$o" ;;
    fixed-vhd:B) timed "$VMFERRY" convert --unsafe -f raw -O raw "$sparse" "$o" ;;
    write-vhd:A) timed "$VMFERRY" convert --unsafe -f raw -O vpc "$sparse" "$o" ;;
    write-vdi:A) timed "$VMFERRY" convert --unsafe -f raw -O vdi "$sparse" "$o" ;;
    write-*:B)   timed "$VMFERRY" convert --unsafe -f raw -O qcow2 "$sparse" "$o" ;;
    read-vhd:A)  timed "$VMFERRY" convert --unsafe -O raw "$(mkin vpc)" "$o" ;;
    read-vdi:A)  timed "$VMFERRY" convert --unsafe -O raw "$(mkin vdi)" "$o" ;;
    read-*:B)    timed "$VMFERRY" convert --unsafe -O raw "$(mkin qcow2)" "$o" ;;
    esac
}

label() { # CASE A|B
    case $1:$2 in
    vhdx-floor:A) echo "vmferry vhdx->raw" ;;
    vhdx-floor:B) echo "vmferry raw->raw (same guest)" ;;
    read-vhdx*:A) echo "vmferry vhdx->raw" ;;
    read-vhdx*:B) echo "qemu-img vhdx->raw" ;;
    fixed-vhd:A) echo "vmferry raw->fixed vhd" ;;
    fixed-vhd:B) echo "vmferry raw->raw" ;;
    write-vhd:A) echo "vmferry raw->vhd" ;;
    write-vdi:A) echo "vmferry raw->vdi" ;;
    write-*:B) echo "vmferry raw->qcow2" ;;
    read-vhd:A) echo "vmferry vhd->raw" ;;
    read-vdi:A) echo "vmferry vdi->raw" ;;
    read-*:B) echo "vmferry qcow2->raw" ;;
    esac
}

goal() { # CASE: the largest ratio A/B that meets the issue's number
    case $1 in read-vhdx) echo 0.33 ;; read-vhdx-f1|vhdx-floor) echo - ;; *) echo 1.10 ;; esac
}

rows=() machine=()
run_case() {
    local c=$1 i s oa=$out/a.img ob=$out/b.img
    local ta=() tb=() ok=1
    for ((i = 1 - warm; i <= runs; i++)); do
        local order="A B"
        ((i % 2)) || order="B A"
        for s in $order; do
            rm -f "$oa" "$ob"
            sync
            local o=$oa
            [ "$s" = B ] && o=$ob
            if side "$c" "$s" "$o"; then
                ((i >= 1)) && { [ "$s" = A ] && ta+=("$secs") || tb+=("$secs"); }
            else
                ok=0
            fi
        done
    done
    local ma mb r verdict=same met
    ma=$(echo "${ta[*]:-}" | median)
    mb=$(echo "${tb[*]:-}" | median)
    ((ok)) || { failed=1; verdict=FAIL; }
    if ((ok)); then
        [ -e "$oa" ] || side "$c" A "$oa"
        # a fixed VHD has no header qemu-img probes: name its format
        local fmt=() ref=$sparse
        [ "$c" = fixed-vhd ] && fmt=(-F vpc)
        [ "$c" = read-vhdx ] || [ "$c" = vhdx-floor ] && ref=$vhdx_ref
        if ! "$QEMU_IMG" compare -q "${fmt[@]}" "$ref" "$oa" 2>/dev/null; then
            verdict=DIFFERS
            failed=1
        fi
    fi
    rm -f "$oa" "$ob"
    r=$(ratio "$ma" "$mb")
    met=$(awk -v r="$r" -v g="$(goal "$c")" 'BEGIN {
        print g == "-" ? "-" : (r != "-" && r + 0 <= g + 0) ? "met" : "missed" }')
    rows+=("$(printf '%-10s %-24s %8s  %-22s %8s  %6s  %-5s %-7s %s' "$c" \
        "$(label "$c" A)" "$ma" "$(label "$c" B)" "$mb" "$r" \
        "$(goal "$c")" "$met" "$verdict")")
    machine+=("BENCH case=$c a=\"$(label "$c" A)\" a_s=$ma b=\"$(label "$c" B)\" b_s=$mb ratio=$r goal=$(goal "$c") goal_met=$met runs=$runs durability=unsafe content=$verdict")
}

echo "bench: vmferry $("$VMFERRY" --version 2>/dev/null | head -n 1)," \
    "$("$QEMU_IMG" --version | head -n 1); $(nproc) cores;" \
    "inputs in $dir; $runs timed run(s), $warm warm-up; nobody fsyncs"
for c in $cases; do
    case $c in
    read-vhdx|vhdx-floor|read-vhdx-f1|fixed-vhd|write-vhd|write-vdi|read-vhd|read-vdi) ;;
    *) die "unknown case $c" ;;
    esac
    echo "bench: $c ..." >&2
    run_case "$c"
done

echo
printf '%-10s %-24s %8s  %-22s %8s  %6s  %-5s %-7s %s\n' case A a_s B b_s \
    ratio goal met content
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${machine[@]}"
rm -f "$log" "$rssf"
exit "$failed"
