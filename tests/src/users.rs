//! A second local user, for tests about what other users of a host can see.

use std::process::Command;

/// The account [`other_user`] makes.
pub const OTHER_USER: &str = "cmux-test-other";

/// The uid and gid of a second, unprivileged local user, created on first use
/// (`useradd --system`, no home, no login shell; idempotent, and safe when tests race
/// to create it). `None` when this process is not root and the user does not exist:
/// such tests are skipped.
pub fn other_user() -> Option<(u32, u32)> {
    if let Some(ids) = lookup() {
        return Some(ids);
    }
    // A concurrent creator may win: whatever useradd says, look again.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ])
        .arg(OTHER_USER)
        .output();
    lookup()
}

fn lookup() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(OTHER_USER).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
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
