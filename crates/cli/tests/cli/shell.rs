//! `cmux shell`: an interactive login shell in the workspace directory, with a
//! terminal (run under `script(1)`, which gives cmux a real pty), locally and over SSH.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::ssh::Remote;
use super::{stderr, stdout, Env};

/// Runs `cmd` under `script -qec` (a pty on cmux's stdin/stdout), typing `input`.
fn in_a_terminal(cmd: &Command, input: &str) -> Output {
    let mut line: Vec<String> = vec![cmd.get_program().to_string_lossy().into_owned()];
    line.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let mut script = Command::new("script");
    script
        .args(["-qec", &cmux_core::quote::join(&line), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    let mut child = script.spawn().expect("script starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("type");
    // Kept open until the shell has exited by itself: script(1) ends the session at
    // end of input, possibly before the shell has run what was typed.
    let out = child.wait_with_output().expect("script ends");
    drop(stdin);
    out
}

/// What the shell is asked to show: where it is, whether it is a login shell, its
/// terminal; then it exits 7.
const PROBE: &str = "echo \"pwd=$PWD\"; shopt -q login_shell && echo login-shell; tty; exit 7\n";

fn assert_probe(out: &Output, ws: &std::path::Path) {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(7), "{text} {}", stderr(out));
    assert!(text.contains(&format!("pwd={}", ws.display())), "{text}");
    assert!(text.contains("login-shell"), "{text}");
    assert!(text.contains("/dev/pts/"), "a terminal: {text}");
}

#[test]
fn shell_opens_a_login_shell_in_the_workspace() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let mut cmd = env.command(&["shell", "w"]);
    cmd.env("SHELL", "/bin/bash");
    assert_probe(&in_a_terminal(&cmd, PROBE), &ws);
    // Without a terminal (a script), the shell reads its commands from stdin.
    let out = env.run_stdin(&["shell", "w"], b"echo \"pwd=$PWD\"; exit 3\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("pwd={}", ws.display())));
}

#[test]
fn ssh_shell_opens_a_login_shell_on_the_host() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = r.path_of("w");
    let out = in_a_terminal(&r.command(&["shell", "w"]), PROBE);
    assert_probe(&out, &ws);
    let out = r.run_stdin(&["shell", "w"], b"echo \"pwd=$PWD\"; exit 3\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("pwd={}", ws.display())));
}
