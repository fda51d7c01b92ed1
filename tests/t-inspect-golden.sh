# inspect: the five fixture guests (Debian 12 on MBR with a logical
# partition, Ubuntu 22.04 on GPT, RHEL 9 on LVM with striped and linear
# LVs, Alpine, SUSE) give their golden --json report; the same guest in
# qcow2 / VHDX / VHD / VMDK gives the same facts; the text output is a
# summary of the same.  VMFERRY_UPDATE_GOLDEN=1 rewrites the golden files.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio sqlite3 zstd lz4 xz bzip2 gzip mkswap
mk="$SRCDIR/tests/fixtures/mk-guest.py"
scrub="$SRCDIR/tests/fixtures/scrub-inspect.py"
cd "$scratch"
for d in debian ubuntu rhel alpine suse; do
    python3 "$mk" "$d" "$d.raw" 2>/dev/null || die "mk-guest $d failed"
    "$VMFERRY" inspect --json "$d.raw" > "$d.json" || die "inspect $d failed"
    python3 "$scrub" < "$d.json" > "$d.scrubbed"
    golden="$SRCDIR/tests/golden/inspect-$d.json"
    if [ "${VMFERRY_UPDATE_GOLDEN:-}" = 1 ]; then
        cp "$d.scrubbed" "$golden"
    fi
    diff -u "$golden" "$d.scrubbed" || die "$d: report differs from $golden"
    # text output names the same facts
    "$VMFERRY" inspect "$d.raw" > "$d.txt" || die "inspect $d (text) failed"
    distro=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["operatingsystems"][0]["distro"])' "$d.json")
    grep -q "operating system on .*: $distro " "$d.txt" || die "$d: text lacks the OS line"
    grep -q "^filesystems:" "$d.txt" || die "$d: text lacks filesystems"
    # other formats, when vmferry reads them: the same facts
    python3 "$scrub" --facts < "$d.json" > "$d.facts"
    if command -v qemu-img >/dev/null; then
        for f in qcow2 vhdx vpc vmdk; do
            qemu-img convert -O $f "$d.raw" "$d.$f" 2>/dev/null || continue
            got=$("$VMFERRY" info --json "$d.$f" 2>/dev/null |
                  python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])' 2>/dev/null || true)
            if [ "$got" != "$f" ]; then
                echo "$d: $f not read by this build (got '$got'); skipped"
                continue
            fi
            "$VMFERRY" inspect --json "$d.$f" | python3 "$scrub" --facts > "$d.$f.facts" ||
                die "inspect $d.$f failed"
            diff -u "$d.facts" "$d.$f.facts" || die "$d: $f facts differ from raw"
            echo "$d: $f gives the same facts"
        done
    fi
done
# several disks are one guest: the second disk's sdb1 resolves
truncate -s 16M second.raw
"$VMFERRY" inspect --json rhel.raw second.raw > two.json
python3 - two.json <<'PY' || die "two-disk inspection wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert [d["device"] for d in r["disks"]] == ["/dev/sda", "/dev/sdb"], r["disks"]
assert r["disks"][1]["partition-table"]["type"] == "none"
PY
echo ok
