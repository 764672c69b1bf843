//! The wrapper every command runs in on the host, and the markers it writes on stderr.
//!
//! The login shell sshd starts execs the wrapper (a bash script passed as an argument:
//! see [`remote_command`]). The wrapper:
//! 1. takes the user's login environment: `/etc/profile`, then the first of
//!    `~/.bash_profile`, `~/.bash_login`, `~/.profile` (bash's order), sourced in a
//!    subshell whose output is discarded and whose stdin is `/dev/null`, so they can
//!    neither pollute the command's streams nor eat its input; the variables they
//!    export or change are taken back (`declare -p`). A login file that `exit`s only
//!    loses its environment. Login files can be slow (a `pyenv init` costs ~0.25 s),
//!    so what they export is kept per master connection in
//!    `${XDG_CACHE_HOME:-~/.cache}/cmux/login-env-<key>` (mode 0600 in a 0700
//!    directory; files older than a day are removed): the first command of a
//!    connection sources the files, the next ones read that file. A new connection
//!    (a new master) reads the login files again;
//! 2. exports the non-interactive variables (`GIT_EDITOR=true`...); the request's own
//!    variables come on stdin ahead of the command's input (see [`env_header`]), read
//!    byte by byte (no over-read) by the command's shell before the command, so they
//!    win over those defaults and are never on a command line, where `ps` would show
//!    them to every user of the host;
//! 3. draws a nonce (128 bits: bash's `$SRANDOM`, which comes from `getrandom`, or
//!    `/dev/urandom` through `od` on older bash) that only it knows;
//! 4. starts the command as a job (`set -m`: its own process group), held on a
//!    private pipe until the wrapper has written the start marker
//!    `\0cmux-start:<nonce>:<pgid>\n` on stderr: the first start marker of the stream
//!    therefore comes from the wrapper, before any byte of the command;
//! 5. waits, tells an exit from a death by signal (bash's job notice, read on a
//!    private pipe in the C locale), writes `\0cmux-status:<nonce>:x<code>\n` or
//!    `…:s<signal>\n` as its last act and exits with the same status.
//!
//! The local side ([`MarkerParser`]) strips the first start marker and the status
//! marker carrying that nonce, and passes everything else through as the command's
//! own bytes, markers of any other form included. The command cannot learn the nonce:
//! it is in no argument, no environment and no file, and it is written only on a
//! stream the command can write but not read. So `printf '\0cmux-status:x0\n' >&2`
//! is just output, and a forged pgid cannot redirect a kill.

use cmux_core::exec::NON_INTERACTIVE_ENV;
use cmux_core::{quote, ExitStatus};

/// The start marker's prefix (then `<nonce>:<pgid>\n`).
const START: &[u8] = b"\0cmux-start:";

/// The status marker's prefix (then `<nonce>:x<code>\n` or `<nonce>:s<signal>\n`).
const STATUS: &[u8] = b"\0cmux-status:";

/// Shortest and longest nonce the local side accepts (`$SRANDOM` four times gives
/// 32 to 40 decimal digits; `od` gives 32 hex digits).
const NONCE_LEN: std::ops::RangeInclusive<usize> = 32..=64;

/// How much of the login shell's stderr before the start marker is kept (for the
/// error when the command never started).
const MAX_BEFORE_START: usize = 4096;

/// Longest pid: Linux's `pid_max` is at most 2^22.
const MAX_PID_DIGITS: usize = 10;

/// The wrapper (see the module docs). `$1` is the command's script, `$2` is `e` when
/// the request's variables come on stdin, `$3` names the login environment's cache
/// (empty: no cache), `$4` is `k` when what the command leaves in its process group is
/// killed once it exits ([`cmux_core::ExecRequest::kill_group_on_exit`]: a plain `&`
/// ends with its call, at no extra round trip).
const WRAPPER: &str = r#"set -m
exec 3>&2 5<> <(:) 6<> <(:) 2>&5
__cmux_cf=
case $3 in ?*) [ -n "$HOME" ] && __cmux_cf=${XDG_CACHE_HOME:-$HOME/.cache}/cmux/login-env-$3 ;; esac
if [ -n "$__cmux_cf" ] && [ -f "$__cmux_cf" ]; then
. "$__cmux_cf" 2>/dev/null
else
__cmux_e=$( declare -A __cmux_b; for __cmux_v in $(compgen -e); do __cmux_b[$__cmux_v]=${!__cmux_v}; done
{ if [ -r /etc/profile ]; then . /etc/profile; fi
for __cmux_f in ~/.bash_profile ~/.bash_login ~/.profile; do
if [ -r "$__cmux_f" ]; then . "$__cmux_f"; break; fi
done; } </dev/null >/dev/null 2>&1 3>&- 5>&- 6>&-
for __cmux_v in $(compgen -e); do
case $__cmux_v in PWD|OLDPWD|SHLVL|_|__cmux_*) continue ;; esac
if [ "${__cmux_b[$__cmux_v]+set}" != set ] || [ "${__cmux_b[$__cmux_v]}" != "${!__cmux_v}" ]; then declare -p "$__cmux_v"; fi
done; printf x)
case $__cmux_e in *x)
eval "${__cmux_e%x}" 2>/dev/null
if [ -n "$__cmux_cf" ]; then
( umask 077; mkdir -p "${__cmux_cf%/*}" && printf '%s' "${__cmux_e%x}" > "$__cmux_cf.$$" && mv -f "$__cmux_cf.$$" "$__cmux_cf"
find "${__cmux_cf%/*}" -name 'login-env-*' -mtime +1 -delete ) </dev/null >/dev/null 2>&1 3>&- 5>&- 6>&-
fi ;;
esac
fi
unset -v __cmux_e __cmux_cf __cmux_f __cmux_r __cmux_n __cmux_c __cmux_s __cmux_l __cmux_j __cmux_k __cmux_v __cmux_kv
export @NON_INTERACTIVE@
__cmux_r=
if [ "$2" = e ]; then
__cmux_r=' while IFS= read -r -d "" __cmux_kv && [ -n "$__cmux_kv" ]; do export "$__cmux_kv"; done; unset -v __cmux_kv;'
fi
__cmux_n=$SRANDOM$SRANDOM$SRANDOM$SRANDOM
[ ${#__cmux_n} -ge 32 ] || __cmux_n=$(od -An -N16 -tx1 /dev/urandom | tr -dc 0-9a-f)
bash --norc --noprofile -c 'read -r -t 60 -u 6 _ || exit 125; exec 6<&-;'"$__cmux_r"'
'"$1" 2>&3 3>&- 5>&- &
__cmux_c=$!
printf '\000cmux-start:%s:%s\n' "$__cmux_n" "$__cmux_c" >&3
echo >&6
exec 6>&-
LC_ALL=C
wait "$__cmux_c"
__cmux_s=$?
[ "$4" = k ] && kill -KILL -- -"$__cmux_c" 2>/dev/null
__cmux_j=
while read -t 0 -u 5 && IFS= read -r -t 1 -u 5 __cmux_l; do __cmux_j="$__cmux_j $__cmux_l"; done
__cmux_k=x __cmux_v=$__cmux_s
if [ "$__cmux_s" -gt 128 ] && [ -n "$__cmux_j" ]; then
case $__cmux_j in *' Exit '*) ;; *) __cmux_k=s __cmux_v=$((__cmux_s - 128)) ;; esac
fi
printf '\000cmux-status:%s:%s%d\n' "$__cmux_n" "$__cmux_k" "$__cmux_v" >&3
exit "$__cmux_s"
"#;

/// The command line sent to the host (run by the user's login shell): the wrapper and
/// the script as quoted arguments. `env_on_stdin` tells the wrapper to read the
/// request's variables from stdin first ([`env_header`]).
pub(crate) fn remote_command(
    script: &str,
    env_on_stdin: bool,
    login_key: &str,
    kill_group_on_exit: bool,
) -> String {
    let exports: Vec<String> = NON_INTERACTIVE_ENV
        .iter()
        .map(|(k, v)| format!("{k}={}", quote::quote(v)))
        .collect();
    let wrapper = WRAPPER.replace("@NON_INTERACTIVE@", &exports.join(" "));
    format!(
        "exec bash --norc --noprofile -c {} cmux {} {} {} {}",
        quote::quote(&wrapper),
        quote::quote(script),
        if env_on_stdin { "e" } else { "-" },
        quote::quote(login_key),
        if kill_group_on_exit { "k" } else { "-" }
    )
}

/// The variables as the wrapper reads them from stdin: `KEY=VALUE\0` each, then an
/// empty entry. Keys and values were validated (names, no NUL) by the caller.
pub(crate) fn env_header(env: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in env {
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out.push(0);
    out
}

/// The status a marker reports, as the exit code the channel must report with it.
pub(crate) fn expected_exit_code(status: ExitStatus) -> Option<u32> {
    match status {
        ExitStatus::Exited(code) => u32::try_from(code).ok(),
        ExitStatus::Signaled(signal) => u32::try_from(signal).ok().map(|s| s + 128),
        ExitStatus::TimedOut | ExitStatus::Cancelled => None,
    }
}

/// What [`MarkerParser::feed`] found in a chunk of stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Bytes to pass on as the command's stderr.
    pub(crate) forward: Vec<u8>,
    /// The command's process group, from the wrapper's start marker.
    pub(crate) pgid: Option<i32>,
    /// How the command ended, from the wrapper's status marker.
    pub(crate) status: Option<ExitStatus>,
}

/// One of the wrapper's markers at the start of a buffer.
enum Marker {
    /// Not a marker of this stream: the command's own bytes.
    No,
    /// Maybe a marker: wait for more bytes.
    Incomplete,
    /// The wrapper's start marker, `len` bytes long.
    Start {
        nonce: String,
        pgid: i32,
        len: usize,
    },
    /// The wrapper's status marker, `len` bytes long.
    Status { status: ExitStatus, len: usize },
}

/// Reads the wrapper's markers out of the stderr stream (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct MarkerParser {
    /// Bytes held back because they may be the start of a marker.
    pending: Vec<u8>,
    /// The nonce of this invocation, once the start marker came.
    nonce: Option<String>,
    /// Whether the status marker came (a second one is the command's bytes).
    ended: bool,
    /// The login shell's stderr before the start marker.
    before_start: Vec<u8>,
}

impl MarkerParser {
    /// Takes `chunk` in; returns what can be forwarded now and the markers found.
    /// Bytes before the start marker are the login shell's (its startup files'
    /// warnings), not the command's: they are kept aside ([`MarkerParser::before_start`]).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Taken {
        self.pending.extend_from_slice(chunk);
        let mut taken = Taken {
            forward: Vec::with_capacity(self.pending.len()),
            ..Taken::default()
        };
        let pending = std::mem::take(&mut self.pending);
        let mut i = 0;
        while i < pending.len() {
            let end = pending[i..]
                .iter()
                .position(|b| *b == 0)
                .map_or(pending.len(), |off| i + off);
            self.emit(&mut taken, &pending[i..end]);
            i = end;
            if i == pending.len() {
                break;
            }
            match self.marker_at(&pending[i..]) {
                Marker::Incomplete => break,
                Marker::No => {
                    self.emit(&mut taken, &[0]);
                    i += 1;
                }
                Marker::Start { nonce, pgid, len } => {
                    self.nonce = Some(nonce);
                    taken.pgid = Some(pgid);
                    i += len;
                }
                Marker::Status { status, len } => {
                    self.ended = true;
                    taken.status = Some(status);
                    i += len;
                }
            }
        }
        self.pending = pending[i..].to_vec();
        taken
    }

    /// Passes `bytes` on, or keeps them aside before the start marker (the last
    /// [`MAX_BEFORE_START`] bytes).
    fn emit(&mut self, taken: &mut Taken, bytes: &[u8]) {
        if self.nonce.is_some() {
            taken.forward.extend_from_slice(bytes);
            return;
        }
        self.before_start.extend_from_slice(bytes);
        let excess = self.before_start.len().saturating_sub(MAX_BEFORE_START);
        self.before_start.drain(..excess);
    }

    /// What the login shell printed on stderr before the wrapper's start marker (its
    /// last [`MAX_BEFORE_START`] bytes).
    pub(crate) fn before_start(&self) -> &[u8] {
        &self.before_start
    }

    /// The bytes still held back, at end of stream: they were the command's own (or,
    /// before the start marker, the login shell's: kept aside).
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        if self.nonce.is_some() {
            return rest;
        }
        let mut aside = Taken::default();
        self.emit(&mut aside, &rest);
        Vec::new()
    }

    fn marker_at(&self, rest: &[u8]) -> Marker {
        // Only the first start marker counts, and only a status marker after it.
        let (prefix, max_body) = match (&self.nonce, self.ended) {
            (None, _) => (START, NONCE_LEN.end() + 1 + MAX_PID_DIGITS),
            (Some(nonce), false) => (STATUS, nonce.len() + 1 + 1 + MAX_PID_DIGITS),
            (Some(_), true) => return Marker::No,
        };
        if rest.len() < prefix.len() {
            return if prefix.starts_with(rest) {
                Marker::Incomplete
            } else {
                Marker::No
            };
        }
        if !rest.starts_with(prefix) {
            return Marker::No;
        }
        let body = &rest[prefix.len()..];
        let Some(nl) = body.iter().position(|b| *b == b'\n') else {
            return if body.len() <= max_body {
                Marker::Incomplete
            } else {
                Marker::No
            };
        };
        let len = prefix.len() + nl + 1;
        let Ok(text) = std::str::from_utf8(&body[..nl]) else {
            return Marker::No;
        };
        let Some((nonce, value)) = text.split_once(':') else {
            return Marker::No;
        };
        match &self.nonce {
            None => {
                let nonce_ok = NONCE_LEN.contains(&nonce.len())
                    && nonce.bytes().all(|b| b.is_ascii_hexdigit());
                match value.parse::<i32>() {
                    Ok(pgid) if nonce_ok && pgid > 1 && value.len() <= MAX_PID_DIGITS => {
                        Marker::Start {
                            nonce: nonce.to_owned(),
                            pgid,
                            len,
                        }
                    }
                    _ => Marker::No,
                }
            }
            Some(expected) if expected == nonce => {
                let parsed = value.split_at_checked(1).and_then(|(kind, num)| {
                    let n = num.parse::<i32>().ok()?;
                    match kind {
                        "x" => Some(ExitStatus::Exited(n)),
                        "s" => Some(ExitStatus::Signaled(n)),
                        _ => None,
                    }
                });
                match parsed {
                    Some(status) => Marker::Status { status, len },
                    None => Marker::No,
                }
            }
            Some(_) => Marker::No,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "0123456789abcdef0123456789abcdef";

    fn start(pgid: i32) -> Vec<u8> {
        format!("\0cmux-start:{N}:{pgid}\n").into_bytes()
    }

    #[test]
    fn markers_with_the_nonce_are_taken_anywhere_and_partial_ones_wait() {
        let mut p = MarkerParser::default();
        // The login shell's rc warned first; the start marker comes in two pieces.
        let mut chunk = b"rc warning\n".to_vec();
        chunk.extend_from_slice(&start(4242)[..20]);
        let t = p.feed(&chunk);
        assert_eq!((t.forward.as_slice(), t.pgid), (&b""[..], None));
        let t = p.feed(&start(4242)[20..]);
        assert_eq!((t.forward.as_slice(), t.pgid), (&b""[..], Some(4242)));
        assert_eq!(
            p.before_start(),
            b"rc warning\n",
            "kept aside, not forwarded"
        );
        let t = p.feed(format!("out\0bin\0cmux-status:{N}:s15\n").as_bytes());
        assert_eq!(t.forward, b"out\0bin");
        assert_eq!(t.status, Some(ExitStatus::Signaled(15)));
        assert!(p.finish().is_empty());
    }

    #[test]
    fn forged_markers_are_the_commands_own_bytes() {
        let mut p = MarkerParser::default();
        p.feed(&start(100));
        // The issue's exact forgeries: an old-style status and pgid, a second start
        // marker, a status with a wrong nonce.
        let forged: Vec<Vec<u8>> = vec![
            b"\0cmux-status:x0\n".to_vec(),
            b"\0cmux-pgid:1234\n".to_vec(),
            start(1234),
            format!("\0cmux-status:{}:x0\n", "f".repeat(32)).into_bytes(),
        ];
        for f in forged {
            let t = p.feed(&f);
            assert_eq!(t.forward, f, "{f:?}");
            assert_eq!((t.status, t.pgid), (None, None), "{f:?}");
        }
        // Before the start marker, a status marker is the login shell's noise, and a
        // start marker with a short nonce is not the wrapper's.
        let mut p = MarkerParser::default();
        let f = format!("\0cmux-status:{N}:x0\n").into_bytes();
        let t = p.feed(&f);
        assert_eq!((t.forward.as_slice(), t.status), (&b""[..], None));
        let g = b"\0cmux-start:1234:99\n".to_vec();
        let t = p.feed(&g);
        assert_eq!((t.forward.as_slice(), t.pgid), (&b""[..], None));
        assert_eq!(p.before_start(), [f, g].concat());
        // After the status, nothing more is a marker.
        let mut p = MarkerParser::default();
        p.feed(&start(100));
        let t = p.feed(format!("\0cmux-status:{N}:x3\n").as_bytes());
        assert_eq!(t.status, Some(ExitStatus::Exited(3)));
        let again = format!("\0cmux-status:{N}:x0\n").into_bytes();
        assert_eq!(p.feed(&again).forward, again);
    }

    #[test]
    fn held_back_bytes_come_out_at_the_end() {
        let mut p = MarkerParser::default();
        p.feed(&start(9));
        let t = p.feed(b"x\0cmux-sta");
        assert_eq!(t.forward, b"x");
        assert_eq!(p.finish(), b"\0cmux-sta");
        let mut p = MarkerParser::default();
        p.feed(b"rc\0cmux-sta");
        assert!(p.finish().is_empty());
        assert_eq!(p.before_start(), b"rc\0cmux-sta");
    }

    #[test]
    fn remote_command_quotes_the_wrapper_and_script() {
        let cmd = remote_command("echo 'hi'", false, "", false);
        assert!(cmd.starts_with("exec bash --norc --noprofile -c "));
        assert!(cmd.ends_with(r#" cmux 'echo '\''hi'\''' - '' -"#), "{cmd}");
        assert!(cmd.contains("GIT_EDITOR=true"), "{cmd}");
        assert!(remote_command("x", true, "0a1b", true).ends_with(" x e 0a1b k"));
        assert_eq!(
            env_header(&[("A".into(), "1 2".into()), ("B".into(), String::new())]),
            b"A=1 2\0B=\0\0"
        );
        assert_eq!(expected_exit_code(ExitStatus::Signaled(9)), Some(137));
    }
}
