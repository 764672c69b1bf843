//! The captured login environment, kept on the host between helper starts.
//!
//! Every CLI call starts a helper, and a heavy `~/.profile` (nvm, pyenv, conda) can
//! take a second: paying it before every call's first command would make the CLI slow.
//! So what a capture changed from the helper's own environment (not per-session
//! variables such as `SSH_CONNECTION`) is saved in
//! `${XDG_CACHE_HOME:-~/.cache}/cmux/login-env` (0600, in 0700 directories) with a key
//! made of the login shell, the helper's build and the size, modification time and
//! inode of every startup file a login shell reads. It is used when the key still
//! matches and it is less than 24 hours old; any edit of a startup file (or a new one)
//! makes the next helper capture again.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::env::Vars;

/// How long a saved capture is trusted even when no startup file changed.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

const HEADER: &str = "cmux-login-env 1";

/// Startup files of login shells, system-wide.
const SYSTEM_FILES: &[&str] = &[
    "/etc/profile",
    "/etc/environment",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/zshenv",
    "/etc/zprofile",
    "/etc/zsh/zshenv",
    "/etc/zsh/zprofile",
];

/// Startup files of login shells in the home directory.
const HOME_FILES: &[&str] = &[
    ".profile",
    ".bash_profile",
    ".bash_login",
    ".bashrc",
    ".zshenv",
    ".zprofile",
    ".zshrc",
    ".zlogin",
    ".config/fish/config.fish",
];

/// Where the capture is kept, when there is a home.
fn path(home: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache"));
    base.join("cmux").join("login-env")
}

/// What a capture depends on, one line per input.
pub(crate) fn key(shell: &OsString, home: &Path) -> String {
    let mut lines = vec![
        format!("shell {}", shell.to_string_lossy()),
        format!("build {}", crate::BUILD),
        format!("home {}", home.display()),
    ];
    let mut files: Vec<PathBuf> = SYSTEM_FILES.iter().map(PathBuf::from).collect();
    if let Ok(entries) = std::fs::read_dir("/etc/profile.d") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        more.sort();
        files.push(PathBuf::from("/etc/profile.d"));
        files.extend(more);
    }
    files.extend(HOME_FILES.iter().map(|f| home.join(f)));
    for f in files {
        lines.push(match std::fs::metadata(&f) {
            Ok(m) => format!(
                "{} {} {} {} {}",
                f.display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ino()
            ),
            Err(_) => format!("{} -", f.display()),
        });
    }
    lines.join("\n")
}

/// The saved capture for `key`, if it is there, matches and is fresh.
pub(crate) fn load(home: &Path, key: &str) -> Option<Vars> {
    let bytes = std::fs::read(path(home)).ok()?;
    let head_end = find(&bytes, b"\n\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let mut lines = head.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let saved: u64 = lines.next()?.strip_prefix("saved ")?.parse().ok()?;
    let saved_key: Vec<&str> = lines.collect();
    if saved_key.join("\n") != key {
        return None;
    }
    let age = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs()
        .checked_sub(saved)?;
    if age > MAX_AGE.as_secs() {
        return None;
    }
    let mut vars = Vec::new();
    for record in bytes[head_end + 2..]
        .split(|b| *b == 0)
        .filter(|r| !r.is_empty())
    {
        let eq = record.iter().position(|b| *b == b'=')?;
        vars.push((
            OsString::from_vec(record[..eq].to_vec()),
            OsString::from_vec(record[eq + 1..].to_vec()),
        ));
    }
    Some(vars)
}

/// Saves a capture for `key` (best effort: a host without a writable home simply
/// captures every time).
pub(crate) fn save(home: &Path, key: &str, vars: &Vars) {
    let file = path(home);
    let Some(dir) = file.parent() else { return };
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_err()
    {
        return;
    }
    let saved = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut out = format!("{HEADER}\nsaved {saved}\n{key}\n\n").into_bytes();
    for (k, v) in vars {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    let temp = dir.join(format!(
        ".login-env.{}",
        crate::sys::hex(&crate::sys::random_bytes::<8>())
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .and_then(|mut f| f.write_all(&out));
    if written.is_err() || std::fs::rename(&temp, &file).is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_capture_comes_back_only_for_its_key() {
        let home = std::env::temp_dir().join(format!(
            "cmux-env-cache-test-{}",
            crate::sys::hex(&crate::sys::random_bytes::<4>())
        ));
        std::fs::create_dir_all(&home).expect("home");
        // XDG_CACHE_HOME may be set in the test environment: use what `path` uses.
        let vars: Vars = vec![("A".into(), "1=2".into()), ("PATH".into(), "/x".into())];
        save(&home, "k1", &vars);
        if path(&home).starts_with(&home) {
            assert_eq!(load(&home, "k1"), Some(vars));
            assert_eq!(load(&home, "k2"), None);
        }
        let _ = std::fs::remove_dir_all(&home);
    }
}
