# prepare on ext filesystems whose journal needs recovery: the journal is
# replayed into the copy-on-write overlay, then edited and converted.
# Dirty journals are made without root: debugfs' journal_open /
# journal_write / journal_close (e2fsprogs 1.47) log transactions without
# replaying them.  The oracle is e2fsck -E journal_only on a copy: our
# output must equal its replay block for block (but the superblock), be
# e2fsck -fn clean, and have needs_recovery cleared; the source's SHA-256
# is unchanged.  Covered: journals without checksums and with v1, v2, v3
# checksums, 32- and 64-bit tags, 1 KiB and 4 KiB blocks, ext3's
# block-mapped journal inode, several transactions, one never committed,
# revoke records, an escaped block, and hostile journals (refused with a
# one-line error naming the bad value, or the bad transaction skipped).
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 mkfs.ext3 sfdisk e2fsck debugfs dumpe2fs sha256sum
debugfs -R help /dev/null 2>&1 | grep -q journal_write ||
    skip "debugfs has no journal_write (e2fsprogs < 1.43)"
cd "$scratch"

dbg() { debugfs -R "$2" "$1" 2>/dev/null; }
bsize() { dumpe2fs -h "$1" 2>/dev/null | awk '/^Block size:/ { print $3 }'; }
needs_recovery() { dumpe2fs -h "$1" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; }
# jwrite IMG JO-OPTIONS: the journal commands on stdin, between jo and jc
jwrite() {
    { echo "jo $2"; cat; echo jc; } | debugfs -w -f - "$1" > jw.log 2>&1 ||
        { cat jw.log; die "debugfs journal write on $1"; }
}
# no_sanitizer LOG: fail on a sanitizer report (the asan build)
no_sanitizer() {
    if grep -qE 'Sanitizer|runtime error' "$1"; then
        cat "$1"
        die "sanitizer report"
    fi
}
# same_but_super A B: A and B equal but in the block holding the primary
# superblock (e2fsck and vmferry both rewrite it: times, counts)
same_but_super() {
    python3 - "$1" "$2" "$(bsize "$1")" <<'PY'
import sys
a, b, bs = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
assert len(a) == len(b), (len(a), len(b))
sb = 1024 // bs
diff = [i for i in range(len(a) // bs) if a[i*bs:(i+1)*bs] != b[i*bs:(i+1)*bs] and i != sb]
if diff:
    sys.exit("blocks differ: %s" % diff[:20])
PY
}

# The tree every filesystem starts from.
mkdir -p stage/etc stage/dir
echo base > stage/etc/hostname
seq 1 3000 > stage/data.txt
seq 5000 9000 > stage/other.txt
for i in 1 2 3 4 5; do echo "file $i" > "stage/dir/f$i"; done
python3 -c "
open('v1.bin', 'wb').write(b'V1' * 32768)
open('v3.bin', 'wb').write(b'V3' * 32768)
open('esc.bin', 'wb').write(bytes.fromhex('c03b3998') + b'E' * 65532)
"
seq 1 200 | sed 's/^/new line /' > new.txt

mkbase() { # IMG MKFS [OPTIONS...]: 4 KiB blocks unless OPTIONS say
    local img=$1 mk=$2
    shift 2
    [[ " $* " == *" -b "* ]] || set -- -b 4096 "$@"
    "$mk" -q -F -d stage -U 0b1e2b3c-4d5e-6f70-8192-a3b4c5d6e7f8 "$@" "$img" 32M \
        > /dev/null 2>&1 || die "$mk $* failed"
}

# metadata IMG JO-OPTIONS: journal, in two committed transactions and an
# uncommitted third, every block a debugfs edit of a copy changed (a new
# file, a removed one, a new directory: inode tables, bitmaps, group
# descriptors, directory blocks, the superblock), leaving IMG dirty
metadata() {
    local img=$1 jo=$2 bs
    bs=$(bsize "$img")
    cp "$img" edited.img
    debugfs -w -f - edited.img > /dev/null 2>&1 <<EOF
write new.txt /new.txt
rm /dir/f3
mkdir /newdir
EOF
    python3 - "$img" edited.img "$bs" <<'PY'
import sys
a, b, bs = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
ch = [i for i in range(len(a) // bs) if a[i*bs:(i+1)*bs] != b[i*bs:(i+1)*bs]]
assert len(ch) >= 4, ch
half = len(ch) // 2
for name, part in (("t1", ch[:half]), ("t2", ch[half:])):
    open(name + ".list", "w").write(",".join(map(str, part)))
    open(name + ".bin", "wb").write(b"".join(b[i*bs:(i+1)*bs] for i in part))
PY
    local data
    data=$(dbg "$img" "blocks /data.txt" | awk '{ print $1 }')
    jwrite "$img" "$jo" <<EOF
jw -b $(cat t1.list) t1.bin
jw -b $(cat t2.list) t2.bin
jw -b $data v3.bin -c
EOF
    needs_recovery "$img" || die "debugfs left $img clean"
}

# check_replay DIRTY OUT: OUT (vmferry's) is what e2fsck's replay of
# DIRTY gives, clean, without needs_recovery
check_replay() {
    local dirty=$1 out=$2
    cp "$dirty" oracle.img
    e2fsck -fy -E journal_only oracle.img > fsck.log 2>&1 ||
        { cat fsck.log; die "e2fsck could not replay $dirty"; }
    needs_recovery oracle.img && die "e2fsck left needs_recovery"
    same_but_super oracle.img "$out" || die "$out differs from e2fsck's replay"
    e2fsck -fn "$out" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck -fn $out"; }
    needs_recovery "$out" && die "needs_recovery still set in $out"
    dumpe2fs -h "$out" 2>/dev/null | grep -q '^Journal start: *0$' ||
        die "journal of $out not empty"
}

# 1. metadata transactions, for every journal flavour debugfs writes
variant() { # NAME JO-OPTIONS MKFS [MKFS OPTIONS...]
    local name=$1 jo=$2
    shift 2
    mkbase "$name.img" "$@"
    metadata "$name.img" "$jo"
    local sha
    sha=$(sha256_of "$name.img")
    "$VMFERRY" prepare "$name.img" "$name.out" 2> log.txt ||
        { cat log.txt; die "$name: prepare failed"; }
    no_sanitizer log.txt
    [ "$(sha256_of "$name.img")" = "$sha" ] || die "$name: source changed"
    grep -q 'Replayed the journal of /dev/sda (2 transactions, [0-9]* blocks)' log.txt ||
        { cat log.txt; die "$name: no change log line"; }
    check_replay "$name.img" "$name.out"
    cmp -s <(dbg "$name.out" "cat /new.txt") new.txt || die "$name: /new.txt"
    dbg "$name.out" "stat /dir/f3" | grep -q Inode: && die "$name: /dir/f3 kept"
    dbg "$name.out" "stat /newdir" | grep -q "Type: directory" || die "$name: /newdir"
    # the uncommitted third transaction is not replayed
    cmp -s <(dbg "$name.out" "cat /data.txt") stage/data.txt || die "$name: /data.txt"
    echo "$name: ok"
}
variant v3 "-c" mkfs.ext4
variant v2 "-c -v 2" mkfs.ext4
variant v2-32bit "-c -v 2" mkfs.ext4 -O ^64bit
variant v3-1k-32bit "-c" mkfs.ext4 -b 1024 -O ^64bit
variant nocsum "" mkfs.ext4 -O ^metadata_csum
variant v1 "-c" mkfs.ext4 -O ^metadata_csum
variant v1-1k-32bit "-c" mkfs.ext4 -b 1024 -O ^metadata_csum,^64bit
variant ext3 "" mkfs.ext3

# 2. revoke records and an escaped block: x and y logged in T1, both
# revoked in T2, y and z logged again in T3, w (its first bytes are the
# journal magic) in T4, x in T5 never committed
for jo in "-c" ""; do
    mkbase rv.img mkfs.ext4
    read -r x y z _ <<< "$(dbg rv.img "blocks /data.txt")"
    w=$(dbg rv.img "blocks /other.txt" | awk '{ print $1 }')
    jwrite rv.img "$jo" <<EOF
jw -b $x,$y v1.bin
jw -r $x,$y
jw -b $y,$z v3.bin
jw -b $w esc.bin
jw -b $x v3.bin -c
EOF
    dbg rv.img logdump | grep -q 'revoke table' || die "no revoke block written"
    "$VMFERRY" prepare rv.img rv.out 2> log.txt || { cat log.txt; die "revoke: prepare"; }
    no_sanitizer log.txt
    grep -q '(4 transactions, 3 blocks)' log.txt || { cat log.txt; die "revoke: counts"; }
    check_replay rv.img rv.out
    bs=$(bsize rv.out)
    blk() { dd if=rv.out bs="$bs" skip="$1" count=1 2>/dev/null | head -c "${2:-4}"; }
    [ "$(blk "$x")" = "$(printf '1\n2\n')" ] || die "revoked block $x was replayed"
    [ "$(blk "$y")" = V3V3 ] || die "block $y: not the copy logged after its revoke"
    [ "$(blk "$z")" = V3V3 ] || die "block $z"
    [ "$(blk "$w" 8 | od -An -tx1 | tr -d ' \n')" = c03b399845454545 ] ||
        die "escaped block $w not restored"
    echo "revoke and escape (jo $jo): ok"
done

# v1 checksums and a revoke-only transaction: debugfs' commit checksum
# for it is not the crc32 of its descriptor and data blocks (it has none),
# and e2fsck stops the replay there ("transaction 2 was corrupt"); so do we
mkbase v1r.img mkfs.ext4 -O ^metadata_csum
read -r x y _ <<< "$(dbg v1r.img "blocks /data.txt")"
jwrite v1r.img "-c" <<EOF
jw -b $x,$y v1.bin
jw -r $x
jw -b $y esc.bin
EOF
"$VMFERRY" prepare v1r.img v1r.out 2> log.txt || { cat log.txt; die "v1 revoke: prepare"; }
no_sanitizer log.txt
grep -q '(1 transaction, 2 blocks)' log.txt || { cat log.txt; die "v1 revoke: counts"; }
check_replay v1r.img v1r.out
echo "v1 revoke-only transaction: ok"

# 3. prepare --hostname on a guest whose root was not shut down cleanly
python3 "$SRCDIR/tests/fixtures/mk-guest.py" debian g.raw --layout mbr1 2>/dev/null ||
    die "mk-guest"
root=$(sfdisk -d g.raw | awk '/start=/ { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { gsub(/[^0-9]/, "", $(i+1)); print $(i+1) * 512; exit } }')
[ -n "$root" ] || die "no root partition"
dd if=g.raw of=root.img bs=1M skip=$((root / 1048576)) count=28 2>/dev/null
metadata root.img "-c"
dd if=root.img of=g.raw bs=1M seek=$((root / 1048576)) conv=notrunc 2>/dev/null
sha256sum g.raw > g.sha
"$VMFERRY" prepare --hostname web9 --json g.raw out.raw > out.json 2> log.txt ||
    { cat log.txt; die "prepare --hostname"; }
no_sanitizer log.txt
sha256sum -c --quiet g.sha || die "source changed"
grep -q '^\[ *[0-9.]*\] Replayed the journal of /dev/sda1 (2 transactions, [0-9]* blocks)' log.txt ||
    { cat log.txt; die "no replay line in the change log"; }
python3 -c "
import json; j = json.load(open('out.json'))
assert any(c['change'].startswith('Replayed the journal') and c['why'] for c in j['changes']), j
" || die "JSON changes lack the replay"
R="out.raw?offset=$root"
e2fsck -fn "$R" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck -fn after --hostname"; }
needs_recovery "$R" && die "needs_recovery still set"
[ "$(dbg "$R" "cat /etc/hostname")" = web9 ] || die "hostname not set"
cmp -s <(dbg "$R" "cat /new.txt") new.txt || die "journaled /new.txt missing"
dbg "$R" "stat /newdir" | grep -q "Type: directory" || die "journaled /newdir missing"
echo "prepare --hostname: ok"

# 4. journals patched by jpatch.py: a log that wraps, hostile ones
cat > jpatch.py <<'PY'
"""jpatch.py IMG WHAT: damage the journal of IMG (extent-mapped, debugfs
made) and fix the checksums around the damage unless WHAT says not."""
import re, struct, subprocess, sys

def crc32c(crc, data):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc

img, what = sys.argv[1], sys.argv[2]
def dbg(cmd):
    return subprocess.run(["debugfs", "-R", cmd, img], capture_output=True,
                          text=True).stdout
bs = int([l.split()[-1] for l in subprocess.run(["dumpe2fs", "-h", img],
         capture_output=True, text=True).stdout.splitlines()
         if l.startswith("Block size:")][0])
# the journal's extents (mkfs.ext4 -d may split a small fs's journal)
runs = [tuple(map(int, m.groups())) for m in
        re.finditer(r"(\d+) - +\d+ +(\d+) - +\d+ +(\d+)", dbg("ex <8>"))]
def phys(k):
    for l, p, n in runs:
        if l <= k < l + n:
            return p + k - l
    sys.exit("journal block %d not mapped" % k)
j0 = phys(0)
f = open(img, "r+b")
def rd(k):
    f.seek(phys(k) * bs)
    return bytearray(f.read(bs))
def wr(k, b):
    f.seek(phys(k) * bs)
    f.write(b)
sb = rd(0)
incompat = struct.unpack(">I", sb[0x28:0x2c])[0]
csum = incompat & 0x18
seed = crc32c(0xffffffff, sb[0x30:0x40])
def fix_sb():
    sb[0xfc:0x100] = b"\0" * 4
    sb[0xfc:0x100] = struct.pack(">I", crc32c(0xffffffff, sb[:1024]))
def fix_tail(b):
    if csum:
        b[-4:] = b"\0" * 4
        b[-4:] = struct.pack(">I", crc32c(seed, b))
start = struct.unpack(">I", sb[0x1c:0x20])[0]
if what == "head":      # the log starts at s_first, as after a mount
    sb[0x1c:0x20] = sb[0x14:0x18]; fix_sb(); wr(0, sb)
    sys.exit(0)
assert start, "journal is empty"
if what == "rotate":    # move the log so that it wraps 3 blocks in
    maxlen, first = (struct.unpack(">I", sb[o:o+4])[0] for o in (0x10, 0x14))
    log = [rd(start + i) for i in range(64)]
    for i in range(64):
        wr(start + i, bytearray(bs))
    for i, b in enumerate(log):
        wr(first + (maxlen - 3 - first + i) % (maxlen - first), b)
    sb[0x1c:0x20] = struct.pack(">I", maxlen - 3); fix_sb(); wr(0, sb)
    sys.exit(0)
d = rd(start)           # the first transaction's first block
if what == "maxlen":
    sb[0x10:0x14] = struct.pack(">I", 0x7fffffff); fix_sb(); wr(0, sb)
elif what == "start":
    sb[0x1c:0x20] = struct.pack(">I", 5000000); fix_sb(); wr(0, sb)
elif what == "first":
    sb[0x14:0x18] = struct.pack(">I", 0); fix_sb(); wr(0, sb)
elif what == "fast-commit":
    sb[0x28:0x2c] = struct.pack(">I", incompat | 0x20); fix_sb(); wr(0, sb)
elif what == "unknown-feature":
    sb[0x28:0x2c] = struct.pack(">I", incompat | 0x8000); fix_sb(); wr(0, sb)
elif what == "sb-csum":
    sb[0x100] ^= 1; wr(0, sb)
elif what == "blocksize":
    sb[0x0c:0x10] = struct.pack(">I", bs * 2); fix_sb(); wr(0, sb)
elif what == "tag-beyond":
    assert struct.unpack(">I", d[4:8])[0] == 1, "not a descriptor"
    d[12:16] = struct.pack(">I", 0x00ffffff); fix_tail(d); wr(start, d)
elif what == "tag-journal":
    d[12:16] = struct.pack(">I", phys(3)); fix_tail(d); wr(start, d)
elif what == "desc-csum":
    d[bs - 100] ^= 1; wr(start, d)
elif what == "data-csum":
    b = rd(start + 1); b[100] ^= 1; wr(start + 1, b)
elif what == "commit-csum":
    k = start
    while struct.unpack(">I", rd(k)[4:8])[0] != 2:
        k += 1
    c = rd(k); c[0x200] ^= 1; wr(k, c)
elif what == "revoke-count":
    k = start
    while struct.unpack(">I", rd(k)[4:8])[0] != 5:
        k += 1
    r = rd(k); r[12:16] = struct.pack(">I", 0xfffffff0); fix_tail(r); wr(k, r)
else:
    sys.exit("unknown damage " + what)
PY

# a log that wraps from the journal's end to its start
for jo in "-c" ""; do
    mkbase wr.img mkfs.ext4
    metadata wr.img "$jo"
    python3 jpatch.py wr.img rotate || die "jpatch rotate"
    dbg wr.img logdump | grep -q "Journal starts at block 1021" || die "log not moved"
    "$VMFERRY" prepare wr.img wr.out 2> log.txt || { cat log.txt; die "wrap: prepare"; }
    no_sanitizer log.txt
    grep -q '(2 transactions, [0-9]* blocks)' log.txt || { cat log.txt; die "wrap: counts"; }
    check_replay wr.img wr.out
    cmp -s <(dbg wr.out "cat /new.txt") new.txt || die "wrap: /new.txt"
    echo "wrapping log (jo $jo): ok"
done

# hostile IMG-JO WHAT EXPECT: EXPECT is "fail:PATTERN" (prepare refuses,
# one line naming the bad value, no output) or "skip" (the damaged
# transaction is not replayed; the filesystem is as before it)
hostile() {
    local jo=$1 what=$2 expect=$3
    mkbase h.img mkfs.ext4
    local x
    x=$(dbg h.img "blocks /data.txt" | awk '{ print $1 }')
    jwrite h.img "$jo" <<EOF
jw -b $x v3.bin
jw -r $x
EOF
    python3 jpatch.py h.img "$what" || die "jpatch $what"
    local sha rc=0
    sha=$(sha256_of h.img)
    rm -f h.out
    "$VMFERRY" prepare h.img h.out > err.txt 2>&1 || rc=$?
    no_sanitizer err.txt
    [ "$(sha256_of h.img)" = "$sha" ] || die "$what: source changed"
    case $expect in
    fail:*)
        [ "$rc" -ne 0 ] || die "$what: prepare succeeded"
        grep -q "${expect#fail:}" err.txt || { cat err.txt; die "$what: no '${expect#fail:}' in the error"; }
        [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; die "$what: error is not one line"; }
        [ -e h.out ] && die "$what: a refused prepare left its output"
        ;;
    skip)
        [ "$rc" -eq 0 ] || { cat err.txt; die "$what: prepare failed"; }
        grep -q '(0 transactions, 0 blocks)' err.txt || { cat err.txt; die "$what: replayed"; }
        cmp -s <(dbg h.out "cat /data.txt") stage/data.txt || die "$what: replayed"
        e2fsck -fn h.out > fsck.log 2>&1 || { cat fsck.log; die "$what: e2fsck -fn"; }
        needs_recovery h.out && die "$what: needs_recovery still set"
        ;;
    esac
    echo "hostile $what (jo $jo): ok"
}
hostile "-c" maxlen "fail:journal length 2147483647 blocks is beyond"
hostile "" maxlen "fail:journal length 2147483647 blocks is beyond"
hostile "-c" start "fail:journal log head at block 5000000"
hostile "" first "fail:journal log start 0 outside"
hostile "-c" fast-commit "fail:fast commits"
hostile "-c" unknown-feature "fail:unknown incompatible features 0x8000"
hostile "-c" sb-csum "fail:journal superblock checksum"
hostile "" blocksize "fail:journal block size 8192 differs"
hostile "" tag-beyond "fail:for block 16777215, beyond the filesystem"
hostile "-c" tag-beyond "fail:for block 16777215, beyond the filesystem"
hostile "" tag-journal "fail:which holds the journal itself"
hostile "-c" data-csum "fail:does not match its checksum"
hostile "-c" desc-csum skip
hostile "-c" commit-csum skip
hostile "-c -v 2" commit-csum skip
hostile "" revoke-count "fail:claims 4294967280 bytes of records"

# a transaction that never commits, alone: nothing to replay, and what
# is wrong in it (it may be torn by the crash) is no error
uncommitted() { # DAMAGE (or "none")
    mkbase u.img mkfs.ext4
    local x
    x=$(dbg u.img "blocks /data.txt" | awk '{ print $1 }')
    jwrite u.img "-c" <<EOF
jw -b $x v3.bin -c
EOF
    # debugfs sets neither s_start nor needs_recovery without a commit; a
    # kernel has both set from the mount on
    python3 jpatch.py u.img head || die "jpatch head"
    [ "$1" = none ] || python3 jpatch.py u.img "$1" || die "jpatch $1"
    debugfs -w -R "feature needs_recovery" u.img > /dev/null 2>&1
    needs_recovery u.img || die "uncommitted: not dirty"
    "$VMFERRY" prepare u.img u.out 2> log.txt || { cat log.txt; die "uncommitted $1: prepare"; }
    no_sanitizer log.txt
    grep -q '(0 transactions, 0 blocks)' log.txt || { cat log.txt; die "uncommitted $1: replayed"; }
    check_replay u.img u.out
    echo "uncommitted, damage $1: ok"
}
uncommitted none
uncommitted tag-beyond
uncommitted data-csum

# needs_recovery cleared by a tool over a log with transactions: the
# kernel would replay them at mount (over our edits), so we replay too
mkbase c.img mkfs.ext4
metadata c.img "-c"
debugfs -w -R "feature ^needs_recovery" c.img > /dev/null 2>&1
needs_recovery c.img && die "flag not cleared"
"$VMFERRY" prepare c.img c.out 2> log.txt || { cat log.txt; die "flag clear: prepare"; }
no_sanitizer log.txt
grep -q '(2 transactions, [0-9]* blocks)' log.txt || { cat log.txt; die "flag clear: not replayed"; }
check_replay c.img c.out
echo "log with the flag clear: ok"

# an external journal is refused
mkbase x.img mkfs.ext4
debugfs -w -f - x.img > /dev/null 2>&1 <<EOF
ssv journal_inum 0
ssv journal_uuid 11111111-2222-3333-4444-555555555555
feature needs_recovery
EOF
want=$(sha256_of x.img)
if "$VMFERRY" prepare x.img x.out > err.txt 2>&1; then die "external journal: succeeded"; fi
no_sanitizer err.txt
grep -q "external device.*11111111-2222-3333-4444-555555555555" err.txt ||
    { cat err.txt; die "external journal: no reason"; }
[ "$(sha256_of x.img)" = "$want" ] || die "external: source changed"
echo "external journal: ok"
echo ok
