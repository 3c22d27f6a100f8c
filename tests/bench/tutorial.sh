#!/usr/bin/env bash
# The tutorial's own flow for RED and BLUE, as its shell commands, for the benchmark
# (tests/bench/run) to time against host-setup. Every name is unique to the caller:
#   BENCH_DIR=DIR BENCH_CG=PARENT BENCH_NS=PREFIX tests/bench/tutorial.sh CMD
# up:   build the layers myroot and tools (cp + ldd), the netns, the veth pair and its
#       addresses (ip), the cgroups (mkdir + echo), /redfs dirs (mkdir), then each
#       container: unshare -m -u -i -fp nsenter --net=..., echo 1 > cgroup.procs,
#       mount -t overlay, pivot_root, mount proc, umount -l put_old, hostname; returns
#       once both shells are ready (they then wait as PID 1). The cold flow.
# down: end both containers, remove the netns, the cgroups, the dirs and the layers.
# The warm flow, the tutorial's with its layers made once and reused (no `cp`s):
# layers:    build the two layers only (what `up` does first).
# up-warm:   `up` without building the layers (they must exist: `layers` first).
# down-warm: `down` that keeps the layers.
# Differences from the tutorial, for safety only: cgroups go under BENCH_CG (never
# at the top), everything lives under BENCH_DIR instead of /tmp and /redfs, and
# put_old is removed with rmdir after umount -l (the tutorial's rm -rf would delete
# the host's files if the unmount had failed).
set -euo pipefail
: "${BENCH_DIR:?}" "${BENCH_CG:?}" "${BENCH_NS:?}"
D=$BENCH_DIR
CG=/sys/fs/cgroup

# 1. 2. the layers: each binary and its ldd closure, copied (the tutorial's copy_tools.sh)
layer() {
    local root=$1 b lib
    shift
    for b in "$@"; do
        mkdir -p "$root$(dirname "$b")"
        cp "$b" "$root$b"
        for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*'); do
            mkdir -p "$root$(dirname "$lib")"
            cp -n "$lib" "$root$lib"
        done
    done
    mkdir -p "$root/proc"
}

container() { # NAME NETNS HOSTNAME: 4-1 and 4-2 for one container
    local n=$1 ns=$2 host=$3 fs=$D/${1}fs
    mkdir "$CG/cpu/$BENCH_CG/$n" "$CG/memory/$BENCH_CG/$n"
    echo 40000 >"$CG/cpu/$BENCH_CG/$n/cpu.cfs_quota_us"
    echo 209715200 >"$CG/memory/$BENCH_CG/$n/memory.limit_in_bytes"
    echo 0 >"$CG/memory/$BENCH_CG/$n/memory.swappiness"
    mkdir "$fs" "$fs/container" "$fs/work" "$fs/merge"
    mkfifo "$D/$n.ready" "$D/$n.hold"
    # The shell that becomes PID 1 does the tutorial's steps inside, tells us it is
    # ready on fd 3, then waits on its own fifo (fd 0) until `down` writes a line.
    unshare -m -u -i -fp --kill-child nsenter --net=/var/run/netns/"$ns" /bin/sh -c '
        exec 0<>"$5"
        echo 1 >"$1/cpu/$2/cgroup.procs"
        echo 1 >"$1/memory/$2/cgroup.procs"
        mount -t overlay overlay -o lowerdir="$3/tools:$3/myroot,upperdir=$4/container,workdir=$4/work" "$4/merge"
        mkdir -p "$4/merge/put_old"
        cd "$4/merge"
        pivot_root . put_old
        cd /
        mount -t proc proc /proc
        umount -l put_old
        rmdir put_old
        hostname "$6"
        echo ready >&3
        exec 3>&-
        read -r _' sh "$CG" "$BENCH_CG/$n" "$D" "$fs" "$D/$n.hold" "$host" \
        3>"$D/$n.ready" </dev/null >/dev/null 2>"$D/$n.err" &
    echo $! >"$D/$n.pid"
}

layers() {
    mkdir -p "$D"
    layer "$D/myroot" /bin/ls /bin/mkdir /bin/mount /bin/ps /bin/sh
    layer "$D/tools" /bin/hostname /bin/ping /bin/rm /bin/umount /usr/bin/stress /usr/bin/which
}

up() {
    # 1. 2. the layers (cold), or those made by `layers` before (warm)
    if [ "${1:-}" = warm ]; then
        [ -d "$D/myroot" ] && [ -d "$D/tools" ] || { echo "tutorial.sh: no layers in $D (run layers first)" >&2; exit 1; }
    else
        layers
    fi
    # 3. the network
    ip netns add "${BENCH_NS}R"
    ip netns add "${BENCH_NS}B"
    ip link add veth0 netns "${BENCH_NS}R" type veth peer name veth1 netns "${BENCH_NS}B"
    ip netns exec "${BENCH_NS}R" ip addr add dev veth0 11.11.11.2/24
    ip netns exec "${BENCH_NS}R" ip link set veth0 up
    ip netns exec "${BENCH_NS}B" ip addr add dev veth1 11.11.11.3/24
    ip netns exec "${BENCH_NS}B" ip link set veth1 up
    mkdir -p "$CG/cpu/$BENCH_CG" "$CG/memory/$BENCH_CG"
    container red "${BENCH_NS}R" RED
    container blue "${BENCH_NS}B" BLUE
    local n
    for n in red blue; do
        read -r _ <"$D/$n.ready" || { cat "$D/$n.err" >&2; exit 1; }
    done
}

down() {
    local n pid i
    for n in red blue; do
        [ -f "$D/$n.pid" ] || continue
        pid=$(cat "$D/$n.pid")
        # the pid is unshare's, started by `up` (its command line names our fifo dir)
        if grep -qF "$D" "/proc/$pid/cmdline" 2>/dev/null; then
            echo >"$D/$n.hold"
            # gone once it is a zombie (empty cmdline): our parent, not us, reaps it
            for i in $(seq 2000); do grep -qF "$D" "/proc/$pid/cmdline" 2>/dev/null || break; sleep 0.005; done
        fi
    done
    ip netns del "${BENCH_NS}R" 2>/dev/null || true
    ip netns del "${BENCH_NS}B" 2>/dev/null || true
    for n in red blue; do
        for c in cpu memory; do
            [ -d "$CG/$c/$BENCH_CG/$n" ] || continue
            for i in $(seq 200); do rmdir "$CG/$c/$BENCH_CG/$n" 2>/dev/null && break; sleep 0.005; done
        done
    done
    rmdir "$CG/cpu/$BENCH_CG" "$CG/memory/$BENCH_CG" 2>/dev/null || true
    if [ "${1:-}" = warm ]; then
        # the upper, work and merge dirs go (each container's writes), the layers stay
        for n in red blue; do rm -rf "$D/${n}fs" "$D/$n.ready" "$D/$n.hold" "$D/$n.pid" "$D/$n.err"; done
    else
        rm -rf "$D"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    layers) layers ;;
    up-warm) up warm ;;
    down-warm) down warm ;;
    *) echo "usage: BENCH_DIR=DIR BENCH_CG=PARENT BENCH_NS=PREFIX $0 up|down|layers|up-warm|down-warm" >&2; exit 2 ;;
esac
