//! Commands through the host helper get the user's login environment (what
//! `/etc/profile` and `~/.profile` set: rustup's and nvm's PATH), captured once per
//! helper start, kept on the host while no startup file changes, and never broken by
//! a startup file that prints or exits.

use std::sync::Arc;

use cmux_backend_pipe::{PipeOptions, PipeRuntime};
use cmux_core::{ExecRequest, ExitStatus, Runtime, RuntimeExt};
use cmux_integration_tests::helper::helper_path;
use cmux_integration_tests::users::{ensure_user, is_root};

/// A user of this file's own, whose startup files the tests rewrite.
const USER: &str = "cmux-test-env";

fn runtime() -> Arc<dyn Runtime> {
    let command = format!("exec runuser -u {USER} -- {}", helper_path().display());
    Arc::new(PipeRuntime::new(command, PipeOptions::default()).expect("pipe runtime"))
}

fn home() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/home/{USER}"))
}

async fn sh(rt: &Arc<dyn Runtime>, script: &str) -> (ExitStatus, String) {
    let out = rt
        .output(ExecRequest::script(script), 1 << 16)
        .await
        .expect("exec");
    (out.status, out.stdout_lossy())
}

fn write_profile(text: &str) {
    std::fs::write(home().join(".profile"), text).expect("write .profile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_path_reaches_commands_then_follows_edits_and_survives_a_noisy_exit() {
    if !is_root() {
        eprintln!("skipped: becoming another user needs root");
        return;
    }
    ensure_user(USER);
    // A `cargo` only ~/.profile puts on PATH, as rustup's installer does.
    let bin = home().join(".cargo-test/bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::write(bin.join("cargo"), "#!/bin/sh\necho 'cargo 9.9.9 (test)'\n").expect("cargo");
    let chown = std::process::Command::new("chown")
        .args([
            "-R",
            &format!("{USER}:{USER}"),
            home().to_str().expect("utf-8"),
        ])
        .status()
        .expect("chown");
    assert!(chown.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    write_profile(&format!(
        "echo 'Welcome, from .profile'\nexport PATH=\"{}:$PATH\"\nexport CMUX_PROFILE_MARK=one\n",
        bin.display()
    ));

    let rt = runtime();
    let (status, out) = sh(&rt, "cargo --version; echo $CMUX_PROFILE_MARK").await;
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(
        out, "cargo 9.9.9 (test)\none\n",
        "the profile's output never reaches the command"
    );

    // A later helper start uses the capture kept on the host; an edit is seen at once.
    drop(rt);
    write_profile(&format!(
        "export PATH=\"{}:$PATH\"\nexport CMUX_PROFILE_MARK=two\n",
        bin.display()
    ));
    let rt = runtime();
    assert_eq!(sh(&rt, "echo $CMUX_PROFILE_MARK").await.1, "two\n");
    drop(rt);

    // A profile that exits: commands still run, with the helper's own environment.
    write_profile("echo 'bye'; exit 0\n");
    let rt = runtime();
    let (status, out) = sh(&rt, "echo hi; exit 5").await;
    assert_eq!((status, out.as_str()), (ExitStatus::Exited(5), "hi\n"));
}
