//! [`Watchdog`]: kills the process groups of a [`LocalRuntime`](crate::LocalRuntime)'s
//! commands when the process that owns the runtime dies, even by SIGKILL.
//!
//! Why a process: a SIGKILLed process runs no code, and `PR_SET_PDEATHSIG` reaches
//! only the direct child (the command's `bash`), not the background children in its
//! process group. So one small `bash` per runtime (not per command: spawned processes
//! are the product's cost) holds the read end of a pipe whose only write end is ours
//! (close-on-exec, so no command inherits it). We send it `+<pgid>` when a command
//! starts and `-<pgid>` once the command is reaped. The kernel closes our end when we
//! die, however we die; the watchdog then reads end of file, sends SIGTERM to every
//! group still registered, SIGKILL half a second later to the groups that are still
//! there, and exits. TERM first because a command killed outright leaves its debris
//! behind: git removes its `.lock` files on TERM, not on KILL, and a killed
//! `cmux new` must not leave a `refs/heads/NAME.lock` that fails the next one. A
//! group is dropped from the list as soon as it is empty, so only a group whose number
//! was reused within that half second could be signalled by mistake. Dropping the last clone of the runtime closes the
//! pipe too, with the same effect on commands still running.
//!
//! PID reuse: a group is unregistered as soon as its leader is reaped, because from
//! then on its number may be given to an unrelated process once the group is empty.
//! While the leader is unreaped its pid (the pgid) cannot be reused, so a registered
//! pgid always names the command's group. Left: background children of a command
//! whose leader has already exited are not covered (their group is no longer
//! registered), and a command started in the microseconds between its spawn and its
//! registration is not covered if we die in between.
//!
//! The watchdog ignores INT, QUIT, HUP, TERM and PIPE and runs in its own process group,
//! so Ctrl-C on a terminal or a closing terminal do not take it away before it is
//! needed; it has no stdout or stderr (it must not keep a caller's pipe open) and runs
//! in `/` (it must not keep a directory busy).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

/// The watchdog's program. Lines are `+N` (register group N) or `-N` (unregister);
/// anything else is ignored, numbers are checked before use.
const SCRIPT: &str = r#"trap '' INT QUIT HUP TERM PIPE
declare -A groups
while IFS= read -r line; do
  pg=${line#?}
  [[ $pg =~ ^[1-9][0-9]*$ ]] || continue
  case $line in
    +*) groups[$pg]=1 ;;
    -*) unset "groups[$pg]" ;;
  esac
done
for pg in "${!groups[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || unset "groups[$pg]"; done
exec {tick}<> <(:)
for _ in 1 2 3 4 5 6 7 8 9 10; do
  ((${#groups[@]})) || exit 0
  read -r -t 0.05 -u "$tick" _
  for pg in "${!groups[@]}"; do kill -0 -- "-$pg" 2>/dev/null || unset "groups[$pg]"; done
done
for pg in "${!groups[@]}"; do kill -KILL -- "-$pg" 2>/dev/null; done
"#;

/// One watchdog process and our end of its pipe. See the module docs.
#[derive(Debug)]
pub(crate) struct Watchdog {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Our end of the pipe; `None` once writing failed (the watchdog is gone).
    pipe: Option<ChildStdin>,
    /// Reaped when the watchdog is dropped.
    child: Option<Child>,
}

impl Watchdog {
    /// Starts the watchdog. `None` (with a warning in the log) when bash cannot start:
    /// commands still run, without the guarantee.
    pub(crate) fn start() -> Option<Watchdog> {
        let spawned = Command::new("bash")
            .args(["--noprofile", "--norc", "-c", SCRIPT, "cmux-local-watchdog"])
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the local watchdog: commands will not be killed if this process is killed");
                return None;
            }
        };
        let pipe = child.stdin.take();
        tracing::debug!(pid = child.id(), "local watchdog started");
        Some(Watchdog {
            state: Mutex::new(State {
                pipe,
                child: Some(child),
            }),
        })
    }

    /// Registers the process group `pgid` (a command just started).
    pub(crate) fn register(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// Unregisters `pgid` (its leader was reaped: the number may be reused).
    pub(crate) fn unregister(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    fn send(&self, line: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        // A line is far below PIPE_BUF, so the write is atomic, and the watchdog
        // drains the pipe as lines come: this never blocks for long.
        let failed = match state.pipe.as_mut() {
            Some(pipe) => pipe.write_all(line.as_bytes()).is_err(),
            None => false,
        };
        if failed {
            tracing::warn!(
                "the local watchdog is gone: commands will not be killed if this process is killed"
            );
            state.pipe = None;
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let Ok(state) = self.state.get_mut() else {
            return;
        };
        // End of file: the watchdog kills what is still registered, then exits.
        drop(state.pipe.take());
        // Reap it off this thread (it exits at once), so no zombie stays behind.
        if let Some(mut child) = state.child.take() {
            let _ = std::thread::Builder::new()
                .name("cmux-watchdog-reaper".into())
                .spawn(move || {
                    let _ = child.wait();
                });
        }
    }
}
