//! The control directory: where control sockets, master logs, start locks and the
//! shared connection budget live. It must be ours alone: a directory others can write
//! to would let them plant links that cmux then follows (truncating a victim's file
//! through a planted log link). Reads no environment variable.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cmux_core::{Error, Result};

use crate::options::SshOptions;

/// Longest socket path we create: OpenSSH binds `<path>.<16 random chars>` first, and
/// macOS allows 104 bytes including the NUL.
pub(crate) const MAX_SOCKET_PATH: usize = 104 - 1 - 17;

#[allow(unsafe_code)]
fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The directory holding control sockets for `opts` (see the crate docs):
/// [`SshOptions::control_dir`], or `/tmp/cmux-ssh-<uid>` when none is given or the
/// given one would make socket paths too long. Reads no environment variable.
pub fn control_dir_for(opts: &SshOptions) -> Result<PathBuf> {
    if let Some(preferred) = &opts.control_dir {
        // `<dir>/<16 hex>-<slot up to 2 digits>`
        if preferred.as_os_str().len() + 1 + 16 + 3 <= MAX_SOCKET_PATH {
            ensure_private_dir(preferred, false)?;
            return Ok(preferred.clone());
        }
    }
    let fallback = PathBuf::from(format!("/tmp/cmux-ssh-{}", current_uid()));
    ensure_private_dir(&fallback, true)?;
    Ok(fallback)
}

/// Makes sure `dir` is a directory only we can use. In a shared parent (`/tmp`),
/// anyone may have made it first and planted links in it: an existing one is used
/// only when it is a real directory (not a symlink), owned by us and of mode 0700;
/// anything else is refused, never repaired (what was planted while it was open
/// would stay). Under the user's own state directory, it is created and tightened.
fn ensure_private_dir(dir: &Path, shared_parent: bool) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |what: &str, e: std::io::Error| Error::Backend {
        backend: "ssh".into(),
        message: format!(
            "cannot prepare the control socket directory {}: {what}: {e}",
            dir.display()
        ),
    };
    if !shared_parent {
        std::fs::create_dir_all(dir).map_err(|e| io("mkdir", e))?;
        return std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("chmod 700", e));
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("mkdir", e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| io("lstat", e))?;
    let problem = if !meta.is_dir() {
        Some("is not a directory (a symlink or a file)".to_owned())
    } else if meta.uid() != current_uid() {
        Some(format!("is owned by uid {}, not by you", meta.uid()))
    } else if meta.mode() & 0o777 != 0o700 {
        Some(format!(
            "has mode {:04o}, not 0700 (others could have planted files in it)",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::backend(
            "ssh",
            format!(
                "the control socket directory {} {problem}: cmux will not use it. Remove it (`rm -rf {}`) \
                 and retry, or give cmux a state directory with a short path (CMUX_HOME)",
                dir.display(),
                dir.display()
            ),
        )),
    }
}

/// Opens a file of the control directory for writing, never through a symlink
/// (`O_NOFOLLOW`), mode 0600 when created.
pub(crate) fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    if truncate {
        options.truncate(true);
    } else {
        options.append(true);
    }
    options.open(path)
}

/// Reads a file of the control directory, never through a symlink.
pub(crate) fn read_private(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_control_dir_is_used_only_when_private() {
        let parent = tempfile_dir("shared");
        let dir = parent.join("ctl");
        // Made by us: 0700.
        ensure_private_dir(&dir, true).expect("created");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Loosened (by someone, or an old version): refused, not repaired.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = ensure_private_dir(&dir, true).expect_err("0755 refused");
        assert!(err.to_string().contains("not 0700"), "{err}");
        assert_eq!(
            std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777,
            0o755,
            "left as it was"
        );
        // A symlink to a directory of ours: refused.
        let real = parent.join("real");
        std::fs::create_dir(&real).expect("mkdir");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let link = parent.join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let err = ensure_private_dir(&link, true).expect_err("a symlink is refused");
        assert!(err.to_string().contains("not a directory"), "{err}");
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[test]
    fn files_of_the_control_dir_are_never_opened_through_a_link() {
        let dir = tempfile_dir("nofollow");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").expect("victim");
        let log = dir.join("key-0.log");
        std::os::unix::fs::symlink(&victim, &log).expect("planted link");
        assert!(open_private(&log, true).is_err(), "truncate through a link");
        assert!(open_private(&log, false).is_err(), "append through a link");
        assert!(read_private(&log).is_err(), "read through a link");
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
        let fresh = dir.join("fresh");
        open_private(&fresh, true).expect("create");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fresh directory under the system temp dir (no tempfile dependency here).
    fn tempfile_dir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cmux-conn-{what}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn long_state_dirs_fall_back_to_a_private_tmp_dir() {
        let long = std::env::temp_dir().join("x".repeat(120));
        let opts = SshOptions::default().control_dir(&long);
        let dir = control_dir_for(&opts).expect("fallback");
        assert_ne!(dir, long);
        assert!(
            dir.as_os_str().len() + 20 <= MAX_SOCKET_PATH,
            "{}",
            dir.display()
        );
        let meta = std::fs::metadata(&dir).expect("created");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert!(!long.exists(), "the long dir is not used");
    }
}
