# The command line: --version, --help for every command, every long
# option both in the command's --help and in the man page, clear errors.
. "$(dirname "$0")/lib.sh"
cd "$scratch"
"$VMFERRY" --version | grep -q '^vmferry [0-9]' || die "--version"
"$VMFERRY" --help > help.txt || die "--help"
man="$SRCDIR/docs/vmferry.1"
sed 's/\\-/-/g' "$man" > man.txt   # roff's \- is a plain hyphen
for cmd in $(sed -n "s/^  vmferry \([a-z]*\).*/\1/p" help.txt); do
    grep -q "vmferry $cmd" help.txt || die "$cmd missing from --help"
    "$VMFERRY" $cmd --help > h.txt || die "$cmd --help failed"
    grep -q "^usage: vmferry $cmd" h.txt || die "$cmd --help has no usage"
    grep -q "^.B vmferry $cmd" man.txt || die "$cmd missing from the man page"
    # every long option the command's parser knows is documented in both
    src=$(grep -l "^int cmd_$cmd(" "$SRCDIR"/src/cli/*.c)
    opts=$(grep -o '{ "[a-z-]*", [a-z_]*argument' "$src" "$SRCDIR/src/cli/common.c" |
           grep -o '"[a-z-]*"' | tr -d '"' | sort -u)
    for o in $opts; do
        # common.c options apply only to commands that call it
        if grep -q "$o" "$SRCDIR/src/cli/common.c" && ! grep -q "cli_parse_common" "$src" &&
           ! grep -q "\"$o\"" "$src"; then
            continue
        fi
        grep -q -- "--$o" h.txt || die "$cmd: --$o missing from --help"
        grep -q -- "--$o" man.txt || die "$cmd: --$o missing from the man page"
    done
done
set +e
"$VMFERRY" frobnicate 2>err.txt; rc=$?
set -e
[ $rc -ne 0 ] || die "unknown command accepted"
"$VMFERRY" info does-not-exist 2>err.txt && die "missing file accepted"
[ "$(wc -l < err.txt)" -eq 1 ] || die "error not one line"
grep -q '^vmferry: info: does-not-exist: ' err.txt || die "error does not name the file: $(cat err.txt)"
truncate -s 1M x.raw
"$VMFERRY" convert -O qcow9 x.raw y 2>err.txt && die "unknown format accepted"
grep -q "unknown format 'qcow9'" err.txt || die "bad format message: $(cat err.txt)"
"$VMFERRY" convert -O raw -o bogus=1 x.raw y 2>err.txt && die "unknown option accepted"
grep -q "bogus" err.txt || die "bad option message: $(cat err.txt)"
[ ! -e y ] || die "failed convert left its output"
# compare runs segments on several threads: the first mismatch is the
# lowest one (the exact byte; qemu-img names its 512-byte sector)
truncate -s 300M ca.raw cb.raw
printf 'x' | dd of=cb.raw bs=1 seek=290000000 conv=notrunc 2>/dev/null
printf 'y' | dd of=cb.raw bs=1 seek=200000001 conv=notrunc 2>/dev/null
"$VMFERRY" compare ca.raw cb.raw > ours.txt && die "different images compared equal"
grep -qx 'Content mismatch at offset 200000001!' ours.txt || die "compare: $(cat ours.txt)"
{ qemu-img compare ca.raw cb.raw || true; } | grep -qx 'Content mismatch at offset 200000000!' ||
    die "qemu-img does not see the same first difference"
rm -f ca.raw cb.raw
echo ok
