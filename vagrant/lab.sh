#!/usr/bin/env bash
# The RED/BLUE lab in one command, on a fresh Debian/Ubuntu host (also what the
# Vagrant machines run to provision themselves):
#
#   vagrant/lab.sh          install what is missing, build, install host-setup,
#                           bring RED and BLUE up and show them pinging each other
#   vagrant/lab.sh check    the tutorial's checks on the running lab
#   vagrant/lab.sh down     take RED and BLUE down
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
    local out=target/x86_64-unknown-linux-gnu/release
    say "installing into $PREFIX/lib/host-setup, linked from $HS"
    $SUDO install -d "$PREFIX/lib/host-setup" "$PREFIX/bin"
    # init and escape_chroot live next to host-setup: that is where it looks for them.
    $SUDO install -m 0755 "$out/host-setup" "$out/init" "$out/escape_chroot" "$PREFIX/lib/host-setup/"
    $SUDO ln -sf "$PREFIX/lib/host-setup/host-setup" "$HS"
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
    cat <<TIPS

The lab is up. Try:
  sudo host-setup exec red                       a shell in RED (exit to leave)
  sudo host-setup exec red stress -c 1 -t 10     held to 40 % of a CPU (watch top)
  sudo host-setup exec red stress --vm 1 --vm-bytes 250M -t 5   OOM-killed at 200M
  sudo host-setup red --explain                  the tutorial's shell commands for each step
  vagrant/lab.sh down                            take both down
TIPS
}

check() {
    local fails=0
    pass() { echo "PASS $*"; }
    fail() { echo "FAIL $*"; fails=$((fails + 1)); }
    $SUDO "$HS" exec red ping -c 3 -W 2 11.11.11.3 >/dev/null && pass "RED pings BLUE" || fail "RED pings BLUE"
    $SUDO "$HS" exec blue ping -c 3 -W 2 11.11.11.2 >/dev/null && pass "BLUE pings RED" || fail "BLUE pings RED"
    [ "$($SUDO "$HS" exec red hostname)" = RED ] && pass "hostname RED" || fail "hostname RED"
    $SUDO "$HS" exec red stress --vm 1 --vm-bytes 150M -t 2 >/dev/null 2>&1 && pass "150M fits in 200M" || fail "150M fits in 200M"
    local out
    out=$($SUDO "$HS" exec red stress --vm 1 --vm-bytes 250M -t 5 2>&1 || true)
    grep -q "got signal 9" <<<"$out" && pass "250M is OOM-killed" || fail "250M is OOM-killed"
    echo "$fails check(s) failed"
    [ "$fails" = 0 ]
}

case "${1:-up}" in
    up) up ;;
    check) check ;;
    down) $SUDO "$HS" down red blue ;;
    *) echo "usage: vagrant/lab.sh [up|check|down]" >&2; exit 2 ;;
esac
