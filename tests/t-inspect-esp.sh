# inspect and preflight read the EFI System Partition (src/guest/fat.c).
# ESPs made by mkfs.vfat (FAT12, FAT16, FAT32, and the FAT32 of too few
# clusters that `mkfs.fat -F 32` makes on a small partition) and filled
# by mtools sit beside the ext4 root of a Linux guest: inspect reports the
# fallback loader (upper-case, lower-case and long-name entries;
# BOOTAA64.EFI on an aarch64 guest) and AWS's boot-mode rule passes; an
# ESP without it, or with an empty one, fails the rule.  tests/fat-stat (the reader alone) finds
# what mtools wrote by long and short name in any case, and ignores a
# long name whose checksum does not match.  Hostile ESPs (bytes per
# sector 0 and 3, sectors per cluster 0, a looping directory chain, a
# chain or a directory entry naming a cluster beyond the volume, a volume
# larger than its partition) give a warning naming the problem; inspect
# still succeeds, with no sanitizer report.  Oracles: mkfs.vfat and mtools
# write the ESPs, `fsck.vfat -n` says the good ones are clean, mdir and
# mshowfat say where mtools put names and clusters.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio zstd lz4 bzip2 debugfs e2fsck \
    mkfs.vfat fsck.vfat mmd mcopy mdir mshowfat
fat_stat="$BUILDDIR/fat-stat"
[ -x "$fat_stat" ] || die "$fat_stat is not built"
mk="$SRCDIR/tests/fixtures/mk-guest.py"
MIB=$((1 << 20))
cd "$scratch"

# The guest: mk-guest's Ubuntu on its gpt-uefi layout; its root and /home
# filesystems are laid out again below, around ESPs of other sizes.
python3 "$mk" ubuntu base.raw --layout gpt-uefi 2>/dev/null || die "mk-guest"
dd if=base.raw of=root.img bs=1M skip=6 count=28 status=none
dd if=base.raw of=home.img bs=1M skip=34 count=4 status=none

# disk OUT ESP.IMG [ROOT.IMG]: GPT like mk-guest's gpt-uefi (p1 swap, p2
# the ESP, p3 /, p4 /home, the same GUIDs and names) with ESP.IMG in p2.
disk() {
    local out=$1 esp=$2 root=${3:-root.img} emb
    emb=$(( $(stat -c %s "$esp") / MIB ))
    rm -f "$out"
    truncate -s $(( (35 + emb) * MIB )) "$out"
    sfdisk -q --no-reread --no-tell-kernel "$out" >/dev/null <<EOF || die "sfdisk $out"
label: gpt
label-id: 6A1A7B64-1D73-4D8F-9A0E-0000000000FF
start=1MiB, size=1MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=6a1a7b64-1d73-4d8f-9a0e-000000000001, name=bios
start=2MiB, size=${emb}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=6a1a7b64-1d73-4d8f-9a0e-000000000002, name="EFI System"
start=$((2 + emb))MiB, size=28MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6a1a7b64-1d73-4d8f-9a0e-000000000003, name=root
start=$((30 + emb))MiB, size=4MiB, type=933AC7E1-2EB4-4F13-B844-0E14E2AEF915, uuid=6a1a7b64-1d73-4d8f-9a0e-000000000004, name=home
EOF
    dd if="$esp" of="$out" bs=1M seek=2 conv=notrunc status=none
    dd if="$root" of="$out" bs=1M seek=$((2 + emb)) conv=notrunc status=none
    dd if=home.img of="$out" bs=1M seek=$((30 + emb)) conv=notrunc status=none
}

# esp OUT MIB BITS [mkfs.vfat options]: an empty FAT filesystem
esp() {
    rm -f "$1"
    truncate -s "$2M" "$1"
    mkfs.vfat -F "$3" "${@:4}" "$1" >/dev/null 2>&1 || die "mkfs.vfat $1"
}

clean() {   # clean ESP.IMG: fsck.vfat finds nothing to fix
    fsck.vfat -n "$1" > fsck.txt 2>&1 || { cat fsck.txt; die "$1: fsck.vfat -n"; }
    ! grep -qiE 'differ|error|invalid|free cluster|lost|bad' fsck.txt ||
        { cat fsck.txt; die "$1: fsck.vfat -n found damage"; }
}

head -c 40000 /dev/urandom > loader.efi
head -c 1234 /dev/urandom > grub.efi
echo 'search --fs-uuid x' > grub.cfg

# FAT16: upper-case 8.3 names, the layout grub-install --removable makes
esp fat16.esp 8 16 -s 1
mmd -i fat16.esp ::/EFI ::/EFI/BOOT ::/EFI/ubuntu
mcopy -i fat16.esp loader.efi ::/EFI/BOOT/BOOTX64.EFI
mcopy -i fat16.esp grub.efi ::/EFI/ubuntu/GRUBX64.EFI
mcopy -i fat16.esp grub.cfg ::/EFI/ubuntu/grub.cfg
mcopy -i fat16.esp grub.cfg ::/checksum-victim-long-name.cfg
for i in $(seq -w 1 30); do
    echo "menuentry $i" > "m$i"
    mcopy -i fat16.esp "m$i" "::/EFI/ubuntu/a-long-menu-entry-file-name-$i.cfg"
done
clean fat16.esp

# FAT32 (80000 clusters of 512 bytes): mixed-case long names, and a BOOT
# directory of 40 long-named files before the loader, so its entries
# span a fragmented chain of clusters
esp fat32.esp 40 32 -s 1
mmd -i fat32.esp ::/efi ::/efi/Boot
for i in $(seq -w 1 40); do
    head -c "$((100 + 10#$i))" /dev/zero > "f$i"
    mcopy -i fat32.esp "f$i" "::/efi/Boot/fallback-entry-number-$i-with-a-long-name.efi"
done
mcopy -i fat32.esp loader.efi ::/efi/Boot/BootX64.efi
clean fat32.esp
chain=$(mshowfat -i fat32.esp ::/efi/Boot)
[ "$(echo "$chain" | grep -o '<' | wc -l)" -ge 3 ] ||
    die "efi/Boot is not fragmented over several clusters: $chain"

# FAT12 (4000 clusters of 512 bytes): all lower case (mtools keeps 8.3
# names with NT case flags), the loader after 20 long names, so the walk
# reads FAT12 entries of odd and even clusters
esp fat12.esp 2 12 -s 1
mmd -i fat12.esp ::/efi ::/efi/boot
for i in $(seq -w 1 20); do
    mcopy -i fat12.esp "f$i" "::/efi/boot/fallback-entry-number-$i-with-a-long-name.efi"
done
mcopy -i fat12.esp loader.efi ::/efi/boot/bootx64.efi
clean fat12.esp
chain=$(mshowfat -i fat12.esp ::/efi/boot)
[ "$(echo "$chain" | grep -o '<' | wc -l)" -ge 3 ] ||
    die "efi/boot is not fragmented over several clusters: $chain"

# FAT32 of 8034 clusters (a FAT32 BPB, FAT16's count of clusters): what
# mkfs.fat -F 32 makes on an 8 MiB partition.  mtools cannot write into
# it, so it stays empty: read as FAT32, it holds no loader, no warning.
esp small32.esp 8 32
fsck.vfat -n small32.esp > fsck.txt 2>&1 || die "small32.esp: fsck.vfat -n"
grep -q 'FAT32 according to fat_length' fsck.txt ||
    { cat fsck.txt; die "small32.esp is not the quirk it should be"; }

# FAT16 without a fallback loader, only the distribution's own
esp noloader.esp 8 16 -s 1
mmd -i noloader.esp ::/EFI ::/EFI/ubuntu
mcopy -i noloader.esp grub.efi ::/EFI/ubuntu/SHIMX64.EFI
clean noloader.esp

# FAT16 with an empty loader: not a loader
esp empty.esp 8 16 -s 1
mmd -i empty.esp ::/EFI ::/EFI/BOOT
: > empty.efi
mcopy -i empty.esp empty.efi ::/EFI/BOOT/BOOTX64.EFI
clean empty.esp

# FAT16 with the aarch64 loader only
esp aa64.esp 8 16 -s 1
mmd -i aa64.esp ::/EFI ::/EFI/BOOT
mcopy -i aa64.esp loader.efi ::/EFI/BOOT/BOOTAA64.EFI
clean aa64.esp

# an aarch64 root: /usr/bin/bash (/bin/bash, which inspection reads for
# the arch) becomes an AArch64 ELF header
cp root.img root-aa64.img
python3 -c 'import struct, sys; sys.stdout.buffer.write(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHI", 2, 183, 1) + b"\0" * 40)' > bash.aa64
debugfs -w -R "rm /usr/bin/bash" root-aa64.img >/dev/null 2>&1
debugfs -w -R "write bash.aa64 /usr/bin/bash" root-aa64.img >/dev/null 2>&1
e2fsck -fn root-aa64.img >/dev/null 2>&1 || die "root-aa64.img is damaged"

for v in fat16 fat32 fat12 small32 noloader empty; do
    disk "$v.raw" "$v.esp"
done
disk aa64.raw aa64.esp root-aa64.img
disk aa64-x64.raw fat16.esp root-aa64.img

# report FILE PY: assertions on the report (r) of disk FILE
report() {
    local rc=0
    "$VMFERRY" inspect --json "$1" > "$1.json" 2> "$1.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$1.err"; die "$1: inspect exit $rc"; }
    ! grep -qE 'Sanitizer|runtime error' "$1.err" ||
        { cat "$1.err"; die "$1: sanitizer report"; }
    python3 - "$1.json" "$2" <<'PY' || die "$1: $2"
import json, os, sys
r = json.load(open(sys.argv[1]))
fw = r["firmware"]
w = r["warnings"]
exec(sys.argv[2])
PY
}

for v in fat16 fat32 fat12; do
    report "$v.raw" '
assert fw["type"] == "uefi" and fw["esp"] == ["/dev/sda2"], fw
assert fw["uefi-fallback-loader"] == "/EFI/BOOT/BOOTX64.EFI", fw
assert not [x for x in w if "ESP" in x], w
assert r["operatingsystems"][0]["arch"] == "x86_64"'
    "$VMFERRY" preflight --target aws "$v.raw" > "$v.pf" ||
        { cat "$v.pf"; die "$v: aws preflight should pass"; }
    grep -q '^PASS aws-boot-mode' "$v.pf" || die "$v: boot-mode rule"
    grep -q 'fallback loader /EFI/BOOT/BOOTX64.EFI on the ESP' "$v.pf" ||
        die "$v: boot-mode evidence lacks the loader"
    "$VMFERRY" inspect "$v.raw" > "$v.txt" || die "$v: inspect (text)"
    grep -q '^firmware: uefi, fallback loader /EFI/BOOT/BOOTX64.EFI$' "$v.txt" ||
        die "$v: text output lacks the loader"
    echo "$v: loader found, aws boot-mode passes"
done
report aa64.raw '
assert r["operatingsystems"][0]["arch"] == "aarch64"
assert fw["uefi-fallback-loader"] == "/EFI/BOOT/BOOTAA64.EFI", fw'
"$VMFERRY" preflight --target aws aa64.raw > aa64.pf ||
    { cat aa64.pf; die "aa64: aws preflight should pass"; }
report aa64-x64.raw 'assert fw["uefi-fallback-loader"] is None, fw'
expect_rc 1 "$VMFERRY" preflight --target aws aa64-x64.raw > aa64-x64.pf
grep -qF 'has no \EFI\BOOT\BOOTAA64.EFI' aa64-x64.pf ||
    { cat aa64-x64.pf; die "aa64 with an x64 loader: evidence"; }
echo "aarch64: BOOTAA64.EFI wanted and found"

for v in noloader small32; do
    report "$v.raw" '
assert fw["uefi-fallback-loader"] is None, fw
assert not [x for x in w if "ESP" in x], w'
    expect_rc 1 "$VMFERRY" preflight --target aws "$v.raw" > "$v.pf"
    grep -q '^FAIL aws-boot-mode' "$v.pf" || { cat "$v.pf"; die "$v: rule not failed"; }
    grep -qF 'ESP /dev/sda2 has no \EFI\BOOT\BOOTX64.EFI' "$v.pf" ||
        { cat "$v.pf"; die "$v: evidence"; }
    grep -q 'grub-install --removable' "$v.pf" || die "$v: no fix"
    "$VMFERRY" preflight --target aws --json "$v.raw" > "$v.pf.json" || true
    python3 - "$v.pf.json" <<'PY' || die "$v: preflight json"
import json, sys
r = json.load(open(sys.argv[1]))
x = [x for x in r["rules"] if x["id"] == "aws-boot-mode"][0]
assert r["verdict"] == "fail" and x["result"] == "fail" and x["fix"], x
assert [y["id"] for y in r["rules"] if y["result"] == "fail"] == ["aws-boot-mode"], r
PY
    echo "$v: no loader, aws boot-mode fails"
done
report empty.raw '
assert fw["uefi-fallback-loader"] is None, fw
assert "ESP /dev/sda2: /EFI/BOOT/BOOTX64.EFI is empty" in w, w'
expect_rc 1 "$VMFERRY" preflight --target aws empty.raw > empty.pf
grep -qF 'has no \EFI\BOOT\BOOTX64.EFI (ESP /dev/sda2: /EFI/BOOT/BOOTX64.EFI is empty)' empty.pf ||
    { cat empty.pf; die "empty: evidence"; }
"$VMFERRY" inspect noloader.raw > noloader.txt || die "noloader: inspect (text)"
grep -q '^firmware: uefi, no fallback loader on the ESP$' noloader.txt ||
    die "noloader: text output"

# The reader alone, against what mtools wrote and says it wrote.
"$fat_stat" "fat32.esp" /efi /EFI/BOOT /efi/boot/bootx64.efi /EFI/BOOT/BOOTX64.EFI \
    /efi/Boot/BootX64.efi /efi/nothere /efi/Boot/BootX64.efi/x > st.txt
printf '%s\n' 'dir	/efi' 'dir	/EFI/BOOT' 'file 40000	/efi/boot/bootx64.efi' \
    'file 40000	/EFI/BOOT/BOOTX64.EFI' 'file 40000	/efi/Boot/BootX64.efi' \
    'absent	/efi/nothere' 'absent	/efi/Boot/BootX64.efi/x' > st.want
diff -u st.want st.txt || die "fat-stat on fat32.esp"
# every long name, in other cases, and its short name as mdir lists it
mdir -i fat32.esp ::/efi/Boot > mdir.txt
python3 - mdir.txt "$fat_stat" fat32.esp <<'PY' || die "fat-stat disagrees with mdir"
import subprocess, sys
rows = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    p = line.split()
    if len(p) >= 6 and p[-1].startswith("fallback-entry-number-"):
        short = p[0] + ("." + p[1] if p[1] != "<DIR>" else "")
        rows.append((p[-1], short, int(p[2])))
assert len(rows) == 40, rows
paths, want = [], []
for long, short, size in rows:
    n = int(long.split("-")[3])
    assert size == 100 + n, (long, size)
    for q in ("/efi/Boot/" + long, "/EFI/BOOT/" + long.upper(),
              "/efi/boot/" + short.lower(), "/EFI/BOOT/" + short):
        paths.append(q)
        want.append("file %d\t%s" % (size, q))
out = subprocess.run([sys.argv[2], sys.argv[3]] + paths, check=True,
                     stdout=subprocess.PIPE, text=True).stdout.splitlines()
bad = [(w, o) for w, o in zip(want, out) if w != o]
assert not bad and len(out) == len(want), bad[:5]
PY
# FAT12 and FAT16: names as mtools stored them, any case
"$fat_stat" fat12.esp /EFI/BOOT/BOOTX64.EFI /efi/boot/bootx64.efi > st12.txt
[ "$(cut -f1 st12.txt | sort -u)" = "file 40000" ] || { cat st12.txt; die "fat12"; }
"$fat_stat" fat16.esp /EFI/ubuntu/grubx64.efi /efi/UBUNTU/GRUB.CFG \
    /Checksum-Victim-Long-Name.cfg /EFI/ubuntu/A-LONG-MENU-ENTRY-FILE-NAME-30.CFG \
    /EFI/ubuntu/a-long-menu-entry-file-name-31.cfg > st16.txt
printf '%s\n' 'file 1234' 'file 19' 'file 19' 'file 13' 'absent' > st16.want
cut -f1 st16.txt | diff -u st16.want - || die "fat16"
# the FAT32 of few clusters is read as FAT32 (as a FAT16 it would have no
# root directory)
"$fat_stat" small32.esp / /EFI > st32s.txt
printf '%s\n' 'dir	/' 'absent	/EFI' | diff -u - st32s.txt || die "small FAT32"
# a long name whose short entry no longer matches its checksum is not
# used: the short name still is
victim=$(mdir -i fat16.esp :: | awk '/checksum-victim-long-name.cfg/ { print $1 "." $2 }')
[ "$victim" = "CHECKS~1.CFG" ] || die "mtools named the victim '$victim'"
cp fat16.esp sum.esp
python3 - sum.esp <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"CHECKS~1CFG")
b[i + 5] = ord("X")
open(sys.argv[1], "wb").write(bytes(b))
PY
"$fat_stat" sum.esp /checksum-victim-long-name.cfg /CHECKX~1.CFG > sum.txt
printf '%s\n' 'absent' 'file 19' | diff -u - <(cut -f1 sum.txt) || die "LFN checksum"
echo "fat-stat agrees with mtools"

# Hostile ESPs: damage DISK ACTION; each gives its warning, and the
# loader is reported absent.
damage() {
    python3 - "$@" <<'PY'
import struct, subprocess, sys
disk, action = sys.argv[1], sys.argv[2]
ESP = 2 << 20
f = open(disk, "r+b")
def rd(off, n):
    f.seek(ESP + off)
    return f.read(n)
def wr(off, data):
    f.seek(ESP + off)
    f.write(data)
bs = rd(0, 512)
bps, spc, rsvd, nfats, rootents = struct.unpack_from("<HBHBH", bs, 11)
fatsz = struct.unpack_from("<H", bs, 22)[0] or struct.unpack_from("<I", bs, 36)[0]
def set_fat(c, v):   # every copy of the FAT (FAT32 here)
    for k in range(nfats):
        wr((rsvd + k * fatsz) * bps + 4 * c, struct.pack("<I", v))
if action == "bps0":
    wr(11, struct.pack("<H", 0))
elif action == "bps3":
    wr(11, struct.pack("<H", 3))
elif action == "spc0":
    wr(13, b"\0")
elif action == "toobig":
    tot = struct.unpack_from("<H", bs, 19)[0] or struct.unpack_from("<I", bs, 32)[0]
    wr(19, b"\0\0")
    wr(32, struct.pack("<I", tot * 2))
elif action == "efi-cluster":
    # FAT16: the root directory entry of EFI names cluster 0xfff0
    root = (rsvd + nfats * fatsz) * bps
    ents = rd(root, rootents * 32)
    i = ents.index(b"EFI        ")
    wr(root + i + 26, struct.pack("<H", 0xfff0))
elif action in ("loop", "beyond"):
    # FAT32: efi/Boot's chain, as mshowfat reports it
    out = subprocess.run(["mshowfat", "-i", "%s@@%d" % (disk, ESP), "::/efi/Boot"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    cl = []
    for part in out.split("<")[1:]:
        for r in part.split(">")[0].split(","):
            a, _, b = r.partition("-")
            cl += range(int(a), int(b or a) + 1)
    assert len(cl) >= 3, out
    # the second cluster leads back to the first: the loader's entry, in
    # the last cluster, is never reached
    set_fat(cl[1], cl[0] if action == "loop" else 0x0ffffff0)
f.close()
PY
}
hostile() {   # hostile NAME BASE ACTION EXPECTED-WARNING (also in $WANT)
    cp "$2.raw" "$1.raw"
    damage "$1.raw" "$3" || die "$1: damage"
    report "$1.raw" '
assert fw["uefi-fallback-loader"] is None, fw
assert any(x.startswith("ESP /dev/sda2: ") and os.environ["WANT"] in x
           for x in w), w'
    rc=0
    "$VMFERRY" preflight --target aws "$1.raw" > "$1.pf" 2> "$1.pf.err" || rc=$?
    [ "$rc" -eq 1 ] || { cat "$1.pf" "$1.pf.err"; die "$1: preflight exit $rc"; }
    ! grep -qE 'Sanitizer|runtime error' "$1.pf.err" || die "$1: sanitizer report (preflight)"
    grep -q "^FAIL aws-boot-mode" "$1.pf" || die "$1: rule not failed"
    grep -qF "$4" "$1.pf" || { cat "$1.pf"; die "$1: evidence lacks '$4'"; }
    echo "$1: $(grep -o -m 1 "ESP /dev/sda2: [^\"]*" "$1.raw.json")"
}
n=0
while IFS='|' read -r name base action want; do
    export WANT="$want"
    hostile "$name" "$base" "$action" "$want"
    n=$((n + 1))
done <<'EOF'
bps0|fat16|bps0|FAT bytes per sector 0 not a power of two
bps3|fat16|bps3|FAT bytes per sector 3 not a power of two
spc0|fat16|spc0|FAT sectors per cluster 0 not a power of two
toobig|fat12|toobig|larger than its device
efi-cluster|fat16|efi-cluster|directory /EFI: cluster 65520 beyond the volume's
loop|fat32|loop|directory /EFI/BOOT: cluster chain loops at cluster
beyond|fat32|beyond|directory /EFI/BOOT: cluster 268435440 (after
EOF
[ "$n" -eq 7 ] || die "only $n hostile ESPs"
echo ok
