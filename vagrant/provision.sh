#!/usr/bin/env bash
# Provisioning of the Vagrant lab machines (vagrant/Vagrantfile runs it as root in
# each VM), and of any Debian or Ubuntu host: CI runs it unchanged on its own
# machine. It
#   1. installs the Debian/Ubuntu packages the project needs,
#   2. installs Rust with rustup if there is no cargo yet (the one step that needs
#      the network beyond the package archive; skipped where cargo exists),
#   3. builds the project, installs host-setup and brings RED and BLUE up
#      (vagrant/lab.sh up),
#   4. runs the lab's checks (vagrant/lab.sh check) and fails if one fails.
# The lab stays up for you to use (vagrant ssh, then sudo host-setup exec red), unless
# LAB_DOWN_AFTER=1: then it is taken down at the end, even after a failure, and
# `down` must leave nothing behind (what CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "provision.sh: run it as root (sudo vagrant/provision.sh)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

say() { printf '\n== %s\n' "$*"; }

# apt-get, waiting for a first-boot apt run (unattended-upgrades) to let go of its lock.
apt() {
    local i
    for i in $(seq 1 60); do
        apt-get -o DPkg::Lock::Timeout=10 "$@" && return 0
        echo "provision.sh: apt-get $1 failed (try $i; another apt may hold the lock), again in 5 s" >&2
        sleep 5
    done
    return 1
}

. /etc/os-release
cgv=1
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && cgv=2
say "$PRETTY_NAME, Linux $(uname -r), cgroup v$cgv, \"/\" $(grep -q '^[0-9]* [0-9]* [^ ]* / / .* shared:' /proc/self/mountinfo && echo shared || echo private)"

# 1. Packages: a C toolchain (Rust's linker, static glibc), what the image layers
#    are built from (ping, stress, ps, ...), curl for rustup.
need=()
for p in build-essential ca-certificates curl iputils-ping stress procps iproute2 util-linux; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    say "apt-get install ${need[*]}"
    apt update -qq
    apt install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. Rust: the project needs a current stable (Ubuntu 18.04's rustc is far too old).
cargo=${CARGO:-$(command -v cargo || true)}
for c in "$cargo" /root/.cargo/bin/cargo "${HOME:-/root}/.cargo/bin/cargo"; do
    if [ -n "$c" ] && [ -x "$c" ]; then cargo=$c; break; fi
done
if [ -z "$cargo" ] || [ ! -x "$cargo" ]; then
    say "installing Rust (rustup, stable, minimal profile)"
    export RUSTUP_HOME=/root/.rustup CARGO_HOME=/root/.cargo
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal --default-toolchain stable
    cargo=/root/.cargo/bin/cargo
fi
export CARGO=$cargo
say "$("$cargo" --version)"

if [ "${LAB_DOWN_AFTER:-}" = 1 ]; then
    # shellcheck disable=SC2064
    trap "vagrant/lab.sh down >/dev/null 2>&1 || true" EXIT
fi

# 3. Build, install, RED and BLUE up (pinging each other).
vagrant/lab.sh up

# 4. The tutorial's checks.
say "vagrant/lab.sh check (cgroup v$cgv)"
vagrant/lab.sh check

if [ "${LAB_DOWN_AFTER:-}" = 1 ]; then
    trap - EXIT
    say "vagrant/lab.sh down"
    vagrant/lab.sh down
fi
