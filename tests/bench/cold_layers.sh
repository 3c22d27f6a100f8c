#!/usr/bin/env bash
# The cold pair (RED+BLUE up with an empty layer cache) of two host-setup builds and
# of the tutorial's flow, interleaved: each round runs the three once, in a rotating
# order, so a busy machine weighs on all of them alike. Prints medians and ratios.
#
#   sudo COLD_BEFORE=DIR tests/bench/cold_layers.sh [ROUNDS]
#   COLD_BEFORE   a dir with the other build's host-setup, init and escape_chroot
#   COLD_AFTER    this build's (default target/x86_64-unknown-linux-gnu/release)
#
# Never part of tests/run. Every name carries this run's tag; everything is removed
# at the end, also after a failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
ROUNDS=${1:-15}
: "${COLD_BEFORE:?a dir with the binaries of the other build}"
AFTER=${COLD_AFTER:-$REPO/target/x86_64-unknown-linux-gnu/release}
[ "$(id -u)" = 0 ] || { echo "cold_layers: run as root" >&2; exit 3; }

TAG=cl$$
W=/tmp/hs-cold-$TAG
CGP=hs-cold-$TAG
export HOST_SETUP_CGROUP_PARENT=$CGP
export BENCH_DIR=$W/tutorial BENCH_CG=$CGP BENCH_NS=${TAG^^}T
TUT=$REPO/tests/bench/tutorial.sh
mkdir -p "$W"
chmod 755 "$W"
NET=10.254.$((($$ % 250) + 1))

hs() { # VARIANT ARGS...: that build's host-setup with its own state dir
    local v=$1 bin
    shift
    bin=$AFTER
    [ "$v" = before ] && bin=$COLD_BEFORE
    HOST_SETUP_STATE_DIR=$W/state-$v "$bin/host-setup" "$@"
}
down() { hs "$1" down "${TAG}${1:0:1}r" "${TAG}${1:0:1}b" >/dev/null 2>&1 || true; }
up() {
    local a=${TAG}${1:0:1}r b=${TAG}${1:0:1}b
    hs "$1" up "$a" --no-userns --address "$NET.2/24" --peer "$b" >/dev/null &&
        hs "$1" up "$b" --no-userns --address "$NET.3/24" --peer "$a" >/dev/null
}

cleanup() {
    set +e
    down before
    down after
    "$TUT" down >/dev/null 2>&1
    find /sys/fs/cgroup -maxdepth 2 -type d -name "$CGP" 2>/dev/null | while read -r d; do
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s%N; }
declare -A T
for r in $(seq "$ROUNDS"); do
    case $((r % 3)) in
        0) order="before after tut" ;;
        1) order="after tut before" ;;
        *) order="tut before after" ;;
    esac
    for v in $order; do
        if [ "$v" = tut ]; then
            "$TUT" down
            t0=$(now)
            "$TUT" up
        else
            down "$v"
            rm -rf "$W/state-$v/layers"
            sync
            t0=$(now)
            up "$v"
        fi
        T[$v]+="$((($(now) - t0) / 1000)) "
    done
    "$TUT" down
    down before
    down after
done

med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }
range() { tr ' ' '\n' | grep . | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.1f-%.1f", lo/1000, hi/1000}'; }
b=$(echo "${T[before]}" | med)
a=$(echo "${T[after]}" | med)
t=$(echo "${T[tut]}" | med)
rb=$(echo "${T[before]}" | range)
ra=$(echo "${T[after]}" | range)
rt=$(echo "${T[tut]}" | range)
echo "cold pair up (RED+BLUE, layer cache empty), $ROUNDS interleaved rounds, median ms (min-max):"
echo "| the tutorial flow (cp + ldd) | $t ($rt) |"
echo "| host-setup before ($COLD_BEFORE) | $b ($rb) |"
echo "| host-setup after ($AFTER) | $a ($ra) |"
awk -v b="$b" -v a="$a" -v t="$t" 'BEGIN { printf "before/after %.2fx; tutorial/before %.2fx; tutorial/after %.2fx\n", b/a, t/b, t/a }'
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
