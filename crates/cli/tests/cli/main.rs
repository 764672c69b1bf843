//! End-to-end tests of the `cmux` binary: every test has its own `CMUX_HOME` and its
//! own git project made with the git CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

mod coder;
mod environment;
mod jobs;
mod mcp;
mod pipe;
mod refusals;
mod reliability;
mod russh;
mod shell;
mod signals;
mod ssh;
mod state_dir;
mod transfer;

/// A temp `CMUX_HOME` and a temp project with one commit.
struct Env {
    home: TempDir,
    project: TempDir,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=cmux test",
            "-c",
            "user.email=test@cmux.invalid",
        ])
        .args(args)
        .env("GIT_AUTHOR_NAME", "cmux test")
        .env("GIT_AUTHOR_EMAIL", "test@cmux.invalid")
        .env("GIT_COMMITTER_NAME", "cmux test")
        .env("GIT_COMMITTER_EMAIL", "test@cmux.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Env {
    fn new() -> Env {
        let home = tempfile::tempdir().expect("temp home");
        let project = tempfile::Builder::new()
            .prefix("proj")
            .tempdir()
            .expect("temp project");
        git(project.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(project.path().join("README.md"), "hello\n").expect("write");
        git(project.path(), &["add", "-A"]);
        git(project.path(), &["commit", "-q", "-m", "first"]);
        Env { home, project }
    }

    fn project(&self) -> &Path {
        self.project.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cmux"));
        cmd.args(args)
            .current_dir(self.project())
            .env("CMUX_HOME", self.home.path())
            .env_remove("RUST_LOG")
            .env("COLUMNS", "100")
            // `cmux shell` starts a login shell; where ~/.bashrc runs `pyenv init`, a
            // rehash lock left by a killed shell would stall it for a minute.
            .env("PYENV_REHASH_TIMEOUT", "1")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cmux runs")
    }

    fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cmux starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("cmux ends")
    }

    /// Runs cmux and asserts it exits 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cmux {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces this test's temp paths (and the project id's hash) with stable names.
    fn normalize(&self, text: &str) -> String {
        let mut text = text
            .replace(&self.home.path().display().to_string(), "[HOME]")
            .replace(&self.project().display().to_string(), "[PROJECT]");
        let re_id = regex_lite_hash(&text);
        for hash in re_id {
            text = text.replace(&hash, "[ID]");
        }
        text
    }

    fn workspace_path(&self, name: &str) -> PathBuf {
        let list = self.ok(&["list", "--json"]);
        let records: serde_json::Value = serde_json::from_str(&list).expect("json");
        let record = records
            .as_array()
            .expect("array")
            .iter()
            .find(|r| r["name"] == name)
            .expect("listed");
        PathBuf::from(record["path"].as_str().expect("path"))
    }
}

/// `proj…-<8 hex>` project ids: the hash part, so snapshots do not depend on the
/// random temp path.
fn regex_lite_hash(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in text.split(|c: char| c == '/' || c.is_whitespace() || c == '"') {
        if let Some((_, hash)) = word.rsplit_once('-') {
            if hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
                found.push(word.to_owned());
            }
        }
    }
    found
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_is_stable() {
    let env = Env::new();
    insta::assert_snapshot!("help", stdout(&env.run(&["--help"])));
    insta::assert_snapshot!("help_new", stdout(&env.run(&["new", "--help"])));
    insta::assert_snapshot!("help_exec", stdout(&env.run(&["exec", "--help"])));
    for command in [
        "list",
        "write",
        "edit",
        "shell",
        "pull",
        "push",
        "rm",
        "jobs",
        "job-output",
        "job-kill",
    ] {
        insta::assert_snapshot!(
            format!("help_{command}"),
            stdout(&env.run(&[command, "--help"]))
        );
    }
}

#[test]
fn error_messages_are_one_line_with_the_fix() {
    let env = Env::new();
    env.ok(&["new", "taken"]);
    let read_only = env.workspace_path("taken").join("ro.txt");
    std::fs::write(&read_only, "x\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let not_git = tempfile::tempdir().expect("temp");
    let not_git_path = not_git.path().display().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("unknown workspace", vec!["exec", "nope", "--", "true"]),
        ("unknown workspace (cat)", vec!["cat", "nope", "x"]),
        ("duplicate name", vec!["new", "taken"]),
        (
            "missing project",
            vec!["new", "w", "--project", "/nonexistent/cmux-project"],
        ),
        (
            "not a git repository",
            vec!["new", "w", "--project", &not_git_path],
        ),
        ("invalid name", vec!["new", "bad name"]),
        ("invalid name (slash)", vec!["new", "a/b"]),
        (
            "ssh host with a space",
            vec!["new", "w", "--ssh", "bad host"],
        ),
        (
            "ssh host with --src-base only",
            vec!["new", "w", "--src-base", "/tmp/x"],
        ),
        ("coder CLI missing", vec!["new", "w", "--coder", "ws"]),
        (
            "unknown revision",
            vec!["new", "w", "--from", "no-such-ref"],
        ),
        // Errors of the agent tools, in CLI words.
        (
            "edit: several matches",
            vec!["edit", "taken", "README.md", "--old", "l", "--new", "L"],
        ),
        (
            "edit: text absent",
            vec!["edit", "taken", "README.md", "--old", "zzz", "--new", "y"],
        ),
        (
            "edit: no such file",
            vec!["edit", "taken", "nope.txt", "--old", "a", "--new", "b"],
        ),
        ("ls of a file", vec!["ls", "taken", "README.md"]),
        ("write: a read-only file", vec!["write", "taken", "ro.txt"]),
        (
            "exec: the command without --",
            vec!["exec", "taken", "ls", "-la"],
        ),
        (
            "exec: --cwd that does not exist",
            vec!["exec", "taken", "--cwd", "nosuchdir", "--", "ls"],
        ),
    ];
    let mut report = String::new();
    for (what, args) in cases {
        // The Coder case must not depend on whether this machine has `coder`.
        let out = env
            .command(&args)
            .env("CMUX_CODER_BIN", "/nonexistent/coder")
            .output()
            .expect("cmux runs");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        let err = err.replace(&not_git_path, "[NOT_GIT]");
        report.push_str(&format!(
            "# {what}\n$ cmux {}\nexit {}\n{}\n",
            args.join(" ").replace(&not_git_path, "[NOT_GIT]"),
            out.status.code().unwrap_or(-1),
            env.normalize(&err)
        ));
    }
    insta::assert_snapshot!("errors", report);
}

#[test]
fn new_list_exec_files_rm() {
    let env = Env::new();
    std::fs::write(env.project().join("README.md"), "local edit\n").expect("write");
    let out = env.run(&["new", "w1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not carried"), "{}", stderr(&out));
    let created = stdout(&out);
    assert!(created.contains("created workspace w1"), "{created}");
    let ws = env.workspace_path("w1");
    assert!(ws.starts_with(env.home.path().join("src")));
    assert!(ws.join("README.md").exists());
    assert_eq!(git(&ws, &["branch", "--show-current"]).trim(), "w1");

    let list = env.ok(&["list"]);
    assert!(list.contains("w1") && list.contains("local"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--json"])).expect("json");
    assert_eq!(json[0]["backend"]["kind"], "local");
    assert_eq!(json[0]["branch"], "w1");
    assert_eq!(json[0]["in_place"], false);
    assert!(json[0]["created_at"].as_u64().expect("secs") > 0);

    // exec: exit codes, script vs argv, cwd, env, stdin.
    assert_eq!(
        env.run(&["exec", "w1", "--", "true"]).status.code(),
        Some(0)
    );
    assert_eq!(
        env.run(&["exec", "w1", "--", "exit 3"]).status.code(),
        Some(3)
    );
    let timed = env.run(&["exec", "w1", "--timeout", "0.5", "--", "sleep 30"]);
    assert_eq!(timed.status.code(), Some(124), "{}", stderr(&timed));
    let pwd = env.ok(&["exec", "w1", "--", "pwd"]);
    assert_eq!(pwd.trim(), ws.display().to_string());
    let argv = env.ok(&["exec", "w1", "--", "printf", "[%s]", "a b", "$(x)"]);
    assert_eq!(argv, "[a b][$(x)]");
    std::fs::create_dir(ws.join("sub")).expect("mkdir");
    let sub = env.ok(&[
        "exec",
        "w1",
        "--cwd",
        "sub",
        "--env",
        "X=1 2",
        "--",
        "echo \"$X\"; pwd",
    ]);
    assert_eq!(sub, format!("1 2\n{}\n", ws.join("sub").display()));
    let piped = env.run_stdin(&["exec", "w1", "--", "tr a-z A-Z"], b"shout\n");
    assert_eq!(stdout(&piped), "SHOUT\n");
    let both = env.run(&["exec", "w1", "--", "echo out; echo err >&2; exit 7"]);
    assert_eq!(
        (stdout(&both).as_str(), stderr(&both).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(both.status.code(), Some(7));
    let killed = env.run(&["exec", "w1", "--", "kill -9 $$"]);
    assert_eq!(killed.status.code(), Some(137));

    // cat / write / edit / ls.
    assert_eq!(env.ok(&["cat", "w1", "README.md"]), "hello\n");
    let data: Vec<u8> = (0..=255u8).collect();
    let wrote = env.run_stdin(&["write", "w1", "dir/bin.dat"], &data);
    assert!(wrote.status.success(), "{}", stderr(&wrote));
    assert_eq!(std::fs::read(ws.join("dir/bin.dat")).expect("read"), data);
    assert_eq!(
        env.run(&["cat", "w1", "dir/bin.dat"]).stdout,
        data,
        "cat is byte exact"
    );
    env.ok(&["edit", "w1", "README.md", "--old", "hello", "--new", "bye"]);
    assert_eq!(env.ok(&["cat", "w1", "README.md"]), "bye\n");
    let absent = env.run(&["edit", "w1", "README.md", "--old", "zzz", "--new", "y"]);
    assert_eq!(absent.status.code(), Some(1));
    let ls = env.ok(&["ls", "w1"]);
    assert!(ls.contains("README.md") && ls.contains("dir/"), "{ls}");
    let ls_json: serde_json::Value =
        serde_json::from_str(&env.ok(&["ls", "w1", "dir", "--json"])).expect("json");
    assert_eq!(ls_json["entries"][0]["name"], "bin.dat");
    assert_eq!(ls_json["entries"][0]["size"], 256);
    let missing = env.run(&["cat", "w1", "nope.txt"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("nope.txt"),
        "{}",
        stderr(&missing)
    );

    // rm: refused while dirty, forced, idempotent; the branch stays in the project.
    let refused = env.run(&["rm", "w1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("uncommitted changes"),
        "{}",
        stderr(&refused)
    );
    assert!(ws.exists());
    env.ok(&["rm", "w1", "--force"]);
    assert!(!ws.exists());
    assert!(git(env.project(), &["branch", "--list", "w1"]).contains("w1"));
    env.ok(&["rm", "w1"]);
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");
}

#[test]
fn rm_of_a_clean_workspace_and_of_one_already_gone() {
    let env = Env::new();
    env.ok(&["new", "a"]);
    env.ok(&["new", "b"]);
    let a = env.workspace_path("a");
    let b = env.workspace_path("b");
    env.ok(&["rm", "a"]);
    assert!(!a.exists());
    std::fs::remove_dir_all(&b).expect("remove by hand");
    let out = env.ok(&["rm", "b"]);
    assert!(out.contains("already gone"), "{out}");
    assert_eq!(
        git(env.project(), &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1,
        "pruned"
    );
}

#[test]
fn new_with_branch_and_from_then_rename_and_fork() {
    let env = Env::new();
    let first = git(env.project(), &["rev-parse", "HEAD"]);
    std::fs::write(env.project().join("two.txt"), "2\n").expect("write");
    git(env.project(), &["add", "-A"]);
    git(env.project(), &["commit", "-q", "-m", "second"]);
    env.ok(&["new", "old", "--branch", "custom", "--from", first.trim()]);
    let ws = env.workspace_path("old");
    assert_eq!(git(&ws, &["branch", "--show-current"]).trim(), "custom");
    assert!(!ws.join("two.txt").exists());

    env.ok(&["new", "w"]);
    let w = env.workspace_path("w");
    assert!(w.join("two.txt").exists());
    std::fs::write(w.join("three.txt"), "3\n").expect("write");
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "third"]);

    env.ok(&["rename", "w", "renamed"]);
    let renamed = env.workspace_path("renamed");
    assert!(!w.exists() && renamed.join("three.txt").exists());
    assert_eq!(
        git(&renamed, &["branch", "--show-current"]).trim(),
        "renamed"
    );
    let out = env.run(&["exec", "w", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "old name is gone");

    env.ok(&["fork", "renamed", "forked"]);
    let forked = env.workspace_path("forked");
    assert!(forked.join("three.txt").exists());
    assert_eq!(git(&forked, &["branch", "--show-current"]).trim(), "forked");
    assert_eq!(
        git(&forked, &["rev-parse", "HEAD"]),
        git(&renamed, &["rev-parse", "HEAD"])
    );
    let dup = env.run(&["fork", "renamed", "old"]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
}

#[test]
fn in_place_workspace_is_the_project_and_rm_keeps_it() {
    let env = Env::new();
    env.ok(&["new", "here", "--in-place"]);
    let ws = env.workspace_path("here");
    assert_eq!(ws, env.project().canonicalize().expect("canonical"));
    assert_eq!(
        env.ok(&["exec", "here", "--", "pwd"]).trim(),
        ws.display().to_string()
    );
    std::fs::write(env.project().join("dirty.txt"), "x").expect("write");
    env.ok(&["rm", "here"]);
    assert!(env.project().join("README.md").exists());
    assert!(env.project().join("dirty.txt").exists());
}

#[test]
fn init_hook_sees_its_variables_streams_and_may_fail() {
    let env = Env::new();
    let hook = env.project().join(".cmux/init");
    std::fs::create_dir_all(hook.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &hook,
        "#!/bin/bash\necho \"name=$CMUX_WORKSPACE_NAME runtime=$CMUX_RUNTIME project=$CMUX_PROJECT_PATH\"\necho \"pwd=$PWD\"\necho to-stderr >&2\ntouch initialized\nexit ${CMUX_TEST_EXIT:-0}\n",
    )
    .expect("write hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    git(env.project(), &["add", "-A"]);
    git(env.project(), &["commit", "-q", "-m", "hook"]);

    let out = env.run(&["new", "hooked"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = env.workspace_path("hooked");
    let err = stderr(&out);
    let project = env.project().canonicalize().expect("canonical");
    assert!(
        err.contains(&format!(
            "name=hooked runtime=local project={}",
            project.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("pwd={}", ws.display())), "{err}");
    assert!(err.contains("to-stderr"), "{err}");
    assert!(ws.join("initialized").exists());

    let failing = env
        .command(&["new", "failing"])
        .env("CMUX_TEST_EXIT", "5")
        .output()
        .expect("cmux runs");
    assert_eq!(
        failing.status.code(),
        Some(0),
        "a failing hook is not fatal"
    );
    let err = stderr(&failing);
    assert!(err.contains("failed (exit code 5)"), "{err}");
    assert_eq!(
        env.ok(&["exec", "failing", "--", "echo usable"]),
        "usable\n"
    );
}

#[test]
fn fifty_concurrent_new_all_succeed() {
    let env = Env::new();
    let children: Vec<_> = (0..50)
        .map(|i| {
            env.command(&["new", &format!("ws-{i}"), "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cmux starts")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("cmux ends");
        assert!(out.status.success(), "ws-{i}: {}", stderr(&out));
    }
    let list: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--json"])).expect("json");
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 50);
    assert!(list.iter().all(|r| r["state"] == "ready"));
    let worktrees = git(env.project(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 51);

    // And 50 concurrent `rm` (git worktree remove + prune race without the lock).
    let children: Vec<_> = (0..50)
        .map(|i| {
            env.command(&["rm", &format!("ws-{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cmux starts")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("cmux ends");
        assert!(out.status.success(), "rm ws-{i}: {}", stderr(&out));
    }
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");
    let worktrees = git(env.project(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1);
}

#[test]
fn a_corrupt_entry_is_named_and_the_others_still_listed() {
    let env = Env::new();
    env.ok(&["new", "good"]);
    env.ok(&["new", "bad"]);
    let file = env.home.path().join("workspaces/bad.json");
    std::fs::write(&file, "{ not json").expect("corrupt");

    let out = env.run(&["exec", "bad", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    insta::assert_snapshot!("corrupt_entry", env.normalize(&err));

    let list = env.run(&["list", "--json"]);
    assert!(list.status.success());
    let records: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(records.as_array().expect("array").len(), 1);
    assert_eq!(records[0]["name"], "good");
    assert!(stderr(&list).contains("warning"), "{}", stderr(&list));
    assert!(stderr(&list).contains(&file.display().to_string()));
}

#[test]
fn failed_new_releases_the_name() {
    let env = Env::new();
    let out = env.run(&["new", "w", "--from", "does-not-exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");
    env.ok(&["new", "w"]);
}

#[test]
fn doctor_checks_prerequisites_and_a_workspace() {
    let env = Env::new();
    let out = env.ok(&["doctor"]);
    assert!(
        out.contains("ok   git") && out.contains("ok   bash"),
        "{out}"
    );
    assert!(out.contains("ok   CMUX_HOME"), "{out}");
    env.ok(&["new", "w"]);
    let out = env.ok(&["doctor", "w"]);
    assert!(
        out.contains("ok   directory") && out.contains("on w"),
        "{out}"
    );
    std::fs::remove_dir_all(env.workspace_path("w")).expect("remove");
    let out = env.run(&["doctor", "w"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL directory"), "{}", stdout(&out));
}

#[test]
fn killed_cmux_never_leaves_a_corrupt_registry() {
    let env = Env::new();
    let mut children: Vec<_> = (0..20)
        .map(|i| {
            env.command(&["new", &format!("k{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cmux starts")
        })
        .collect();
    // Kill them at staggered moments: before, during and after their registry writes.
    for (i, child) in children.iter_mut().enumerate() {
        std::thread::sleep(std::time::Duration::from_millis(3 * i as u64));
        let _ = child.kill();
    }
    for mut child in children {
        let _ = child.wait();
    }
    let list = env.run(&["list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(
        !stderr(&list).contains("corrupt"),
        "no corrupt entry: {}",
        stderr(&list)
    );
    let records: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    // Whatever was left (ready or interrupted while creating) can be removed and
    // created again.
    for record in records.as_array().expect("array") {
        let name = record["name"].as_str().expect("name");
        env.ok(&["rm", name, "--force"]);
    }
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");
    for i in 0..20 {
        env.ok(&["new", &format!("k{i}")]);
    }
}

#[test]
fn interrupting_exec_kills_the_command_group() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let child = env
        .command(&["exec", "w", "--", GROUP_COMMAND])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmux starts");
    signal_and_check_group(child, &ws.join("bg.pid"), "INT", 130, "");
}

/// A command with a background child whose pid it writes to `bg.pid`, then waits.
pub(crate) const GROUP_COMMAND: &str = "sleep 300 & echo $! > bg.pid; wait";

/// How long a test waits for something that must happen (generous: the machine is
/// shared and loaded; this bounds a hang, it measures nothing).
pub(crate) const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits for `child`'s command (a `cmux exec` of [`GROUP_COMMAND`]) to write its
/// background pid, sends `signal` (`INT`, `HUP`...) to cmux, and checks cmux exits
/// `code` and the background child died with the command's process group (`where_`:
/// "" or " on the host", for the messages).
pub(crate) fn signal_and_check_group(
    child: std::process::Child,
    pid_file: &Path,
    signal: &str,
    code: i32,
    where_: &str,
) {
    let bg = read_pid(pid_file);
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("cmux ends");
    assert_eq!(
        out.status.code(),
        Some(code),
        "SIG{signal}: {}",
        stderr(&out)
    );
    // The background child of the command went with its process group (for SSH the
    // host is this machine).
    wait_gone(
        &[bg],
        &format!("background sleep{where_} after SIG{signal}"),
    );
}

/// True while `pid` is a live (not zombie) process.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The pid written (with its newline) to `path`, once it is there.
pub(crate) fn read_pid(path: &Path) -> u32 {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                if text.ends_with('\n') {
                    return pid;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until none of `pids` is alive; fails naming `what` after [`PATIENCE`].
pub(crate) fn wait_gone(pids: &[u32], what: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still running ({pids:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Live processes whose command line contains `tag`.
pub(crate) fn tagged_processes(tag: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(tag) && alive(pid) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// A tag unique to this test run, to find its processes.
pub(crate) fn unique_tag(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("cmux-test-{what}-{}-{nanos}", std::process::id())
}

/// A command that starts two background children and a foreground one, all carrying
/// `tag` in their command line, and writes `ready` once they run.
pub(crate) fn tagged_command(tag: &str) -> String {
    format!(
        "(exec -a {tag} sleep 300) & (exec -a {tag} sleep 301) & echo started > ready; exec -a {tag} sleep 302"
    )
}

/// After cmux was killed: waits up to 5 s (polling) until no process carries `tag`.
pub(crate) fn assert_no_tagged_process_within_5s(tag: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = tagged_processes(tag);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: processes still running 5 s later: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until a command wrote the file `path` (a line ending in a newline).
pub(crate) fn wait_ready(path: &Path) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n')) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn list_shows_projects_and_here_filters_to_the_current_one() {
    let env = Env::new();
    let other = tempfile::Builder::new()
        .prefix("other")
        .tempdir()
        .expect("temp project");
    git(other.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(other.path().join("f"), "x\n").expect("write");
    git(other.path(), &["add", "-A"]);
    git(other.path(), &["commit", "-q", "-m", "first"]);
    let other_path = other.path().display().to_string();
    env.ok(&["new", "a1"]);
    env.ok(&["new", "a2"]);
    env.ok(&["new", "b1", "--project", &other_path]);

    let list = env.ok(&["list"]).replace(&other_path, "[OTHER]");
    insta::assert_snapshot!("list", env.normalize(&list));

    let names = |out: &str| -> Vec<String> {
        let records: serde_json::Value = serde_json::from_str(out).expect("json");
        records
            .as_array()
            .expect("array")
            .iter()
            .map(|r| r["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&env.ok(&["list", "--here", "--json"])), ["a1", "a2"]);
    // From a local workspace of the project: the same project.
    let from_ws = env
        .command(&["list", "--here", "--json"])
        .current_dir(env.workspace_path("a1"))
        .output()
        .expect("cmux runs");
    assert_eq!(
        names(&stdout(&from_ws)),
        ["a1", "a2"],
        "{}",
        stderr(&from_ws)
    );
    let from_other = env
        .command(&["list", "--here", "--json"])
        .current_dir(other.path().canonicalize().expect("canonical"))
        .output()
        .expect("cmux runs");
    assert_eq!(names(&stdout(&from_other)), ["b1"]);
    let nowhere = tempfile::tempdir().expect("temp");
    let out = env
        .command(&["list", "--here"])
        .current_dir(nowhere.path())
        .output()
        .expect("cmux runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a git repository"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rust_log_is_plain_text_off_a_terminal_and_says_what_exec_and_cat_do() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    for args in [
        &["exec", "w", "--", "true"][..],
        &["cat", "w", "README.md"][..],
    ] {
        let out = env
            .command(args)
            .env("RUST_LOG", "debug")
            .output()
            .expect("cmux runs");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            !out.stderr.contains(&0x1b),
            "no colour escapes in a log that is not a terminal: {:?}",
            stderr(&out)
        );
        let verb = args[0];
        assert!(
            stderr(&out)
                .lines()
                .any(|l| l.contains("DEBUG") && l.contains(&format!(" {verb}"))),
            "a debug line for {verb}: {}",
            stderr(&out)
        );
    }
}
