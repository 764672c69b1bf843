//! Other local users, for tests that cross a user boundary (a pipe into another user,
//! what another user can read). Created on first use when the tests run as root;
//! creation is serialized across test processes with a lock file.

use std::os::fd::AsRawFd;
use std::process::Command;

/// The account for tests that run the helper as another user.
pub const PIPE_USER: &str = "cmux-test-pipe";

/// True when the tests run as root (the only way to create and become other users).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure the local user `name` exists (with a home directory and bash), creating
/// it when missing. Panics (it is test code) when that is impossible: not root, or no
/// `useradd`.
pub fn ensure_user(name: &str) {
    if user_exists(name) {
        return;
    }
    assert!(is_root(), "creating the test user {name} needs root");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("cmux-test-users.lock"))
        .expect("users lock");
    #[allow(unsafe_code)]
    // SAFETY: the fd is valid for the lifetime of `lock`; flock touches no memory.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0;
    assert!(locked, "lock the test users file");
    if !user_exists(name) {
        let out = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/bash", name])
            .output()
            .expect("run useradd");
        assert!(
            out.status.success() || user_exists(name),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The uid and gid of `name`.
pub fn ids(name: &str) -> (u32, u32) {
    let get = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, name]).output().expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (get("-u"), get("-g"))
}
