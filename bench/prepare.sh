#!/bin/bash
# bench/prepare.sh: issue F5's numbers: on the 4 GiB Debian 12 guest of
# bench/inspect.sh (qcow2, built once and cached), the seed-000 edit set
# plus --target kvm costs at most 0.3 s beyond the copy itself and at most
# 64 MB peak RSS; with libguestfs installed, virt-customize with the same
# operations (forced TCG) on a copy of the image, and the ratio.
#
#   copy:     vmferry convert --unsafe -O qcow2 IMG OUT
#   prepare:  vmferry prepare --unsafe -O qcow2 <seed-000> --target kvm IMG OUT
# Both unsafe (neither fsyncs); alternating; medians of BENCH_RUNS (5)
# after one warm-up.  virt-customize edits a copy in place (cp first,
# untimed), so its time has no copy in it: the ratio is
# virt-customize / (prepare - copy), and also / prepare.
#
# Environment: VMFERRY, BENCH_CACHE (where bench/inspect.sh keeps the
# guest), BENCH_RUNS.  Output: a table and one "BENCH prepare ..." line.
# Exit 1 on failure or a limit exceeded.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
VMFERRY=${VMFERRY:-build/vmferry}
case $VMFERRY in /*) ;; *) VMFERRY=$src/$VMFERRY ;; esac
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmferry-bench}
runs=${BENCH_RUNS:-5}
img=$cache/debian12-inspect.qcow2
out=$cache/prepare.out
die() { echo "bench/prepare: $*" >&2; exit 1; }
[ -x "$VMFERRY" ] || die "$VMFERRY is not built"
if [ ! -f "$img" ]; then
    BENCH_RUNS=1 BENCH_CACHE=$cache VMFERRY=$VMFERRY bash "$src/bench/inspect.sh" \
        > /dev/null || true
    [ -f "$img" ] || die "no guest image ($img): run bench/inspect.sh"
fi
mkdir -p "$out"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$out/key" <<< y >/dev/null 2>&1 ||
    [ -f "$out/key.pub" ] || die "ssh-keygen failed"

edits=(--user-add idcuser --ssh-inject "idcuser:$out/key.pub" --no-root-ssh
       --disable-service httpd --disable-service vsftpd
       --disable-service sendmail --default-target multi-user
       --firstboot-command "ssh-keygen -A" --target kvm)

timed() { # sets secs, rss_kib
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$out/rss" "$@" > "$out/log" 2>&1 ||
        { tail -n 5 "$out/log" >&2; die "failed: $*"; }
    t1=$(date +%s%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    rss_kib=$(tail -n 1 "$out/rss")
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

tc=() tp=() rss=0
for ((i = 0; i <= runs; i++)); do
    for side in copy prepare; do
        [ $((i % 2)) = 1 ] && side=$([ $side = copy ] && echo prepare || echo copy)
        rm -f "$out/o.qcow2"
        sync
        if [ $side = copy ]; then
            timed "$VMFERRY" convert --unsafe -O qcow2 "$img" "$out/o.qcow2"
            ((i)) && tc+=("$secs")
        else
            timed "$VMFERRY" prepare -q --unsafe -O qcow2 "${edits[@]}" "$img" "$out/o.qcow2"
            ((i)) && tp+=("$secs")
            ((rss_kib > rss)) && rss=$rss_kib
        fi
    done
done
mc=$(echo "${tc[*]}" | median) mp=$(echo "${tp[*]}" | median)
extra=$(awk -v a="$mp" -v b="$mc" 'BEGIN { printf "%.3f", a - b }')
rss_mb=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
# the edits landed: e2fsck on the output's filesystems (untimed)
"$VMFERRY" prepare -q --unsafe -O raw "${edits[@]}" "$img" "$out/o.raw" ||
    die "prepare to raw failed"
fsck=clean
for s in $(sfdisk -d "$out/o.raw" | sed -n 's/.*start= *\([0-9]*\).*type=83.*/\1/p'); do
    e2fsck -fn "$out/o.raw?offset=$((s * 512))" > /dev/null 2>&1 || fsck=NOT-CLEAN
done
rm -f "$out/o.raw"

echo
printf '%-34s %s\n' "guest" "$img"
printf '%-34s %s\n' "copy (convert, median)" "${mc}s (${tc[*]})"
printf '%-34s %s\n' "seed-000 + --target kvm (median)" "${mp}s (${tp[*]})"
printf '%-34s %s\n' "beyond the copy" "${extra}s (goal <= 0.3 s)"
printf '%-34s %s\n' "peak RSS" "${rss_mb} MB (goal <= 64 MB)"
printf '%-34s %s\n' "e2fsck -fn of the output" "$fsck"
status=0
awk -v t="$extra" 'BEGIN { exit !(t <= 0.3) }' || { echo "LIMIT: ${extra}s beyond the copy > 0.3 s"; status=1; }
awk -v m="$rss_mb" 'BEGIN { exit !(m <= 64) }' || { echo "LIMIT: ${rss_mb} MB > 64 MB"; status=1; }
[ "$fsck" = clean ] || status=1

vc=none ratio=none
if command -v virt-customize >/dev/null; then
    cp --sparse=always "$img" "$out/vc.qcow2"
    s=$(date +%s.%N)
    if LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
        virt-customize -q -a "$out/vc.qcow2" \
            --run-command 'useradd -m idcuser' \
            --ssh-inject "idcuser:file:$out/key.pub" \
            --edit '/etc/ssh/sshd_config:s/^#?PermitRootLogin.*/PermitRootLogin no/' \
            --run-command 'for s in httpd vsftpd sendmail; do systemctl disable $s 2>/dev/null; done; true' \
            --run-command 'systemctl set-default multi-user.target' \
            --firstboot-command 'ssh-keygen -A' > "$out/vc.log" 2>&1; then
        e=$(date +%s.%N)
        vc=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", e - s }')
        ratio=$(awk -v a="$vc" -v b="$mp" 'BEGIN { printf "%.0f", a / b }')
        printf '%-34s %s\n' "virt-customize (TCG, in place)" "${vc}s: ${ratio}x the whole prepare"
    else
        echo "virt-customize failed (see $out/vc.log)"
    fi
    rm -f "$out/vc.qcow2"
fi
echo
echo "BENCH prepare copy_s=$mc prepare_s=$mp extra_s=$extra rss_mb=$rss_mb fsck=$fsck virt_customize_s=$vc ratio=$ratio runs=$runs durability=unsafe"
exit $status
