#!/opt/vm/busybox sh
# Stage 2 of the test VM (tests/vm/run), the command of the project's init as
# PID 1, on a tmpfs root. It sets the machine up the way a systemd host is:
# "/" shared (MS_REC|MS_SHARED), and the cgroups of the mode on the kernel command
# line (hs_cgroup=2 or 1):
#   2  cgroup2 alone at /sys/fs/cgroup (nsdelegate, memory_recursiveprot), every
#      process in a leaf and none in the root, and the root's cgroup.subtree_control
#      left empty, so host-setup has to enable cpu and memory itself (a current host);
#   1  a tmpfs with cpu,cpuacct (co-mounted, cpu and cpuacct symlinks), memory and
#      pids hierarchies and an empty cgroup2 at unified/ (Ubuntu 18.04's hybrid).
# A swap device (256M, a loop device over a sparse file) is on for all of it, as on
# most hosts. Then: RED and BLUE up, their cgroups, swap off for them by its effect
# (a hog above the limit is OOM-killed, never swapped, where the same hog in a
# cgroup allowed to swap swaps and lives), the lab's checks (vagrant/lab.sh check),
# down leaving nothing; on v2 also host-setup's errors where a controller is not
# delegated or the cgroup holds processes (a container's view of the tree), and the
# integration suites in /opt/vm/suites (static test binaries of tests/*.rs).
# One "PASS name" / "FAIL name" line per check, "vm-result: N passed, M failed",
# then power off. tests/vm/run knows how many lines each mode must give.
BB=/opt/vm/busybox
$BB mkdir -p /opt/vm/bin
$BB --install -s /opt/vm/bin
export PATH=/opt/vm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
cd /

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=0755 run /run
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts # terminals (run, exec)
V=2
case " $(cat /proc/cmdline) " in *" hs_cgroup=1 "*) V=1 ;; esac
CG=/sys/fs/cgroup
if [ $V = 2 ]; then
    mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $CG
    # systemd's placement: PID 1 in /init.scope, the job in a leaf of its own.
    mkdir -p $CG/init.scope $CG/vm-checks.scope
    echo 1 >$CG/init.scope/cgroup.procs
    echo $$ >$CG/vm-checks.scope/cgroup.procs
    P=$CG/host-setup
    DIRS_RED=$P/red
    DIRS_BLUE=$P/blue
else
    mount -t tmpfs -o mode=0755 cgroup $CG
    mkdir $CG/cpu,cpuacct $CG/memory $CG/pids $CG/devices $CG/unified
    mount -t cgroup -o cpu,cpuacct cgroup $CG/cpu,cpuacct
    mount -t cgroup -o memory cgroup $CG/memory
    mount -t cgroup -o pids cgroup $CG/pids
    mount -t cgroup -o devices cgroup $CG/devices
    mount -t cgroup2 cgroup2 $CG/unified
    ln -s cpu,cpuacct $CG/cpu
    ln -s cpu,cpuacct $CG/cpuacct
    P=$CG/cpu,cpuacct/host-setup
    PM=$CG/memory/host-setup
    PP=$CG/pids/host-setup
    PD=$CG/devices/host-setup
    DIRS_RED="$P/red $PM/red $PP/red $PD/red"
    DIRS_BLUE="$P/blue $PM/blue $PP/blue $PD/blue"
fi
# systemd: "/" and everything under it shared, so every mount made later
# propagates unless made private first.
mount --make-rshared /
for m in $(cat /opt/vm/modules); do insmod /opt/vm/$m.ko; done
hostname vm
# /var/lib (the state dir) and /tmp (the suites' labs) on ext4, as on a real host:
# this root is a tmpfs, which Linux 6.1 cannot idmap (tmpfs can from 6.3), and a
# container's user namespace needs idmapped layers. A sparse image in RAM.
truncate -s 2G /run/disk.img && losetup /dev/loop6 /run/disk.img && mke2fs -q /dev/loop6 &&
    mkdir -p /var/lib /tmp && mount -t ext4 /dev/loop6 /var/lib && rmdir /var/lib/lost+found &&
    mkdir -m 1777 /var/lib/.tmp && mount --bind /var/lib/.tmp /tmp ||
    echo "FAIL ext4 for /var/lib and /tmp"

. /opt/vm/checks-lib.sh # PASSES, FAILS, pass, fail, check, nothing_left
has_words() { # FILE WORD...: every WORD is in FILE
    f=$1
    shift
    for w in "$@"; do grep -qw "$w" "$f" || { echo "$f: '$(cat "$f")' lacks $w"; return 1; }; done
}
is() { # FILE VALUE
    [ "$(cat "$1")" = "$2" ] || { echo "$1 is '$(cat "$1")', expected '$2'"; return 1; }
}
shared_root() {
    grep -q '^[0-9]* [0-9]* [^ ]* / / .* shared:' /proc/1/mountinfo || { echo '"/" is not shared'; return 1; }
}

echo "vm-guest: Linux $(uname -r), $(nproc) CPUs, cgroup v$V"
if [ $V = 2 ]; then
    host_layout() {
        [ "$(stat -f -c %t $CG)" = 63677270 ] || { echo "$CG has magic $(stat -f -c %t $CG)"; return 1; }
        is $CG/cgroup.subtree_control "" && shared_root
    }
    check "cgroup v2 only, nothing enabled in the root yet, \"/\" shared (as with systemd)" host_layout
else
    host_layout() {
        [ "$(stat -f -c %t $CG/memory)" = 27e0eb ] || { echo "$CG/memory has magic $(stat -f -c %t $CG/memory)"; return 1; }
        shared_root
    }
    check "cgroup v1 hybrid (cpu,cpuacct co-mounted), \"/\" shared (as with systemd)" host_layout
fi

# A real swap device: loop7 over a sparse file in /tmp (tmpfs cannot be swapped to
# directly; a loop device over it can). loop0 stays free for escape.rs.
swap_on() {
    truncate -s 256M /tmp/swapfile && losetup /dev/loop7 /tmp/swapfile && mkswap /dev/loop7 >/dev/null &&
        swapon /dev/loop7 || return 1
    grep -q '^/dev/loop7 ' /proc/swaps || { cat /proc/swaps; return 1; }
}
check "a swap device is on (256M, /dev/loop7)" swap_on

# --- RED and BLUE up ------------------------------------------------------------
check "host-setup red" host-setup red
check "host-setup blue" host-setup blue

red_pid() { host-setup status red | sed -n 's/.*init pid \([0-9]*\).*/\1/p'; }
if [ $V = 2 ]; then
    v2_layout() {
        has_words $CG/cgroup.subtree_control cpu memory pids || return 1
        has_words $P/cgroup.subtree_control cpu memory pids || return 1
        for n in red blue; do
            is $P/$n/cgroup.subtree_control "" || return 1
            [ -n "$(cat $P/$n/cgroup.procs)" ] || { echo "$P/$n holds no process"; return 1; }
            is $P/$n/cgroup.type domain || return 1
        done
        is $P/cgroup.procs "" || return 1
        pid=$(red_pid)
        grep -qx "$pid" $P/red/cgroup.procs || { echo "init $pid is not in $P/red"; return 1; }
        grep -qx "0::/host-setup/red" /proc/$pid/cgroup || { cat /proc/$pid/cgroup; return 1; }
    }
    check "cgroup v2: cpu, memory, pids enabled in / and host-setup/, never in the leaves; no internal processes" v2_layout
    v2_limits() { is $P/red/cpu.max "40000 100000" && is $P/red/memory.max 209715200 && is $P/red/pids.max 512; }
    check "cgroup v2 limits: cpu.max 40000 100000, memory.max 209715200, pids.max 512" v2_limits
    check "swap off: memory.swap.max 0" is $P/red/memory.swap.max 0
    born_in_cgroup() { # init and exec's child start in the cgroup (clone3): nobody writes cgroup.procs
        # The supervisor spawns init, so its debug lines and init's are in console.log.
        RUST_LOG=debug host-setup up born >/dev/null 2>&1 || { host-setup up born; return 1; }
        cp /var/lib/host-setup/containers/born/console.log /tmp/born.log
        out=$(RUST_LOG=debug host-setup exec born /bin/sh -c 'read -r l </proc/self/cgroup; echo "$l"' 2>/tmp/born-exec.log)
        host-setup down born >/dev/null || return 1
        grep -q "clone3(CLONE_INTO_CGROUP, $P/born)" /tmp/born.log || { grep -E "clone|cgroup" /tmp/born.log; return 1; }
        ! grep -q "join cgroup" /tmp/born.log || { grep "join cgroup" /tmp/born.log; return 1; }
        grep -q "clone3(CLONE_INTO_CGROUP, $P/born)" /tmp/born-exec.log || { tail -5 /tmp/born-exec.log; return 1; }
        # In its cgroup namespace, exec's child sees its own cgroup as the root.
        [ "$out" = "0::/" ] || { echo "exec's child: $out"; return 1; }
    }
    check "cgroup v2: init and exec's child are born in the cgroup (clone3 CLONE_INTO_CGROUP), no join" born_in_cgroup
else
    v1_layout() {
        pid=$(red_pid)
        grep -qx "$pid" $P/red/cgroup.procs || { echo "init $pid is not in $P/red"; return 1; }
        grep -qx "$pid" $PM/red/cgroup.procs || { echo "init $pid is not in $PM/red"; return 1; }
        is $P/red/cpu.cfs_period_us 100000 && is $P/red/cpu.cfs_quota_us 40000 &&
            is $PM/red/memory.limit_in_bytes 209715200 && is $PP/red/pids.max 512 || return 1
        grep -qx 'c 1:3 rwm' $PD/red/devices.list || { cat $PD/red/devices.list; return 1; }
        ! grep -q '^a ' $PD/red/devices.list || { cat $PD/red/devices.list; return 1; }
    }
    check "cgroup v1: cfs_quota_us 40000 of 100000, limit_in_bytes 209715200, pids.max 512, devices allow list" v1_layout
    v1_swap() {
        is $PM/red/memory.swappiness 0 || return 1
        [ ! -f $PM/red/memory.memsw.limit_in_bytes ] || is $PM/red/memory.memsw.limit_in_bytes 209715200
    }
    check "swap off: memory.memsw.limit_in_bytes = limit, swappiness 0" v1_swap
fi
# With "/" shared, a mount made in a container's mount namespace before making
# it private would show up here, in the VM's own namespace (PID 1's).
host_mounts_clean() {
    if grep -E ' - overlay |put_old|/var/lib/host-setup' /proc/1/mountinfo; then return 1; fi
    shared_root
}
check "no container mount propagates to the host; \"/\" is still shared" host_mounts_clean
# The device filter (v2: eBPF; v1: the devices controller): a node for a device
# off the allow list (kmsg, c 1:11, which opens fine here in the VM) can be made
# inside (CAP_MKNOD) but not opened; /dev/null works.
devices_denied() {
    rm -f /tmp/kmsg && mknod /tmp/kmsg c 1 11 && (exec 3</tmp/kmsg) || { echo "kmsg does not open outside either"; return 1; }
    # The layers have no mknod: a third container gets busybox as an extra layer.
    mkdir -p /tmp/bblayer/bin && cp /opt/vm/busybox /tmp/bblayer/bin/busybox
    host-setup green --layer /tmp/bblayer >/dev/null || return 1
    out=$(host-setup exec green /bin/sh -c '(exec 4</dev/null) && echo NULL-OK; /bin/busybox mknod /kmsg c 1 11 && (exec 3</kmsg) && echo OPENED' 2>&1)
    host-setup down green >/dev/null
    echo "$out"
    case "$out" in *OPENED*) return 1 ;; esac
    case "$out" in *NULL-OK*"not permitted"*) return 0 ;; esac
    return 1
}
check "devices: a node off the allow list cannot be opened inside, /dev/null can" devices_denied
seccomp_filtered() {
    pid=$(host-setup status red | sed -n 's/.*init pid \([0-9]*\).*/\1/p')
    grep -q '^Seccomp:[[:space:]]*2' /proc/$pid/status || { echo "init $pid:"; grep Seccomp /proc/$pid/status; return 1; }
    out=$(host-setup exec red /bin/sh -c 'while read l; do echo "$l"; done </proc/self/status')
    echo "$out" | grep -q '^Seccomp:[[:space:]]*2' || { echo "exec: $out"; return 1; }
    host-setup status red | grep -q 'seccomp   default' || { host-setup status red; return 1; }
}
check "seccomp: red's init and exec run under Docker's default filter (Seccomp: 2)" seccomp_filtered

# --- swap off, by its effect --------------------------------------------------------
# Pages the kernel wrote to swap since boot (every cgroup's).
pswpout() { sed -n 's/^pswpout //p' /proc/vmstat; }
# The control: a cgroup of the VM's own (not host-setup's), limited to 64M with
# swap allowed, as the kernel's defaults are. A 100M hog swaps, and lives.
if [ $V = 2 ]; then SWAPCTL=$CG/swapctl; else SWAPCTL=$CG/memory/swapctl; fi
swap_is_used_where_allowed() {
    mkdir -p $SWAPCTL || return 1
    if [ $V = 2 ]; then echo 64M >$SWAPCTL/memory.max; else echo 64M >$SWAPCTL/memory.limit_in_bytes; fi || return 1
    s0=$(pswpout)
    # The worker touches its 100M once, then sleeps (--vm-hang 0).
    sh -c "echo \$\$ >$SWAPCTL/cgroup.procs && exec stress --vm 1 --vm-bytes 100M --vm-hang 0 -q" &
    total() { # memory + swap the cgroup holds
        if [ $V = 2 ]; then
            echo $(($(cat $SWAPCTL/memory.current) + $(cat $SWAPCTL/memory.swap.current)))
        else
            cat $SWAPCTL/memory.memsw.usage_in_bytes
        fi
    }
    n=0 # until the hog is in the cgroup, then until it holds all 100M or is killed (or 30 s)
    while [ ! -s $SWAPCTL/cgroup.procs ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
    while [ "$(total)" -lt $((100 << 20)) ] && [ "$(wc -l <$SWAPCTL/cgroup.procs)" -ge 1 ] && [ $n -lt 300 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    s1=$(pswpout)
    workers=$(wc -l <$SWAPCTL/cgroup.procs)
    echo "holds $(($(total) >> 20))M in a 64M cgroup, $workers of 2 processes alive; pswpout $s0 -> $s1"
    for p in $(cat $SWAPCTL/cgroup.procs); do kill -9 "$p"; done
    wait
    [ "$workers" = 2 ] && [ "$s1" -gt "$s0" ]
}
check "swap works: a 100M hog in a 64M cgroup that may swap swaps and lives" swap_is_used_where_allowed
[ "$LAST" = fail ] || sed 's/^/  /' /tmp/check.out # show the figures
n=0
while ! rmdir $SWAPCTL 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
# RED: the same kind of hog, above its 200M, is OOM-killed; nothing is swapped out.
red_swaps_nothing() {
    dirs=$(host-setup status red | sed -n 's/^  cgroups   //p')
    s0=$(pswpout)
    out=$(host-setup exec red stress --vm 1 --vm-bytes 250M --vm-keep -t 60 2>&1)
    s1=$(pswpout)
    echo "pswpout $s0 -> $s1; $(echo "$out" | tail -n 1)"
    case "$out" in *"got signal 9"*) ;; *) echo "the hog was not killed"; return 1 ;; esac
    [ "$s1" = "$s0" ] || return 1
    for d in $dirs; do
        if [ -f $d/memory.swap.current ]; then is $d/memory.swap.current 0 || return 1; fi
        # v1: memory + swap never went above memory alone's limit.
        if [ -f $d/memory.memsw.max_usage_in_bytes ]; then
            [ "$(cat $d/memory.memsw.max_usage_in_bytes)" -le "$(cat $d/memory.limit_in_bytes)" ] ||
                { echo "memsw peak $(cat $d/memory.memsw.max_usage_in_bytes)"; return 1; }
        fi
    done
}
check "swap off: RED's 250M hog is OOM-killed, and nothing is swapped out" red_swaps_nothing
[ "$LAST" = fail ] || sed 's/^/  /' /tmp/check.out

# --- the lab's checks: ping both ways, hostname, CPU 40 %, swap, 150M, 250M ------
# Not on the console: with stdin a terminal, `host-setup exec` gives the command a
# pseudo-terminal of its own, whose output ends lines with \r\n, and lab.sh's
# `[ "$(host-setup exec red hostname)" = RED ]` sees "RED\r" (as on a user's terminal).
/opt/lab/vagrant/lab.sh check </dev/null >/tmp/lab.out 2>&1
grep -E '^(PASS|FAIL) ' /tmp/lab.out
PASSES=$((PASSES + $(grep -c '^PASS ' /tmp/lab.out)))
FAILS=$((FAILS + $(grep -c '^FAIL ' /tmp/lab.out)))
grep -q '^lab: [0-9]* passed, 0 failed' /tmp/lab.out || { fail "lab.sh check ran to its end"; sed 's/^/  /' /tmp/lab.out | tail -n 20; }
if [ $V = 2 ]; then
    check "memory.events counts the OOM kill" grep -q '^oom_kill [1-9]' $P/red/memory.events
else
    check "memory.oom_control counts the OOM kill" grep -q '^oom_kill [1-9]' $PM/red/memory.oom_control
fi
check "status reports the OOM kill" sh -c 'host-setup status red | grep -q "oom kills [1-9]" || { host-setup status red; exit 1; }'

# --- down, with processes still in RED ---------------------------------------------
# One using memory in RED (its pid namespace and its cgroups) ...
# Waiting for the processes themselves (stress and its worker), not a guessed delay.
stress_count_reaches() { # N: until N stress processes run (at most 30 s)
    n=0
    while [ "$(pidof stress | wc -w)" -lt "$1" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
}
host-setup exec red stress --vm 1 --vm-bytes 100M --vm-hang 0 -t 60 >/dev/null 2>&1 &
stress_count_reaches 2
# ... and one that is in RED's cgroups but not in its pid namespace (as `echo PID >
# cgroup.procs` from the host puts it): down kills it, and must wait until it has
# left the cgroup (v2: cgroup.events populated 0) before the rmdir can succeed.
stress --vm 1 --vm-bytes 64M --vm-hang 0 >/dev/null 2>&1 &
stress_count_reaches 4
for p in $(pidof stress); do
    for d in $DIRS_RED; do echo "$p" >$d/cgroup.procs; done
done
check "down (lab.sh down) leaves nothing" sh -c 'RUST_LOG=debug /opt/lab/vagrant/lab.sh down 2>/tmp/down.log'
grep -E 'EBUSY|kill -KILL' /tmp/down.log | sed 's/^/  /'
leftovers() { # everything of the lab that is still there
    for n in RED BLUE; do [ -e /run/netns/$n ] && echo "netns $n"; done
    for d in $DIRS_RED $DIRS_BLUE $P ${PM:-} ${PP:-} ${PD:-}; do
        [ -e $d ] && echo "cgroup $d: $(cat $d/cgroup.procs 2>/dev/null | tr '\n' ' ')"
    done
    # /run/netns itself stays a mount point, as with iproute2's `ip netns`.
    grep -E 'overlay|/run/netns/|host-setup' /proc/self/mounts | sed 's/^/mount /'
    ls /var/lib/host-setup/containers 2>/dev/null | sed 's/^/journal /'
    ls /sys/class/net | grep -vx lo | sed 's/^/link /'
    for p in /proc/[0-9]*; do
        c=$(cat $p/comm 2>/dev/null)
        case "$c" in stress | host-setup) echo "process ${p#/proc/} $c" ;; esac
    done
}
check "no netns, link, cgroup, mount, journal or process left" nothing_left
wait

# --- host-setup's errors in a container's view of cgroup v2 ----------------------
# A cgroup namespace rooted at a cgroup that is not the hierarchy's root, as inside
# docker/podman (cgroupns=private): /sys/fs/cgroup shows that cgroup as "/".
if [ $V = 2 ]; then
    echo "+cpu +memory +pids" >$CG/cgroup.subtree_control
    in_view() { # CGROUP CMD...: run CMD in CGROUP, seen through a cgroup namespace
        cg=$1
        shift
        (
            echo 0 >"$cg/cgroup.procs" || exit 99
            exec /usr/bin/unshare -C -m sh -c \
                'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"' sh "$@"
        )
    }
    # 1. memory not delegated: the parent enabled only cpu for the container's cgroup.
    mkdir -p $CG/deleg/ctr
    echo +cpu >$CG/deleg/cgroup.subtree_control
    not_delegated() {
        in_view $CG/deleg/ctr host-setup red >/tmp/err.out 2>&1
        rc=$?
        cat /tmp/err.out
        [ $rc = 3 ] || { echo "exit $rc, expected 3"; return 1; }
        grep -q "memory is not delegated" /tmp/err.out && grep -q "echo +memory > PARENT/cgroup.subtree_control" /tmp/err.out
    }
    check "a controller the parent did not delegate is named, with how to enable it (exit 3)" not_delegated
    [ "$LAST" = fail ] || sed 's/^/  /' /tmp/err.out # show the message
    # 2. no internal processes: the view's root holds the process that runs host-setup.
    mkdir -p $CG/ctr2
    internal() {
        in_view $CG/ctr2 host-setup red >/tmp/err.out 2>&1
        rc=$?
        cat /tmp/err.out
        [ $rc = 3 ] || { echo "exit $rc, expected 3"; return 1; }
        grep -q "no internal processes rule" /tmp/err.out && grep -q "cgroup.procs" /tmp/err.out
    }
    check "a cgroup with processes of its own: the no-internal-processes rule is explained (exit 3)" internal
    [ "$LAST" = fail ] || sed 's/^/  /' /tmp/err.out
    rmdir $CG/deleg/ctr $CG/deleg $CG/ctr2 2>/dev/null
    check "the failed attempts left nothing" nothing_left
fi

# --- the integration suites, on this cgroup v2 host with "/" shared ---------------
# Each is a static test binary of tests/*.rs: one PASS/FAIL line per suite, with
# its own summary; the failures' output if any. Fewer leak cycles than on the
# host: TCG is ~10 times slower.
run_suite() { # NAME REPS EXPECTED SKIPS [FILTER]: REPS runs in a row, each with EXPECTED passed
    # (what the host's test binary lists for FILTER and SKIPS: tests/vm/run counted it with
    # --list). SKIPS: "-" or names for libtest's --skip, comma-separated.
    skip_args=""
    [ "$4" = - ] || skip_args=$(echo "$4" | tr ',' ' ' | sed 's/[^ ][^ ]*/--skip &/g')
    t0=$(cut -d. -f1 /proc/uptime)
    run=0
    bad=0
    while [ $run -lt "$2" ]; do
        run=$((run + 1))
        # The host's commands (ip, not busybox's) first, as on any host.
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/vm/bin \
            HS_BIN_DIR=/usr/local/lib/host-setup HS_LEAK_CYCLES=5 RUST_BACKTRACE=0 \
            /opt/vm/suites/$1 --test-threads=2 $skip_args ${5:+"$5"} >/tmp/suite.out 2>&1
        rc=$?
        result=$(grep '^test result:' /tmp/suite.out | tail -n 1)
        passed=$(echo "$result" | sed -n 's/.* \([0-9]*\) passed;.*/\1/p')
        if [ $rc != 0 ] || [ "$passed" != "$3" ]; then
            bad=$((bad + 1))
            echo "run $run of $2: ${passed:-no} passed where the host lists $3 (${result#test result: }, exit $rc)"
            [ -s /tmp/suite.failed ] || cp /tmp/suite.out /tmp/suite.failed
        fi
    done
    secs=$(($(cut -d. -f1 /proc/uptime) - t0))
    if [ "$2" = 1 ]; then
        echo "tests/$1.rs${5:+ ($5)}${skip_args:+ ($skip_args)}: ${result#test result: }, $3 expected (${secs}s)"
    else
        echo "tests/$1.rs${5:+ ($5)}${skip_args:+ ($skip_args)} $2 times: $(($2 - bad)) runs of $3 passed (${secs}s)"
    fi
    [ $bad = 0 ]
}
suites_left_nothing() {
    left=$(leftovers; ls -d /tmp/hs-test-* /tmp/lab-test-* $CG/hs-test-* /run/netns/T* 2>/dev/null)
    [ -z "$left" ] || { echo "$left"; return 1; }
}
if [ $V = 2 ] && [ -f /opt/vm/suites.list ]; then
    # One line per entry of tests/vm/run's VM_SUITES: NAME REPS EXPECTED SKIPS [FILTER].
    while read -r name reps expected skips filter <&3; do
        rm -f /tmp/suite.failed
        if run_suite "$name" "$reps" "$expected" "$skips" "$filter" >/tmp/check.out 2>&1 3<&-; then
            pass "suite $name: $(echo $(cat /tmp/check.out))"
        else
            fail "suite $name: $(echo $(cat /tmp/check.out))"
            if grep -q '^failures:' /tmp/suite.failed; then
                sed -n '/^failures:/,$p' /tmp/suite.failed | head -n 60 | sed 's/^/  /'
            else # it died, or a count differs: its last lines
                tail -n 30 /tmp/suite.failed | sed 's/^/  /'
            fi
        fi
    done 3</opt/vm/suites.list
    check "the suites left nothing (labs, state dirs, cgroups, netns, processes)" suites_left_nothing
fi

echo "vm-result: $PASSES passed, $FAILS failed"
sync
poweroff -f
