#!/usr/bin/env bash
# The OCI runtime validation suite in CI: build it (Debian's Go packages, the
# source tarball in this directory: nothing is fetched but packages), run it
# against hsrun, runc and crun in the same run, write the per-test table of the
# three side by side into docs/oci-validation.md, and fail when hsrun passes
# fewer tests than the floor in tests/oci-validation/floor (a regression).
#
#   tests/oci-validation/ci.sh            what tests/run (and so .ci/run) calls
#   OCIV_HSRUN=PATH ...                   another hsrun binary (default: the release build)
#   OCIV_ONLY="runc crun" ...             a subset of the three (the floor is checked only with hsrun)
#   OCIV_DOC=FILE ...                     where the table goes (default docs/oci-validation.md)
#   OCIV_RESULTS=DIR ...                  only the table and the floor, from an earlier run's results
#
# Each runtime takes 1.5-3 min here (58 tests, one container or more each; the
# whole run 5-11 min on the 2-CPU machine, quiet to busy); the build ~35 s the
# first time (apt-get of golang-go and the -dev packages), ~1 s after. Times of each part are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/oci-validation

export OCIV_CACHE=${OCIV_CACHE:-/var/tmp/oci-validation}
hsrun=${OCIV_HSRUN:-$PWD/target/x86_64-unknown-linux-gnu/release/hsrun}
only=${OCIV_ONLY:-hsrun runc crun}
doc=${OCIV_DOC:-docs/oci-validation.md}
floor=$(head -n 1 "$here/floor" | grep -o '^[0-9]\+')
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=$OCIV_CACHE/results/ci-$stamp
[ -n "${OCIV_RESULTS:-}" ] || mkdir -p "$results"

times=()
timed() { # timed LABEL CMD...: runs CMD, records its wall time
    local label=$1 t0=$SECONDS rc=0
    shift
    "$@" || rc=$?
    times+=("$label: $((SECONDS - t0)) s (exit $rc)")
    return $rc
}

dirs=()
if [ -n "${OCIV_RESULTS:-}" ]; then
    # OCIV_RESULTS=DIR: the table and the floor from an earlier run's results
    # (DIR/hsrun, DIR/runc, DIR/crun), nothing run.
    results=$OCIV_RESULTS
    for rt in $only; do dirs+=("$results/$rt"); done
    only_doc=1
else
    timed build "$here/build.sh"
fi
for rt in $only; do
    [ -z "${only_doc:-}" ] || break
    case $rt in
    hsrun) bin=$hsrun extra=() ;;
    runc) bin=$(command -v runc) extra=() ;;
    # crun 1.8.1 refuses a hybrid cgroup host ("cgroups in hybrid mode not
    # supported"): run.sh hides /sys/fs/cgroup/unified in a private mount ns.
    crun) bin=$(command -v crun) extra=(OCIV_HIDE_UNIFIED=1) ;;
    *) echo "ci.sh: unknown runtime $rt" >&2; exit 2 ;;
    esac
    [ -x "$bin" ] || { echo "ci.sh: $rt: no binary at $bin" >&2; exit 1; }
    # run.sh exits 0 whatever the tests did; its summary.tsv holds the verdicts.
    timed "$rt" env "${extra[@]}" OCIV_LABEL="$rt" OCIV_OUT="$results/$rt" "$here/run.sh" "$bin" >"$results/$rt.out" 2>&1 ||
        { cat "$results/$rt.out" >&2; echo "ci.sh: run.sh $rt failed" >&2; exit 1; }
    grep '^runtime=' "$results/$rt.out" || true
    dirs+=("$results/$rt")
done

# Tests passed: PASS (every assert ok), and PASS_RC for the *_fail tests only (they
# print no TAP: the exit status is the verdict). Any other test that prints no
# assertion at all (PASS_RC there: runtimetest's output never came back) passed
# nothing.
is_pass='$9 == "PASS" || ($9 == "PASS_RC" && $1 ~ /_fail$/)'
passed() { awk -F'\t' "NR > 1 && ($is_pass) { n++ } END { print n + 0 }" "$1/summary.tsv"; }

{
    echo "# The OCI runtime validation suite: hsrun, runc and crun"
    echo
    echo "Written by \`tests/oci-validation/ci.sh\` (run by \`tests/run\` and CI) on $(date -u +%Y-%m-%d),"
    echo "kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup) ($([ -d /sys/fs/cgroup/unified ] && echo 'v1 hybrid' || echo 'v2 or v1')),"
    echo "opencontainers/runtime-tools \`validation/\` at 0105384 (58 tests). Per test: assertions passed (ok) and"
    echo "failed (not ok) and the verdict. PASS_RC: the test printed no assertion and exited 0; it counts as passed only"
    echo "for the \`*_fail\` tests (whose exit status is their verdict): elsewhere it means runtimetest's report never came back."
    echo "crun runs with \`OCIV_HIDE_UNIFIED=1\` (it refuses this host's hybrid cgroups otherwise)."
    echo
    for d in "${dirs[@]}"; do
        echo "- **$(basename "$d")**: $(passed "$d") tests passed; $(tail -n 1 "$d/summary.txt")"
    done
    echo
    "$here/compare.sh" "${dirs[@]}"
    echo
    cat "$here/failures.md"
} >"$doc"
echo "ci.sh: table written to $doc"

status=0
if [[ " $only " == *" hsrun "* ]]; then
    n=$(passed "$results/hsrun")
    if [ "$n" -lt "$floor" ]; then
        echo "ci.sh: hsrun passes $n tests, fewer than the floor $floor ($here/floor): a regression" >&2
        awk -F'\t' "NR > 1 && !($is_pass) { print \"  \" \$1 \": \" \$9 }" "$results/hsrun/summary.tsv" >&2
        status=1
    else
        echo "ci.sh: hsrun passes $n tests (floor $floor)"
    fi
fi
[ ${#times[@]} = 0 ] || printf 'ci.sh: time of %s\n' "${times[@]}"
echo "ci.sh: results in $results"
exit $status
