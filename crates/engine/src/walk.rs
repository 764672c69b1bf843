//! The walk of a directory tree, with ripgrep's rules (the `ignore` crate, in
//! parallel):
//! - `.git` (directory, or the file of a linked worktree) is never entered or listed;
//! - hidden files are included;
//! - symlinks are not followed and not listed (a link's target is searched where it
//!   lives, if it is under the searched directory);
//! - inside a git work tree, what git ignores is skipped: `.gitignore` files (in the
//!   tree and in its parents up to the work tree's root) and `.git/info/exclude`. The
//!   user's global excludes file is not read, so the result does not depend on the
//!   environment or on git's configuration.
//!
//! Paths given to the visitor are relative to the root, `/`-separated; names that are
//! not UTF-8 are reported as such, not given.

use std::path::{Path, PathBuf};

use ignore::{DirEntry, WalkBuilder, WalkState};

/// What the walk hands its visitor.
pub(crate) enum Visit<'a> {
    /// A regular file.
    File {
        /// Its path relative to the root.
        rel: &'a str,
        /// Its entry (absolute path, metadata).
        entry: &'a DirEntry,
    },
    /// A file whose path (relative to the root) is not UTF-8.
    NonUtf8Name,
    /// A directory or file that could not be read.
    Unreadable {
        /// Its path relative to the root (lossily decoded).
        rel: String,
    },
}

/// Threads of a walk: the machine's cores, at most 8.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

/// True when a walk of `dir` (absolute, canonical) skips what git ignores: `dir` is
/// inside a git work tree (it or a parent holds `.git`) and is not itself ignored. An
/// ignored directory searched on purpose (`build/`, `node_modules/x`) is searched
/// whole, as git's own listing of it would be empty.
pub(crate) fn applies_gitignore(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists()) && !ignored_by_git(dir)
}

/// True when `dir` or one of its parents below the work tree's root is ignored by
/// git's rules: the walk of its parent, with those rules, leaves it out.
fn ignored_by_git(dir: &Path) -> bool {
    let mut child = dir;
    while let Some(parent) = child.parent() {
        if child.join(".git").exists() {
            return false;
        }
        let Some(name) = child.file_name() else {
            return false;
        };
        let listed = rules(parent, true)
            .max_depth(Some(1))
            .build()
            .filter_map(std::result::Result::ok)
            .any(|e| e.depth() == 1 && e.file_name() == name);
        if !listed {
            return true;
        }
        child = parent;
    }
    false
}

/// A walk of `root` with the module's rules.
fn rules(root: &Path, gitignore: bool) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .hidden(false)
        .parents(gitignore)
        .git_ignore(gitignore)
        .git_exclude(gitignore)
        .git_global(false)
        .require_git(true)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    builder
}

/// Walks the regular files under `root` (absolute, canonical), skipping what git
/// ignores when `gitignore` is true. `make_visitor` is called once per walking thread.
pub(crate) fn walk<'s, M, V>(root: &Path, gitignore: bool, mut make_visitor: M)
where
    M: FnMut() -> V,
    V: FnMut(Visit<'_>) + Send + 's,
{
    rules(root, gitignore)
        .threads(threads())
        .build_parallel()
        .run(|| {
            let mut visit = make_visitor();
            let root: PathBuf = root.to_path_buf();
            Box::new(move |result| {
                match result {
                    Ok(entry) => {
                        if entry.file_type().is_some_and(|t| t.is_file()) {
                            let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
                            match rel.to_str() {
                                Some(rel) => visit(Visit::File { rel, entry: &entry }),
                                None => visit(Visit::NonUtf8Name),
                            }
                        }
                    }
                    Err(err) => {
                        if let (Some(path), Some(_)) = (error_path(&err), err.io_error()) {
                            let rel = path.strip_prefix(&root).unwrap_or(path);
                            visit(Visit::Unreadable {
                                rel: rel.to_string_lossy().into_owned(),
                            });
                        }
                    }
                }
                WalkState::Continue
            })
        });
}

/// The path an error of the walk is about, if it says.
fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}
