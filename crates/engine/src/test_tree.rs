//! Test trees on the local filesystem, shared by the walk, grep and glob tests.

use std::fs;
use std::path::Path;
use std::process::Command;

/// A temporary directory filled with `files` (path, content); parents are created.
pub(crate) fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        write(dir.path(), name, content);
    }
    dir
}

/// Writes `root/name`, creating its parents.
pub(crate) fn write(root: &Path, name: &str, content: &[u8]) {
    let path = root.join(name);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, content).expect("write");
}

/// `git init -q` in `dir` (the tests that need git skip when it is missing).
pub(crate) fn git_init(dir: &Path) -> bool {
    Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// The root of a tree as a request path.
pub(crate) fn root(dir: &tempfile::TempDir) -> String {
    dir.path().to_str().expect("utf-8 temp dir").to_owned()
}
