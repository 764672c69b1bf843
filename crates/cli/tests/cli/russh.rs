//! `CMUX_SSH_TRANSPORT`: the built-in russh client from the CLI.

use super::ssh::{normalize_doctor, Remote};
use super::{stderr, stdout};

#[test]
fn doctor_over_russh_connects_without_an_ssh_process_and_says_so() {
    let r = Remote::start();
    let out = r
        .command(&["doctor", "--ssh", r.host()])
        .env("CMUX_SSH_TRANSPORT", "russh")
        .output()
        .expect("cmux runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    insta::assert_snapshot!("russh_doctor", normalize_doctor(&r, &stdout(&out)));
    // No ControlMaster was started for it.
    assert!(r.masters().is_empty(), "{:?}", r.masters());
}

#[test]
fn an_unknown_transport_is_a_usage_error() {
    let r = Remote::start();
    let out = r
        .command(&["doctor", "--ssh", r.host()])
        .env("CMUX_SSH_TRANSPORT", "putty")
        .output()
        .expect("cmux runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    insta::assert_snapshot!("russh_bad_transport", stderr(&out));
}

/// Without an ssh client on PATH, `auto` (the default) picks the built-in client, and
/// the config comes from cmux's own parser.
#[test]
fn auto_uses_the_built_in_client_when_no_ssh_is_installed() {
    let r = Remote::start();
    let empty = tempfile::tempdir().expect("dir");
    let out = r
        .command(&["doctor", "--ssh", r.host()])
        .env_remove("CMUX_SSH_TRANSPORT")
        .env("PATH", empty.path())
        .output()
        .expect("cmux runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("connected with the built-in SSH client"),
        "{text}"
    );
    assert!(r.masters().is_empty(), "{:?}", r.masters());
}

/// A host that must use the shell/SFTP path (here: the helper turned off) on a machine
/// without an ssh client: a clear error naming both ways out, exit 1, not a hang or a
/// "command not found".
#[test]
fn the_shell_path_without_an_ssh_client_is_a_clear_error() {
    let r = Remote::start();
    let empty = tempfile::tempdir().expect("dir");
    let out = r
        .command(&["doctor", "--ssh", r.host()])
        .env_remove("CMUX_SSH_TRANSPORT")
        .env("CMUX_HOST_HELPER", "off")
        .env("PATH", empty.path())
        .output()
        .expect("cmux runs");
    assert!(!out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("needs an OpenSSH client") && text.contains("install OpenSSH"),
        "{text}"
    );
}
