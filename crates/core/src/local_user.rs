//! The local account, from the passwd database: what library code uses instead of
//! environment variables (library crates read none; the CLI maps `$HOME` to options).

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Largest buffer tried for one passwd entry (entries from NSS modules such as LDAP
/// can be long; glibc's own suggestion is 1024 bytes to start).
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// The home directory of the user this process runs as, from the passwd database
/// (`getpwuid_r`), which is also where OpenSSH's client looks for `~/.ssh/config`:
/// it ignores `$HOME`. `None` when the user has no entry or an empty or relative home.
pub fn home_dir() -> Option<PathBuf> {
    with_entry(|entry| {
        let dir = PathBuf::from(OsStr::from_bytes(field(entry.pw_dir)?));
        dir.is_absolute().then_some(dir)
    })
}

/// The login name of the user this process runs as, from the passwd database (what
/// OpenSSH's client uses as the default remote user). `None` without an entry.
pub fn user_name() -> Option<String> {
    with_entry(|entry| {
        let name = String::from_utf8_lossy(field(entry.pw_name)?).into_owned();
        (!name.is_empty()).then_some(name)
    })
}

/// The bytes of one string field of a passwd entry (`None` for a null pointer).
#[allow(unsafe_code)]
fn field<'a>(ptr: *const libc::c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: fields of an entry filled by getpwuid_r point to NUL-terminated strings
    // inside the caller's buffer, which outlives this borrow (see `with_entry`).
    Some(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// Calls `f` with this user's passwd entry, while its buffer lives.
#[allow(unsafe_code)]
fn with_entry<T>(f: impl Fn(&libc::passwd) -> Option<T>) -> Option<T> {
    // SAFETY: getuid cannot fail and has no preconditions.
    let uid = unsafe { libc::getuid() };
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value (null pointers, zero ids);
        // getpwuid_r fills it from `buf`, which outlives every use of its pointers below.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the length given; `found` is written by
        // the call and read only after it returns.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < MAX_ENTRY_BYTES {
            let bigger = buf.len() * 2;
            buf.resize(bigger, 0);
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        return f(&entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sixth field of our line in `getent passwd <uid>` (NSS included, as
    /// getpwuid_r sees it).
    fn getent_home() -> PathBuf {
        let uid = std::process::Command::new("id")
            .arg("-u")
            .output()
            .expect("id -u");
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
        let out = std::process::Command::new("getent")
            .args(["passwd", &uid])
            .output()
            .expect("getent");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        PathBuf::from(line.split(':').nth(5).expect("home field"))
    }

    #[test]
    fn user_name_is_the_passwd_entrys() {
        let out = std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id -un");
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(user_name(), Some(name));
    }

    #[test]
    fn home_is_the_passwd_entrys() {
        assert_eq!(home_dir(), Some(getent_home()));
    }
}
