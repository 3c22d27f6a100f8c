//! The system calls of `--userns` (src/userns/): idmapped mounts, passing their
//! fds to a cloned child, and the child becoming its namespace's root. Part of
//! sys: the unsafe of host-setup stays in this one module.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

/// How many fds one message carries at most (one per layer).
pub const MAX_FDS: usize = 32;

/// open_tree(OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE): a detached copy of
/// the mount tree at `path`, as an fd, not attached anywhere.
pub fn open_tree_clone(path: &Path) -> std::result::Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: c is a NUL-terminated string that outlives the call; no other memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The kernel's struct mount_attr (linux/mount.h), version 0: 32 bytes.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// mount_setattr(MOUNT_ATTR_IDMAP|MOUNT_ATTR_RDONLY, userns) on the detached
/// mount `mnt` (and everything below it): its files' owners show through the
/// user namespace's maps, and it is read-only.
pub fn idmap_read_only(mnt: &OwnedFd, userns: &OwnedFd) -> std::result::Result<(), Errno> {
    idmap(mnt, userns, true)
}

/// The same, read-only or not (a volume, `-v`).
pub fn idmap(mnt: &OwnedFd, userns: &OwnedFd, read_only: bool) -> std::result::Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let flags = (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint;
    // SAFETY: attr is a live, properly laid out struct mount_attr of the size we pass;
    // the path is the empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Whether the kernel has mount_setattr(2), which came with idmapped mounts
/// (MOUNT_ATTR_IDMAP, Linux 5.12): called with a size of 0, which the kernel
/// refuses (EINVAL) before it looks at anything else; ENOSYS before 5.12. Nothing
/// is changed either way.
pub fn mount_setattr_probe() -> std::result::Result<(), Errno> {
    // SAFETY: no memory is passed: a null path and a null attr of size 0, which the
    // kernel rejects on its size check before it reads either.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            std::ptr::null::<libc::c_char>(),
            0,
            std::ptr::null::<MountAttr>(),
            0,
        )
    };
    match ret {
        r if r < 0 => match Errno::last() {
            Errno::EINVAL => Ok(()),
            e => Err(e),
        },
        _ => Ok(()),
    }
}

/// One byte on the socket `sock`, with `fds` attached (SCM_RIGHTS): the receiver
/// gets its own copies of them.
pub fn send_fds(sock: &OwnedFd, fds: &[OwnedFd]) -> std::result::Result<(), Errno> {
    if fds.len() > MAX_FDS {
        return Err(Errno::E2BIG);
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let iov = [std::io::IoSlice::new(b"g")];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
    let cmsgs: &[nix::sys::socket::ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    nix::sys::socket::sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, nix::sys::socket::MsgFlags::empty(), None).map(drop)
}

/// In a cloned child: wait for the parent's one byte on `sock` and take the fds
/// that came with it into `out`; returns how many. EOF (the parent gave up) is
/// ECONNABORTED. Allocates nothing.
pub fn recv_fds_in_child(sock: RawFd, out: &mut [RawFd; MAX_FDS]) -> std::result::Result<usize, Errno> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // Room for MAX_FDS ints after a cmsghdr, 8-byte aligned.
    let mut control = [0u64; (MAX_FDS * 4 + 32) / 8];
    // SAFETY: an all-zero msghdr is a valid empty one; we fill in what we pass.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at iov, byte and control, all live for the call and of the sizes given.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n == 0 {
        return Err(Errno::ECONNABORTED);
    }
    let mut count = 0;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled in, within
    // msg_controllen; each SCM_RIGHTS payload is cmsg_len - CMSG_LEN(0) bytes of ints.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let data = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..len {
                    if count < MAX_FDS {
                        out[count] = data.add(i).read_unaligned();
                        count += 1;
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(Errno::EMSGSIZE);
    }
    Ok(count)
}

/// In a cloned child whose user namespace's maps are written: become its root
/// (uid and gid 0 inside, no supplementary groups). Until then the child keeps the
/// host's ids, which the namespace cannot map: it would exec without capabilities
/// there, and files it made would belong to no one inside.
pub fn become_root_in_child() -> std::result::Result<(), Errno> {
    // Raw system calls, not libc's wrappers: those also signal every other thread
    // libc believes this process has (POSIX's process-wide ids), and after a raw
    // clone its idea of our threads is the parent's.
    // SAFETY: plain id syscalls; setgroups gets an empty list (no pointer is read).
    let failed = unsafe {
        libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) != 0
            || libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) != 0
    };
    if failed {
        return Err(Errno::last());
    }
    Ok(())
}

/// In a cloned child, for a user namespace joined by path (runc's order: the
/// user namespace first, so the namespaces made after it are its own; made
/// before, they would be the host's and its root could not mount in them):
/// setns into the user namespace on `fd`, become its root (setgroups is
/// skipped where the namespace says "deny"), unshare `unshare` (CLONE_NEWNS,
/// UTS, IPC). With `new_pid` also CLONE_NEWPID, which applies to children only:
/// clone once more with CLONE_PARENT, so the grandchild (PID 1 there) is our
/// parent's child as we are. Returns Some(its pid) to the caller, who then only
/// reports it and exits; None to the process that goes on. Allocates nothing.
pub fn join_userns_in_child(fd: RawFd, unshare: libc::c_int, new_pid: bool) -> std::result::Result<Option<i32>, Errno> {
    // SAFETY: plain syscalls on integers; setgroups gets an empty list (no pointer
    // is read); the clone has no CLONE_VM and a null stack: a fork-like copy.
    unsafe {
        if libc::syscall(libc::SYS_setns, fd, libc::CLONE_NEWUSER) != 0 {
            return Err(Errno::last());
        }
        if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
            && Errno::last() != Errno::EPERM
        {
            return Err(Errno::last());
        }
        if libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) != 0
            || libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) != 0
        {
            return Err(Errno::last());
        }
        let flags = unshare | if new_pid { libc::CLONE_NEWPID } else { 0 };
        if flags != 0 && libc::syscall(libc::SYS_unshare, flags) != 0 {
            return Err(Errno::last());
        }
        if !new_pid {
            return Ok(None);
        }
        let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
        match libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) {
            r if r < 0 => Err(Errno::last()),
            0 => Ok(None),
            pid => Ok(Some(pid as i32)),
        }
    }
}
