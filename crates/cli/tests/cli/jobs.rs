//! Background jobs from the command line: `cmux exec --background`, `cmux jobs`,
//! `cmux job-output`, `cmux job-kill`, locally (with the jobs in the test's own cache
//! directory, `XDG_CACHE_HOME`) and on an SSH workspace across a dropped connection.

use std::path::Path;
use std::process::{Command, Output};

use super::ssh::Remote;
use super::{alive, read_pid, stderr, stdout, Env};

/// The jobs of the test live in its own cache directory.
fn in_cache(mut cmd: Command, cache: &Path) -> Command {
    cmd.env("XDG_CACHE_HOME", cache);
    cmd
}

/// Replaces the job ids and ages of a listing or message with stable words.
fn stable(text: &str, ids: &[&str]) -> String {
    let mut text = text.to_owned();
    for (i, id) in ids.iter().enumerate() {
        text = text.replace(id, &format!("[JOB{}]", i + 1));
    }
    text.split('\n')
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let digits = word.strip_suffix('s').unwrap_or("x");
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                        "[AGE]".to_owned()
                    } else {
                        word.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `cmux job-output` (waiting) until the job has ended; returns all its stdout
/// and the last run.
fn output_until_ended(run: impl Fn(&[&str]) -> Output, ws: &str, id: &str) -> (String, Output) {
    let mut all = String::new();
    for _ in 0..30 {
        let out = run(&["job-output", ws, id, "--wait", "10"]);
        all.push_str(&stdout(&out));
        if !stderr(&out).contains("still running") {
            return (all, out);
        }
    }
    panic!("job {id} did not end; output so far {all:?}");
}

#[test]
fn background_jobs_from_the_cli() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let cache = env.home.path().join("cache");
    let run = |args: &[&str]| -> Output {
        in_cache(env.command(args), &cache)
            .output()
            .expect("cmux runs")
    };

    // Started: the id on stdout at once (the job waits for `go`), how to follow it on
    // stderr.
    let started = run(&[
        "exec",
        "--background",
        "w",
        "--",
        "echo started; n=0; until [ -e go ] || [ $n -ge 3000 ]; do sleep 0.05; n=$((n + 1)); done; echo done >&2; exit 3",
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let id = stdout(&started).trim().to_owned();
    assert_eq!(id.len(), 8, "{id:?}");
    let first = run(&["job-output", "w", &id, "--wait", "30"]);
    assert_eq!(first.status.code(), Some(0), "exit 0 while it runs");
    assert_eq!(stdout(&first), "started\n");
    let listing = run(&["jobs", "w"]);
    let mut report = format!(
        "$ cmux exec --background w -- ...\n{}{}\n$ cmux job-output w [JOB1] --wait 30\n{}{}\n$ cmux jobs w\n{}",
        stable(&stdout(&started), &[&id]),
        stable(&stderr(&started), &[&id]),
        stdout(&first),
        stable(&stderr(&first), &[&id]),
        stable(&stdout(&listing), &[&id]),
    );

    // Its files are private, in the cache directory.
    let dir = cache.join("cmux/jobs");
    let key_dir = std::fs::read_dir(&dir)
        .expect("jobs dir")
        .flatten()
        .next()
        .expect("the workspace's jobs")
        .path();
    let job_dir = key_dir.join(&id);
    use std::os::unix::fs::PermissionsExt;
    for (path, want) in [
        (dir.clone(), 0o700),
        (key_dir.clone(), 0o700),
        (job_dir.clone(), 0o700),
        (job_dir.join("out"), 0o600),
    ] {
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, want, "{}", path.display());
    }

    // Goes on, ends: the rest of the output, and the job's exit code.
    std::fs::write(ws.join("go"), "").expect("go");
    let (rest, last) = output_until_ended(run, "w", &id);
    assert_eq!(rest, "done\n", "the job's stderr is part of its output");
    assert_eq!(last.status.code(), Some(3), "{}", stderr(&last));
    report.push_str(&format!(
        "\n$ cmux job-output w [JOB1] --wait 10\n{}",
        stable(&stderr(&last), &[&id])
    ));
    assert!(!job_dir.join("go").exists());
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["jobs", "w", "--json"]))).expect("json");
    assert_eq!(json, serde_json::json!([]), "read and ended: removed");
    assert!(!job_dir.exists(), "{} removed", job_dir.display());

    // Killed with what it started.
    let started = run(&[
        "exec",
        "--background",
        "w",
        "--",
        "sleep 300 & echo $! > bg.pid; exec sleep 300",
    ]);
    let id2 = stdout(&started).trim().to_owned();
    let bg = read_pid(&ws.join("bg.pid"));
    assert!(alive(bg));
    let killed = run(&["job-kill", "w", &id2]);
    assert!(killed.status.success(), "{}", stderr(&killed));
    assert!(!alive(bg), "the job's child outlived job-kill");
    report.push_str(&format!(
        "\n$ cmux job-kill w [JOB2]\n{}",
        stable(&stdout(&killed), &[&id, &id2])
    ));
    let again: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["job-kill", "w", &id2, "--json"]))).expect("json");
    assert_eq!(again["before"]["state"], "signaled", "{again}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["job-output", "w", &id2, "--json"]))).expect("json");
    assert_eq!(
        (
            json["state"].as_str(),
            json["signal"].as_i64(),
            json["output"].as_str()
        ),
        (Some("signaled"), Some(15), Some("")),
        "{json}"
    );

    // Refusals.
    for (what, args) in [
        ("an id that is not one", vec!["job-output", "w", "../x"]),
        ("an unknown job", vec!["job-kill", "w", "zzzz9999"]),
        ("a bad wait", vec!["job-output", "w", &id2, "--wait=-1"]),
        ("an unknown workspace", vec!["jobs", "nope"]),
    ] {
        let out = run(&args);
        report.push_str(&format!(
            "\n# {what}\n$ cmux {}\nexit {}\n{}",
            args.join(" ").replace(&id2, "[JOB2]"),
            out.status.code().unwrap_or(-1),
            env.normalize(&stderr(&out))
        ));
    }
    let both = run(&["exec", "--background", "--timeout", "5", "w", "--", "true"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    insta::assert_snapshot!("background_jobs", report);
}

#[test]
fn a_background_job_on_ssh_outlives_the_connection() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let id = r.ok(&[
        "exec",
        "--background",
        "w",
        "--",
        "echo one; n=0; until [ -e go ] || [ $n -ge 3000 ]; do sleep 0.05; n=$((n + 1)); done; echo two; exit 5",
    ]);
    let id = id.trim();
    let first = r.run(&["job-output", "w", id, "--wait", "30"]);
    assert_eq!(stdout(&first), "one\n", "{}", stderr(&first));
    // The connection goes away; the job does not.
    r.stop_masters();
    std::fs::write(r.path_of("w").join("go"), "").expect("go");
    let (rest, last) = output_until_ended(|args| r.run(args), "w", id);
    assert_eq!(rest, "two\n");
    assert_eq!(last.status.code(), Some(5), "{}", stderr(&last));
    let listed = r.ok(&["jobs", "w", "--json"]);
    assert_eq!(listed.trim(), "[]", "read and ended: removed");
    // The workspace's (now empty) jobs directory in the host user's cache.
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
    if let Some(cache) = cache {
        let key = cmux_core::workspace::project_id(r.path_of("w").to_str().expect("utf-8"));
        let _ = std::fs::remove_dir(cache.join("cmux/jobs").join(key));
    }
}

/// Starts `command` as a background job of `ws` (with `P` set to `dir`); returns its id.
fn start_job(run: &impl Fn(&[&str]) -> Output, ws: &str, dir: &Path, command: &str) -> String {
    let p = format!("P={}", dir.display());
    let out = run(&["exec", "--background", "--env", &p, ws, "--", command]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// Lists `ws`'s jobs until job `id` has ended (without reading its output).
fn until_ended_unread(run: &impl Fn(&[&str]) -> Output, ws: &str, id: &str) {
    for _ in 0..600 {
        let out = run(&["jobs", ws, "--json"]);
        let jobs: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        let state = jobs
            .as_array()
            .and_then(|jobs| jobs.iter().find(|job| job["id"] == id))
            .map(|job| job["state"].clone());
        match state {
            Some(state) if state != "running" => return,
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            None => panic!("job {id} is not listed: {jobs}"),
        }
    }
    panic!("job {id} did not end");
}

/// The ids of `ws`'s jobs, from `cmux jobs --json`.
fn listed_ids(run: &impl Fn(&[&str]) -> Output, ws: &str) -> Vec<String> {
    let out = run(&["jobs", ws, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let jobs: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    jobs.as_array()
        .expect("array")
        .iter()
        .map(|job| job["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A job that runs until killed and leaves a background child, both writing their pid
/// to `$P` first.
const LONG_JOB: &str =
    "sleep 300 & echo $! > \"$P/child.pid\"; echo $$ > \"$P/job.pid\"; exec sleep 300";

/// `cmux rm` ends the workspace's running jobs (and what they started) and says so,
/// and removes the output of ended ones: nothing is left running that no `cmux jobs`
/// can list any more. A refused rm touches no job.
#[test]
fn rm_ends_the_workspaces_jobs() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let ws = env.workspace_path("w");
    let cache = env.home.path().join("cache");
    let pids = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| -> Output {
        in_cache(env.command(args), &cache)
            .output()
            .expect("cmux runs")
    };
    let running = start_job(&run, "w", pids.path(), LONG_JOB);
    let ended = start_job(&run, "w", pids.path(), "echo quick");
    until_ended_unread(&run, "w", &ended);
    let job = read_pid(&pids.path().join("job.pid"));
    let child = read_pid(&pids.path().join("child.pid"));
    assert!(alive(job) && alive(child));

    // Refused (uncommitted changes): the jobs go on.
    std::fs::write(ws.join("scratch.txt"), "x\n").expect("write");
    let refused = run(&["rm", "w"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(alive(job) && alive(child), "a refused rm killed a job");
    std::fs::remove_file(ws.join("scratch.txt")).expect("rm");

    let out = run(&["rm", "w"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!alive(job), "the job outlived its workspace");
    assert!(!alive(child), "the job's child outlived its workspace");
    let key = cmux_core::workspace::project_id(ws.to_str().expect("utf-8"));
    assert!(
        !cache.join("cmux/jobs").join(&key).exists(),
        "the workspace's job files are left"
    );
    let report = format!(
        "$ cmux rm w\n{}{}",
        env.normalize(&stable(&stdout(&out), &[&running, &ended])),
        env.normalize(&stable(&stderr(&out), &[&running, &ended]))
    );
    insta::assert_snapshot!("rm_ends_jobs", report);
}

/// `cmux rename` keeps the workspace's jobs: listed, read and killed under the new
/// name, a running one going on.
#[test]
fn rename_keeps_the_workspaces_jobs() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let cache = env.home.path().join("cache");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| -> Output {
        in_cache(env.command(args), &cache)
            .output()
            .expect("cmux runs")
    };
    let id = start_job(
        &run,
        "w",
        dir.path(),
        "echo one; n=0; until [ -e \"$P/go\" ] || [ $n -ge 3000 ]; do sleep 0.05; n=$((n + 1)); done; echo two; exit 4",
    );
    let first = run(&["job-output", "w", &id, "--wait", "30"]);
    assert_eq!(stdout(&first), "one\n", "{}", stderr(&first));

    let renamed = run(&["rename", "w", "w2"]);
    assert!(renamed.status.success(), "{}", stderr(&renamed));
    assert!(
        stderr(&renamed).contains("cmux: 1 background job of the workspace moved with it"),
        "{}",
        stderr(&renamed)
    );
    assert_eq!(listed_ids(&run, "w2"), vec![id.clone()]);

    std::fs::write(dir.path().join("go"), "").expect("go");
    let (rest, last) = output_until_ended(run, "w2", &id);
    assert_eq!(rest, "two\n");
    assert_eq!(last.status.code(), Some(4), "{}", stderr(&last));
}

/// The same on an SSH workspace: rename keeps its jobs, rm ends them.
#[test]
fn rename_and_rm_on_ssh_keep_then_end_the_jobs() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let pids = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| r.run(args);
    let id = start_job(&run, "w", pids.path(), LONG_JOB);
    let job = read_pid(&pids.path().join("job.pid"));
    let child = read_pid(&pids.path().join("child.pid"));

    let renamed = r.run(&["rename", "w", "w2"]);
    assert!(renamed.status.success(), "{}", stderr(&renamed));
    assert_eq!(listed_ids(&run, "w2"), vec![id.clone()]);
    assert!(alive(job), "the rename killed the job");

    let out = r.run(&["rm", "w2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cmux: stopped background job {id} (")),
        "{}",
        stderr(&out)
    );
    assert!(!alive(job) && !alive(child), "a job outlived its workspace");
}
