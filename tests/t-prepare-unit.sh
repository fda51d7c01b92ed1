# C unit tests of prepare's guest-free helpers (tests/unit-prepare.c).
. "$(dirname "$0")/lib.sh"
"$BUILDDIR/unit-prepare"
