//! How `cmux exec` ends when its world goes away, locally and over SSH: its reader
//! closes the pipe (exit 141 and the command's group killed), a signal arrives (the
//! group killed, exit 128+N), or cmux itself is SIGKILLed (local: nothing it started
//! stays alive).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use super::ssh::Remote;
use super::{
    assert_no_tagged_process_within_5s, read_pid, signal_and_check_group, stderr, tagged_command,
    unique_tag, wait_gone, wait_ready, Env, GROUP_COMMAND, PATIENCE,
};

/// The command of the pipe tests: writes its pid, then becomes `yes` (same pid).
const YES: &str = "echo $$ > yes.pid; exec yes";

/// Runs `cmd` (a `cmux exec` of [`YES`]), reads 10 bytes of its output and closes the
/// pipe, as `| head -c 10` does; checks cmux exits 141 silently and `yes` is gone.
fn reader_goes_away(mut cmd: Command, ws: &Path, where_: &str) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmux starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut head = [0u8; 10];
    out.read_exact(&mut head).expect("10 bytes of yes");
    assert_eq!(&head, b"y\ny\ny\ny\ny\n");
    let yes = read_pid(&ws.join("yes.pid"));
    drop(out);
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("cmux exec{where_} still running after its reader went away");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    assert_eq!(
        status.code(),
        Some(141),
        "exits as a pipe-killed process: {err}"
    );
    assert_eq!(err, "", "a pipe-killed process says nothing");
    wait_gone(&[yes], &format!("yes{where_} after its reader went away"));
}

#[test]
fn exec_ends_when_its_reader_goes_away() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    reader_goes_away(env.command(&["exec", "w", "--", YES]), &ws, "");
}

#[test]
fn ssh_exec_ends_when_its_reader_goes_away() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = r.path_of("w");
    reader_goes_away(r.command(&["exec", "w", "--", YES]), &ws, " on the host");
}

/// `cmux exec` of [`GROUP_COMMAND`] from `cmd`, sent `signal`: exits `code`, group gone.
fn signalled(mut cmd: Command, ws: &Path, signal: &str, code: i32, where_: &str) {
    let _ = std::fs::remove_file(ws.join("bg.pid"));
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmux starts");
    signal_and_check_group(child, &ws.join("bg.pid"), signal, code, where_);
}

#[test]
fn hup_quit_and_term_kill_the_command_group() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    for (signal, code) in [("HUP", 129), ("QUIT", 131), ("TERM", 143)] {
        let cmd = env.command(&["exec", "w", "--", GROUP_COMMAND]);
        signalled(cmd, &ws, signal, code, "");
    }
}

#[test]
fn ssh_hup_and_quit_kill_the_command_group_on_the_host() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = r.path_of("w");
    for (signal, code) in [("HUP", 129), ("QUIT", 131)] {
        let cmd = r.command(&["exec", "w", "--", GROUP_COMMAND]);
        signalled(cmd, &ws, signal, code, " on the host");
    }
}

#[test]
fn sigkilled_exec_leaves_no_local_command() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let tag = unique_tag("exec-kill");
    let mut child = env
        .command(&["exec", "w", "--", &tagged_command(&tag)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cmux starts");
    wait_ready(&ws.join("ready"));
    assert!(
        !super::tagged_processes(&tag).is_empty(),
        "the command runs"
    );
    child.kill().expect("SIGKILL cmux");
    let _ = child.wait();
    assert_no_tagged_process_within_5s(&tag, "SIGKILLed cmux exec");
}

/// A SIGKILLed cmux's command gets SIGTERM first, so that it can clean up (git removes
/// its lock files then: a killed `cmux new` must not fail the next one), and SIGKILL
/// when it ignores TERM.
#[test]
fn sigkilled_exec_gives_its_command_term_first_then_kill() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let tag = unique_tag("exec-term");
    let script = format!(
        // stderr away from cmux's dead pipe: bash would die of SIGPIPE reporting the
        // loop's TERMed sleep before running the trap.
        "exec 2>/dev/null; trap 'echo term > got-term' TERM; (exec -a {tag} sleep 300) & \
         echo started > ready; while :; do (exec -a {tag} sleep 0.1); done"
    );
    let mut child = env
        .command(&["exec", "w", "--", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cmux starts");
    wait_ready(&ws.join("ready"));
    child.kill().expect("SIGKILL cmux");
    let _ = child.wait();
    assert_no_tagged_process_within_5s(&tag, "SIGKILLed cmux exec of a command ignoring TERM");
    assert_eq!(
        std::fs::read_to_string(ws.join("got-term")).unwrap_or_default(),
        "term\n",
        "the command was sent SIGTERM before SIGKILL"
    );
}
