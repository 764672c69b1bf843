//! `$CMUX_HOME` is private (directories 0700, files 0600, looser modes tightened at
//! start), and a held project lock is named instead of waited on silently.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{Env, PATIENCE};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Every file and directory of `$CMUX_HOME` that is not inside a worktree.
fn state_entries(env: &Env) -> Vec<PathBuf> {
    let root = env.home.path();
    let mut found = vec![root.to_path_buf()];
    for sub in ["workspaces", "locks", "src"] {
        let dir = root.join(sub);
        found.push(dir.clone());
        for entry in std::fs::read_dir(&dir).expect("listing").flatten() {
            found.push(entry.path());
        }
    }
    found
}

fn lock_file(env: &Env) -> PathBuf {
    let locks: Vec<PathBuf> = std::fs::read_dir(env.home.path().join("locks"))
        .expect("locks dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    locks[0].clone()
}

#[test]
fn state_is_private_from_the_start() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    for path in state_entries(&env) {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    assert!(lock_file(&env).is_file());
    assert!(env.home.path().join("workspaces/w.json").is_file());
}

#[test]
fn looser_modes_are_tightened_at_start() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let checkout_file = ws.join("README.md");
    assert_eq!(mode(&checkout_file), 0o644);
    // As an older cmux (or a 022 umask) left them.
    for path in state_entries(&env) {
        chmod(&path, if path.is_dir() { 0o755 } else { 0o644 });
    }
    env.ok(&["list"]);
    for path in state_entries(&env) {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{} tightened", path.display());
    }
    // The worktree is the user's checkout: git's modes stay.
    assert_eq!(mode(&checkout_file), 0o644);
    assert_eq!(mode(&ws), 0o755);
}

/// Holds the project lock from another process (a `bash` holding an flock'ed fd until
/// its stdin closes), with `content(holder pid)` in the lock file; starts `cmux new
/// second`; returns the line cmux printed about the wait and the holder's pid, after
/// releasing the lock and checking cmux went on.
fn wait_note_while_held(content: impl Fn(u32) -> String) -> (String, u32) {
    let env = Env::new();
    env.ok(&["new", "first"]);
    let file = lock_file(&env);
    let mut holder = std::process::Command::new("bash")
        .args([
            "-c",
            "exec 9<>\"$1\" && flock 9 && echo locked && read -r",
            "holder",
        ])
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("holder starts");
    let mut locked = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut locked)
        .expect("holder says");
    assert_eq!(locked, "locked\n");
    std::fs::write(&file, content(holder.id())).expect("write the lock file");
    let mut child = env
        .command(&["new", "second"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmux starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let note = loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("cmux says what it waits for");
        if line.contains("waiting for the lock") {
            break line;
        }
    };
    // The holder's stdin closes: it exits, and the lock is free.
    drop(holder.stdin.take());
    let _ = holder.wait();
    let status = child.wait().expect("cmux ends");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "cmux new went on: {rest:?}");
    assert_eq!(
        env.ok(&["list", "--json"]).matches("\"name\"").count(),
        2,
        "both workspaces"
    );
    (note, holder.id())
}

#[test]
fn a_held_lock_names_its_holder() {
    let (note, holder) = wait_note_while_held(|pid| format!("{pid}\n"));
    assert!(
        note.starts_with(&format!("cmux: waiting for the lock held by pid {holder}…")),
        "{note}"
    );
}

#[test]
fn a_lock_held_by_something_else_says_so() {
    let (note, _) = wait_note_while_held(|_| String::new());
    assert!(note.starts_with("cmux: waiting for the lock "), "{note}");
    assert!(
        note.contains("held by a process that is not a cmux") && note.contains("fuser"),
        "{note}"
    );
}
