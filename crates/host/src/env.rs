//! The user's login environment, captured once per helper start.
//!
//! sshd runs the helper through the user's shell as a plain (non-login) command, so
//! what `/etc/profile` and `~/.profile` set (rustup's and many installers' PATH) is
//! missing. The helper asks the user's login shell once, in the background, for its
//! environment: `$SHELL -l -c 'exec <this helper> dump-env <nonce>'`. The helper then
//! prints its environment between two copies of a random nonce, so whatever a startup
//! file prints before it is skipped and cannot be taken for a variable. Commands wait
//! for the capture (at most [`CAPTURE_TIMEOUT`]); file operations never do.
//!
//! The capture is kept on the host between helper starts (see `env_cache`), so a CLI
//! call does not pay a heavy profile before its first command.
//!
//! A login shell that fails, hangs or exits early (an `exit` in `~/.profile`) leaves
//! commands with the helper's own environment, and the reason is kept for `cmux doctor`
//! and sent as a notice.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::sys;

/// The hidden argument of the dump mode.
pub(crate) const DUMP_ENV_ARG: &str = "__dump-env";

/// How long a login shell may take to start.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(10);

/// Variables that describe the capturing shell, not the user's setup.
const NOT_CARRIED: &[&str] = &["_", "SHLVL", "PWD", "OLDPWD"];

/// An environment: variables in name order.
pub(crate) type Vars = Vec<(OsString, OsString)>;

/// The login environment, once captured.
#[derive(Debug, Default)]
pub(crate) struct LoginEnv {
    state: Mutex<Option<Captured>>,
    ready: Condvar,
    /// The capturing shell's process group while it runs.
    running: Mutex<Option<u32>>,
}

#[derive(Clone, Debug)]
struct Captured {
    vars: Vars,
    error: Option<String>,
}

impl LoginEnv {
    /// Starts the capture in a background thread.
    pub(crate) fn capture_in_background(self: &std::sync::Arc<Self>) {
        let me = self.clone();
        std::thread::spawn(move || {
            // A capture saved by an earlier helper, while no startup file changed.
            let shell = login_shell();
            let home = home_dir();
            let key = home.as_ref().map(|h| crate::env_cache::key(&shell, h));
            if let (Some(home), Some(key)) = (&home, &key) {
                if let Some(delta) = crate::env_cache::load(home, key) {
                    let vars = apply_delta(own_env(), &delta);
                    *me.state.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Captured { vars, error: None });
                    me.ready.notify_all();
                    return;
                }
            }
            let result = capture(&me.running);
            if let (Ok(vars), Some(home), Some(key)) = (&result, &home, &key) {
                // Only what the startup files set is kept: per-session variables
                // (SSH_CONNECTION...) come from each helper's own environment.
                crate::env_cache::save(home, key, &delta(&own_env(), vars));
            }
            let captured = match result {
                Ok(vars) => Captured { vars, error: None },
                Err(error) => Captured {
                    vars: own_env(),
                    error: Some(error),
                },
            };
            *me.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(captured);
            me.ready.notify_all();
        });
    }

    /// Sends `signal` to the capturing login shell's group if it still runs (the
    /// connection ended: TERM, then KILL; see `serve::hang_up`).
    pub(crate) fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = *self.running.lock().unwrap_or_else(|e| e.into_inner()) {
            sys::signal_group(pgid, signal);
        }
    }

    /// Whether the capturing login shell still runs.
    pub(crate) fn is_capturing(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The environment for commands, waiting for the capture if it is still running.
    pub(crate) fn vars(&self) -> Vars {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = state.as_ref() {
                return c.vars.clone();
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// `(error, number of variables)` once captured; `None` while running.
    pub(crate) fn status(&self) -> Option<(Option<String>, usize)> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref().map(|c| (c.error.clone(), c.vars.len()))
    }

    /// Waits for the capture to end and returns its error, if any.
    pub(crate) fn wait_error(&self) -> Option<String> {
        let _ = self.vars();
        self.status().and_then(|(e, _)| e)
    }
}

/// What the login shell set or changed relative to `base` (variables it removed are
/// not recorded: a profile that unsets a variable is rare, and keeping it is harmless).
fn delta(base: &Vars, login: &Vars) -> Vars {
    login
        .iter()
        .filter(|(k, v)| !base.iter().any(|(bk, bv)| bk == k && bv == v))
        .cloned()
        .collect()
}

/// `base` with `delta`'s variables set.
fn apply_delta(base: Vars, delta: &Vars) -> Vars {
    let mut map: BTreeMap<OsString, OsString> = base.into_iter().collect();
    for (k, v) in delta {
        map.insert(k.clone(), v.clone());
    }
    map.into_iter().collect()
}

/// The user's login shell: `$SHELL`, else `/bin/sh`.
fn login_shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| OsString::from("/bin/sh"))
}

/// The helper's own environment, in name order.
pub(crate) fn own_env() -> Vars {
    let map: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    map.into_iter().collect()
}

fn capture(running: &Mutex<Option<u32>>) -> Result<Vars, String> {
    let shell = login_shell();
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the helper's own executable: {e}"))?;
    let nonce = sys::hex(&sys::random_bytes::<16>());
    let script = format!(
        "exec {} {DUMP_ENV_ARG} {nonce}",
        single_quote(&exe.to_string_lossy())
    );
    let mut child = Command::new(&shell)
        .arg("-l")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir(home_dir().unwrap_or_else(|| "/".into()))
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run the login shell {}: {e}",
                shell.to_string_lossy()
            )
        })?;
    let pid = child.id();
    *running.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
    // Output is collected as it comes: a daemon started by a startup file may inherit
    // the pipe and hold it open long after the dump is complete.
    let collected = std::sync::Arc::new(Mutex::new(Vec::new()));
    let (eof_tx, eof_rx) = mpsc::channel::<()>();
    if let Some(mut out) = child.stdout.take() {
        let collected = collected.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut all = collected.lock().unwrap_or_else(|e| e.into_inner());
                if all.len() < 64 << 20 {
                    all.extend_from_slice(&buf[..n]);
                }
            }
            let _ = eof_tx.send(());
        });
    }
    // The shell is waited for on a thread, so the timeout costs no polling. It is seen
    // ending without being reaped, so the group number stays ours until `running` is
    // cleared: a kill at shutdown never reaches a reused pid.
    drop(child);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(sys::wait_no_reap(pid));
    });
    let mut ended = done_rx.recv_timeout(CAPTURE_TIMEOUT);
    if ended.is_err() {
        // TERM first: a startup file's own cleanup runs (pyenv's rehash removes its
        // lock file, which a KILL leaves behind, stalling every later login shell).
        sys::signal_group(pid, libc::SIGTERM);
        ended = done_rx.recv_timeout(Duration::from_millis(500));
    }
    let status = {
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        let status = match ended {
            Ok(Ok(status)) => Some(status),
            Ok(Err(e)) => return Err(format!("waiting for the login shell: {e}")),
            Err(_) => {
                sys::kill_group(pid);
                None
            }
        };
        running.take();
        status
    };
    // Reaped once it is gone (after a kill, that takes a moment: off this thread).
    std::thread::spawn(move || sys::reap(pid));
    let _ = eof_rx.recv_timeout(Duration::from_secs(1));
    let output = std::mem::take(&mut *collected.lock().unwrap_or_else(|e| e.into_inner()));
    let shell_name = shell.to_string_lossy();
    let Some(status) = status.map(|s| match s {
        sys::Ended::Code(c) => format!("exit {c}"),
        sys::Ended::Signal(n) => format!("signal {n}"),
    }) else {
        return Err(format!(
            "the login shell `{shell_name} -l` took more than {}s to start (a startup file waits for input or the network?); commands get the environment sshd gives",
            CAPTURE_TIMEOUT.as_secs()
        ));
    };
    parse_dump(&output, &nonce).ok_or_else(|| {
        format!(
            "the login shell `{shell_name} -l` ended ({status}) before reporting its environment: a startup file (/etc/profile, ~/.profile, ~/.bash_profile) exits or fails; commands get the environment sshd gives"
        )
    })
}

/// The variables between the two nonces of a dump, or `None` when incomplete.
fn parse_dump(output: &[u8], nonce: &str) -> Option<Vars> {
    let mut mark = nonce.as_bytes().to_vec();
    mark.push(0);
    let start = find(output, &mark)? + mark.len();
    let body = &output[start..];
    let end = find(body, &mark)?;
    let mut vars = BTreeMap::new();
    for record in body[..end].split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let Some(eq) = record.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (k, v) = (&record[..eq], &record[eq + 1..]);
        if k.is_empty() || NOT_CARRIED.iter().any(|n| n.as_bytes() == k) {
            continue;
        }
        vars.insert(
            OsString::from_vec(k.to_vec()),
            OsString::from_vec(v.to_vec()),
        );
    }
    Some(vars.into_iter().collect())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The dump mode: prints this process's environment between two nonces.
pub(crate) fn dump_env(nonce: Option<&str>) -> i32 {
    let Some(nonce) = nonce else {
        return 2;
    };
    let mut out = Vec::new();
    out.extend_from_slice(nonce.as_bytes());
    out.push(0);
    for (k, v) in std::env::vars_os() {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out.extend_from_slice(nonce.as_bytes());
    out.push(0);
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return 1;
    }
    0
}

/// `s` in POSIX single quotes.
fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The user's home: `$HOME`, else the passwd entry of our uid (read directly: the
/// helper is static and calls no NSS function).
pub(crate) fn home_dir() -> Option<std::path::PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(h.into());
    }
    let uid = sys::uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2] == uid).then(|| fields[5].into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_is_found_after_noise_and_needs_both_nonces() {
        let mut out = b"Welcome!\nnonce\0 fake\0".to_vec();
        out.extend_from_slice(b"abc\0PATH=/x:/y\0A=b=c\0SHLVL=2\0\0abc\0");
        let vars = parse_dump(&out, "abc").expect("complete");
        assert_eq!(
            vars,
            vec![("A".into(), "b=c".into()), ("PATH".into(), "/x:/y".into())]
        );
        assert!(parse_dump(b"abc\0PATH=/x\0", "abc").is_none());
        assert!(parse_dump(b"exit early", "abc").is_none());
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(single_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
