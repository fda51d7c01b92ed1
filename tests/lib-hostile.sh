# tests/lib-hostile.sh: the shared judge of the hostile-image suites
# (t-hostile-qcow2, t-hostile-vmdk, t-hostile-vhd).  Source it after lib.sh, with
# $hdir holding the images and a MANIFEST of "name<TAB>class<TAB>what"
# lines, and $odir an empty directory for convert outputs; then call
# hostile_run_manifest EXT [CHECK_RC...] and hostile_report.
#
# Classes: open (info 1, convert 1, check 1/2/3, map and digest
# non-zero), chain (as open, check any), deep (convert 1, digest
# non-zero, check 1/2/3), payload (convert 1, digest non-zero), check
# (check exits CHECK_RC, default 1/2/3), any (no crash, no messy
# error), control (everything 0, content equal to qemu-img's reading).
# Every run must finish within 10 s without a signal or a sanitizer
# report; a failure prints exactly one "vmferry: " line naming the file
# and leaves nothing in $odir; the source's bytes never change.

failures=()
fail() { failures+=("$*"); echo "  FAIL: $*"; }

# run_one FILE CMD...: run vmferry CMD... (FILE is the image it names)
# and judge how it ended.
#   Sets $rc, $out (stdout file), $err (stderr file).
out="$scratch/stdout" err="$scratch/stderr"
run_one() {
    local file=$1
    shift
    local t0 t1
    t0=$(date +%s%N)
    rc=0
    timeout -k 2 10 "$VMFERRY" "$@" >"$out" 2>"$err" </dev/null || rc=$?
    t1=$(date +%s%N)
    local what="$1 ${file##*/} (exit $rc)"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "$what: took more than 10 s"
        return
    fi
    if [ "$rc" -ge 128 ]; then
        fail "$what: killed by signal $((rc - 128))"
    fi
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error|Sanitizer' \
            "$err"; then
        fail "$what: sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$err")"
    fi
    local n
    n=$(wc -l < "$err")
    if [ "$1" = check ] && { [ "$rc" -eq 2 ] || [ "$rc" -eq 3 ]; }; then
        # A check that ran reports its findings on stdout, as qemu-img
        # check does; stderr holds at most the one-line summary.
        if [ "$n" -gt 1 ] || { [ "$n" -eq 1 ] && ! grep -q '^vmferry: ' "$err"; }; then
            fail "$what: unexpected stderr: $(head -c 300 "$err" | tr '\n' '|')"
        fi
    elif [ "$rc" -ne 0 ]; then
        if [ "$n" -ne 1 ]; then
            fail "$what: $n lines on stderr, wanted 1: $(head -c 300 "$err" | tr '\n' '|')"
        elif ! grep -q '^vmferry: ' "$err"; then
            fail "$what: stderr does not start with 'vmferry: ': $(cat "$err")"
        elif ! grep -qF "$file" "$err"; then
            fail "$what: stderr does not name the file: $(cat "$err")"
        fi
    fi
    echo "    $(((t1 - t0) / 1000000)) ms rc=$rc $*: $(head -n1 "$err")"
}

# want_rc WHAT ALLOWED...: the last run's $rc must be one of ALLOWED
# ("nz" = any non-zero exit that is not a signal or timeout).
want_rc() {
    local what=$1 a
    shift
    for a in "$@"; do
        if [ "$a" = nz ]; then
            [ "$rc" -ge 1 ] && [ "$rc" -lt 124 ] && return 0
        elif [ "$rc" -eq "$a" ]; then
            return 0
        fi
    done
    fail "$what: exit $rc, wanted one of: $*"
}

# After a failed convert the destination and any temporary must be gone.
check_outdir() {
    local what=$1
    if [ "$rc" -ne 0 ] && [ -n "$(ls -A "$odir")" ]; then
        fail "$what: failed convert left files: $(ls -A "$odir" | tr '\n' ' ')"
    fi
    rm -rf "${odir:?}"/* "$odir"/.[!.]* 2>/dev/null || true
}

# hostile_run_manifest EXT [CHECK_RC...]: judge every image in MANIFEST.
hostile_run_manifest() {
    local ext=$1
    shift
    local check_rc=${*:-1 2 3}
    nfiles=0
    while IFS=$'\t' read -r -u 3 name cls what; do
        [ "$cls" = aux ] && continue
        f="$hdir/$name.$ext"
        [ -e "$f" ] || die "no $f for the manifest entry $name"
        nfiles=$((nfiles + 1))
        echo "$name ($cls): $what"
        before=$(sha256_of "$f")

        run_one "$f" info "$f"
        case $cls in
        open|chain) want_rc "info $name" 1 ;;
        control) want_rc "info $name" 0 ;;
        *) want_rc "info $name" 0 1 ;;
        esac

        run_one "$f" convert -O raw "$f" "$odir/out.raw"
        case $cls in
        open|chain|deep|payload) want_rc "convert $name" 1 ;;
        control) want_rc "convert $name" 0 ;;
        *) want_rc "convert $name" 0 1 ;;
        esac
        if [ "$cls" = control ] && [ "$rc" -eq 0 ]; then
            qemu-img convert -O raw "$f" "$scratch/ref.raw"
            cmp -s "$odir/out.raw" "$scratch/ref.raw" ||
                fail "convert $name: output differs from qemu-img convert's"
        fi
        check_outdir "convert $name"

        run_one "$f" check "$f"
        case $cls in
        open|deep) want_rc "check $name" 1 2 3 ;;
        check) want_rc "check $name" $check_rc ;;
        control) want_rc "check $name" 0 ;;
        *) want_rc "check $name" 0 1 2 3 ;;
        esac

        run_one "$f" map "$f"
        case $cls in
        open|chain) want_rc "map $name" nz ;;
        control) want_rc "map $name" 0 ;;
        *) want_rc "map $name" 0 1 ;;
        esac

        run_one "$f" digest "$f"
        case $cls in
        open|chain|deep|payload) want_rc "digest $name" nz ;;
        control) want_rc "digest $name" 0 ;;
        *) want_rc "digest $name" 0 1 ;;
        esac
        if [ "$cls" = control ] && [ "$rc" -eq 0 ]; then
            want=$(raw_digest "$f")
            got=$(awk 'NR == 1 { print $1 }' "$out")
            [ "$got" = "$want" ] ||
                fail "digest $name: $got, qemu-img's content hashes to $want"
        fi

        [ "$(sha256_of "$f")" = "$before" ] || fail "$name: the source changed"
    done 3< "$hdir/MANIFEST"
    [ "$nfiles" -ge 20 ] || die "only $nfiles images in the manifest"
}

# hostile_report: fail the test if any judgement failed.
hostile_report() {
    if [ ${#failures[@]} -gt 0 ]; then
        echo "failures:"
        printf '  %s\n' "${failures[@]}"
        die "${#failures[@]} failures over $nfiles images"
    fi
    echo "all $nfiles images handled"
}
