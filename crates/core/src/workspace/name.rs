//! Workspace names and project ids: the strings that become file and directory names.

use crate::error::{Error, Result};

/// Longest workspace name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a workspace name: letters, digits, `-`, `_` and `.`; not starting with `-` or
/// `.`; at most 64 characters. Names become directory, file and branch names, so `..`
/// and a trailing `.` or `.lock` (which git refuses in branch names) are refused too.
pub fn validate_name(name: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::invalid(format!(
            "invalid workspace name {name:?}: {why} (use letters, digits, '-', '_' and '.', \
             not starting with '-' or '.', at most {MAX_NAME_LEN} characters)"
        )))
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.chars().count() > MAX_NAME_LEN {
        return refuse("it is too long");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return refuse(&format!("{c:?} is not allowed"));
    }
    if name.starts_with('-') || name.starts_with('.') {
        return refuse("it starts with '-' or '.'");
    }
    if name.contains("..") || name.ends_with('.') || name.ends_with(".lock") {
        return refuse("git refuses '..' and a trailing '.' or '.lock' in branch names");
    }
    Ok(())
}

/// 64-bit FNV-1a: tiny and stable across Rust versions and machines (std's
/// `DefaultHasher` is neither), so a project keeps its id forever.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The id of a project: its directory name sanitized (anything but letters, digits,
/// `-`, `_`, `.` becomes `-`, at most 40 characters) + `-` + 8 hex digits of the FNV-1a
/// hash of its absolute path. Two checkouts named alike get different ids; the id is
/// the same on every run and every machine.
pub fn project_id(absolute_path: &str) -> String {
    let trimmed = absolute_path.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or("");
    let mut clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let clean_trimmed = clean.trim_start_matches(['.', '-']).to_owned();
    clean = if clean_trimmed.is_empty() {
        "project".to_owned()
    } else {
        clean_trimmed
    };
    let hash = fnv1a64(trimmed.as_bytes());
    format!("{clean}-{:08x}", hash >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "feat-1", "x_y.z", "A9", &"a".repeat(64)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "a b",
            "a/b",
            "é",
            "a..b",
            "a.",
            "a.lock",
            &"a".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let msg = validate_name("a/b").expect_err("refused").to_string();
        assert!(msg.contains("'/' is not allowed"), "{msg}");
    }

    #[test]
    fn fnv_is_the_reference_function() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn project_ids_are_stable_and_sanitized() {
        let id = project_id("/home/me/My Project");
        assert!(id.starts_with("My-Project-"), "{id}");
        assert_eq!(id.len(), "My-Project-".len() + 8);
        assert_eq!(id, project_id("/home/me/My Project/"));
        assert_ne!(id, project_id("/home/other/My Project"));
        assert!(project_id("/").starts_with("project-"));
        assert!(project_id("/x/.hidden").starts_with("hidden-"));
    }
}
