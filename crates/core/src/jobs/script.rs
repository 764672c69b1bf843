//! The host side of jobs: small bash scripts, one per operation, each sent as one exec.
//!
//! Every script is `common.sh` (paths, the job state, the sweep) plus the operation's
//! own file, after a few variables assigned with [`quote`](crate::quote::quote): the
//! values never pass through an environment variable, so the job's command does not
//! inherit them.

use crate::quote::quote;

const COMMON: &str = include_str!("common.sh");
const START: &str = include_str!("start.sh");
const SUPERVISE: &str = include_str!("supervise.sh");
const READ: &str = include_str!("read.sh");
const KILL: &str = include_str!("kill.sh");
const LIST: &str = include_str!("list.sh");
const END_ALL: &str = include_str!("end_all.sh");
const MOVE: &str = include_str!("move.sh");

/// One operation's script, built from its variables.
pub(crate) struct Script {
    vars: Vec<(&'static str, String)>,
    body: &'static str,
}

impl Script {
    fn new(key: &str, nonce: &str, body: &'static str) -> Script {
        Script {
            vars: vec![("key", key.to_owned()), ("nonce", nonce.to_owned())],
            body,
        }
    }

    fn var(mut self, name: &'static str, value: impl Into<String>) -> Script {
        self.vars.push((name, value.into()));
        self
    }

    /// Starts job `id` running `script` (the full shell source: cwd, environment,
    /// command); `command` is what listings show.
    pub(crate) fn start(key: &str, nonce: &str, id: &str, command: &str, script: &str) -> Script {
        Script::new(key, nonce, START)
            .var("id", id)
            .var("command", command)
            .var("script", script)
            .var("supervise", SUPERVISE)
    }

    /// Reads job `id`'s new output, waiting up to `polls` tenths of a second for some.
    pub(crate) fn read(
        key: &str,
        nonce: &str,
        id: &str,
        polls: u32,
        head: usize,
        tail: usize,
    ) -> Script {
        Script::new(key, nonce, READ)
            .var("id", id)
            .var("polls", polls.to_string())
            .var("head", head.to_string())
            .var("tail", tail.to_string())
    }

    /// Ends job `id`.
    pub(crate) fn kill(key: &str, nonce: &str, id: &str) -> Script {
        Script::new(key, nonce, KILL).var("id", id)
    }

    /// Lists the workspace's jobs.
    pub(crate) fn list(key: &str, nonce: &str) -> Script {
        Script::new(key, nonce, LIST)
    }

    /// Ends every job of the workspace and removes their directories.
    pub(crate) fn end_all(key: &str, nonce: &str) -> Script {
        Script::new(key, nonce, END_ALL)
    }

    /// Moves the workspace's jobs to the key `to`.
    pub(crate) fn move_to(key: &str, nonce: &str, to: &str) -> Script {
        Script::new(key, nonce, MOVE).var("to", to)
    }

    /// The bash source to run.
    pub(crate) fn source(&self) -> String {
        let mut s = String::new();
        for (name, value) in &self.vars {
            s.push_str(name);
            s.push('=');
            s.push_str(&quote(value));
            s.push('\n');
        }
        s.push_str(COMMON);
        s.push_str(self.body);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_quoted_before_the_code() {
        let s = Script::start("ws-1", "n0", "abc", "echo 'x' $HOME", "cd /\necho hi\n").source();
        assert!(s.starts_with("key=ws-1\nnonce=n0\nid=abc\ncommand='echo '\\''x'\\'' $HOME'\n"));
        assert!(s.contains("script='cd /\necho hi\n'\n"));
        assert!(s.contains("supervise='# The supervisor"), "{s}");
        assert!(s.contains("sweep() {"));
    }
}
