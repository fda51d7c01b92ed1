#!/bin/bash
# bench/inspect.sh: vmferry inspect on a real Debian 12 guest (issue F4's
# performance section): at most 0.2 s and 64 MB peak RSS; virt-inspector
# on the same image when libguestfs is installed, with the ratio and a
# check that both found the same distro, version, hostname, mountpoints,
# filesystems and package count.
#
# The guest is built once and cached outside the tree:
#   debootstrap --variant=minbase --include=linux-image-amd64,systemd,
#     systemd-sysv,openssh-server bookworm  (needs root and the Debian
#     mirror; BENCH_MIRROR, default http://deb.debian.org/debian)
# laid out on a 4 GiB disk (MBR: p1 /boot 512 MiB ext4, p2 / ext4, fstab
# by UUID), converted to qcow2 with qemu-img.  Without root or network the
# script says so and builds the largest realistic guest it can from this
# machine's own files instead (its /usr, /etc and /var/lib/dpkg, its
# kernel and initramfs when readable), and labels the result.
#
# Environment:
#   VMFERRY       the binary (default build/vmferry from the repo root)
#   BENCH_CACHE   cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/vmferry-bench)
#   BENCH_RUNS    timed runs (default 5, after one warm-up)
#   BENCH_NO_DEBOOTSTRAP=1  use the machine-files guest even when
#                 debootstrap could run
# Output: a table and one "BENCH inspect ..." line of key=value fields.
# Exit 1 when a limit is exceeded or a command fails.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
VMFERRY=${VMFERRY:-build/vmferry}
case $VMFERRY in /*) ;; *) VMFERRY=$src/$VMFERRY ;; esac
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmferry-bench}
runs=${BENCH_RUNS:-5}
mirror=${BENCH_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"
img=$cache/debian12-inspect.qcow2
kind_file=$cache/debian12-inspect.kind

die() { echo "bench/inspect: $*" >&2; exit 1; }
[ -x "$VMFERRY" ] || die "$VMFERRY is not built"
command -v qemu-img >/dev/null || die "qemu-img is needed"

rootfs_debootstrap() {
    [ -d "$cache/rootfs" ] && return 0
    [ "$(id -u)" -eq 0 ] || { echo "bench/inspect: not root: debootstrap cannot run"; return 1; }
    command -v debootstrap >/dev/null || { echo "bench/inspect: debootstrap is not installed"; return 1; }
    echo "bench/inspect: debootstrap bookworm from $mirror (once; minutes)"
    rm -rf "$cache/rootfs.tmp"
    if ! debootstrap --variant=minbase \
            --include=linux-image-amd64,systemd,systemd-sysv,openssh-server \
            bookworm "$cache/rootfs.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1; then
        echo "bench/inspect: debootstrap failed (see $cache/debootstrap.log)"
        return 1
    fi
    mv "$cache/rootfs.tmp" "$cache/rootfs"
}

rootfs_machine() {
    # The biggest realistic guest without root or network: this machine's
    # own files (read-only copies), its kernel if readable.
    local r=$cache/rootfs-machine
    [ -d "$r" ] && { echo "$r"; return; }
    mkdir -p "$r.tmp"/{boot,etc,var/lib,proc,sys,dev,run,tmp,root,home,usr/lib}
    # the parts of /usr a distribution image has (all of /usr may not fit
    # the 4 GiB disk on a developer machine)
    cp -a /usr/bin /usr/sbin "$r.tmp/usr/" 2>/dev/null || true
    cp -a /usr/lib/x86_64-linux-gnu /usr/lib/os-release "$r.tmp/usr/lib/" 2>/dev/null || true
    [ -d "/usr/lib/modules/$(uname -r)" ] &&
        mkdir -p "$r.tmp/usr/lib/modules" &&
        cp -a "/usr/lib/modules/$(uname -r)" "$r.tmp/usr/lib/modules/" 2>/dev/null
    cp -a /etc/. "$r.tmp/etc/" 2>/dev/null || true
    cp -a /var/lib/dpkg "$r.tmp/var/lib/" 2>/dev/null || true
    cp -a /boot/. "$r.tmp/boot/" 2>/dev/null || true
    for l in bin sbin lib lib64; do [ -e "$r.tmp/$l" ] || ln -s usr/$l "$r.tmp/$l"; done
    echo bench-machine > "$r.tmp/etc/hostname"
    mv "$r.tmp" "$r"
    echo "$r"
}

. "$src/bench/lib-guest.sh"
if [ ! -f "$img" ]; then
    if [ "${BENCH_NO_DEBOOTSTRAP:-}" != 1 ] && rootfs_debootstrap; then
        build_image "$cache/rootfs" debootstrap "$img" || die "image build failed"
    else
        echo "bench/inspect: falling back to a guest made of this machine's files"
        build_image "$(rootfs_machine)" machine-files "$img" || die "image build failed"
    fi
fi
kind=$(cat "$kind_file" 2>/dev/null || echo unknown)

# The issue asks for qcow2; while this build's registry lacks a format,
# use the next one it reads (the same guest bytes), and say so.
fmt_of() {
    "$VMFERRY" info --json "$1" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])' 2>/dev/null
}
if [ "$(fmt_of "$img")" != qcow2 ]; then
    for f in vhdx vpc raw; do
        alt=${img%.qcow2}.$f
        [ -f "$alt" ] || qemu-img convert -O "$f" "$img" "$alt.tmp" && mv "$alt.tmp" "$alt" 2>/dev/null
        if [ "$(fmt_of "$alt")" = "$f" ]; then
            echo "bench/inspect: this build does not read qcow2 yet; using the same guest as $f"
            img=$alt
            break
        fi
    done
fi

"$VMFERRY" inspect --json "$img" > "$cache/vmferry.json" || die "vmferry inspect failed"
"$VMFERRY" inspect --json "$img" > /dev/null    # warm-up (hot page cache)
times=()
for _ in $(seq "$runs"); do
    s=$(date +%s.%N)
    "$VMFERRY" inspect --json "$img" > /dev/null || die "vmferry inspect failed"
    e=$(date +%s.%N)
    times+=("$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f", e - s }')")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
# peak RSS and CPU time (user + sys: the wall time of a shared machine
# also counts other processes' load)
tm=$(/usr/bin/time -f '%M %U %S' "$VMFERRY" inspect --json "$img" 2>&1 >/dev/null | tail -1)
rss_mb=$(echo "$tm" | awk '{ printf "%.1f", $1 / 1024 }')
cpu=$(echo "$tm" | awk '{ printf "%.2f", $2 + $3 }')
load=$(cut -d' ' -f1 /proc/loadavg)
summary=$(python3 - "$cache/vmferry.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["operatingsystems"][0] if r["operatingsystems"] else {}
k = o.get("kernels", [{}])
k = k[0] if k else {}
ic = k.get("initramfs-contents", {})
print("distro=%s version=%s hostname=%s packages=%s kernels=%d initramfs_files=%s initramfs_comp=%s virtio_at_boot=%s" % (
    o.get("distro"), o.get("version"), o.get("hostname"), o.get("packages", {}).get("count"),
    len(o.get("kernels", [])), ic.get("files"), ic.get("compression"),
    k.get("hypervisors", {}).get("virtio", {}).get("storage-at-boot")))
PY
)
echo
printf '%-28s %s\n' "guest" "$kind ($img, $(du -h "$img" | cut -f1) allocated)"
printf '%-28s %s\n' "vmferry inspect (median)" "${median}s over $runs runs (${times[*]})"
printf '%-28s %s\n' "vmferry CPU (user+sys)" "${cpu}s (load average $load)"
printf '%-28s %s\n' "vmferry peak RSS" "${rss_mb} MB"
printf '%-28s %s\n' "found" "$summary"
status=0
awk -v t="$median" 'BEGIN { exit !(t <= 0.2) }' || { echo "LIMIT: inspect took ${median}s > 0.2 s"; status=1; }
awk -v m="$rss_mb" 'BEGIN { exit !(m <= 64) }' || { echo "LIMIT: peak RSS ${rss_mb} MB > 64 MB"; status=1; }

vi_time=none ratio=none same=none
if command -v virt-inspector >/dev/null; then
    s=$(date +%s.%N)
    if LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
            virt-inspector -a "$img" > "$cache/virt-inspector.xml" 2> "$cache/virt-inspector.err"; then
        e=$(date +%s.%N)
        vi_time=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", e - s }')
        ratio=$(awk -v a="$vi_time" -v b="$median" 'BEGIN { printf "%.0f", a / b }')
        printf '%-28s %s\n' "virt-inspector (TCG)" "${vi_time}s, ratio ${ratio}x"
        if python3 - "$cache/vmferry.json" "$cache/virt-inspector.xml" <<'PY'
import json, sys
import xml.etree.ElementTree as ET
r = json.load(open(sys.argv[1]))
x = ET.parse(sys.argv[2]).getroot().find("operatingsystem")
o = r["operatingsystems"][0]
bad = []
def cmp(what, ours, theirs):
    if str(ours) != str(theirs):
        bad.append("%s: vmferry %r, virt-inspector %r" % (what, ours, theirs))
cmp("distro", o["distro"], x.findtext("distro"))
cmp("major version", o.get("major-version"), x.findtext("major_version"))
cmp("hostname", o["hostname"], x.findtext("hostname"))
theirs = sorted(m.text for m in x.findall("mountpoints/mountpoint"))
ours = sorted(m["mountpoint"] for m in o["mountpoints"] if m["mountpoint"].startswith("/"))
cmp("mountpoints", ours, theirs)
theirs = sorted(f.findtext("type") for f in x.findall("filesystems/filesystem"))
ours = sorted(f["type"] for f in r["filesystems"])
cmp("filesystem types", ours, theirs)
cmp("package count", o["packages"]["count"], len(x.findall("applications/application")))
for b in bad:
    print("DIFFERENT " + b)
sys.exit(1 if bad else 0)
PY
        then same=yes; else same=no; status=1; fi
        printf '%-28s %s\n' "same facts as virt-inspector" "$same"
    else
        echo "virt-inspector failed (see $cache/virt-inspector.err)"
    fi
else
    echo "virt-inspector: not installed (apt-get install -y libguestfs-tools); no comparison"
fi
echo "BENCH inspect guest=$kind image=$(basename "$img") seconds=$median cpu_seconds=$cpu load=$load rss_mb=$rss_mb virt_inspector_seconds=$vi_time ratio=$ratio same_facts=$same $summary"
exit $status
