//! Atomic writes through one command on the host, for high round-trip times.
//!
//! An SFTP write needs three round trips: the rename may leave only once every write
//! answered OK (see `files::write`). A command needs two (the channel open, then the
//! exec and its status), provided the data travels *inside* the command: OpenSSH's
//! sshd opens a session channel with a zero window and grants one only once the
//! command started, so data on stdin costs a third round trip (measured: 3.4 RT at
//! 50 ms). The command is therefore a `printf` (a shell builtin) whose format is the
//! content, octal-escaped where needed, into a temporary file created exclusively,
//! then `mv` over the target: the command arrives whole or not at all, so a writer
//! killed mid-way leaves no torn target.
//!
//! The target's mode must be kept, but the command leaves before an lstat could
//! answer: cmux uses the mode it learned from an earlier read, stat or write of the
//! same path (an agent's edit reads the file first), and the command checks it with
//! `find <target> -prune -type f -perm <mode>` (POSIX; a symlink or a changed mode
//! fails the check). A failed check or any other failure renames nothing and the
//! write goes the SFTP way, which also gives the precise error. Contents above
//! [`MAX_INLINE`] bytes once escaped (the kernel limits one argument to 128 KiB) and
//! paths with a newline go the SFTP way too.
//!
//! Host processes: the login shell, `find`, `mv` (and `chmod` for a mode with
//! execute or special bits; other modes are set through the umask). So the command
//! wins only once a round trip costs more than those: when enabled, cmux uses it when
//! the shortest SFTP round trip seen to the host is at least [`EXEC_WRITE_MIN_RTT`].
//!
//! **Off by default.** The content travels in the command's arguments, and on Linux
//! any user of the host can read another process's arguments (`/proc/<pid>/cmdline`,
//! `ps`) unless `/proc` is mounted with `hidepid`. A file an agent writes may hold a
//! secret (`.env`), and cmux exists to keep agents' work contained; so the default is
//! the SFTP write (3 round trips, content only inside the encrypted SFTP stream).
//! [`crate::options::WriteVia::Auto`] (the CLI's `CMUX_SSH_WRITE_VIA=auto`) enables it for far
//! hosts (single-user hosts: a VM, a Coder workspace), `Exec` forces it, `Sftp` (the
//! default) keeps SFTP.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cmux_core::quote;

use super::Fallback;

/// Round trip from which a write goes through a command rather than SFTP.
pub(crate) const EXEC_WRITE_MIN_RTT: Duration = Duration::from_millis(10);

/// Largest command (escaped content included): Linux limits one argument to 128 KiB.
pub(crate) const MAX_INLINE: usize = 96 * 1024;

/// A [`ModeCache`] entry for a path that is not a regular file.
const NOT_A_FILE: u32 = u32::MAX;

/// Modes of regular files seen recently, by absolute path. Bounded: cleared past
/// 4096 entries.
#[derive(Debug, Default)]
pub(crate) struct ModeCache {
    modes: Mutex<HashMap<String, u32>>,
}

impl ModeCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.modes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `abs` is a regular file of `mode` (from an lstat: `exact`), or was seen with
    /// that mode through a stat that follows symlinks (not `exact`: it does not
    /// replace what an lstat found, e.g. that `abs` is a symlink).
    pub(crate) fn note(&self, abs: &str, mode: u32, exact: bool) {
        let mut modes = self.lock();
        if modes.len() >= 4096 {
            modes.clear();
        }
        if exact || modes.get(abs) != Some(&NOT_A_FILE) {
            modes.insert(abs.to_owned(), mode);
        }
    }

    /// `abs` is a symlink (or not a regular file): write it the SFTP way.
    pub(crate) fn note_not_a_file(&self, abs: &str) {
        self.note(abs, NOT_A_FILE, true);
    }

    pub(crate) fn forget(&self, abs: &str) {
        self.lock().remove(abs);
    }

    fn get(&self, abs: &str) -> Option<u32> {
        self.lock().get(abs).copied().filter(|m| *m != NOT_A_FILE)
    }
}

/// The mode to keep when `abs` should be written through a command, or `None` for the
/// SFTP way. [`crate::SshOptions::write_via`]: `Sftp` keeps SFTP (the default, see the
/// module docs), `Auto` uses the command for far hosts, `Exec` forces it.
pub(crate) fn planned_mode(state: &Fallback, abs: &str) -> Option<u32> {
    let far = match state.opts.write_via {
        crate::options::WriteVia::Exec => true,
        crate::options::WriteVia::Auto => {
            state.min_rtt().is_some_and(|rtt| rtt >= EXEC_WRITE_MIN_RTT)
        }
        crate::options::WriteVia::Sftp => false,
    };
    if !far {
        return None;
    }
    state.modes.get(abs)
}

/// `data` as the body of a single-quoted `printf` format: `'` `\` `%` (and NUL)
/// escaped; everything else (newlines, UTF-8) literal.
fn printf_format(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 2);
    for &b in data {
        match b {
            b'\'' => out.extend_from_slice(b"\\047"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'%' => out.extend_from_slice(b"%%"),
            0 => out.extend_from_slice(b"\\000"),
            _ => out.push(b),
        }
    }
    out
}

/// The command that replaces `target` (a regular file of `mode`) with `data` through
/// `temp`, or `None` when it would be too long or cannot be one line.
pub(crate) fn command(target: &str, temp: &str, mode: u32, data: &[u8]) -> Option<String> {
    if target.contains('\n') || temp.contains('\n') {
        return None;
    }
    // NUL: not every shell's printf writes it; such files are rarely edited.
    if data.len() > MAX_INLINE || data.contains(&0) {
        return None;
    }
    let format = printf_format(data);
    if format.len() > MAX_INLINE {
        return None;
    }
    // Arguments are bytes on the wire; the command is built as a String only for
    // the channel API, which takes UTF-8: non-UTF-8 content goes the SFTP way.
    let format = String::from_utf8(format).ok()?;
    // The temporary file is created with the final mode through the umask, or private
    // (0600) until the chmod: other users never get to open it while it fills.
    let (umask, chmod) = if mode & 0o7111 == 0 {
        (format!("umask {:04o}; ", !mode & 0o777), String::new())
    } else {
        (
            "umask 0077; ".to_owned(),
            format!("chmod {mode:04o} \"$t\" && "),
        )
    };
    Some(format!(
        "t={t}; f={f}; set -C; [ \"$(find \"$f\" -prune -type f -perm {mode:04o})\" = \"$f\" ] && {{ {umask}printf '{format}' >\"$t\"; }} && {chmod}mv -f \"$t\" \"$f\" && exit 0; rm -f \"$t\"; exit 1",
        t = quote::quote(temp),
        f = quote::quote(target),
    ))
}

/// Runs `command` (see the module docs); true when the target now holds the content.
/// False: nothing was renamed (or, the connection lost, perhaps it was: writing the
/// same content again the SFTP way is right either way).
/// Only on an exec channel free right now: a write never queues behind long commands
/// (it goes the SFTP way instead).
pub(crate) async fn run(state: &std::sync::Arc<Fallback>, command: &str) -> bool {
    let Some((conn, _permit)) = state.exec_channel_now() else {
        return false;
    };
    let Ok(mut child) = state.open_channel(&conn, command, false).await else {
        return false;
    };
    let stdout = child.stdout().take();
    let stderr = child.stderr().take();
    // Drained before the wait: closing the session early makes the master drop what
    // it still buffers.
    let drain = |r: Option<openssh::ChildStdout>| async move {
        if let Some(mut r) = r {
            let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
        }
    };
    let drain_err = async move {
        if let Some(mut r) = stderr {
            let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
        }
    };
    tokio::join!(drain(stdout), drain_err);
    matches!(child.wait().await, Ok(status) if status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command under each POSIX shell of this machine: exact content, the mode
    /// kept, and nothing renamed when the check fails.
    #[test]
    fn command_runs_under_bash_and_dash() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cmux-exec-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let data = "tab\t 'q' \"dq\" \\ back %s %% $HOME `x` $(y) ü é\n\nend\\".as_bytes();
        for shell in ["/bin/bash", "/bin/dash"] {
            if !std::path::Path::new(shell).exists() {
                continue;
            }
            for mode in [0o644, 0o600, 0o755] {
                let f = dir.join("it's a file");
                std::fs::write(&f, b"old").expect("old");
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("mode");
                let (fs, ts) = (f.to_str().expect("utf-8"), format!("{}.tmp", f.display()));
                let run = |m: u32| {
                    let c = command(fs, &ts, m, data).expect("command");
                    std::process::Command::new(shell)
                        .arg("-c")
                        .arg(c)
                        .status()
                        .expect("shell")
                        .success()
                };
                // The wrong mode: refused, nothing touched.
                assert!(!run(mode ^ 0o040), "{shell} {mode:o}");
                assert_eq!(std::fs::read(&f).expect("read"), b"old");
                assert!(run(mode), "{shell} {mode:o}");
                assert_eq!(std::fs::read(&f).expect("read"), data, "{shell}");
                let got = std::fs::metadata(&f).expect("meta").permissions().mode() & 0o7777;
                assert_eq!(got, mode, "{shell}");
                assert!(!std::path::Path::new(&ts).exists(), "{shell}: temp left");
                // A symlink to a file of the right mode: refused (the SFTP way follows it).
                let link = dir.join("link");
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(&f, &link).expect("symlink");
                let c = command(link.to_str().expect("utf-8"), &ts, mode, b"x").expect("command");
                let ok = std::process::Command::new(shell)
                    .arg("-c")
                    .arg(c)
                    .status()
                    .expect("shell");
                assert!(!ok.success(), "{shell}: symlink");
                assert!(std::fs::symlink_metadata(&link)
                    .expect("link")
                    .file_type()
                    .is_symlink());
                assert_eq!(std::fs::read(&f).expect("read"), data, "{shell}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn content_is_escaped_for_a_single_quoted_printf_format() {
        assert_eq!(
            printf_format(b"a'b\\c%d\0e\nf"),
            b"a\\047b\\\\c%%d\\000e\nf".to_vec()
        );
    }

    #[test]
    fn command_checks_the_mode_and_keeps_it() {
        let c = command("/a b/f", "/a b/.f.t", 0o644, b"hi").expect("command");
        assert!(c.contains("-perm 0644"), "{c}");
        assert!(c.contains("umask 0133; printf 'hi'"), "{c}");
        assert!(!c.contains("chmod"), "{c}");
        assert!(c.contains("f='/a b/f'"), "{c}");
        let c = command("/f", "/.f.t", 0o755, b"").expect("command");
        assert!(c.contains("chmod 0755 \"$t\""), "{c}");
        assert!(c.contains("umask 0077; printf"), "{c}");
        assert!(command("/f\n", "/t", 0o644, b"").is_none());
        assert!(command("/f", "/t", 0o644, &vec![b'%'; MAX_INLINE / 2 + 1]).is_none());
        assert!(command("/f", "/t", 0o644, &[0xff]).is_none());
        assert!(command("/f", "/t", 0o644, b"a\0b").is_none());
    }
}
