# inspect / preflight command line: --help and the man page name every
# long option of both commands; both appear in `vmferry --help`; errors
# are one line naming the file; an image that is no guest gives an empty
# report, not an error.
. "$(dirname "$0")/lib.sh"
cd "$scratch"
man="$SRCDIR/docs/vmferry.1"
sed 's/\\-/-/g' "$man" > man.txt
"$VMFERRY" --help > help.txt
for cmd in inspect preflight; do
    grep -q "vmferry $cmd" help.txt || die "$cmd missing from --help"
    "$VMFERRY" $cmd --help > h.txt || die "$cmd --help failed"
    grep -q "^usage: vmferry $cmd" h.txt || die "$cmd --help has no usage"
    grep -q "^.B vmferry $cmd" man.txt || die "$cmd missing from the man page"
    src=$(grep -l "^int cmd_$cmd(" "$SRCDIR"/src/cli/*.c)
    opts=$(grep -o '{ "[a-z-]*", [a-z_]*argument' "$src" | grep -o '"[a-z-]*"' | tr -d '"' || true)
    if grep -q cli_parse_common "$src"; then
        opts="$opts $(grep -o '{ "[a-z-]*", [a-z_]*argument' "$SRCDIR/src/cli/common.c" |
                      grep -o '"[a-z-]*"' | tr -d '"')"
    fi
    for o in $opts; do
        grep -q -- "--$o" h.txt || die "$cmd: --$o missing from --help"
        grep -q -- "--$o" man.txt || die "$cmd: --$o missing from the man page"
    done
done
"$VMFERRY" inspect does-not-exist 2> err.txt && die "missing file accepted"
[ "$(wc -l < err.txt)" -eq 1 ] || die "error not one line"
grep -q '^vmferry: inspect: does-not-exist: ' err.txt || die "error: $(cat err.txt)"
expect_rc 1 "$VMFERRY" inspect 2>/dev/null
truncate -s 4M empty.raw
"$VMFERRY" inspect --json empty.raw > e.json || die "empty disk failed"
python3 - e.json <<'PY' || die "empty report wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["schema-version"] == 1 and r["operatingsystems"] == [] and r["filesystems"] == []
assert r["disks"][0]["partition-table"]["type"] == "none"
PY
"$VMFERRY" inspect empty.raw | grep -q '^firmware: bios' || die "text of an empty disk"
expect_rc 1 "$VMFERRY" preflight --target aws empty.raw
echo '[1,2]' > notreport.json
expect_rc 1 "$VMFERRY" preflight --target aws --from-report notreport.json 2> err.txt
grep -q 'not a JSON inspection report' err.txt || die "bad report message"
echo ok
