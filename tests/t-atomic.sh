# Outputs appear whole or not at all: SIGKILL during convert and an I/O
# error on the output leave nothing at the destination path, and the
# source is unchanged.
. "$(dirname "$0")/lib.sh"
cd "$scratch"
gen_pattern 256M src.raw
before=$("$VMFERRY" digest src.raw | cut -d' ' -f1)

for fmt in raw qcow2; do
    for delay in 0.05 0.2 0.5; do
        rm -rf out; mkdir out
        "$VMFERRY" convert -m 1 -O $fmt src.raw out/dst.img &
        pid=$!
        sleep $delay
        kill -KILL $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        if [ -e out/dst.img ]; then
            # the convert may have finished before the kill: then whole
            "$VMFERRY" compare src.raw out/dst.img >/dev/null ||
                die "$fmt: killed at ${delay}s left a partial out/dst.img"
        fi
    done
    # SIGTERM / SIGINT: the temporary file goes too
    for sig in TERM INT; do
        rm -rf out; mkdir out
        "$VMFERRY" convert -m 1 -O $fmt src.raw out/dst.img &
        pid=$!
        sleep 0.1
        kill -$sig $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        if [ -n "$(ls -A out)" ]; then
            [ "$(ls -A out)" = dst.img ] && "$VMFERRY" compare src.raw out/dst.img >/dev/null ||
                die "$fmt: SIG$sig left $(ls -A out)"
        fi
    done
    # injected I/O errors on the output, at several points
    for n in 1 2 5 20 100; do
        rm -rf out; mkdir out
        set +e
        VMFERRY_TEST_FAIL_IO=$n "$VMFERRY" convert -O $fmt src.raw out/dst.img 2> err.txt
        rc=$?
        set -e
        [ $rc -ne 0 ] || die "$fmt: fault at I/O $n not reported"
        [ ! -e out/dst.img ] || die "$fmt: fault at I/O $n left out/dst.img"
        [ -z "$(ls -A out)" ] || die "$fmt: fault at I/O $n left $(ls -A out)"
        [ "$(wc -l < err.txt)" -eq 1 ] || die "$fmt: error is not one line: $(cat err.txt)"
        grep -q '^vmferry: convert: .*out/dst.img' err.txt ||
            die "$fmt: error does not name the file: $(cat err.txt)"
    done
done
after=$("$VMFERRY" digest src.raw | cut -d' ' -f1)
[ "$before" = "$after" ] || die "source changed"
echo ok
