//! [`RemotePath`]: a POSIX path inside a runtime, never the local `PathBuf`.
//!
//! A macOS or Windows laptop talking to a Linux host must not rewrite separators or
//! resolve anything locally, so paths inside a runtime are plain UTF-8 strings with
//! POSIX rules: `/` separates components, a leading `/` makes it absolute, and a
//! leading `~` means the runtime user's home (resolved by
//! [`Runtime::resolve_path`](crate::Runtime::resolve_path)). Paths may not contain NUL.
//!
//! Decision: names must be valid UTF-8. Agents exchange paths as JSON strings, which
//! cannot carry arbitrary bytes; a non-UTF-8 name is refused with
//! [`crate::Error::InvalidInput`] rather than mangled.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A POSIX path inside a runtime.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RemotePath(String);

impl RemotePath {
    /// Wraps `path`, refusing the empty string and NUL bytes.
    pub fn new(path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        if path.is_empty() {
            return Err(Error::invalid(
                "path is empty: give a file or directory path",
            ));
        }
        if path.contains('\0') {
            return Err(Error::invalid(format!(
                "path {:?} contains a NUL byte, which POSIX paths cannot hold",
                path
            )));
        }
        Ok(RemotePath(path))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the path starts with `/`.
    pub fn is_absolute(&self) -> bool {
        self.0.starts_with('/')
    }

    /// True when the path starts with `~` (home of the runtime's user).
    pub fn is_home_relative(&self) -> bool {
        self.0 == "~" || self.0.starts_with("~/")
    }

    /// `self/child`; an absolute `child` replaces `self`, as `Path::join` does.
    pub fn join(&self, child: &str) -> Result<RemotePath> {
        if child.starts_with('/') {
            return RemotePath::new(child);
        }
        if child.is_empty() || child == "." {
            return Ok(self.clone());
        }
        let base = self.0.trim_end_matches('/');
        if base.is_empty() {
            RemotePath::new(format!("/{child}"))
        } else {
            RemotePath::new(format!("{base}/{child}"))
        }
    }

    /// The last component, if any (`None` for `/`).
    pub fn file_name(&self) -> Option<&str> {
        let trimmed = self.0.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some((_, name)) if !name.is_empty() => Some(name),
            Some(_) => None,
            None if trimmed.is_empty() => None,
            None => Some(trimmed),
        }
    }

    /// The path without its last component (`None` for `/` or a single relative name).
    pub fn parent(&self) -> Option<RemotePath> {
        let trimmed = self.0.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some(("", _)) if trimmed.len() > 1 => Some(RemotePath("/".into())),
            Some((parent, _)) if !parent.is_empty() => Some(RemotePath(parent.to_owned())),
            _ => None,
        }
    }

    /// Lexically normalises `.` and `..` components and repeated slashes (no symlink
    /// resolution; `..` above the root stays at the root).
    pub fn normalize(&self) -> RemotePath {
        let absolute = self.is_absolute();
        let mut parts: Vec<&str> = Vec::new();
        for part in self.0.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.last().is_some_and(|p| *p != "..") {
                        parts.pop();
                    } else if !absolute {
                        parts.push("..");
                    }
                }
                other => parts.push(other),
            }
        }
        let joined = parts.join("/");
        if absolute {
            RemotePath(format!("/{joined}"))
        } else if joined.is_empty() {
            RemotePath(".".into())
        } else {
            RemotePath(joined)
        }
    }

    /// True when `self` is `base` or lies under it (lexically, after normalising both).
    pub fn starts_with(&self, base: &RemotePath) -> bool {
        let me = self.normalize();
        let base = base.normalize();
        if base.0 == "/" {
            return me.is_absolute();
        }
        me.0 == base.0 || me.0.starts_with(&format!("{}/", base.0))
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names may hold newlines or escape sequences: show them escaped so a hostile
        // name cannot rewrite the user's terminal.
        if self.0.chars().any(|c| c.is_control()) {
            write!(f, "{:?}", self.0)
        } else {
            f.write_str(&self.0)
        }
    }
}

impl fmt::Debug for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl TryFrom<&str> for RemotePath {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        RemotePath::new(value)
    }
}

impl TryFrom<String> for RemotePath {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        RemotePath::new(value)
    }
}

impl AsRef<str> for RemotePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RemotePath {
        RemotePath::new(s).expect("valid test path")
    }

    #[test]
    fn join_parent_and_name() {
        assert_eq!(p("/a/b").join("c").expect("join").as_str(), "/a/b/c");
        assert_eq!(p("/a/b/").join("c").expect("join").as_str(), "/a/b/c");
        assert_eq!(p("/a").join("/x").expect("join").as_str(), "/x");
        assert_eq!(p("/").join("x").expect("join").as_str(), "/x");
        assert_eq!(p("/a/b").parent().expect("parent").as_str(), "/a");
        assert_eq!(p("/a").parent().expect("parent").as_str(), "/");
        assert_eq!(p("/").parent(), None);
        assert_eq!(p("/a/b.txt").file_name(), Some("b.txt"));
        assert_eq!(p("/").file_name(), None);
    }

    #[test]
    fn normalize_and_containment() {
        assert_eq!(p("/a/./b/../c//d").normalize().as_str(), "/a/c/d");
        assert_eq!(p("/../x").normalize().as_str(), "/x");
        assert_eq!(p("a/../../b").normalize().as_str(), "../b");
        assert!(p("/w/x/y").starts_with(&p("/w")));
        assert!(!p("/wx").starts_with(&p("/w")));
        assert!(!p("/w/../etc").starts_with(&p("/w")));
    }

    #[test]
    fn refuses_empty_and_nul() {
        assert!(RemotePath::new("").is_err());
        assert!(RemotePath::new("a\0b").is_err());
    }

    #[test]
    fn display_escapes_control_characters() {
        assert_eq!(p("/a\nb\x1b[2J").to_string(), "\"/a\\nb\\u{1b}[2J\"");
        assert_eq!(p("/plain name").to_string(), "/plain name");
    }
}
