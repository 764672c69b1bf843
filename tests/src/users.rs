//! Other local users, for tests that cross a user boundary (a pipe into another user,
//! what another user of a host can read). Created on first use when the tests run as
//! root; creation is serialized across test processes with a lock file and is
//! idempotent.

use std::os::fd::AsRawFd;
use std::process::Command;

/// The account for tests that run the helper as another user (a home, bash).
pub const PIPE_USER: &str = "cmux-test-pipe";

/// The account for tests about what other users can see (no home, no login shell).
pub const OTHER_USER: &str = "cmux-test-other";

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
    create(name, &["--create-home", "--shell", "/bin/bash"]);
    assert!(
        lookup(name).is_some(),
        "the test user {name} could not be created"
    );
}

/// The uid and gid of a second, unprivileged local user ([`OTHER_USER`]: no home, no
/// login shell), created on first use. `None` when this process is not root and the
/// user does not exist: such tests are skipped.
pub fn other_user() -> Option<(u32, u32)> {
    if lookup(OTHER_USER).is_none() && is_root() {
        create(
            OTHER_USER,
            &[
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ],
        );
    }
    lookup(OTHER_USER)
}

/// Runs `useradd <flags> <name>` once, under a lock shared by every test process.
fn create(name: &str, flags: &[&str]) {
    if lookup(name).is_some() {
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
    if lookup(name).is_none() {
        let out = Command::new("useradd")
            .args(flags)
            .arg(name)
            .output()
            .expect("run useradd");
        assert!(
            out.status.success() || lookup(name).is_some(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn lookup(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(name).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// The uid and gid of `name`.
pub fn ids(name: &str) -> (u32, u32) {
    match lookup(name) {
        Some(ids) => ids,
        None => panic!("no local user {name}"),
    }
}

/// `program args...` run as `uid`/`gid` with no supplementary groups (`setpriv`).
pub fn command_as(uid: u32, gid: u32, program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(program);
    cmd
}
