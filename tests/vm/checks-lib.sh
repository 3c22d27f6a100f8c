# The check helpers of the VM's stage 2 scripts (tests/vm/checks.sh,
# tests/vm/oldkernel.sh), sourced by them from /opt/vm/checks-lib.sh (tests/vm/run
# copies it there). Each check prints one "PASS name" or "FAIL name" line, which
# tests/vm/run counts against what the mode must give; the script ends with
# "vm-result: $PASSES passed, $FAILS failed". The sourcing script defines
# `leftovers` (what of its own may be left), which nothing_left reads.
PASSES=0
FAILS=0
pass() { echo "PASS $*"; PASSES=$((PASSES + 1)); LAST=pass; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); LAST=fail; }
# check NAME CMD...: PASS if CMD succeeds; otherwise FAIL and CMD's output, indented.
check() {
    name=$1
    shift
    if "$@" >/tmp/check.out 2>&1; then
        pass "$name"
    else
        fail "$name"
        sed 's/^/  /' /tmp/check.out | head -n 30
    fi
}
# nothing_left: succeeds if `leftovers` prints nothing; otherwise prints it.
nothing_left() {
    left=$(leftovers)
    [ -z "$left" ] || { echo "$left"; return 1; }
}
