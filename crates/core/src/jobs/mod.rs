//! Background jobs: commands that keep running after the call that started them (a dev
//! server, a watcher, a long test run), whose output is read later, in pieces.
//!
//! Built once, on [`Runtime::exec`](crate::Runtime::exec) alone, so every backend (third parties' too) has
//! them. Each operation is one exec of a small bash script (one round trip):
//!
//! - **start** creates the job's directory, `${XDG_CACHE_HOME:-~/.cache}/cmux/jobs/
//!   <workspace key>/<job id>/` (directories 0700, files 0600), and starts a
//!   *supervisor* in a session of its own (`setsid`; without it, a process group of its
//!   own with `set -m`), so whatever kills the starting call's process group (the
//!   host helper, the SSH wrapper, the local watchdog) leaves it alone. The supervisor
//!   runs the command in a process group of its own, stdin `/dev/null`, stdout and
//!   stderr into one file `out` (interleaved in the order they were written), and
//!   records its process group, then its exit code or signal, each written atomically
//!   (a temporary file renamed). When the command ends, what it left running in its
//!   group is killed: a job leaves nothing behind.
//! - **read** returns the output since the last read: the read offset lives on the
//!   host, so the CLI and any MCP session share it (two reads at the same instant may
//!   both return the same bytes; none is ever skipped). It can wait (bounded) for new
//!   output or the end. Too much new output comes back as its head and tail
//!   ([`ReadLimit`]); the whole output stays in the file until the job is cleaned up.
//! - **kill** sends SIGTERM to the job's process group, SIGKILL after 3 s.
//! - **list** shows every job cmux started in the workspace, whoever started it.
//! - **end all** ends every job of a workspace that is being removed and removes their
//!   files ([`Lifecycle::delete`](crate::workspace::Lifecycle::delete) does it), so
//!   no job outlives its workspace unseen.
//! - **move** follows a renamed workspace: jobs are keyed by the workspace's
//!   directory, so [`Lifecycle::rename`](crate::workspace::Lifecycle::rename) moves
//!   them to its new directory's key, running ones included.
//!
//! Lost jobs: the supervisor holds a `flock` lock on a file in the job directory for
//! its whole life, which the kernel releases however it dies (SIGKILL, a reboot). A job
//! with no exit status and no lock holder is reported [`JobState::Lost`], never
//! "running" forever. (Without `flock(1)` on the host, the supervisor's PID and start
//! time stand in.)
//!
//! Clean-up: a job is removed once it has ended and its output was read to the end
//! (nothing cut), by the next start or list in its workspace; and 24 hours after it
//! ended (lost: after it started) by the next start or list in any workspace of the
//! host, so a removed workspace leaves nothing behind. Running jobs are never removed.
//!
//! The scripts' replies start with a header marked with a per-call nonce, and the job's
//! output follows as exactly the announced number of bytes: nothing a job prints can
//! pass for cmux's own data.

mod id;
mod reply;
mod script;
mod session;

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::exec::{Command, ExecRequest, ExitStatus, Stdin};
use crate::path::RemotePath;
use crate::quote;
use crate::runtime::{RuntimeExt, SharedRuntime};
use crate::workspace::project_id;

pub use id::JobId;
pub use session::JobSession;

use reply::{malformed, number, Reply};
use script::Script;

/// The longest a read may wait for new output, in seconds.
pub const JOB_MAX_WAIT_SECS: f64 = 600.0;

/// Deadline of an operation on top of its own waiting (a slow host, a busy machine).
const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes of a command kept in a listing.
const LISTED_COMMAND_BYTES: usize = 1000;

/// How a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Still running.
    Running,
    /// Ended with this exit code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// Killed by this signal.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// Its supervisor is gone without recording how the job ended (it was killed, or
    /// the host rebooted): the command may or may not still run.
    Lost,
}

impl JobState {
    /// True while the job runs.
    pub fn is_running(self) -> bool {
        self == JobState::Running
    }

    /// How it ended, once it has.
    pub fn exit_status(self) -> Option<ExitStatus> {
        match self {
            JobState::Exited { code } => Some(ExitStatus::Exited(code)),
            JobState::Signaled { signal } => Some(ExitStatus::Signaled(signal)),
            JobState::Running | JobState::Lost => None,
        }
    }

    fn parse(word: &str) -> Result<JobState> {
        let number = |digits: &str| digits.parse::<i32>().ok();
        let state = match word.split_at(word.len().min(1)) {
            ("r", "") => Some(JobState::Running),
            ("l", "") => Some(JobState::Lost),
            ("x", code) => number(code).map(|code| JobState::Exited { code }),
            ("s", signal) => number(signal).map(|signal| JobState::Signaled { signal }),
            _ => None,
        };
        state.ok_or_else(|| malformed(&format!("an unknown job state {word:?}")))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobState::Running => f.write_str("running"),
            JobState::Exited { code } => write!(f, "exited with code {code}"),
            JobState::Signaled { signal } => write!(f, "killed by signal {signal}"),
            JobState::Lost => f.write_str("lost"),
        }
    }
}

/// A job just started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobStarted {
    /// Its id.
    pub id: JobId,
    /// Its process group on the host (what a kill signals).
    pub pgid: u32,
    /// The file its output goes to, on the host.
    pub output_path: String,
}

/// How much of a job's new output one read returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimit {
    /// Bytes from the start of the new output.
    pub head: usize,
    /// Bytes from its end when there is more than `head + tail`; the bytes between are
    /// skipped (they stay in the output file). With 0, a read returns at most `head`
    /// bytes and leaves the rest for the next read: nothing is skipped.
    pub tail: usize,
}

impl ReadLimit {
    /// What an agent gets: up to 30,000 bytes, else the first 10,000 and the last
    /// 20,000 (the end of a log is where its error is), as `bash` keeps its output.
    /// In bytes, so the host knows exactly what was cut and keeps the job for it.
    pub const AGENT: ReadLimit = ReadLimit {
        head: 10_000,
        tail: 20_000,
    };

    /// Pages of `bytes`: nothing is skipped, a read returns the next page. With 0, a
    /// read returns no output and moves nothing: it only reports the job's state.
    pub fn pages(bytes: usize) -> ReadLimit {
        ReadLimit {
            head: bytes,
            tail: 0,
        }
    }
}

/// What one read of a job returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobRead {
    /// The job.
    pub id: JobId,
    /// How it stands (read before its output, so output returned with an ended state
    /// is all there is).
    #[serde(flatten)]
    pub state: JobState,
    /// Its process group on the host, once known.
    pub pgid: Option<u32>,
    /// Where in the output this read started (bytes read before).
    pub offset: u64,
    /// Bytes the job has written so far.
    pub output_bytes: u64,
    /// The new output: all of it, or its first bytes when some were cut.
    #[serde(skip)]
    pub head: Vec<u8>,
    /// The last bytes of the new output when some were cut; else empty.
    #[serde(skip)]
    pub tail: Vec<u8>,
    /// Bytes skipped between `head` and `tail` (still in the output file).
    pub cut_bytes: u64,
    /// Bytes left for the next read (pages).
    pub unread_bytes: u64,
    /// The output file on the host.
    pub output_path: String,
}

/// What a kill did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobKilled {
    /// The job.
    pub id: JobId,
    /// Its state before the kill.
    pub before: JobState,
    /// Its state after (how it ended, when it was running).
    pub after: JobState,
}

/// What ending a removed workspace's jobs ([`Jobs::end_all`]) did to one of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobEnded {
    /// The job.
    pub id: JobId,
    /// Its state before.
    pub before: JobState,
    /// Its state after: how it ended, or still running when even SIGKILL did not end
    /// it in 13 s (a process stuck in the kernel).
    pub after: JobState,
    /// Its directory (output and state) was removed; not for a job still running.
    pub removed: bool,
    /// The command as it was given (its first 1000 bytes).
    pub command: String,
}

/// One job of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobInfo {
    /// Its id.
    pub id: JobId,
    /// How it stands.
    #[serde(flatten)]
    pub state: JobState,
    /// Its process group on the host, once known.
    pub pgid: Option<u32>,
    /// When it started, in seconds since the Unix epoch (the host's clock).
    pub started: Option<i64>,
    /// Seconds since it started (by the host's clock).
    pub age_secs: Option<u64>,
    /// The command as it was given (its first 1000 bytes).
    pub command: String,
    /// Bytes of output written so far.
    pub output_bytes: u64,
    /// Bytes of output not read yet.
    pub unread_bytes: u64,
}

/// The background jobs of one workspace: start, read, kill, list. Cheap to clone.
///
/// Jobs are keyed by the workspace directory, so every caller naming the same
/// workspace (the CLI, any MCP session) sees the same jobs.
#[derive(Clone, Debug)]
pub struct Jobs {
    runtime: SharedRuntime,
    root: RemotePath,
    key: String,
}

impl Jobs {
    /// The jobs of the workspace at `root` (its directory in `runtime`, as recorded:
    /// the same text always names the same jobs).
    pub fn new(runtime: SharedRuntime, root: RemotePath) -> Jobs {
        let key = project_id(root.as_str());
        Jobs { runtime, root, key }
    }

    /// The workspace's directory name under the jobs root,
    /// `<directory name>-<hash of its path>`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The runtime the jobs run in.
    pub fn runtime(&self) -> &SharedRuntime {
        &self.runtime
    }

    fn host(&self) -> &str {
        self.runtime.host()
    }

    /// Starts `req` as a background job and returns at once. Its command, working
    /// directory and environment apply as for a foreground command; stdin is
    /// `/dev/null`. A job has no timeout (it runs until it ends or is killed), so a
    /// request with a timeout, a cancellation token or input is refused.
    pub async fn start(&self, req: ExecRequest) -> Result<JobStarted> {
        req.validate()?;
        if req.stdin != Stdin::Null {
            return Err(Error::invalid(
                "a background job reads no input (its stdin is /dev/null): write the input \
                 to a file and redirect it in the command",
            ));
        }
        if req.timeout.is_some() || req.cancel.is_some() {
            return Err(Error::invalid(
                "a background job has no timeout: it runs until it ends or is killed",
            ));
        }
        let shown = match &req.command {
            Command::Script(script) => script.clone(),
            Command::Argv(words) => quote::join(words),
        };
        let source = req.to_shell_script()?;
        for _ in 0..3 {
            let id = JobId::random();
            let nonce = nonce();
            let script = Script::start(&self.key, &nonce, id.as_str(), &shown, &source);
            let out = self
                .run("starting a background job", script, OP_TIMEOUT, None)
                .await?;
            let reply = self.reply(&out, &nonce, "starting a background job")?;
            let words = reply.words(3);
            match words.first().copied() {
                Some("taken") => continue,
                Some("started") => {
                    return Ok(JobStarted {
                        id,
                        pgid: u32::try_from(number(words.get(1), "process group")?)
                            .map_err(|_| malformed("a process group out of range"))?,
                        output_path: words.get(2).copied().unwrap_or_default().to_owned(),
                    })
                }
                _ => return Err(malformed("no start record")),
            }
        }
        Err(Error::backend(
            "cmux jobs",
            format!(
                "{}: three random job ids in a row were taken in {}: remove stale job \
                 directories there",
                self.host(),
                self.key
            ),
        ))
    }

    /// The output of job `id` since the last read (by anyone), at most `limit`. With a
    /// `wait` and nothing new yet, waits up to `wait` (at most [`JOB_MAX_WAIT_SECS`])
    /// for new output or the job's end. `cancel` stops the wait.
    pub async fn read(
        &self,
        id: &JobId,
        wait: Duration,
        limit: ReadLimit,
        cancel: Option<CancellationToken>,
    ) -> Result<JobRead> {
        let wait = wait.min(Duration::from_secs_f64(JOB_MAX_WAIT_SECS));
        let polls = (wait.as_millis().div_ceil(100)) as u32;
        let nonce = nonce();
        let script = Script::read(
            &self.key,
            &nonce,
            id.as_str(),
            polls,
            limit.head,
            limit.tail,
        );
        let out = self
            .run("reading a job's output", script, OP_TIMEOUT + wait, cancel)
            .await?;
        let reply = self.reply(&out, &nonce, "reading a job's output")?;
        let words = reply.words(8);
        match words.first().copied() {
            Some("gone") => return Err(self.no_such_job(id)),
            Some("read") => {}
            _ => return Err(malformed("no read record")),
        }
        let state = JobState::parse(words.get(1).copied().unwrap_or_default())?;
        let pgid = words.get(2).and_then(|w| w.parse().ok());
        let offset = number(words.get(3), "offset")?;
        let size = number(words.get(4), "output size")?;
        let head_len = number(words.get(5), "head length")? as usize;
        let tail_len = number(words.get(6), "tail length")? as usize;
        let output_path = words.get(7).copied().unwrap_or_default().to_owned();
        if reply.rest.len() != head_len + tail_len {
            return Err(Error::backend(
                "cmux jobs",
                format!(
                    "{}: job {id}'s output {output_path:?} changed while it was read \
                     ({} bytes announced, {} received): read it again",
                    self.host(),
                    head_len + tail_len,
                    reply.rest.len()
                ),
            ));
        }
        let new = size.saturating_sub(offset);
        let shown = (head_len + tail_len) as u64;
        let (cut, unread) = if limit.tail == 0 {
            (0, new - shown.min(new))
        } else {
            (new - shown.min(new), 0)
        };
        Ok(JobRead {
            id: id.clone(),
            state,
            pgid,
            offset,
            output_bytes: size,
            head: reply.rest[..head_len].to_vec(),
            tail: reply.rest[head_len..].to_vec(),
            cut_bytes: cut,
            unread_bytes: unread,
            output_path,
        })
    }

    /// Ends job `id`: SIGTERM to its whole process group, SIGKILL 3 s later if it
    /// still runs; returns once its end is recorded (10 s more at most). A job that
    /// already ended is left as it is. A lost job's group is killed only while its
    /// processes are still in the job's session.
    pub async fn kill(&self, id: &JobId) -> Result<JobKilled> {
        let nonce = nonce();
        let script = Script::kill(&self.key, &nonce, id.as_str());
        let out = self.run("killing a job", script, OP_TIMEOUT, None).await?;
        let reply = self.reply(&out, &nonce, "killing a job")?;
        let words = reply.words(3);
        match words.first().copied() {
            Some("gone") => Err(self.no_such_job(id)),
            Some("killed") => Ok(JobKilled {
                id: id.clone(),
                before: JobState::parse(words.get(1).copied().unwrap_or_default())?,
                after: JobState::parse(words.get(2).copied().unwrap_or_default())?,
            }),
            _ => Err(malformed("no kill record")),
        }
    }

    /// Every job of the workspace, whoever started it, oldest first. Cleans up first
    /// (see the module docs).
    pub async fn list(&self) -> Result<Vec<JobInfo>> {
        let nonce = nonce();
        let script = Script::list(&self.key, &nonce);
        let out = self.run("listing jobs", script, OP_TIMEOUT, None).await?;
        let mut reply = self.reply(&out, &nonce, "listing jobs")?;
        let header = reply.words(2);
        if header.first().copied() != Some("list") {
            return Err(malformed("no list record"));
        }
        let now: Option<i64> = header.get(1).and_then(|w| w.parse().ok());
        let mut jobs = Vec::new();
        while let Some((words, command)) = reply.next_record()? {
            // job <id> <state> <pgid> <started> <size> <offset> <command length>
            if words.len() != 8 || words[0] != "job" {
                return Err(malformed("a job record with the wrong fields"));
            }
            let started: Option<i64> = words[4].parse().ok();
            let size = number(words.get(5), "output size")?;
            let offset = number(words.get(6), "offset")?;
            let mut command = String::from_utf8_lossy(command).into_owned();
            if command.len() >= LISTED_COMMAND_BYTES {
                command.push('…');
            }
            jobs.push(JobInfo {
                id: JobId::parse(words[1])?,
                state: JobState::parse(words[2])?,
                pgid: words[3].parse().ok(),
                started,
                age_secs: now
                    .zip(started)
                    .and_then(|(now, started)| u64::try_from(now - started).ok()),
                command,
                output_bytes: size,
                unread_bytes: size.saturating_sub(offset),
            });
        }
        jobs.sort_by_key(|job| (job.started, job.id.clone()));
        Ok(jobs)
    }

    /// Ends every job of the workspace, for its removal: the running ones (and lost
    /// ones whose processes are still there) are killed as [`Jobs::kill`] kills one,
    /// all at once, and then every job's files are removed, output included, except
    /// those of a job still running. One round trip (plus up to 13 s while a job
    /// resists SIGTERM). Returns what happened to each job, in id order.
    pub async fn end_all(&self) -> Result<Vec<JobEnded>> {
        let nonce = nonce();
        let script = Script::end_all(&self.key, &nonce);
        let out = self
            .run("ending the workspace's jobs", script, OP_TIMEOUT, None)
            .await?;
        let mut reply = self.reply(&out, &nonce, "ending the workspace's jobs")?;
        if reply.words(1).first().copied() != Some("ended") {
            return Err(malformed("no end record"));
        }
        let mut ended = Vec::new();
        while let Some((words, command)) = reply.next_record()? {
            // job <id> <before> <after> <removed> <command length>
            if words.len() != 6 || words[0] != "job" {
                return Err(malformed("an end record with the wrong fields"));
            }
            let mut command = String::from_utf8_lossy(command).into_owned();
            if command.len() >= LISTED_COMMAND_BYTES {
                command.push('…');
            }
            ended.push(JobEnded {
                id: JobId::parse(words[1])?,
                before: JobState::parse(words[2])?,
                after: JobState::parse(words[3])?,
                removed: words[4] == "1",
                command,
            });
        }
        ended.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ended)
    }

    /// Moves the workspace's jobs to `new_root`, the workspace's directory after a
    /// rename, so they are listed there; running jobs go on. Returns the jobs for
    /// `new_root` and how many jobs moved. One round trip.
    pub async fn move_to(&self, new_root: RemotePath) -> Result<(Jobs, usize)> {
        let moved = Jobs::new(self.runtime.clone(), new_root);
        if moved.key == self.key {
            return Ok((moved, 0));
        }
        let nonce = nonce();
        let script = Script::move_to(&self.key, &nonce, &moved.key);
        let out = self
            .run("moving the workspace's jobs", script, OP_TIMEOUT, None)
            .await?;
        let reply = self.reply(&out, &nonce, "moving the workspace's jobs")?;
        let words = reply.words(2);
        let count = match words.first().copied() {
            Some("moved") => number(words.get(1), "count of jobs")? as usize,
            _ => return Err(malformed("no move record")),
        };
        Ok((moved, count))
    }

    /// Kills every job `session` started that still runs, all at once; returns each
    /// one's outcome. What a session owner calls when it ends normally.
    pub async fn kill_session(&self, session: &JobSession) -> Vec<(JobId, Result<JobKilled>)> {
        let mut tasks = tokio::task::JoinSet::new();
        for id in session.started() {
            let jobs = self.clone();
            tasks.spawn(async move {
                let result = jobs.kill(&id).await;
                (id, result)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(outcome) = joined {
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    fn no_such_job(&self, id: &JobId) -> Error {
        Error::invalid(format!(
            "{}: no job {id} in the workspace {}: a job is removed once it has ended and its \
             output was read, or 24 hours after it ended; list the workspace's jobs to see \
             the others",
            self.host(),
            self.root
        ))
    }

    /// Runs one job script; its reply is checked by [`Jobs::reply`].
    async fn run(
        &self,
        what: &str,
        script: Script,
        timeout: Duration,
        cancel: Option<CancellationToken>,
    ) -> Result<crate::exec::Output> {
        // The script's own group ends with it; the job's supervisor has left it.
        let mut req = ExecRequest::script(script.source())
            .timeout(timeout)
            .kill_group_on_exit();
        if let Some(token) = cancel {
            req = req.cancel_token(token);
        }
        let out = self
            .runtime
            .output(
                req,
                ReadLimit::AGENT.head + ReadLimit::AGENT.tail + (1 << 20),
            )
            .await?;
        match out.status {
            ExitStatus::TimedOut => Err(Error::TimedOut {
                host: self.host().to_owned(),
                what: what.to_owned(),
                secs: timeout.as_secs_f64(),
            }),
            ExitStatus::Cancelled => Err(Error::Cancelled {
                host: self.host().to_owned(),
                what: what.to_owned(),
            }),
            _ => Ok(out),
        }
    }

    /// The reply in `out`, or the error the script reported.
    fn reply<'a>(
        &self,
        out: &'a crate::exec::Output,
        nonce: &str,
        what: &str,
    ) -> Result<Reply<'a>> {
        if out.stdout_dropped > 0 {
            return Err(malformed("more bytes than any read returns"));
        }
        match Reply::find(&out.stdout, nonce) {
            Some(reply) if out.status.success() => Ok(reply),
            _ => Err(Error::CommandFailed {
                host: self.host().to_owned(),
                command: format!("{what} in {}", self.root),
                code: out.status.shell_code(),
                stderr: crate::runtime::tail(&out.stderr_lossy(), 2000),
            }),
        }
    }
}

/// A fresh marker for one call's reply.
fn nonce() -> String {
    format!("{:016x}", id::random_u64())
}

/// The jobs of the workspace a [`ToolContext`](crate::tools::ToolContext) names.
impl From<&crate::tools::ToolContext> for Jobs {
    fn from(ctx: &crate::tools::ToolContext) -> Jobs {
        Jobs::new(ctx.runtime.clone(), ctx.root.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_the_scripts_words() {
        assert_eq!(JobState::parse("r").expect("r"), JobState::Running);
        assert_eq!(JobState::parse("l").expect("l"), JobState::Lost);
        assert_eq!(
            JobState::parse("x3").expect("x3"),
            JobState::Exited { code: 3 }
        );
        assert_eq!(
            JobState::parse("s9").expect("s9"),
            JobState::Signaled { signal: 9 }
        );
        for bad in ["", "x", "q1", "r1", "s-", "x99999999999"] {
            assert!(JobState::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn states_serialize_flat() {
        let info = serde_json::to_value(JobState::Exited { code: 3 }).expect("json");
        assert_eq!(info, serde_json::json!({"state": "exited", "code": 3}));
    }
}
