//! The local side of a workspace's commits: which of them the project already has
//! (so `rm` knows they are home, however they got there: `cmux pull`, or a manual
//! `git fetch` and merge), and dropping the project's tracking ref of a workspace once
//! it holds nothing the project lacks.

use std::collections::HashSet;
use std::process::Stdio;

use cmux_core::workspace::Project;
use cmux_core::{Error, Result};
use tokio::io::AsyncWriteExt;

/// The refs that count as "home": every local branch and tag, and remote-tracking
/// branch except cmux's own tracking refs of workspaces (`refs/remotes/cmux/*`),
/// which only mirror the workspaces. Written for `git rev-list --stdin`.
const HOME_REFS: &str = "--not\n--branches\n--tags\n--exclude=cmux/*\n--remotes\n";

/// Runs `git -C <project> args...` locally with `input` on stdin; its stdout.
async fn git_with_input(project: &Project, args: &[&str], input: String) -> Result<String> {
    let io = |e: std::io::Error| Error::Io {
        host: "local".into(),
        context: "running git (is git installed and on PATH?)".into(),
        source: e,
    };
    let mut child = tokio::process::Command::new("git")
        .arg("-C")
        .arg(project.path())
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io)?;
    let mut stdin = child.stdin.take();
    let write = async move {
        if let Some(stdin) = stdin.as_mut() {
            stdin.write_all(input.as_bytes()).await?;
            stdin.shutdown().await?;
        }
        drop(stdin);
        std::io::Result::Ok(())
    };
    let (written, out) = tokio::join!(write, child.wait_with_output());
    let out = out.map_err(io)?;
    written.map_err(io)?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            host: "local".into(),
            command: format!("git {}", args.first().copied().unwrap_or("")),
            code: out.status.code().unwrap_or(-1),
            stderr: cmux_core::runtime::tail(&String::from_utf8_lossy(&out.stderr), 2000),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Of `commits` (full hashes), those the project does not have at home: absent from
/// its repository, or present but reachable from none of its branches, tags or
/// remote-tracking branches (a commit only in `refs/remotes/cmux/<ws>` is not home:
/// that ref goes with the workspace). Two local git processes, no round trip.
pub(crate) async fn not_home(project: &Project, commits: &[String]) -> Result<HashSet<String>> {
    if commits.is_empty() {
        return Ok(HashSet::new());
    }
    if !project.path().is_dir() {
        // The project is gone from this machine: nothing is home.
        return Ok(commits.iter().cloned().collect());
    }
    let list: String = commits.iter().map(|c| format!("{c}\n")).collect();
    let checked = git_with_input(
        project,
        &["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        list.clone(),
    )
    .await?;
    let mut away: HashSet<String> = HashSet::new();
    let mut present = String::new();
    for line in checked.lines() {
        match line.split_once(' ') {
            Some((hash, "commit")) => present.push_str(&format!("{hash}\n")),
            Some((hash, _)) => {
                away.insert(hash.to_owned());
            }
            None => {}
        }
    }
    if !present.is_empty() {
        let unreached = git_with_input(
            project,
            &["rev-list", "--ignore-missing", "--stdin"],
            format!("{present}{HOME_REFS}"),
        )
        .await?;
        away.extend(unreached.lines().map(str::to_owned));
    }
    Ok(commits
        .iter()
        .filter(|c| away.contains(*c))
        .cloned()
        .collect())
}

/// Deletes the project's `tracking` ref (`refs/remotes/cmux/<ws>`) when it exists
/// and its commit is home (see [`not_home`]); keeps it otherwise, as the last copy
/// of what a forced `rm` dropped on the host.
pub(crate) async fn drop_tracking_ref_if_home(project: &Project, tracking: &str) -> Result<bool> {
    let resolved = git_with_input(
        project,
        &["for-each-ref", "--format=%(objectname)", tracking],
        String::new(),
    )
    .await?;
    let Some(commit) = resolved.lines().next().map(str::to_owned) else {
        return Ok(false);
    };
    if !not_home(project, std::slice::from_ref(&commit))
        .await?
        .is_empty()
    {
        return Ok(false);
    }
    git_with_input(
        project,
        &["update-ref", "-d", tracking, &commit],
        String::new(),
    )
    .await?;
    Ok(true)
}
