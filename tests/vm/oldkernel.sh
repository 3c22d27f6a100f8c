#!/opt/vm/busybox sh
# The checks for a kernel older than idmapped mounts (Linux 5.12), run by
#   VM_KERNEL=bullseye VM_CHECKS=tests/vm/oldkernel.sh VM_EXPECT=9 VM_SUITES=none tests/vm/run
# (bullseye's cloud kernel, 5.10; docs/hosts.md). Stage 2 of the VM as in
# tests/vm/checks.sh, on the same kind of host (cgroup v2, "/" shared, state on
# ext4), with fewer checks: a container whose user namespace is on gets
# preconditions.rs's one message (exit 3) and leaves nothing; with --no-userns it
# runs; the tutorial's red and blue (no user namespace by default) come up, ping
# each other, pass `host-setup verify` and go down leaving nothing.
BB=/opt/vm/busybox
$BB mkdir -p /opt/vm/bin
$BB --install -s /opt/vm/bin
export PATH=/opt/vm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
cd /
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=0755 run /run
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts
CG=/sys/fs/cgroup
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $CG
mkdir -p $CG/init.scope $CG/vm-checks.scope
echo 1 >$CG/init.scope/cgroup.procs
echo $$ >$CG/vm-checks.scope/cgroup.procs
mount --make-rshared /
for m in $(cat /opt/vm/modules); do insmod /opt/vm/$m.ko; done
hostname vm
truncate -s 1G /run/disk.img && losetup /dev/loop6 /run/disk.img && mke2fs -q /dev/loop6 &&
    mkdir -p /var/lib && mount -t ext4 /dev/loop6 /var/lib && rmdir /var/lib/lost+found ||
    echo "FAIL ext4 for /var/lib"

. /opt/vm/checks-lib.sh # PASSES, FAILS, pass, fail, check, nothing_left
leftovers() {
    ls /run/netns 2>/dev/null | sed 's/^/netns /'
    [ -e $CG/host-setup ] && echo "cgroup $CG/host-setup"
    grep -E 'overlay|/run/netns/|host-setup' /proc/self/mounts | sed 's/^/mount /'
    ls /var/lib/host-setup/containers 2>/dev/null | sed 's/^/state /'
    ls /sys/class/net | grep -vx lo | sed 's/^/link /'
}
echo "vm-guest: Linux $(uname -r), $(nproc) CPUs"
old_kernel() {
    case "$(uname -r)" in 5.[0-9].* | 5.1[01].* | 4.*) ;; *) echo "Linux $(uname -r) has idmapped mounts" && return 1 ;; esac
}
check "the kernel predates idmapped mounts (Linux $(uname -r) < 5.12)" old_kernel

# A user namespace (green's default): one message, exit 3, before anything is made.
refused() {
    host-setup up green >/tmp/err.out 2>&1
    rc=$?
    cat /tmp/err.out
    [ $rc = 3 ] || { echo "exit $rc, expected 3"; return 1; }
    grep -q "^.*kernel $(uname -r) has no idmapped mounts (mount_setattr: ENOSYS: function not implemented; Linux 5.12+): green's user namespace (the default) needs them for its layers; run with --no-userns or on a newer kernel" /tmp/err.out
}
check "host-setup up green (user namespace by default): exit 3, idmapped mounts named, --no-userns offered" refused
sed 's/^/  /' /tmp/err.out # show the message
check "the refused up left nothing" nothing_left
no_userns() {
    host-setup up green --no-userns || return 1
    out=$(host-setup exec green /bin/sh -c 'echo ran')
    host-setup down green || return 1
    [ "$out" = ran ] || { echo "exec: '$out'"; return 1; }
}
check "host-setup up green --no-userns: up, exec, down" no_userns

# The tutorial's lab: red and blue have no user namespace by default.
check "host-setup red && host-setup blue" sh -c 'host-setup red && host-setup blue'
pings() { host-setup exec red ping -c 2 -W 2 11.11.11.3 && host-setup exec blue ping -c 2 -W 2 11.11.11.2; }
check "ping red -> blue and blue -> red" pings
# Every check of verify but the CPU share: under a loaded TCG it once measured 42.8 %
# against the 40 % limit (a timing, not a kernel feature; checks.sh's lab.sh covers it).
check "host-setup verify red blue (all but cpu)" host-setup verify red blue --check namespaces --check hostname \
    --check limits --check ping --check caps --check escape --check memory --check swap --check cleanup
check "host-setup down red && host-setup down blue" sh -c 'host-setup down red && host-setup down blue'
check "down left nothing" nothing_left

echo "vm-result: $PASSES passed, $FAILS failed"
sync
poweroff -f
