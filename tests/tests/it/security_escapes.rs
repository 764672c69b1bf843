//! Terminal escape sequences from the host (file names, a command's stderr, ssh's
//! diagnostics including the server's banner) are shown escaped in cmux's own error
//! messages, locally and over SSH: no raw ESC, BEL or carriage return ever reaches the
//! user's terminal through an error.

use std::sync::Arc;

use cmux_core::{Error, ExecRequest, RemotePath, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::{SshdOptions, TestSshd};

/// Clear screen, set the window title, carriage return: what a hostile host would send.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\r";

fn assert_escaped(err: &Error, what: &str) {
    let text = err.to_string();
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{what}: raw control characters in {text:?}"
    );
    assert!(text.contains("\\u{1b}[2J"), "{what}: shown escaped: {text}");
}

async fn errors_are_escaped(rt: Arc<dyn Runtime>, scratch: &str) {
    // A command's stderr in a failed command.
    let err = rt
        .run_checked(
            "hostile",
            ExecRequest::script(format!("printf '%s' '{HOSTILE}' >&2; exit 3")),
        )
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::CommandFailed { .. }), "{err:?}");
    assert_escaped(&err, "stderr");

    // File names: missing, a directory read as a file, a file listed as a directory.
    let root = RemotePath::new(scratch).expect("path");
    let missing = root.join(&format!("missing{HOSTILE}")).expect("join");
    assert_escaped(
        &rt.read_file(&missing).await.expect_err("missing"),
        "missing file",
    );
    let dir = root.join(&format!("dir{HOSTILE}")).expect("join");
    rt.create_dir_all(&dir).await.expect("mkdir");
    assert_escaped(
        &rt.read_file(&dir).await.expect_err("a directory"),
        "directory read as a file",
    );
    let file = root.join(&format!("file{HOSTILE}")).expect("join");
    rt.write_file(&file, b"x").await.expect("write");
    assert_escaped(
        &rt.read_dir(&file).await.expect_err("a file"),
        "file listed as a directory",
    );
    assert_escaped(
        &rt.write_file(&file.join("below").expect("join"), b"x")
            .await
            .expect_err("below a file"),
        "write below a file",
    );
}

#[tokio::test]
async fn local_errors_show_host_text_escaped() {
    let dir = tempfile::tempdir().expect("tmp");
    let rt = Arc::new(cmux_backend_local::LocalRuntime::new().expect("runtime"));
    errors_are_escaped(rt, dir.path().to_str().expect("utf-8")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_errors_show_host_text_escaped() {
    let sshd = TestSshd::start();
    let rt = Arc::new(sshd.runtime());
    errors_are_escaped(rt.clone(), sshd.scratch().to_str().expect("utf-8")).await;
    rt.disconnect().await;
}

/// The server's banner is host text that ssh prints before authentication: when the
/// authentication then fails, cmux's error (which quotes ssh's diagnostics) shows it
/// escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_banner_in_an_ssh_failure_is_escaped() {
    let dir = tempfile::tempdir().expect("tmp");
    let banner = dir.path().join("banner");
    std::fs::write(&banner, format!("welcome{HOSTILE}\n")).expect("banner");
    let sshd = TestSshd::start_with(SshdOptions {
        server_config: vec![format!("Banner {}", banner.display())],
        ..Default::default()
    });
    sshd.revoke_client_key();
    let err = sshd.runtime().ensure_ready().await.expect_err("refused");
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("welcome"), "the banner is quoted: {text}");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "raw control characters in {text:?}"
    );
}
