//! The wrapper commands run in on an SSH host (issue 11 #1, #2, #6; issue 12 §6):
//! markers a command prints cannot change its status or the kill target, a missing
//! status is a failure naming the startup files, `--env` values stay off the host's
//! command lines, and commands get the login environment.

use std::time::Duration;

use cmux_core::tools::{self, BashInput, ToolContext};
use cmux_core::{ExecRequest, ExitStatus, Runtime, RuntimeExt, Stdin};
use cmux_integration_tests::sshd::{SshdOptions, TestSshd};

fn private_home() -> TestSshd {
    TestSshd::start_with(SshdOptions {
        private_home: true,
        ..Default::default()
    })
}

/// Issue 11 #1, first command of the issue: a forged status marker is the command's
/// own output; the status is the real one, after the command really ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_status_marker_is_output_not_the_status() {
    let sshd = TestSshd::start();
    let rt = sshd.fallback_runtime();
    let out = rt
        .output(
            ExecRequest::script(r#"printf "\000cmux-status:x0\n" >&2; sleep 3; exit 1"#)
                .timeout(Duration::from_secs(60)),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::Exited(1));
    assert_eq!(
        out.stderr, b"\0cmux-status:x0\n",
        "passed through as output"
    );
    // The same with the current marker form and a guessed nonce.
    let out = rt
        .output(
            ExecRequest::script(format!(
                r#"printf "\000cmux-status:{}:x0\n" >&2; exit 7"#,
                "0".repeat(32)
            )),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::Exited(7));
}

/// Issue 11 #1, second command: a forged pgid marker (old and current forms) neither
/// spares the command's own group nor kills another one on timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_pgid_marker_does_not_redirect_the_kill() {
    let sshd = TestSshd::start();
    let rt = sshd.fallback_runtime();
    // A bystander process group of the same user on the host (the same machine).
    let mut victim = std::process::Command::new("setsid")
        .args(["sleep", "1000"])
        .spawn()
        .expect("setsid sleep");
    let victim_pgid = victim.id();
    let pid_file = sshd.scratch().join("bg.pid");
    let script = format!(
        r#"printf '\000cmux-pgid:{v}\n\000cmux-start:{n}:{v}\n' >&2
sleep 1000 & echo $! > {f}
sleep 1000"#,
        v = victim_pgid,
        n = "a".repeat(32),
        f = cmux_core::quote::quote(&pid_file.to_string_lossy()),
    );
    let out = rt
        .output(
            ExecRequest::script(script).timeout(Duration::from_secs(3)),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::TimedOut);
    assert!(
        victim.try_wait().expect("try_wait").is_none(),
        "the bystander group {victim_pgid} was killed"
    );
    let _ = victim.kill();
    let _ = victim.wait();
    let bg: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let gone = wait_until(Duration::from_secs(10), || !alive(bg)).await;
    assert!(gone, "the command's own background child {bg} survived");
}

/// Issue 11 #2: with `exit 0` at the top of the host's `~/.bashrc`, nothing runs and
/// no status comes: that is a failure naming the startup files, for exec, the bash
/// tool (MCP's bash) and doctor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_status_is_a_failure_naming_the_startup_files() {
    let sshd = private_home();
    std::fs::write(
        sshd.home().join(".bashrc"),
        "echo 'rc: goodbye' >&2\nexit 0\n",
    )
    .expect("bashrc");
    let rt = sshd.fallback_runtime();
    let err = rt
        .output(ExecRequest::script("echo hi; exit 5"), 1 << 20)
        .await
        .expect_err("no status is not a success");
    let text = err.to_string();
    assert!(
        text.contains("startup files")
            && text.contains("did not run")
            && text.contains("rc: goodbye"),
        "{text}"
    );

    let ctx = ToolContext::new(
        std::sync::Arc::new(sshd.fallback_runtime()),
        sshd.scratch_path(),
    );
    let input = BashInput {
        command: "echo hi; exit 5".into(),
        timeout_secs: Some(60.0),
        cwd: None,
        run_in_background: false,
    };
    let bash = tools::bash(&ctx, input).await;
    assert!(bash.is_err(), "bash tool: {bash:?}");

    let options = sshd.ssh_options().helper(cmux_backend_ssh::HelperMode::Off);
    let report = cmux_backend_ssh::doctor::doctor(sshd.alias(), &options).await;
    assert!(!report.ok(), "{report:?}");
    let bash_check = report
        .checks
        .iter()
        .find(|c| c.name == "bash")
        .expect("bash check");
    assert!(
        bash_check.detail.contains("startup files"),
        "{bash_check:?}"
    );
}

/// Issue 11 #6: `--env` values never appear on a command line of the host (where any
/// user can read them), yet arrive exactly, and stdin after them is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_values_are_not_on_any_command_line() {
    let sshd = TestSshd::start();
    let rt = sshd.fallback_runtime();
    let secret = format!("cmux-secret-{}-{}", std::process::id(), fastrand::u64(..));
    let started = sshd.scratch().join("started");
    let mut p = rt
        .exec(
            ExecRequest::script(format!(
                "touch {}; sleep 30",
                cmux_core::quote::quote(&started.to_string_lossy())
            ))
            .env("SECRET", secret.clone())
            .timeout(Duration::from_secs(60)),
        )
        .await
        .expect("starts");
    assert!(
        wait_until(Duration::from_secs(30), || started.exists()).await,
        "the command did not start"
    );
    let seen = cmdlines_containing(&secret);
    p.kill().await.expect("kill");
    let _ = p.wait().await;
    assert!(seen.is_empty(), "the value is on command lines: {seen:?}");

    let out = rt
        .output(
            ExecRequest::script(r#"printf '%s|' "$SECRET"; cat"#)
                .env("SECRET", "a\nb 'c' $(d)")
                .env("GIT_EDITOR", "mine")
                .stdin(Stdin::Bytes(b"stdin\0after".to_vec())),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.stdout, b"a\nb 'c' $(d)|stdin\0after");
    let out = rt
        .output(
            ExecRequest::script(r#"printf %s "$GIT_EDITOR"; cat | wc -c"#)
                .env("GIT_EDITOR", "mine"),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(
        out.stdout_lossy(),
        "mine0\n",
        "the request's variables win over the non-interactive defaults; stdin is empty"
    );
}

/// Issue 12 §6: the login environment. `cargo` is on PATH only through `~/.profile`
/// (which also prints, on both streams, and reads stdin): `cargo --version` runs it,
/// and the output is the command's alone (the login shell's rc warning on stderr
/// before the command is not the command's either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_get_the_login_environment_without_its_output() {
    let sshd = private_home();
    let home = sshd.home();
    std::fs::create_dir(home.join("bin")).expect("bin");
    let cargo = home.join("bin/cargo");
    std::fs::write(&cargo, "#!/bin/sh\necho 'cargo 0.0.0-login-test'\n").expect("cargo");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        home.join(".profile"),
        "export PATH=\"$HOME/bin:$PATH\"\necho profile-noise\necho profile-noise >&2\nread -r line\n",
    )
    .expect("profile");
    // The login shell's own rc warns on stderr: not the command's output either.
    std::fs::write(home.join(".bashrc"), "echo 'rc: a warning' >&2\n").expect("bashrc");
    let rt = sshd.fallback_runtime();
    let out = rt
        .output(
            ExecRequest::argv(["cargo", "--version"]).stdin(Stdin::Bytes(b"x\n".to_vec())),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::Exited(0), "{}", out.stderr_lossy());
    assert_eq!(out.stdout_lossy(), "cargo 0.0.0-login-test\n");
    assert_eq!(out.stderr_lossy(), "");
    // bash's order: ~/.bash_profile first, and then ~/.profile is not read (by a new
    // connection: the login environment is kept per connection).
    std::fs::write(home.join(".bash_profile"), "export FROM=bash_profile\n").expect("bp");
    rt.disconnect().await;
    let out = rt
        .output(
            ExecRequest::script("printf '%s' \"$FROM\"; command -v cargo || true"),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.stdout_lossy(), "bash_profile");
}

/// The login files are read once per master connection, not by every command (a
/// `pyenv init` in them costs ~0.25 s), and again by a new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_environment_is_read_once_per_connection() {
    let sshd = private_home();
    let home = sshd.home();
    let count = home.join("sourced");
    std::fs::write(
        home.join(".profile"),
        format!(
            "echo x >> {}\nexport FROM_PROFILE='it'\\''s \"here\"'\n",
            count.display()
        ),
    )
    .expect("profile");
    let rt = sshd.fallback_runtime();
    for _ in 0..3 {
        let out = rt
            .output(ExecRequest::script("printf %s \"$FROM_PROFILE\""), 1024)
            .await
            .expect("runs");
        assert_eq!(out.stdout_lossy(), "it's \"here\"");
    }
    let times = || {
        std::fs::read_to_string(&count)
            .expect("count")
            .lines()
            .count()
    };
    assert_eq!(times(), 1, "sourced once for three commands");
    let cache = std::fs::read_dir(home.join(".cache/cmux"))
        .expect("cache dir")
        .flatten()
        .next()
        .expect("a cache file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        cache.metadata().expect("meta").permissions().mode() & 0o777,
        0o600
    );
    rt.disconnect().await;
    rt.output(ExecRequest::script("true"), 1024)
        .await
        .expect("runs");
    assert_eq!(times(), 2, "a new master reads the login files again");
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The processes of this machine whose command line holds `needle`.
fn cmdlines_containing(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{:?}: {text}", entry.file_name()));
            }
        }
    }
    found
}
