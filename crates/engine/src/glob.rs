//! glob: the files under a directory whose relative path matches a glob, newest first.
//!
//! Patterns are `globset` globs with `*`, `?` and `[...]` inside one path component,
//! `**` across directories, `{a,b}` alternatives and `\` escapes. Results are sorted by
//! modification time, newest first (what agents look at first), ties by path.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::grep::SkipList;
use crate::notes::{self, IGNORED_NOTE};
use crate::walk::{applies_gitignore, walk, Visit};

/// Results returned at most by default.
pub const GLOB_MAX_RESULTS: usize = 1000;

/// Compiles a glob as glob and grep use it: `*` does not cross `/`.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| Error::InvalidGlob {
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })
}

/// A glob search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobRequest {
    /// Absolute POSIX path of the directory to search.
    pub path: String,
    /// The pattern, relative to `path` (`**/*.rs`, `src/*.toml`).
    pub pattern: String,
    /// Files returned at most (the newest).
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}

fn default_max_results() -> usize {
    GLOB_MAX_RESULTS
}

impl GlobRequest {
    /// A search for `pattern` under `path`, returning at most 1000 files.
    pub fn new(path: impl Into<String>, pattern: impl Into<String>) -> GlobRequest {
        GlobRequest {
            path: path.into(),
            pattern: pattern.into(),
            max_results: GLOB_MAX_RESULTS,
        }
    }
}

/// A modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mtime {
    /// Seconds since the Unix epoch (negative before it).
    pub secs: i64,
    /// Nanoseconds within the second (0 when the host gives whole seconds).
    #[serde(default)]
    pub nanos: u32,
}

impl Mtime {
    /// The modification time of `meta`.
    pub fn of(meta: &fs::Metadata) -> Mtime {
        Mtime {
            secs: meta.mtime(),
            nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }
    }

    /// Parses `1700000000` or `1700000000.123456789` (as GNU find's `%T@` prints).
    pub fn parse(text: &str) -> Option<Mtime> {
        let (secs, frac) = match text.split_once('.') {
            Some((s, f)) => (s, f),
            None => (text, ""),
        };
        let secs: i64 = secs.parse().ok()?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Nine digits of the fraction, padded: "5" is 500,000,000 ns.
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        Some(Mtime {
            secs,
            nanos: digits.parse().ok()?,
        })
    }
}

/// One matching file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobFile {
    /// Its path relative to the searched directory.
    pub path: String,
    /// Its modification time, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<Mtime>,
}

/// Sorts files newest first, files without a time last, ties by path.
pub fn sort_newest_first(files: &mut [GlobFile]) {
    files.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
}

/// What a glob search found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobReply {
    /// The newest matching files (at most `max_results`), newest first.
    pub files: Vec<GlobFile>,
    /// Matching files left out past the cap.
    pub omitted: usize,
    /// Directories and files that could not be read.
    #[serde(default)]
    pub unreadable: SkipList,
    /// Files skipped because their names are not UTF-8.
    #[serde(default)]
    pub non_utf8_names: usize,
    /// True when the search was in a git work tree and skipped what git ignores.
    #[serde(default)]
    pub respects_gitignore: bool,
    /// Notes added by whatever ran the search (a listing's warnings), shown before the
    /// engine's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_notes: Vec<String>,
}

impl GlobReply {
    /// The reply for every matching file: sorted newest first and cut at `max_results`.
    pub fn from_matches(mut matches: Vec<GlobFile>, max_results: usize) -> GlobReply {
        sort_newest_first(&mut matches);
        let omitted = matches.len().saturating_sub(max_results);
        matches.truncate(max_results);
        GlobReply {
            files: matches,
            omitted,
            ..GlobReply::default()
        }
    }

    /// The notes for a reader: what was not searched and why (names after `prefix`).
    pub fn notes(&self, prefix: &str) -> Vec<String> {
        let mut out = self.extra_notes.clone();
        if self.unreadable.count > 0 {
            out.push(notes::unreadable(&self.unreadable, prefix));
        }
        if self.non_utf8_names > 0 {
            out.push(notes::non_utf8_names(self.non_utf8_names));
        }
        if self.files.is_empty() && self.respects_gitignore {
            out.push(IGNORED_NOTE.into());
        }
        out
    }
}

/// What the walk of a glob search gathered.
#[derive(Default)]
struct Gathered {
    matches: Vec<GlobFile>,
    files_seen: usize,
    unreadable: Vec<String>,
    non_utf8: usize,
}

/// Runs a glob search over the local filesystem.
pub fn glob_fs(req: &GlobRequest) -> Result<GlobReply> {
    if !req.path.starts_with('/') {
        return Err(Error::RelativePath {
            path: req.path.clone(),
        });
    }
    let pattern = req.pattern.trim_start_matches("./");
    if pattern.is_empty() {
        return Err(Error::InvalidGlob {
            pattern: req.pattern.clone(),
            message: "the pattern is empty".into(),
        });
    }
    let matcher = compile_glob(pattern)?;
    let meta = fs::metadata(&req.path).map_err(|e| Error::from_io(&req.path, "reading", &e))?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            path: req.path.clone(),
        });
    }
    let root = fs::canonicalize(&req.path).map_err(|e| Error::from_io(&req.path, "reading", &e))?;
    let gitignore = applies_gitignore(&root);
    let mut gathered = gather(&root, &matcher, gitignore);
    let mut respects_gitignore = gitignore;
    // An ignored directory searched on purpose: search it whole.
    if gitignore && gathered.files_seen == 0 {
        gathered = gather(&root, &matcher, false);
        respects_gitignore = false;
    }
    let mut reply = GlobReply::from_matches(gathered.matches, req.max_results);
    reply.unreadable = SkipList::from_names(gathered.unreadable);
    reply.non_utf8_names = gathered.non_utf8;
    reply.respects_gitignore = respects_gitignore;
    Ok(reply)
}

fn gather(root: &Path, matcher: &GlobMatcher, gitignore: bool) -> Gathered {
    let shared = Mutex::new(Gathered::default());
    walk(root, gitignore, || {
        |visit: Visit<'_>| {
            let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
            match visit {
                Visit::File { rel, entry } => {
                    g.files_seen += 1;
                    if matcher.is_match(rel) {
                        let modified = entry.metadata().ok().map(|m| Mtime::of(&m));
                        g.matches.push(GlobFile {
                            path: rel.to_owned(),
                            modified,
                        });
                    }
                }
                Visit::NonUtf8Name => g.non_utf8 += 1,
                Visit::Unreadable { rel } => g.unreadable.push(rel),
            }
        }
    });
    shared.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_one_component() {
        let m = compile_glob("*.rs").expect("glob");
        assert!(m.is_match("a.rs"));
        assert!(!m.is_match("src/a.rs"));
        let m = compile_glob("**/*.rs").expect("glob");
        assert!(m.is_match("a.rs"));
        assert!(m.is_match("src/x/a.rs"));
        assert!(compile_glob("[").is_err());
    }

    #[test]
    fn mtimes_parse_and_sort_newest_first() {
        assert_eq!(Mtime::parse("17"), Some(Mtime { secs: 17, nanos: 0 }));
        assert_eq!(
            Mtime::parse("17.5"),
            Some(Mtime {
                secs: 17,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            Mtime::parse("-1.000000001"),
            Some(Mtime { secs: -1, nanos: 1 })
        );
        assert_eq!(Mtime::parse("x"), None);
        assert_eq!(Mtime::parse("1.x"), None);
        let file = |path: &str, secs: Option<i64>| GlobFile {
            path: path.into(),
            modified: secs.map(|secs| Mtime { secs, nanos: 0 }),
        };
        let reply = GlobReply::from_matches(
            vec![
                file("b", Some(1)),
                file("none", None),
                file("a", Some(1)),
                file("new", Some(5)),
            ],
            3,
        );
        let order: Vec<&str> = reply.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!((order, reply.omitted), (vec!["new", "a", "b"], 1));
    }
}

#[cfg(test)]
mod fs_tests {
    use std::fs::FileTimes;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::test_tree::{root, tree};

    fn set_mtime(path: &std::path::Path, secs: u64) {
        let file = fs::File::options().write(true).open(path).expect("open");
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        file.set_times(FileTimes::new().set_modified(when))
            .expect("set mtime");
    }

    #[test]
    fn newest_first_then_by_path() {
        let dir = tree(&[
            ("old.rs", b""),
            ("src/new.rs", b""),
            ("src/mid_b.rs", b""),
            ("src/mid_a.rs", b""),
            ("notes.txt", b""),
            (".git/x.rs", b""),
        ]);
        for (name, secs) in [
            ("old.rs", 1_000),
            ("src/new.rs", 3_000),
            ("src/mid_b.rs", 2_000),
            ("src/mid_a.rs", 2_000),
        ] {
            set_mtime(&dir.path().join(name), secs);
        }
        let reply = glob_fs(&GlobRequest::new(root(&dir), "**/*.rs")).expect("glob");
        let order: Vec<&str> = reply.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            order,
            vec!["src/new.rs", "src/mid_a.rs", "src/mid_b.rs", "old.rs"]
        );
        assert_eq!(
            reply.files[0].modified,
            Some(Mtime {
                secs: 3_000,
                nanos: 0
            })
        );
        let mut req = GlobRequest::new(root(&dir), "*.rs");
        req.max_results = 0;
        let reply = glob_fs(&req).expect("glob");
        assert_eq!((reply.files.len(), reply.omitted), (0, 1));
        let req = GlobRequest::new(format!("{}/old.rs", root(&dir)), "*");
        assert!(matches!(glob_fs(&req), Err(Error::NotADirectory { .. })));
        let req = GlobRequest::new(root(&dir), "[");
        assert!(matches!(glob_fs(&req), Err(Error::InvalidGlob { .. })));
    }
}
