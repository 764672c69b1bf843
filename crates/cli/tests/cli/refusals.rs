//! `cmux write` and `cmux edit` refuse a read-only file and another user's file (the
//! atomic rename would replace either quietly), and `--force` replaces them with a new
//! file of the user's.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{stderr, Env};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Asserts a refusal: exit 1, one line naming the file and `--force`, file unchanged.
fn assert_refused(out: &std::process::Output, file: &Path, content: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("--force"), "names the way out: {err}");
    assert_eq!(std::fs::read_to_string(file).expect("read"), content);
}

#[test]
fn read_only_files_are_refused_unless_forced() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let file = ws.join("ro.txt");
    std::fs::write(&file, "old\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("chmod");

    let out = env.run_stdin(&["write", "w", "ro.txt"], b"new\n");
    assert_refused(&out, &file, "old\n");
    assert!(
        stderr(&out).contains("read-only (mode 0444)"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["edit", "w", "ro.txt", "--old", "old", "--new", "edited"]);
    assert_refused(&out, &file, "old\n");
    assert_eq!(mode(&file), 0o444);

    // Through a symlink: the target is what is refused, and what the message names.
    std::os::unix::fs::symlink("ro.txt", ws.join("link")).expect("symlink");
    let out = env.run_stdin(&["write", "w", "link"], b"new\n");
    assert_refused(&out, &file, "old\n");

    // --force: a new file of ours, writable, with the new content.
    let out = env.run(&[
        "edit", "w", "ro.txt", "--old", "old", "--new", "edited", "--force",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "edited\n");
    assert_eq!(mode(&file) & 0o200, 0o200, "the new file is writable");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let out = env.run_stdin(&["write", "w", "link", "--force"], b"forced\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "forced\n");
    assert!(
        std::fs::symlink_metadata(ws.join("link"))
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
}

#[test]
fn another_users_file_is_refused_unless_forced() {
    if !is_root() {
        println!("skipped: only root can make a file of another user here");
        return;
    }
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let file = ws.join("theirs.txt");
    std::fs::write(&file, "theirs\n").expect("write");
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).expect("chown");

    let out = env.run_stdin(&["write", "w", "theirs.txt"], b"mine\n");
    assert_refused(&out, &file, "theirs\n");
    assert!(
        stderr(&out).contains("belongs to another user (uid 65534)"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&[
        "edit",
        "w",
        "theirs.txt",
        "--old",
        "theirs",
        "--new",
        "mine",
    ]);
    assert_refused(&out, &file, "theirs\n");
    assert_eq!(std::fs::metadata(&file).expect("stat").uid(), 65534);

    let out = env.run_stdin(&["write", "w", "theirs.txt", "--force"], b"mine\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "mine\n");
    assert_eq!(std::fs::metadata(&file).expect("stat").uid(), 0);
}
