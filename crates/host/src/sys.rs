//! The few system calls std does not wrap, each behind a safe function.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The user id the helper runs as.
pub(crate) fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The process umask. Read once at start, before any thread exists: reading it means
/// setting it, which races with threads creating files.
pub(crate) fn read_umask() -> u32 {
    // SAFETY: umask cannot fail; the old mask is restored at once.
    unsafe {
        let old = libc::umask(0o077);
        libc::umask(old);
        old
    }
}

/// Sends SIGKILL to process group `pgid`; see [`signal_group`].
pub(crate) fn kill_group(pgid: u32) {
    signal_group(pgid, libc::SIGKILL);
}

/// Sends `signal` to process group `pgid`. The caller guarantees the group's leader is
/// not yet reaped (a zombie keeps its pid, so the number cannot name another group).
pub(crate) fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: plain system call; ESRCH (the group is gone) is fine.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Exit code.
    Code(i32),
    /// Killing signal.
    Signal(i32),
}

/// Waits for child `pid` to end WITHOUT reaping it (`WNOWAIT`): the zombie keeps the
/// pid, and with it the process group number, reserved until [`reap`].
pub(crate) fn wait_no_reap(pid: u32) -> io::Result<Ended> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer for the duration of the call.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            // SAFETY: waitid filled `info` for a child state change.
            let status = unsafe { info.si_status() };
            return Ok(match info.si_code {
                libc::CLD_EXITED => Ended::Code(status),
                _ => Ended::Signal(status),
            });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps child `pid` (after [`wait_no_reap`] saw it end).
pub(crate) fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// True when the user may write `path` (`access(W_OK)`, real ids).
pub(crate) fn can_write(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `n` random bytes from the kernel (for temporary names and nonces).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled part of `buf`.
        let rc = unsafe {
            libc::getrandom(
                buf[filled..].as_mut_ptr().cast::<libc::c_void>(),
                N - filled,
                0,
            )
        };
        if rc > 0 {
            filled += rc as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // No getrandom (very old kernels): the clock and pid still make names
            // unique enough; they are retried on collision anyway.
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                ^ u128::from(std::process::id()) << 64;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (seed >> ((i % 16) * 8)) as u8;
            }
            return buf;
        }
    }
    buf
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The helper's stdin and stdout as files (unbuffered: the helper buffers itself).
pub(crate) fn stdio_files() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    // SAFETY: fds 0 and 1 are open for the life of the process and nothing else in the
    // helper uses them through std's handles after this call.
    unsafe { (std::fs::File::from_raw_fd(0), std::fs::File::from_raw_fd(1)) }
}

/// How many bytes wait to be read in pipe `fd` (`FIONREAD`).
pub(crate) fn bytes_waiting(fd: std::os::fd::RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Blocks until `fd` is readable (data, end of file or an error).
pub(crate) fn wait_readable(fd: std::os::fd::RawFd) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the length given.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
