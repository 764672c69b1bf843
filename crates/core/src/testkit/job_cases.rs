//! Cases about background jobs: identical on every backend, since jobs are built on
//! `exec` alone.
//!
//! Nothing here depends on timing: jobs that must still be running wait for a file the
//! case creates (`go`), and waits are bounded generously, never asserted.

use std::sync::Arc;
use std::time::Duration;

use super::util::{q, read, sh, wait_gone};
use super::{Harness, Outcome};
use crate::error::Error;
use crate::exec::ExecRequest;
use crate::jobs::{JobId, JobInfo, JobRead, JobSession, JobStarted, JobState, Jobs, ReadLimit};
use crate::path::RemotePath;
use crate::runtime::RuntimeExt;
use crate::tools::{self, BashInput, BashResult, JobKillInput, JobOutputInput, Tool, ToolContext};
use tokio_util::sync::CancellationToken;

/// Waits for `go` in the job's directory, which the case creates when it wants the job
/// to go on; gives up after a few minutes, so a failed case leaves no job looping.
const UNTIL_GO: &str = "n=0; until [ -e go ] || [ $n -ge 3000 ]; do sleep 0.05; n=$((n + 1)); done";

/// Longest any wait of a case lasts before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

fn jobs(h: &Harness) -> Jobs {
    Jobs::new(h.runtime.clone(), h.scratch.clone())
}

async fn start(h: &Harness, command: &str) -> JobStarted {
    jobs(h)
        .start(ExecRequest::script(command).cwd(h.scratch.clone()))
        .await
        .unwrap_or_else(|e| panic!("starting the job {command:?} failed: {e}"))
}

async fn read_now(jobs: &Jobs, id: &JobId, limit: ReadLimit) -> JobRead {
    jobs.read(id, Duration::ZERO, limit, None)
        .await
        .unwrap_or_else(|e| panic!("reading job {id} failed: {e}"))
}

/// Reads job `id` until `done` holds for everything read so far (waiting for new output
/// each time); returns it and the last read.
async fn read_until(
    jobs: &Jobs,
    id: &JobId,
    done: impl Fn(&str, &JobRead) -> bool,
) -> (String, JobRead) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut text = String::new();
    loop {
        let read = jobs
            .read(id, Duration::from_secs(10), ReadLimit::AGENT, None)
            .await
            .unwrap_or_else(|e| panic!("reading job {id} failed: {e}"));
        text.push_str(&String::from_utf8_lossy(&read.head));
        text.push_str(&String::from_utf8_lossy(&read.tail));
        if done(&text, &read) {
            return (text, read);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id}: still not there after {} s; read so far {text:?}, last state {}",
            PATIENCE.as_secs(),
            read.state
        );
    }
}

/// Reads job `id` to its end; returns all the new output and the final read.
async fn read_to_end(jobs: &Jobs, id: &JobId) -> (String, JobRead) {
    read_until(jobs, id, |_, read| !read.state.is_running()).await
}

/// The listing of `jobs`.
async fn list(jobs: &Jobs) -> Vec<JobInfo> {
    jobs.list()
        .await
        .unwrap_or_else(|e| panic!("listing jobs failed: {e}"))
}

/// Polls the listing (which reads no output) until job `id` has ended.
async fn until_ended(jobs: &Jobs, id: &JobId) -> JobInfo {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let listed = list(jobs).await;
        let job = listed
            .iter()
            .find(|j| &j.id == id)
            .unwrap_or_else(|| panic!("job {id} is not listed: {listed:?}"));
        if !job.state.is_running() {
            return job.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} still running after {} s",
            PATIENCE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The job's directory on the host (where its output file is).
fn job_dir(started: &JobStarted) -> RemotePath {
    RemotePath::new(started.output_path.clone())
        .expect("output path")
        .parent()
        .expect("job dir")
}

/// Lets the case's jobs go, kills what still runs and removes the workspace's job
/// directory, so a case leaves nothing behind on the host.
async fn clean_up(h: &Harness, jobs: &Jobs, any: &JobStarted) {
    sh(h, &format!(": > {}/go", q(&h.scratch))).await;
    for job in list(jobs).await {
        if job.state.is_running() {
            let _ = jobs.kill(&job.id).await;
        }
    }
    let key_dir = job_dir(any).parent().expect("workspace jobs dir");
    assert_eq!(key_dir.file_name(), Some(jobs.key()));
    let _ = h.runtime.remove(&key_dir, true).await;
}

async fn go(h: &Harness) {
    sh(h, &format!(": > {}/go", q(&h.scratch))).await;
}

fn background(command: &str) -> BashInput {
    BashInput {
        command: command.into(),
        timeout_secs: None,
        cwd: None,
        run_in_background: true,
    }
}

async fn bash_in_background(ctx: &ToolContext, command: &str) -> JobStarted {
    let result = tools::BashTool
        .run(ctx, background(command), CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("bash run_in_background {command:?} failed: {e}"));
    match result {
        BashResult::Background(job) => job.job,
        BashResult::Finished(out) => {
            panic!("run_in_background must return a job at once, got a finished command: {out:?}")
        }
    }
}

pub(super) async fn job_start_returns_at_once(h: Harness) -> Outcome {
    let ctx = h.tools();
    // The job cannot end before the case creates `go`: the call returned while it ran.
    let started = bash_in_background(
        &ctx,
        &format!("echo started in \"$PWD\"; {UNTIL_GO}; echo finished; exit 0"),
    )
    .await;
    let jobs = jobs(&h);
    let (text, read) = read_until(&jobs, &started.id, |text, _| text.contains("started")).await;
    assert_eq!(
        read.state,
        JobState::Running,
        "the job must still run after the call that started it returned (it waits for `go`)"
    );
    assert!(
        text.trim_end()
            .ends_with(h.scratch.file_name().expect("name")),
        "the job runs in the workspace: {text:?}"
    );
    // Other calls come and go (each kills its own process group when it ends): the job
    // lives on.
    for _ in 0..3 {
        let out = tools::bash(
            &ctx,
            BashInput {
                run_in_background: false,
                ..background("sleep 0.01 & echo fg")
            },
        )
        .await
        .expect("a foreground call");
        assert_eq!(out.stdout, "fg\n");
    }
    assert!(
        list(&jobs)
            .await
            .iter()
            .any(|j| j.id == started.id && j.state.is_running()),
        "the job survives the calls after it"
    );
    go(&h).await;
    let (text, read) = read_to_end(&jobs, &started.id).await;
    assert_eq!(text, "finished\n", "the rest of the output, once");
    assert_eq!(read.state, JobState::Exited { code: 0 });
    clean_up(&h, &jobs, &started).await;
    Outcome::Passed
}

pub(super) async fn job_output_since_last_read(h: Harness) -> Outcome {
    let started = start(&h, &format!("echo one; echo err >&2; {UNTIL_GO}; echo two")).await;
    let jobs = jobs(&h);
    let (text, _) = read_until(&jobs, &started.id, |text, _| text.contains("err")).await;
    assert_eq!(
        text, "one\nerr\n",
        "stdout and stderr, in the order written"
    );
    let again = read_now(&jobs, &started.id, ReadLimit::AGENT).await;
    assert!(
        again.head.is_empty() && again.tail.is_empty(),
        "nothing new yet: {again:?}"
    );
    assert_eq!(again.offset, 8, "the offset persists between reads");
    // Another reader of the same workspace (the CLI, another MCP session) shares the
    // offset: it lives on the host.
    let other = Jobs::new(h.runtime.clone(), h.scratch.clone());
    go(&h).await;
    let (text, read) = read_to_end(&other, &started.id).await;
    assert_eq!(text, "two\n", "only the output since the last read");
    assert_eq!(read.output_bytes, 12);
    clean_up(&h, &jobs, &started).await;
    Outcome::Passed
}

pub(super) async fn job_wait(h: Harness) -> Outcome {
    let jobs = jobs(&h);
    // Bounded: a wait with nothing new returns when its time is up.
    let silent = start(&h, &format!("{UNTIL_GO}; exit 5")).await;
    let read = jobs
        .read(
            &silent.id,
            Duration::from_millis(300),
            ReadLimit::AGENT,
            None,
        )
        .await
        .expect("a bounded wait");
    assert_eq!(read.state, JobState::Running);
    assert!(read.head.is_empty(), "{read:?}");
    // A wait returns at the job's end: this job prints nothing, so a read that waits
    // can only come back when it has ended (or after 120 s).
    go(&h).await;
    let read = jobs
        .read(&silent.id, Duration::from_secs(120), ReadLimit::AGENT, None)
        .await
        .expect("read with a wait");
    assert_eq!(
        read.state,
        JobState::Exited { code: 5 },
        "a read with a wait returns when the job ends"
    );
    // A wait returns with new output: this job prints once, a second after it starts,
    // then sleeps, so a read that waits can only come back with that line.
    let late = start(&h, "sleep 1; echo late; sleep 300").await;
    let read = jobs
        .read(&late.id, Duration::from_secs(120), ReadLimit::AGENT, None)
        .await
        .expect("read with a wait");
    assert_eq!(
        String::from_utf8_lossy(&read.head),
        "late\n",
        "a read with a wait returns the output that arrives while it waits"
    );
    assert_eq!(read.state, JobState::Running, "it returned at the output");
    clean_up(&h, &jobs, &late).await;
    Outcome::Passed
}

pub(super) async fn job_exit_status(h: Harness) -> Outcome {
    let jobs = jobs(&h);
    let mut any = None;
    for (command, want) in [
        ("exit 7", JobState::Exited { code: 7 }),
        ("echo x; exit 0", JobState::Exited { code: 0 }),
        ("kill -TERM $$", JobState::Signaled { signal: 15 }),
        ("kill -KILL $$", JobState::Signaled { signal: 9 }),
        ("exit 143", JobState::Exited { code: 143 }),
    ] {
        let started = start(&h, command).await;
        let (_, read) = read_to_end(&jobs, &started.id).await;
        assert_eq!(read.state, want, "the status of job {command:?}");
        assert!(read.state.exit_status().is_some(), "{command:?} ended");
        any = Some(started);
    }
    clean_up(&h, &jobs, &any.expect("a job")).await;
    Outcome::Passed
}

pub(super) async fn job_kill_kills_group(h: Harness) -> Outcome {
    let ctx = h.tools();
    let jobs = jobs(&h);
    let bg = h.path("bg.pid");
    let started = start(
        &h,
        &format!("sleep 300 & echo $! > {}; echo ready; sleep 300", q(&bg)),
    )
    .await;
    read_until(&jobs, &started.id, |text, _| text.contains("ready")).await;
    let killed = tools::job_kill(
        &ctx,
        JobKillInput {
            id: started.id.to_string(),
        },
    )
    .await
    .expect("job_kill");
    assert_eq!(killed.killed.before, JobState::Running);
    assert_eq!(killed.killed.after, JobState::Signaled { signal: 15 });
    assert!(
        killed.to_text().contains("killed by signal 15"),
        "{}",
        killed.to_text()
    );
    // Its background child was in its process group: gone too.
    wait_gone(&h, &bg, Duration::from_secs(10)).await;
    // A job that ignores SIGTERM gets SIGKILL.
    let stubborn = start(&h, "trap '' TERM; echo ready; while :; do sleep 0.1; done").await;
    read_until(&jobs, &stubborn.id, |text, _| text.contains("ready")).await;
    let killed = jobs.kill(&stubborn.id).await.expect("kill");
    assert_eq!(killed.after, JobState::Signaled { signal: 9 });
    // Killing an ended job changes nothing.
    let again = jobs.kill(&started.id).await.expect("second kill");
    assert_eq!(
        (again.before, again.after),
        (
            JobState::Signaled { signal: 15 },
            JobState::Signaled { signal: 15 }
        )
    );
    // Unknown ids are an error naming the job.
    let missing = JobId::parse("zzzz9999").expect("id");
    match jobs.kill(&missing).await {
        Err(Error::InvalidInput { message }) => {
            assert!(message.contains("zzzz9999"), "{message}")
        }
        other => panic!("killing an unknown job must be InvalidInput, got {other:?}"),
    }
    clean_up(&h, &jobs, &started).await;
    Outcome::Passed
}

pub(super) async fn job_list(h: Harness) -> Outcome {
    let jobs = jobs(&h);
    let running = start(&h, &format!("echo 'it''s running'; {UNTIL_GO}")).await;
    let ended = start(&h, "echo bye; exit 3").await;
    until_ended(&jobs, &ended.id).await;
    let other_root = h.path("other workspace");
    h.runtime.create_dir_all(&other_root).await.expect("mkdir");
    let other = Jobs::new(h.runtime.clone(), other_root.clone());
    let elsewhere = other
        .start(ExecRequest::script("true").cwd(other_root))
        .await
        .expect("a job of another workspace");
    let listed = list(&jobs).await;
    let ids: Vec<&JobId> = listed.iter().map(|j| &j.id).collect();
    assert!(
        ids.contains(&&running.id) && ids.contains(&&ended.id),
        "both jobs listed: {listed:?}"
    );
    assert!(
        !ids.contains(&&elsewhere.id),
        "only this workspace's jobs: {listed:?}"
    );
    let first = listed.iter().find(|j| j.id == running.id).expect("listed");
    assert_eq!(first.state, JobState::Running);
    assert_eq!(first.command, format!("echo 'it''s running'; {UNTIL_GO}"));
    assert_eq!(first.pgid, Some(running.pgid));
    assert!(
        first.age_secs.is_some() && first.started.is_some(),
        "{first:?}"
    );
    let second = listed.iter().find(|j| j.id == ended.id).expect("listed");
    assert_eq!(second.state, JobState::Exited { code: 3 });
    assert_eq!((second.output_bytes, second.unread_bytes), (4, 4));
    // The tool lists the same.
    let text = tools::call(&h.tools(), "jobs", serde_json::json!({}))
        .await
        .expect("jobs tool")
        .to_text();
    assert!(
        text.contains(running.id.as_str()) && text.contains("exited with code 3"),
        "{text}"
    );
    clean_up(&h, &jobs, &running).await;
    clean_up(&h, &other, &elsewhere).await;
    Outcome::Passed
}

pub(super) async fn job_cleanup(h: Harness) -> Outcome {
    let jobs = jobs(&h);
    let started = start(&h, "echo hi").await;
    let dir = job_dir(&started);
    // Private: 0700 directories from the cache's cmux directory down, 0600 files.
    for (name, want) in [
        (".", "drwx------"),
        ("..", "drwx------"),
        ("../..", "drwx------"),
        ("../../..", "drwx------"),
        ("out", "-rw-------"),
        ("command", "-rw-------"),
        ("run", "-rw-------"),
        ("pid", "-rw-------"),
    ] {
        let listed = sh(&h, &format!("cd {} && ls -ld {name}", q(&dir))).await;
        let mode = listed.split_whitespace().next().unwrap_or_default();
        assert_eq!(mode, want, "mode of {name} in {dir}: {listed}");
    }
    assert!(
        dir.as_str().contains("/cmux/jobs/"),
        "jobs live in the user's cache directory: {dir}"
    );
    // Ended but unread: kept.
    until_ended(&jobs, &started.id).await;
    assert!(
        list(&jobs).await.iter().any(|j| j.id == started.id),
        "an ended job is kept until its output is read"
    );
    // Read to the end: removed by the next sweep.
    let (text, _) = read_to_end(&jobs, &started.id).await;
    assert_eq!(text, "hi\n");
    let again = read_now(&jobs, &started.id, ReadLimit::AGENT).await;
    assert!(again.head.is_empty(), "nothing twice: {again:?}");
    assert!(
        !list(&jobs).await.iter().any(|j| j.id == started.id),
        "a job read to its end is removed by the next listing"
    );
    assert!(
        !h.runtime.exists(&dir).await.expect("stat"),
        "{dir} removed"
    );
    match jobs
        .read(&started.id, Duration::ZERO, ReadLimit::AGENT, None)
        .await
    {
        Err(Error::InvalidInput { message }) => {
            assert!(message.contains(started.id.as_str()), "{message}")
        }
        other => panic!("reading a removed job must say it is gone, got {other:?}"),
    }
    // Unread, but ended over 24 hours ago: removed. Running, started long ago: kept.
    let old = start(&h, "echo old").await;
    until_ended(&jobs, &old.id).await;
    let long = start(&h, UNTIL_GO).await;
    sh(
        &h,
        &format!(
            "touch -t 202001010000 {}/status {}/command",
            q(&job_dir(&old)),
            q(&job_dir(&long))
        ),
    )
    .await;
    let listed = list(&jobs).await;
    assert!(
        !listed.iter().any(|j| j.id == old.id),
        "an ended job 24 h old is removed: {listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|j| j.id == long.id && j.state.is_running()),
        "a running job is never removed: {listed:?}"
    );
    clean_up(&h, &jobs, &long).await;
    Outcome::Passed
}

pub(super) async fn job_lost(h: Harness) -> Outcome {
    let jobs = jobs(&h);
    let pid_file = h.path("job.pid");
    let started = start(&h, &format!("echo $$ > {}; {UNTIL_GO}", q(&pid_file))).await;
    // The supervisor is the 4th word of the job's pid file; kill it as a crash would,
    // and wait until it is dead (gone, or a zombie: its files are closed either way).
    let dir = job_dir(&started);
    sh(
        &h,
        &format!(
            "until [ -s {f} ]; do sleep 0.05; done\n\
             read -r _ _ _ s < {p}/pid && kill -KILL \"$s\" || exit 1\n\
             n=0\n\
             while kill -0 \"$s\" 2>/dev/null && [ $n -lt 600 ] && \
               ! grep -q '^State:[[:space:]]*Z' /proc/\"$s\"/status 2>/dev/null; do\n\
               sleep 0.05; n=$((n + 1))\n\
             done",
            f = q(&pid_file),
            p = q(&dir)
        ),
    )
    .await;
    let read = read_now(&jobs, &started.id, ReadLimit::AGENT).await;
    assert_eq!(
        read.state,
        JobState::Lost,
        "a job whose supervisor died is lost, not running forever"
    );
    let listed = list(&jobs).await;
    assert!(
        listed
            .iter()
            .any(|j| j.id == started.id && j.state == JobState::Lost),
        "and listed as lost: {listed:?}"
    );
    // Killing it kills what is left of its group (the command was still running).
    let killed = jobs.kill(&started.id).await.expect("kill");
    assert_eq!(killed.before, JobState::Lost);
    wait_gone(&h, &pid_file, Duration::from_secs(10)).await;
    clean_up(&h, &jobs, &started).await;
    Outcome::Passed
}

pub(super) async fn job_output_cap(h: Harness) -> Outcome {
    let ctx = h.tools();
    let jobs = jobs(&h);
    let started = start(&h, "seq 1 200000").await;
    let whole = sh(&h, "seq 1 200000").await;
    until_ended(&jobs, &started.id).await;
    let out = tools::job_output(
        &ctx,
        JobOutputInput {
            id: started.id.to_string(),
            wait_secs: None,
        },
        None,
    )
    .await
    .expect("job_output");
    assert!(out.output.starts_with("1\n2\n3\n"), "the head");
    assert!(out.output_tail.ends_with("199999\n200000\n"), "the tail");
    assert_eq!(out.output.len(), tools::JOB_HEAD_BYTES);
    assert_eq!(out.output_tail.len(), tools::JOB_TAIL_BYTES);
    assert_eq!(
        out.cut_bytes as usize,
        whole.len() - tools::JOB_HEAD_BYTES - tools::JOB_TAIL_BYTES
    );
    let text = out.to_text();
    assert!(
        text.contains(&out.output_path) && text.contains("bytes cut"),
        "{}",
        &text[..200]
    );
    // The rest is still readable: the output file holds all of it.
    let path = RemotePath::new(out.output_path.clone()).expect("path");
    assert_eq!(read(&h, &path).await, whole.as_bytes());
    assert!(
        list(&jobs).await.iter().any(|j| j.id == started.id),
        "a job whose output was cut is kept (for 24 h) so the rest can be read"
    );
    // Pages: nothing skipped, each read goes on where the last stopped.
    let paged = start(&h, "seq 1 20000").await;
    until_ended(&jobs, &paged.id).await;
    let mut all = Vec::new();
    loop {
        let page = read_now(&jobs, &paged.id, ReadLimit::pages(40_000)).await;
        assert!(page.tail.is_empty() && page.cut_bytes == 0);
        assert!(page.head.len() <= 40_000);
        all.extend_from_slice(&page.head);
        if page.unread_bytes == 0 {
            break;
        }
    }
    assert_eq!(String::from_utf8_lossy(&all), sh(&h, "seq 1 20000").await);
    clean_up(&h, &jobs, &started).await;
    Outcome::Passed
}

pub(super) async fn job_session_end(h: Harness) -> Outcome {
    let session = Arc::new(JobSession::new());
    let ctx = h.tools().with_job_session(session.clone());
    let jobs = jobs(&h);
    let a = bash_in_background(&ctx, "sleep 300").await;
    let b = bash_in_background(&ctx, "sleep 300").await;
    let outsider = start(&h, UNTIL_GO).await;
    assert_eq!(session.started(), vec![a.id.clone(), b.id.clone()]);
    let outcomes = jobs.kill_session(&session).await;
    assert_eq!(outcomes.len(), 2);
    for (id, outcome) in outcomes {
        let killed = outcome.unwrap_or_else(|e| panic!("killing {id}: {e}"));
        assert_eq!(killed.after, JobState::Signaled { signal: 15 });
    }
    let listed = list(&jobs).await;
    assert!(
        listed
            .iter()
            .any(|j| j.id == outsider.id && j.state.is_running()),
        "a job the session did not start keeps running: {listed:?}"
    );
    // The job_output tool's JSON names the state flat.
    let out = tools::call(
        &ctx,
        "job_output",
        serde_json::json!({"id": a.id.as_str(), "wait_secs": 0}),
    )
    .await
    .expect("job_output tool");
    let json = serde_json::to_value(&out).expect("json");
    assert_eq!(json["output"]["state"], "signaled", "{json}");
    assert_eq!(json["output"]["signal"], 15, "{json}");
    clean_up(&h, &jobs, &a).await;
    Outcome::Passed
}

pub(super) async fn job_follow_workspace(h: Harness) -> Outcome {
    let jobs = jobs(&h);
    let child = h.path("child.pid");
    let running = start(
        &h,
        &format!(
            "sleep 300 & echo $! > {}; echo one; {UNTIL_GO}; echo two",
            q(&child)
        ),
    )
    .await;
    read_until(&jobs, &running.id, |text, _| text.contains("one")).await;
    let ended = start(&h, "echo unread; exit 3").await;
    until_ended(&jobs, &ended.id).await;

    // A rename: both jobs are the new directory's now; the running one goes on, its
    // read offset kept.
    let (moved, count) = jobs
        .move_to(h.path("renamed workspace"))
        .await
        .expect("moving the jobs");
    assert_eq!(count, 2);
    assert!(list(&jobs).await.is_empty(), "left under the old directory");
    let listed = list(&moved).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    go(&h).await;
    let (text, read) = read_to_end(&moved, &running.id).await;
    assert_eq!(text, "two\n");
    assert_eq!(read.state, JobState::Exited { code: 0 });
    let (same, none) = moved
        .move_to(h.path("renamed workspace"))
        .await
        .expect("a move to the same directory");
    assert_eq!((same.key(), none), (moved.key(), 0));

    // The workspace is removed: a running job is killed with its group, every job's
    // files go, and the workspace's jobs directory with them.
    let stubborn = moved
        .start(ExecRequest::script(format!(
            "sleep 300 & echo $! > {}; exec sleep 300",
            q(&child)
        )))
        .await
        .expect("start");
    let ended_all = moved.end_all().await.expect("end all");
    let by_id = |id: &JobId| {
        ended_all
            .iter()
            .find(|j| &j.id == id)
            .unwrap_or_else(|| panic!("job {id} not reported: {ended_all:?}"))
    };
    // The first job, read to its end, went with the last start's sweep.
    assert_eq!(ended_all.len(), 2, "{ended_all:?}");
    let killed = by_id(&stubborn.id);
    assert_eq!(
        (killed.before, killed.after, killed.removed),
        (JobState::Running, JobState::Signaled { signal: 15 }, true)
    );
    assert!(killed.command.contains("exec sleep 300"), "{killed:?}");
    let unread = by_id(&ended.id);
    assert_eq!(
        (unread.before, unread.removed),
        (JobState::Exited { code: 3 }, true)
    );
    wait_gone(&h, &child, Duration::from_secs(10)).await;
    assert!(list(&moved).await.is_empty());
    let key_dir = job_dir(&running).parent().expect("jobs root");
    let key_dir = key_dir
        .parent()
        .expect("jobs root")
        .join(moved.key())
        .expect("key dir");
    assert!(
        !h.runtime.exists(&key_dir).await.expect("stat"),
        "{key_dir:?} left behind"
    );
    // Nothing to end: nothing reported, nothing created.
    assert!(moved.end_all().await.expect("end all again").is_empty());
    Outcome::Passed
}
