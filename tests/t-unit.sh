# C unit tests of the core pieces (tests/unit-core.c).
. "$(dirname "$0")/lib.sh"
"$BUILDDIR/unit-core"
