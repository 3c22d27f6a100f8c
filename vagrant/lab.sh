#!/usr/bin/env bash
# The RED/BLUE lab in one command, on a fresh Debian/Ubuntu host (also what the
# Vagrant machines run to provision themselves):
#
#   vagrant/lab.sh          install what is missing, build, install host-setup,
#                           bring RED and BLUE up, show them pinging each other,
#                           and prove each mechanism by its effect (host-setup verify)
#   vagrant/lab.sh check    the tutorial's checks on the running lab: ping both
#                           ways, hostname, CPU held to 40 %, swap off, 150M fits,
#                           250M is OOM-killed and counted by the cgroup
#                           (cgroup v1 and v2; one PASS/FAIL line each)
#   vagrant/lab.sh down     take RED and BLUE down and check nothing is left
#
# Run it as yourself (it uses sudo where root is needed) or as root.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PREFIX=${PREFIX:-/usr/local}
HS="$PREFIX/bin/host-setup"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

install_packages() {
    local need=()
    command -v ping >/dev/null || need+=(iputils-ping)
    command -v stress >/dev/null || need+=(stress)
    command -v ps >/dev/null || need+=(procps)
    command -v ip >/dev/null || need+=(iproute2)
    command -v cc >/dev/null || need+=(gcc libc6-dev)
    [ ${#need[@]} = 0 ] && return
    say "installing ${need[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
}

build_and_install() {
    local cargo=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
    if [ ! -x "$cargo" ]; then
        echo "lab.sh: Rust is not installed: curl https://sh.rustup.rs -sSf | sh  (then run lab.sh again)" >&2
        exit 1
    fi
    say "building (cargo build --release)"
    "$cargo" build --release --workspace --bins
    local out=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
    say "installing into $PREFIX/lib/host-setup, linked from $HS"
    $SUDO install -d "$PREFIX/lib/host-setup" "$PREFIX/bin"
    # init and escape_chroot live next to host-setup: that is where it looks for them.
    $SUDO install -m 0755 "$out/host-setup" "$out/init" "$out/escape_chroot" "$PREFIX/lib/host-setup/"
    $SUDO ln -sf "$PREFIX/lib/host-setup/host-setup" "$HS"
    # hsrun, the OCI runtime engines are pointed at (docs/oci-runtime.md "Driving hsrun from an
    # engine"): beside init too, which it finds next to its own binary (the link is
    # resolved through /proc/self/exe).
    if [ -x "$out/hsrun" ]; then
        $SUDO install -m 0755 "$out/hsrun" "$PREFIX/lib/host-setup/"
        $SUDO ln -sf "$PREFIX/lib/host-setup/hsrun" "$PREFIX/bin/hsrun"
    else
        echo "lab.sh: $out/hsrun was not built: the OCI runtime is not installed" >&2
    fi
}

up() {
    install_packages
    build_and_install
    say "host-setup red && host-setup blue"
    $SUDO "$HS" down red blue >/dev/null # a lab from an earlier run goes first
    $SUDO "$HS" red && $SUDO "$HS" blue
    say "RED pings BLUE"
    $SUDO "$HS" exec red ping -c 3 11.11.11.3
    say "BLUE pings RED"
    $SUDO "$HS" exec blue ping -c 3 11.11.11.2
    $SUDO "$HS" status
    say "host-setup verify red blue: each mechanism proven by its effect"
    $SUDO "$HS" verify red blue
    cat <<TIPS

The lab is up. Try:
  sudo host-setup exec red                       a shell in RED (exit to leave)
  sudo host-setup exec red stress -c 1 -t 10     held to 40 % of a CPU (watch top)
  sudo host-setup exec red stress --vm 1 --vm-bytes 250M -t 5   OOM-killed at 200M
  sudo host-setup red --explain                  the tutorial's shell commands for each step
  vagrant/lab.sh down                            take both down
TIPS
}

# --- the tutorial's checks, on cgroup v1 and v2 alike ----------------------------

# The container's cgroup directories, from `host-setup status NAME`
# (v1: one per controller hierarchy; v2: one).
cgroup_dirs() { $SUDO "$HS" status "$1" | sed -n 's/^  cgroups   //p'; }

# CPU time the container used so far, in ns: v1 cpuacct.usage, v2 cpu.stat usage_usec.
cpu_ns() {
    local d us
    for d in $1; do
        if [ -f "$d/cpuacct.usage" ]; then cat "$d/cpuacct.usage"; return; fi
        us=$(sed -n 's/^usage_usec //p' "$d/cpu.stat" 2>/dev/null)
        if [ -n "$us" ]; then echo $((us * 1000)); return; fi
    done
    echo 0
}

# OOM kills the cgroup counted: v2 memory.events, v1 memory.oom_control (both "oom_kill N").
oom_kills() {
    local d n
    for d in $1; do
        for f in memory.events memory.oom_control; do
            n=$(sed -n 's/^oom_kill //p' "$d/$f" 2>/dev/null)
            if [ -n "$n" ]; then echo "$n"; return; fi
        done
    done
    echo 0
}

# How swap is off: v2 memory.swap.max = 0; v1 memory.memsw.limit_in_bytes =
# memory.limit_in_bytes (with swap accounting) and memory.swappiness = 0.
swap_off() {
    local d
    for d in $1; do
        if [ -f "$d/memory.swap.max" ]; then
            [ "$(cat "$d/memory.swap.max")" = 0 ] && echo "memory.swap.max = 0" && return 0
            return 1
        fi
        if [ -f "$d/memory.swappiness" ]; then
            [ "$(cat "$d/memory.swappiness")" = 0 ] || return 1
            if [ -f "$d/memory.memsw.limit_in_bytes" ]; then
                [ "$(cat "$d/memory.memsw.limit_in_bytes")" = "$(cat "$d/memory.limit_in_bytes")" ] || return 1
                echo "memory.memsw.limit_in_bytes = memory.limit_in_bytes, memory.swappiness = 0"
            else
                echo "memory.swappiness = 0, no swap accounting"
            fi
            return 0
        fi
    done
    # v2 without swap accounting (no memory.swap.max): the cgroup cannot swap at all.
    for d in $1; do [ -f "$d/memory.max" ] && echo "no swap accounting: nothing to swap to" && return 0; done
    return 1
}

# The cgroup's peak memory use in bytes: v2 memory.peak (Linux >= 5.19), v1
# memory.max_usage_in_bytes; empty if the kernel has neither.
peak_bytes() {
    local d
    for d in $1; do
        for f in memory.peak memory.max_usage_in_bytes; do
            if [ -f "$d/$f" ]; then cat "$d/$f"; return; fi
        done
    done
}

uptime_cs() { # the host's uptime in centiseconds (no GNU date needed)
    local u _
    read -r u _ </proc/uptime
    u=${u/./}
    echo $((10#$u))
}

check() {
    local passes=0 fails=0 dirs out
    pass() { echo "PASS $*"; passes=$((passes + 1)); }
    fail() { echo "FAIL $*"; fails=$((fails + 1)); }
    dirs=$(cgroup_dirs red || true)
    [ -n "$dirs" ] || { echo "FAIL RED is not up (vagrant/lab.sh up brings it up)"; echo "lab: 0 passed, 1 failed"; return 1; }

    $SUDO "$HS" exec red ping -c 3 -W 2 11.11.11.3 >/dev/null && pass "RED pings BLUE" || fail "RED pings BLUE"
    $SUDO "$HS" exec blue ping -c 3 -W 2 11.11.11.2 >/dev/null && pass "BLUE pings RED" || fail "BLUE pings RED"
    [ "$($SUDO "$HS" exec red hostname)" = RED ] && pass "hostname RED" || fail "hostname RED"

    # CPU: stress -c 1 spins one CPU flat out; the cgroup holds it to 40 %. Measured
    # as a ratio of the cgroup's CPU time to wall time (no absolute timings).
    $SUDO "$HS" exec red stress -c 1 -t 7 >/dev/null 2>&1 &
    local hog=$! u0 u1 t0 t1 permille
    sleep 1
    u0=$(cpu_ns "$dirs") t0=$(uptime_cs)
    sleep 4
    u1=$(cpu_ns "$dirs") t1=$(uptime_cs)
    wait "$hog" || true
    permille=$(((u1 - u0) / ((t1 - t0) * 10000)))
    out="$((permille / 10)).$((permille % 10)) % of a CPU"
    if [ "$permille" -le 420 ] && [ "$permille" -ge 100 ]; then
        pass "stress -c 1 is held to 40 % ($out)"
    else
        fail "stress -c 1 is held to 40 % ($out; expected 10-42 %)"
    fi

    out=$(swap_off "$dirs") && pass "swap off ($out)" || fail "swap off (in $dirs)"

    # Memory: 150M must fit under the 200M limit (and really be reached: the peak
    # is checked, a slow machine may need seconds for it), 250M must be OOM-killed
    # and counted by the cgroup. stress ends as soon as its worker is killed.
    local k0 k1 k2 peak
    k0=$(oom_kills "$dirs")
    if $SUDO "$HS" exec red stress --vm 1 --vm-bytes 150M -t 10 >/dev/null 2>&1; then
        k1=$(oom_kills "$dirs")
        peak=$(peak_bytes "$dirs")
        if [ "$k1" != "$k0" ]; then
            fail "150M fits in 200M (oom_kill $k0 -> $k1)"
        elif [ -n "$peak" ] && [ "$peak" -lt $((145 << 20)) ]; then
            fail "150M fits in 200M (the cgroup's peak was only $((peak >> 20))M: stress never got to 150M)"
        else
            pass "150M fits in 200M${peak:+ (peak $((peak >> 20))M)}"
        fi
    else
        k1=$(oom_kills "$dirs")
        fail "150M fits in 200M (stress failed; oom_kill $k0 -> $k1)"
    fi
    out=$($SUDO "$HS" exec red stress --vm 1 --vm-bytes 250M -t 30 2>&1 || true)
    k2=$(oom_kills "$dirs")
    if grep -q "got signal 9" <<<"$out" && [ "$k2" -gt "$k1" ]; then
        pass "250M is OOM-killed (signal 9; the cgroup's oom_kill went $k1 -> $k2)"
    else
        fail "250M is OOM-killed (oom_kill $k1 -> $k2): $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    fi
    echo "lab: $passes passed, $fails failed"
    [ "$fails" = 0 ]
}

# Take RED and BLUE down, then make sure nothing of them is left: no netns, no
# cgroup, no journal.
down() {
    local dirs left=""
    dirs="$(cgroup_dirs red || true) $(cgroup_dirs blue || true)"
    $SUDO "$HS" down red blue
    for ns in RED BLUE; do [ -e "/run/netns/$ns" ] && left+=" /run/netns/$ns"; done
    for d in $dirs; do [ -e "$d" ] && left+=" $d"; done
    local st
    for n in red blue; do
        st=$($SUDO "$HS" status "$n")
        grep -q "^$n: not up" <<<"$st" || left+=" $n's journal"
    done
    if [ -n "$left" ]; then
        echo "FAIL down leaves nothing (left:$left)"
        return 1
    fi
    echo "PASS down leaves nothing"
}

case "${1:-up}" in
    up) up ;;
    check) check ;;
    down) down ;;
    *) echo "usage: vagrant/lab.sh [up|check|down]" >&2; exit 2 ;;
esac
