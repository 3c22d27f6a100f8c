#!/bin/sh
# Inside the systemd VM (tests/vm/systemd), run by hs-checks.service once the
# system is up, output on ttyS1: a fresh Debian 12 as a new user has it. One
# "PASS name" / "FAIL name" line per check (tests/vm/systemd expects their number),
# then "guest-result: N passed, M failed".
export PATH=/opt/hs/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
CG=/sys/fs/cgroup
PASSES=0
FAILS=0
pass() { echo "PASS $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
check() { # NAME CMD...: PASS if CMD succeeds, else FAIL and its output, indented
    name=$1
    shift
    if "$@" >/tmp/check.out 2>&1; then pass "$name"; else fail "$name"; sed 's/^/  /' /tmp/check.out | head -n 30; fi
}
# wait_for SECONDS CMD...: until CMD succeeds (under TCG everything is slow)
wait_for() {
    n=$(($1 * 5))
    shift
    while ! "$@" >/dev/null 2>&1; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.2
    done
}
# in_unit UNIT CMD...: systemd-run --wait CMD as a service UNIT (it ends when CMD
# returns, and systemd kills what is left in its cgroup); its journal if it failed.
in_unit() {
    unit=$1
    shift
    systemd-run --quiet --wait --unit="$unit" -- "$@" && return 0
    journalctl -b -u "$unit" --no-pager | tail -n 20
    return 1
}
loaded() { grep -qw "$1" /proc/filesystems || [ -d "/sys/module/$1" ]; }

echo "guest: Linux $(uname -r), $(nproc) CPUs, $(systemctl --version | head -1)"
host_is_systemd() {
    [ "$(cat /proc/1/comm)" = systemd ] || { echo "PID 1 is $(cat /proc/1/comm)"; return 1; }
    [ "$(stat -f -c %t $CG)" = 63677270 ] || { echo "$CG is not cgroup2"; return 1; }
    grep -q '^[0-9]* [0-9]* [^ ]* / / .* shared:' /proc/1/mountinfo || { echo '"/" is not shared'; return 1; }
    systemctl is-active systemd-journald systemd-udevd
}
check "systemd is PID 1, cgroup v2 alone, \"/\" shared, journald and udev running" host_is_systemd
nothing_loaded() {
    for m in overlay veth bridge nf_tables; do
        ! loaded $m || { echo "$m is loaded already:"; lsmod | grep -w "$m"; return 1; }
    done
    modinfo -n overlay veth bridge nf_tables # modules, which the kernel can load
}
check "overlay, veth, bridge and nf_tables are modules and not loaded yet" nothing_loaded
before=$(cat $CG/cgroup.subtree_control)
echo "guest: root cgroup.subtree_control before: $before"

# --- the lab, on first boot, with nothing loaded by hand ------------------------------
check "host-setup red (nothing loaded by hand)" host-setup red
check "host-setup blue" host-setup blue
check "the kernel loaded overlay and veth on first use" sh -c 'lsmod | grep -w overlay && lsmod | grep -w veth'
check "ping RED -> BLUE and BLUE -> RED" sh -c \
    'host-setup exec red ping -c 1 -W 5 11.11.11.3 </dev/null && host-setup exec blue ping -c 1 -W 5 11.11.11.2 </dev/null'
check "host-setup up --net hs0 -p 8080:80 web: the kernel loads bridge and nf_tables itself" sh -c \
    'host-setup up --net hs0 -p 8080:80 web && lsmod | grep -w bridge && lsmod | grep -w nf_tables'
check "host-setup verify --check namespaces --check limits --check ping red blue" \
    host-setup verify --check namespaces --check limits --check ping red blue

# --- a container started from a systemd unit outlives the unit, and is watched --------
# The unit's main process (host-setup up) returns at once; systemd then stops the
# unit and kills everything left in its cgroup: the supervisor must not be there.
# svc waits until the check says go (mkdir /go), then exits 7; `sleep` comes from a
# layer of busybox (the built-in layers have none).
L=/var/lib/hs-sleep-layer
mkdir -p $L/bin && cp /bin/busybox $L/bin/busybox && ln -sf busybox $L/bin/sleep
check "systemd-run --wait -- host-setup up svc -- sh -c 'until go; exit 7' (the unit ends)" \
    in_unit hs-svc host-setup up --net none --layer $L svc -- sh -c 'while [ ! -d /go ]; do sleep 0.2; done; exit 7'
supervisor_outside() {
    host-setup status svc | grep -q '^svc: running' || { host-setup status svc; return 1; }
    init=$(host-setup status svc | sed -n 's/.*init pid \([0-9]*\).*/\1/p')
    sup=$(awk '/^PPid:/ {print $2}' /proc/$init/status)
    comm=$(cat /proc/$sup/comm)
    echo "init $init, its parent $sup ($comm): $(cat /proc/$sup/cgroup)"
    [ "$sup" != 1 ] && grep -qx '0::/host-setup/svc.supervisor' /proc/$sup/cgroup
}
check "after its unit ended, svc's supervisor lives on in host-setup/svc.supervisor" supervisor_outside
check "host-setup exec svc mkdir /go (svc exits 7)" host-setup exec svc mkdir /go
ended() { ! host-setup status "$1" | grep -qE "^$1: (running|starting)"; }
wait_for 60 ended svc
svc_exit7() { host-setup status svc >/tmp/svc.status; cat /tmp/svc.status; grep -q '^svc: exited (7)' /tmp/svc.status; }
check "status records svc's exit code 7" svc_exit7
check "systemd-run --wait -- host-setup up hog --memory 32M -- stress --vm 1 --vm-bytes 128M" \
    in_unit hs-hog host-setup up --net none --memory 32M hog -- stress --vm 1 --vm-bytes 128M --vm-hang 0 -t 60
hog_oom() {
    host-setup status hog >/tmp/hog.status
    cat /tmp/hog.status
    grep -q '^hog: exited' /tmp/hog.status && grep -q 'oom kills [1-9]' /tmp/hog.status
}
wait_for 60 ended hog
check "status records hog's exit and its OOM kill after its unit ended" hog_oom

# --- hsrun --systemd-cgroup: the container's cgroup is a transient scope ------------
# containerd's systemd cgroup driver: cgroupsPath slice:prefix:name, the scope made
# by systemd over D-Bus with init's pid, the limits in the scope's own files.
B=/var/lib/hs-bundle
mkdir -p $B/rootfs/bin $B/rootfs/proc
cp /bin/busybox $B/rootfs/bin/ && ln -sf busybox $B/rootfs/bin/sleep
bundle() { # CGROUPSPATH: `sleep 1000` with 64 MiB, 32 pids, a quarter of a CPU
    cat >$B/config.json <<EOF
{"ociVersion": "1.0.2",
 "process": {"user": {"uid": 0, "gid": 0}, "args": ["sleep", "1000"], "cwd": "/", "env": ["PATH=/bin"]},
 "root": {"path": "rootfs"},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"cgroupsPath": "$1",
  "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}, "cpu": {"quota": 25000, "period": 100000}},
  "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}}
EOF
}
sd_run() { # ID CGROUPSPATH
    bundle "$2" && hsrun --systemd-cgroup create --bundle $B "$1" </dev/null >/tmp/sd-$1.out 2>&1 &&
        hsrun --systemd-cgroup start "$1" || { cat /tmp/sd-$1.out; return 1; }
}
sd_scope() { # ID UNIT CGROUP: active, init in it, the limits read back from the kernel
    pid=$(hsrun state "$1" | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
    systemctl show -p ActiveState -p ControlGroup -p MemoryMax -p TasksMax "$2"
    echo "init $pid: $(cat /proc/$pid/cgroup)"
    [ "$(systemctl show -P ActiveState "$2")" = active ] || return 1
    [ "$(systemctl show -P ControlGroup "$2")" = "/$3" ] || return 1
    grep -qx "0::/$3" /proc/$pid/cgroup || return 1
    grep -qx "$pid" $CG/$3/cgroup.procs || return 1
    echo "memory.max $(cat $CG/$3/memory.max), pids.max $(cat $CG/$3/pids.max), cpu.max $(cat $CG/$3/cpu.max)"
    [ "$(cat $CG/$3/memory.max)" = 67108864 ] && [ "$(cat $CG/$3/pids.max)" = 32 ] &&
        [ "$(cat $CG/$3/cpu.max)" = "25000 100000" ]
}
sd_gone() { # ID UNIT CGROUP: delete --force, then no unit and no cgroup
    hsrun --debug --systemd-cgroup delete --force "$1" 2>/tmp/sd-del.log || { tail -n 25 /tmp/sd-del.log; return 1; }
    state=$(systemctl show -P LoadState "$2")
    echo "after delete: $2 LoadState=$state; $CG/$3 $([ -e $CG/$3 ] && echo is left || echo is gone)"
    [ "$state" = not-found ] && [ ! -e $CG/$3 ]
}
sd_all() { # ID CGROUPSPATH UNIT CGROUP
    sd_run "$1" "$2" && sd_scope "$1" "$3" "$4" && sd_gone "$1" "$3" "$4"
}
S=system.slice/hsrun-sd1.scope
check "hsrun --systemd-cgroup run sd1 (cgroupsPath system.slice:hsrun:sd1)" sd_run sd1 system.slice:hsrun:sd1
check "hsrun-sd1.scope is active, init in /$S, memory.max pids.max cpu.max as asked" \
    sd_scope sd1 hsrun-sd1.scope $S
check "hsrun --systemd-cgroup delete --force sd1: the unit is gone, no cgroup left" sd_gone sd1 hsrun-sd1.scope $S
check "an empty slice (:kube:sd2) is system.slice: kube-sd2.scope, its limits, deleted" \
    sd_all sd2 :kube:sd2 kube-sd2.scope system.slice/kube-sd2.scope
check "a nested slice (hs-nest.slice:hsrun:sd3) is hs.slice/hs-nest.slice: scope, limits, deleted" \
    sd_all sd3 hs-nest.slice:hsrun:sd3 hsrun-sd3.scope hs.slice/hs-nest.slice/hsrun-sd3.scope
for c in sd1 sd2 sd3; do hsrun --systemd-cgroup delete --force $c >/dev/null 2>&1; done
systemctl stop hs-nest.slice hs.slice 2>/dev/null
rm -rf $B

# --- down: the host as it was -------------------------------------------------------
check "host-setup down svc hog web red blue" host-setup down svc hog web red blue
rm -rf $L
subtree_as_before() {
    now=$(cat $CG/cgroup.subtree_control)
    [ "$now" = "$before" ] || { echo "root cgroup.subtree_control is '$now', was '$before'"; return 1; }
    [ ! -e $CG/host-setup ] || { echo "$CG/host-setup is left"; find $CG/host-setup -maxdepth 1; return 1; }
    [ ! -e /run/host-setup.subtree_control.json ] || { cat /run/host-setup.subtree_control.json; return 1; }
}
check "the root's cgroup.subtree_control is exactly as before up ($before), nothing left" subtree_as_before

echo "guest-result: $PASSES passed, $FAILS failed"
