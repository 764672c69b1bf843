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
