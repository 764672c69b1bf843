//! The host helper over SSH: it is installed and used, reinstalled when what is at its
//! path is not the build cmux carries, never run from a cut upload, and it kills what
//! it started when its client dies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmux_backend_ssh::ConnectionMode;
use cmux_core::{ExecRequest, ExitStatus, Runtime, RuntimeExt};
use cmux_integration_tests::load::assert_mixed_operations_succeed;
use cmux_integration_tests::sshd::{test_binary, TestSshd};

fn installed(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_installs_the_helper_then_every_operation_goes_through_it() {
    let sshd = TestSshd::start();
    let install = tempfile::tempdir().expect("install dir");
    let rt = sshd.runtime_installing_in(install.path());
    let out = rt
        .output(ExecRequest::script("echo hi; exit 3"), 1024)
        .await
        .expect("exec");
    assert_eq!(
        (out.status, out.stdout_lossy()),
        (ExitStatus::Exited(3), "hi\n".into())
    );
    let dirs = installed(install.path());
    assert_eq!(dirs.len(), 1, "one build installed: {dirs:?}");
    let dir = install.path().join(&dirs[0]);
    let meta = std::fs::metadata(&dir).expect("build dir");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o700,
        "build dir is private"
    );
    assert_eq!(
        installed(&dir),
        vec!["cmux-host".to_owned()],
        "no upload left over"
    );
    match rt.mode().await.expect("mode") {
        ConnectionMode::Helper { version, .. } => assert_eq!(version, env!("CARGO_PKG_VERSION")),
        other => panic!("expected helper mode, got {other:?}"),
    }
    rt.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_status_text_in_the_output_changes_nothing() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let started = Instant::now();
    let out = rt
        .output(
            ExecRequest::script(
                r#"printf '\000cmux-status:x0\n\000cmux-pgid:1\n' >&2; printf '\000cmux-status:x0\n'; sleep 1; exit 1"#,
            ),
            1 << 16,
        )
        .await
        .expect("exec");
    assert_eq!(
        out.status,
        ExitStatus::Exited(1),
        "the real status, not the forged one"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it ran to its end"
    );
    assert!(
        out.stderr.starts_with(b"\0cmux-status:x0\n"),
        "the text is output like any other"
    );
    rt.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_build_is_replaced_and_a_foreign_binary_reinstalled() {
    let sshd = TestSshd::start();
    let install = tempfile::tempdir().expect("install dir");
    let rt = sshd.runtime_installing_in(install.path());
    rt.ensure_ready().await.expect("installed");
    let current = installed(install.path());
    rt.disconnect().await;

    // An older version beside it, and something else at the current build's path.
    let old = install.path().join("0.0.9-0123456789abcdef");
    std::fs::create_dir(&old).expect("old dir");
    std::fs::write(old.join("cmux-host"), "#!/bin/sh\nexit 0\n").expect("old helper");
    // Installed two hours ago (builds used within the hour are left alone).
    let aged = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&old)
        .status()
        .expect("touch");
    assert!(aged.success());
    let path = install.path().join(&current[0]).join("cmux-host");
    std::fs::write(&path, "#!/bin/sh\necho 'not a helper'\nexit 0\n").expect("foreign");

    let rt = sshd.runtime_installing_in(install.path());
    let out = rt
        .output(ExecRequest::script("echo back"), 1024)
        .await
        .expect("exec after the reinstall");
    assert_eq!(out.stdout_lossy(), "back\n");
    assert!(matches!(
        rt.mode().await.expect("mode"),
        ConnectionMode::Helper { .. }
    ));
    assert_eq!(
        installed(install.path()),
        current,
        "the older build is gone"
    );
    let bytes = std::fs::read(&path).expect("helper");
    assert_eq!(
        &bytes[..4],
        b"\x7fELF",
        "the foreign file was replaced by the real helper"
    );
    rt.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_where_the_helper_cannot_run_uses_the_shell_path_and_says_why() {
    let sshd = TestSshd::start();
    let install = tempfile::tempdir().expect("install dir");
    // A noexec filesystem where the helper is installed, as a noexec home would be.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "noexec,size=32m", "tmpfs"])
        .arg(install.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mounting a noexec tmpfs needs CAP_SYS_ADMIN, which this machine does not grant");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(install.path().to_path_buf());
    let rt = sshd.runtime_installing_in(install.path());
    let out = rt
        .output(ExecRequest::script("echo still works; exit 4"), 1024)
        .await
        .expect("exec on the shell path");
    assert_eq!(
        (out.status, out.stdout_lossy()),
        (ExitStatus::Exited(4), "still works\n".into())
    );
    match rt.mode().await.expect("mode") {
        ConnectionMode::Fallback { reason } => {
            assert!(
                reason.contains("noexec"),
                "the reason names the cause: {reason}"
            )
        }
        other => panic!("expected the shell/SFTP path, got {other:?}"),
    }
    rt.disconnect().await;
}

/// Run by `killed_client_leaves_no_host_process` in a child process.
#[tokio::test]
#[ignore = "child of killed_client_leaves_no_host_process"]
async fn client_child() {
    let (Some(rt), Ok(tag), Ok(term_file)) = (
        cmux_integration_tests::sshd::runtime_in_child(),
        std::env::var("CMUX_IT_TAG"),
        std::env::var("CMUX_IT_TERM_FILE"),
    ) else {
        return;
    };
    // Ignores TERM (noting it), so only the SIGKILL that follows ends it.
    let mut p = rt
        .exec(
            ExecRequest::script(
                "trap 'echo term > \"$CMUX_TERM_FILE\"' TERM; sleep 1000 & sleep 1000 & \
                 echo started; while :; do sleep 0.1; done",
            )
            .env("CMUX_ORPHAN_TAG", tag)
            .env("CMUX_TERM_FILE", term_file),
        )
        .await
        .expect("exec");
    let mut out = p.stdout.take().expect("stdout");
    let mut buf = [0u8; 64];
    let _ = tokio::io::AsyncReadExt::read(&mut out, &mut buf).await;
    println!("cmux-child-started");
    let _ = p.wait().await;
}

fn tagged(tag: &str) -> Vec<u32> {
    let wanted = format!("CMUX_ORPHAN_TAG={tag}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .unwrap_or_default()
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie && env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_client_leaves_no_host_process() {
    let sshd = TestSshd::start();
    let tag = format!("helper-kill-{}-{}", std::process::id(), fastrand::u64(..));
    let term_file = sshd.dir().join(format!("{tag}.term"));
    let mut child = tokio::process::Command::new(test_binary())
        .args([
            "helper_ssh::client_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .envs(sshd.child_env())
        .env("CMUX_IT_TAG", &tag)
        .env("CMUX_IT_TERM_FILE", &term_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("child");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        child.stdout.take().expect("stdout"),
    ));
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("cmux-child-started") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(started, "the child's command started");
    assert!(
        tagged(&tag).len() >= 2,
        "the command's sleeps run on the host"
    );
    child.start_kill().expect("SIGKILL the client");
    let _ = child.wait().await;
    // The helper sees its stdin close and ends its groups (TERM, then KILL): 5 s at most.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = tagged(&tag);
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = tagged(&tag);
    }
    assert!(
        left.is_empty(),
        "processes left on the host 5 s after the client died: {left:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&term_file).unwrap_or_default(),
        "term\n",
        "the command was sent SIGTERM before SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_operations_at_once_over_one_channel_with_max_sessions_1() {
    let sshd = TestSshd::start_with(cmux_integration_tests::sshd::SshdOptions {
        server_config: vec!["MaxSessions 1".into()],
        ..Default::default()
    });
    let rt: Arc<dyn Runtime> = Arc::new(sshd.runtime());
    let scratch = sshd.scratch_path();
    rt.ensure_ready().await.expect("connected");
    assert_mixed_operations_succeed(rt, &scratch, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rc_file_that_exits_never_gives_a_false_success() {
    let sshd = TestSshd::start_with(cmux_integration_tests::sshd::SshdOptions {
        private_home: true,
        ..Default::default()
    });
    // sshd's bash reads ~/.bashrc before anything cmux sends: the helper cannot start,
    // the shell path runs nothing either. Whatever happens, no exit 0.
    std::fs::write(sshd.home().join(".bashrc"), "echo 'rc: bye' >&2\nexit 0\n").expect("rc");
    let rt = sshd.runtime();
    match rt
        .output(ExecRequest::script("echo hi; exit 5"), 1 << 16)
        .await
    {
        Ok(out) => assert_eq!(out.status, ExitStatus::Exited(5), "the real status"),
        Err(e) => assert!(
            e.to_string().contains("startup files"),
            "a clear error naming the cause: {e}"
        ),
    }
}
