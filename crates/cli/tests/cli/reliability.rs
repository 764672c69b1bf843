//! Reliability of the CLI under concurrency, corruption and bad input (issue 7). The
//! killed-`cmux new` and 50-concurrent-`new`-then-`rm` cases live in `main.rs`; this
//! module adds the mixed and the hostile ones.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{git, stderr, stdout, Env};

/// Asserts a failed command: the exit code, one line on stderr, no panic.
fn assert_clean_failure(out: &std::process::Output, code: i32, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(
        !out.stderr
            .iter()
            .any(|b| *b == 0x1b || *b == b'\r' || *b == 0x07),
        "{what}: raw control bytes on stderr: {err:?}"
    );
    err
}

/// Temporary files the registry may have left in `$CMUX_HOME/workspaces`.
fn registry_temps(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.home.path().join("workspaces"))
        .expect("registry dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn fifty_concurrent_mixed_new_and_rm() {
    let env = Env::new();
    for i in 0..25 {
        env.ok(&["new", &format!("old-{i}")]);
    }
    let children: Vec<_> = (0..50)
        .map(|i| {
            let args = if i % 2 == 0 {
                vec!["rm".to_owned(), format!("old-{}", i / 2)]
            } else {
                vec!["new".to_owned(), format!("new-{}", i / 2)]
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (
                args.join(" "),
                env.command(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("cmux starts"),
            )
        })
        .collect();
    for (what, child) in children {
        let out = child.wait_with_output().expect("cmux ends");
        assert!(out.status.success(), "cmux {what}: {}", stderr(&out));
    }
    let list = env.run(&["list", "--json"]);
    assert!(list.status.success());
    assert_eq!(stderr(&list), "", "no warning about any entry");
    let records: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let mut names: Vec<&str> = records
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            assert_eq!(r["state"], "ready", "{r}");
            r["name"].as_str().expect("name")
        })
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..25).map(|i| format!("new-{i}")).collect();
    want.sort();
    assert_eq!(names, want);
    let worktrees = git(env.project(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 26);
    assert!(
        registry_temps(&env).is_empty(),
        "{:?}",
        registry_temps(&env)
    );
}

#[test]
fn corrupt_entries_get_one_clear_error_while_the_others_keep_working() {
    let env = Env::new();
    env.ok(&["new", "good"]);
    let corruptions: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("truncated", b"{\"name\": \"truncated\", \"proj"),
        ("garbage", b"\x00\xff\x1b[2J binary garbage"),
        ("wrong-name", b"{\"name\": \"other\"}"),
        ("wrong-type", b"[1, 2, 3]"),
    ];
    for (name, bytes) in corruptions {
        env.ok(&["new", name]);
        std::fs::write(
            env.home.path().join(format!("workspaces/{name}.json")),
            bytes,
        )
        .expect("corrupt");
    }
    for (name, _) in corruptions {
        let file = env.home.path().join(format!("workspaces/{name}.json"));
        for args in [
            vec!["exec", name, "--", "true"],
            vec!["cat", name, "README.md"],
            vec!["rm", name],
        ] {
            let out = env.run(&args);
            let err = assert_clean_failure(&out, 1, &format!("{args:?}"));
            assert!(
                err.contains(&file.display().to_string()),
                "{args:?} names the file: {err}"
            );
        }
    }
    // The good one is untouched by its neighbours' corruption.
    assert_eq!(env.ok(&["exec", "good", "--", "echo fine"]), "fine\n");
    assert_eq!(env.ok(&["cat", "good", "README.md"]), "hello\n");
    let list = env.run(&["list", "--json"]);
    assert!(list.status.success());
    let records: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(records.as_array().expect("array").len(), 1);
    assert_eq!(records[0]["name"], "good");
    let warnings = stderr(&list);
    for (name, _) in corruptions {
        assert!(
            warnings.contains(&format!("workspaces/{name}.json")),
            "{name} is named: {warnings}"
        );
    }
    assert!(
        !list.stderr.contains(&0x1b),
        "warnings carry no raw escape: {warnings:?}"
    );
}

#[test]
fn unknown_workspace_is_one_clear_error_for_every_command() {
    let env = Env::new();
    for args in [
        vec!["exec", "ghost", "--", "true"],
        vec!["cat", "ghost", "x"],
        vec!["write", "ghost", "x"],
        vec!["edit", "ghost", "x", "--old", "a", "--new", "b"],
        vec!["ls", "ghost"],
        vec!["rename", "ghost", "other"],
        vec!["fork", "ghost", "other"],
    ] {
        let err = assert_clean_failure(&env.run(&args), 1, &format!("{args:?}"));
        assert!(
            err.contains("no workspace named \"ghost\""),
            "{args:?}: {err}"
        );
    }
}

/// The peak resident memory (VmHWM, KiB) of `pid`, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `cmux cat` (built by `cat`) of a sparse 1 GiB file in workspace directory `ws`,
/// piped into `wc -c`: the exact count, and the peak memory of cmux sampled meanwhile.
fn cat_one_gib(ws: &std::path::Path, mut cat: Command) {
    let ok = Command::new("truncate")
        .args(["-s", "1G"])
        .arg(ws.join("big.bin"))
        .status()
        .expect("truncate")
        .success();
    assert!(ok);
    let mut cat = cat
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmux cat");
    let wc = Command::new("wc")
        .arg("-c")
        .stdin(cat.stdout.take().expect("stdout"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("wc");
    let pid = cat.id();
    let mut peak = 0;
    while cat.try_wait().expect("poll").is_none() {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = cat.wait().expect("cat ends");
    let mut err = String::new();
    cat.stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "{err}");
    let count = wc.wait_with_output().expect("wc ends");
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "1073741824");
    eprintln!("cmux cat of 1 GiB: peak RSS {peak} KiB");
    assert!(peak > 0, "memory was sampled");
    assert!(peak < 128 * 1024, "cmux cat held {peak} KiB: not streamed");
}

#[test]
fn a_one_gib_file_is_streamed_by_cat_in_bounded_memory() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    cat_one_gib(&ws, env.command(&["cat", "w", "big.bin"]));
}

#[test]
fn a_one_gib_file_is_streamed_by_cat_over_ssh_in_bounded_memory() {
    let env = Env::new();
    let sshd = cmux_integration_tests::sshd::TestSshd::start();
    let base = sshd.scratch().join("base");
    let base = base.to_str().expect("utf-8");
    let out = env
        .command(&["new", "w", "--ssh", sshd.alias(), "--src-base", base])
        .env("CMUX_SSH_CONFIG", sshd.config_path())
        .output()
        .expect("cmux new");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = env.workspace_path("w");
    let mut cat = env.command(&["cat", "w", "big.bin"]);
    cat.env("CMUX_SSH_CONFIG", sshd.config_path());
    cat_one_gib(&ws, cat);
}

#[test]
fn directories_bad_utf8_and_escapes_are_refused_cleanly() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    std::fs::create_dir(ws.join("adir")).expect("mkdir");
    std::fs::write(ws.join("adir/inside"), b"inside").expect("write");
    let latin1: &[u8] = b"caf\xe9 \xff\n";
    std::fs::write(ws.join("latin1.txt"), latin1).expect("write");
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing(&ws);

    // A directory where a file is expected.
    let err = assert_clean_failure(&env.run(&["cat", "w", "adir"]), 1, "cat adir");
    assert!(err.contains("adir") && err.contains("directory"), "{err}");
    let out = env.run_stdin(&["write", "w", "adir"], b"clobber");
    let err = assert_clean_failure(&out, 1, "write adir");
    assert!(err.contains("adir"), "{err}");
    let out = env.run(&["edit", "w", "adir", "--old", "a", "--new", "b"]);
    let err = assert_clean_failure(&out, 1, "edit adir");
    assert!(err.contains("adir"), "{err}");

    // Invalid UTF-8: in the file given to edit, and in the arguments.
    let out = env.run(&["edit", "w", "latin1.txt", "--old", "caf", "--new", "cafe"]);
    let err = assert_clean_failure(&out, 1, "edit latin1");
    assert!(err.contains("latin1.txt") && err.contains("UTF-8"), "{err}");
    let bad_arg = std::ffi::OsStr::from_bytes(b"\xff").to_owned();
    let os = |words: &[&str]| -> Vec<std::ffi::OsString> {
        words.iter().map(|w| std::ffi::OsString::from(*w)).collect()
    };
    let with_bad = |before: &[&str], after: &[&str]| {
        let mut v = os(before);
        v.push(bad_arg.clone());
        v.extend(os(after));
        v
    };
    for args in [
        with_bad(&["edit", "w", "latin1.txt", "--old"], &["--new", "x"]),
        with_bad(&["cat", "w"], &[]),
        with_bad(&["exec", "w", "--cwd"], &["--", "true"]),
    ] {
        let out = env.command(&[]).args(&args).output().expect("cmux runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("UTF-8"), "{args:?}: says why: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }

    // Escape sequences in names and in git's stderr come back escaped.
    let hostile = "x\u{1b}[2J\u{1b}]0;owned\u{7}";
    assert_clean_failure(&env.run(&["cat", "w", hostile]), 1, "cat hostile name");
    assert_clean_failure(
        &env.run(&["new", "w2", "--from", hostile]),
        1,
        "new --from hostile",
    );
    let out = env.run(&["exec", "w", "--", &format!("printf '{hostile}'")]);
    assert_eq!(
        stdout(&out),
        hostile,
        "a command's own output is its data: passed through untouched"
    );

    // Nothing was written, nothing left behind.
    assert_eq!(listing(&ws), before);
    assert_eq!(listing(&ws.join("adir")).len(), 1);
    assert_eq!(
        std::fs::read(ws.join("adir/inside")).expect("read"),
        b"inside"
    );
    assert_eq!(std::fs::read(ws.join("latin1.txt")).expect("read"), latin1);
}
