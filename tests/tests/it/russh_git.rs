//! Workspaces over the russh transport: local `git push`/`fetch` reach the host through
//! the git relay (`cmux_backend_ssh::source::relay`), not through an ssh client.
//!
//! The relay program is this test binary itself (the `cmux` binary is not built for
//! this crate): [`relay_child`] runs the relay's client side, behind a `sh` wrapper
//! that gives it git's stdout as fd 3 and sends the test harness's own chatter on
//! stdout to stderr.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cmux_backend_ssh::source::relay::{run_relay_client, RELAY_FAILURE};
use cmux_backend_ssh::source::SshSource;
use cmux_backend_ssh::{SshRuntime, Transport};
use cmux_core::workspace::{
    CreateOptions, Lifecycle, NoProgress, ProgressEvent, Project, PullOutcome,
};
use cmux_core::{ExecRequest, RuntimeExt};
use cmux_integration_tests::sshd::TestSshd;

/// The word before the relay's own arguments in a [`relay_child`] command line.
const RELAY_MARK: &str = "cmux-it-git-relay";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `SshOptions::git_relay` running [`relay_child`] of this binary (libtest takes the
/// mark and the relay's arguments as extra filters, which match nothing else).
fn relay_argv() -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary path");
    vec![
        "sh".into(),
        "-c".into(),
        r#"exec "$0" "$@" 3>&1 1>&2"#.into(),
        exe.display().to_string(),
        "--exact".into(),
        "russh_git::relay_child".into(),
        "--ignored".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
        RELAY_MARK.into(),
    ]
}

/// The relay program when started through [`relay_argv`]; nothing when run on its
/// own.
#[test]
#[ignore = "run by git as its ssh, through relay_argv"]
fn relay_child() {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == RELAY_MARK) else {
        return;
    };
    let [socket, _host, command] = &args[at + 1..] else {
        panic!("relay arguments: {args:?}");
    };
    // fd 3 is git's pipe (see relay_argv); our stdout carries libtest's messages.
    let git_stdout = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")
        .expect("fd 3");
    let code = match run_relay_client(
        Path::new(socket),
        command,
        std::io::stdin(),
        git_stdout,
        std::io::stderr(),
    ) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "relay: {e}");
            RELAY_FAILURE
        }
    };
    std::process::exit(code);
}

fn runtime(sshd: &TestSshd, relay: Option<Vec<String>>) -> SshRuntime {
    let mut options = sshd.russh_options();
    options.git_relay = relay;
    SshRuntime::new(sshd.alias(), options).expect("runtime")
}

#[tokio::test]
async fn russh_git_push_and_fetch_go_through_the_relay() {
    let sshd = TestSshd::start();
    let project_dir = sshd.dir().join("proj");
    std::fs::create_dir_all(&project_dir).expect("mkdir");
    git(&project_dir, &["init", "-q", "-b", "main"]);
    std::fs::write(project_dir.join("a.txt"), "a\n").expect("write");
    git(&project_dir, &["add", "-A"]);
    git(&project_dir, &["commit", "-q", "-m", "one"]);
    let local_head = git(&project_dir, &["rev-parse", "HEAD"]);
    let project = Project::open(&project_dir).await.expect("project");

    let rt = runtime(&sshd, Some(relay_argv()));
    assert_eq!(rt.transport(), Transport::Russh);
    let src_base = sshd.scratch().join("src");
    let source = SshSource::new(rt.clone()).with_src_base(src_base.to_string_lossy());
    let lifecycle = Lifecycle::new(Arc::new(rt.clone()), Arc::new(source))
        .with_lock_dir(sshd.dir().join("locks"));

    // A fresh project: the host lacks the commit, so it must be pushed.
    let steps = Mutex::new(Vec::new());
    let progress = |e: ProgressEvent<'_>| {
        if let ProgressEvent::Step(s) = e {
            steps.lock().expect("lock").push(s.to_owned());
        }
    };
    let w1 = lifecycle
        .create("w1", &project, &CreateOptions::default(), &progress)
        .await
        .expect("create w1 over russh");
    assert!(
        steps
            .lock()
            .expect("lock")
            .iter()
            .any(|s| s.starts_with("pushing")),
        "the commit was pushed: {:?}",
        steps.lock().expect("lock")
    );
    let bare = src_base.join(project.id()).join(".cmux-base.git");
    let on_host = rt
        .output(
            ExecRequest::argv([
                "git",
                "-C",
                &bare.to_string_lossy(),
                "log",
                "--all",
                "--format=%H",
            ]),
            1 << 16,
        )
        .await
        .expect("git log on the host");
    assert!(on_host.status.success(), "{on_host:?}");
    assert!(
        on_host.stdout_lossy().lines().any(|l| l == local_head),
        "{local_head} on the host: {}",
        on_host.stdout_lossy()
    );

    // A commit made on the host comes back with a fetch through the relay.
    let made = rt
        .output(
            ExecRequest::script(
                "git -c user.name=h -c user.email=h@h.invalid commit -q --allow-empty \
                 -m 'from the host' && git rev-parse HEAD",
            )
            .cwd(w1.path.clone()),
            1 << 16,
        )
        .await
        .expect("commit on the host");
    assert!(made.status.success(), "{made:?}");
    let host_head = made.stdout_lossy().trim().to_owned();
    match lifecycle.pull(&w1, None, &NoProgress).await.expect("pull") {
        PullOutcome::Pulled { commit, .. } => assert_eq!(commit, host_head),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        git(&project_dir, &["rev-parse", "refs/heads/w1"]),
        host_head,
        "the project's branch w1 has the host's commit"
    );

    // No relay configured: a clear error, not a failing ssh.
    let other_dir = sshd.dir().join("proj2");
    std::fs::create_dir_all(&other_dir).expect("mkdir");
    git(&other_dir, &["init", "-q", "-b", "main"]);
    git(&other_dir, &["commit", "-q", "--allow-empty", "-m", "x"]);
    let other = Project::open(&other_dir).await.expect("project");
    let bare_rt = runtime(&sshd, None);
    let bare_source = SshSource::new(bare_rt.clone()).with_src_base(src_base.to_string_lossy());
    let err = Lifecycle::new(Arc::new(bare_rt), Arc::new(bare_source))
        .with_lock_dir(sshd.dir().join("locks"))
        .create("w2", &other, &CreateOptions::default(), &NoProgress)
        .await
        .expect_err("no relay");
    assert!(err.to_string().contains("git relay"), "{err}");
    assert!(
        err.to_string().contains("CMUX_SSH_TRANSPORT=openssh"),
        "{err}"
    );
}
