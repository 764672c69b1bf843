//! Getting the work back home and keeping a workspace current: `cmux pull`, `cmux push`,
//! the base branch and the git identity of a new remote workspace, and what `rm` says
//! about the remote branch. SSH against a real sshd per test (the `ssh` module's
//! harness); local workspaces answer with a no-op message.

use std::path::Path;
use std::process::Output;

use cmux_integration_tests::sshd::SshdOptions;

use super::ssh::Remote;
use super::{git, stderr, stdout, Env};

/// An sshd whose sessions see no global or system git configuration (the test account
/// has an identity in its `~/.gitconfig`): on it, `git commit` works only when cmux
/// gave the workspace the project's identity, as on a fresh host.
fn host_without_git_identity() -> Remote {
    let r = Remote::with(SshdOptions {
        server_config: vec![
            "SetEnv GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 PYENV_REHASH_TIMEOUT=1"
                .into(),
        ],
        ..Default::default()
    });
    git(r.env.project(), &["config", "user.name", "Project Person"]);
    git(
        r.env.project(),
        &["config", "user.email", "person@project.invalid"],
    );
    r
}

/// Commits everything in the workspace as the agent would: plain `git commit`, no
/// identity given.
fn agent_commit(r: &Remote, ws: &str, file: &str, message: &str) {
    let script = format!("echo {message} > {file} && git add -A && git commit -qm '{message}'");
    r.ok(&["exec", ws, "--", &script]);
}

fn commit_local(dir: &Path, file: &str, message: &str) {
    std::fs::write(dir.join(file), format!("{message}\n")).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    stderr(out)
}

/// Replaces this test's paths, host and commit hashes with stable names, and drops
/// git's progress lines (their steps depend on git's timing).
fn normalize(r: &Remote, text: &str) -> String {
    let text = r
        .env
        .normalize(text)
        .replace(&r.src_base().display().to_string(), "[SRC_BASE]")
        .replace(r.host(), "[HOST]");
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("cmux: push to [HOST]: ")
            || line.starts_with("cmux: fetch from [HOST]: ")
        {
            continue;
        }
        let mut word = String::new();
        for c in line.chars().chain(std::iter::once('\n')) {
            if c.is_ascii_alphanumeric() {
                word.push(c);
                continue;
            }
            let is_hash = word.len() >= 7 && word.bytes().all(|b| b.is_ascii_hexdigit());
            out.push_str(if is_hash { "[COMMIT]" } else { &word });
            word.clear();
            out.push(c);
        }
    }
    out
}

#[test]
fn new_pull_rm_round_trip_brings_the_agents_commit_home() {
    let r = host_without_git_identity();
    let base = r.src_base().display().to_string();
    r.ok(&r.new_args("w1", &base, &[]));
    let ws = r.path_of("w1");
    let project = r.env.project();

    // The record knows where the workspace came from.
    let list: serde_json::Value = serde_json::from_str(&r.ok(&["list", "--json"])).expect("json");
    assert_eq!(list[0]["base"], "main");
    // The host's project directory is the user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ws.parent().expect("project dir"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");

    // The agent commits with no identity setup, as the project's author, and sees main.
    agent_commit(&r, "w1", "agent.txt", "agent work");
    assert_eq!(
        r.ok(&["exec", "w1", "--", "git log -1 --format='%an <%ae>'"])
            .trim(),
        "Project Person <person@project.invalid>"
    );
    assert_eq!(
        r.ok(&["exec", "w1", "--", "git log --format=%s main"])
            .trim(),
        "first"
    );
    assert_eq!(
        r.ok(&["exec", "w1", "--", "git rev-list --count main..HEAD"])
            .trim(),
        "1"
    );

    let refused = r.run(&["rm", "w1"]);
    let err = failed(&refused);
    assert!(
        err.contains("1 commits the local project does not have")
            && err.contains("\"agent work\"")
            && err.contains("cmux pull w1"),
        "{err}"
    );

    let pulled = r.ok(&["pull", "w1"]);
    let host_head = git(&ws, &["rev-parse", "HEAD"]);
    assert_eq!(git(project, &["rev-parse", "w1"]), host_head);
    assert_eq!(
        git(project, &["rev-parse", "refs/remotes/cmux/w1"]),
        host_head
    );
    // The project's checked-out main is untouched.
    assert_eq!(
        git(project, &["log", "-1", "--format=%s", "main"]).trim(),
        "first"
    );
    assert!(!project.join("agent.txt").exists());
    let again = r.ok(&["pull", "w1"]);

    let removed = r.ok(&["rm", "w1"]);
    assert!(!ws.exists());
    let bare = ws.parent().expect("project dir").join(".cmux-base.git");
    assert!(git(&bare, &["branch", "--list", "w1"]).trim().is_empty());
    assert_eq!(
        git(project, &["log", "-1", "--format=%s", "w1"]).trim(),
        "agent work"
    );
    assert!(
        git(project, &["for-each-ref", "refs/remotes/cmux"])
            .trim()
            .is_empty(),
        "the tracking ref went with the workspace"
    );
    insta::assert_snapshot!(
        "pull_round_trip",
        normalize(
            &r,
            &format!(
                "$ cmux rm w1\n{}$ cmux pull w1\n{pulled}$ cmux pull w1\n{again}$ cmux rm w1\n{removed}",
                stderr(&refused)
            )
        )
    );
}

#[test]
fn pull_moves_the_checked_out_branch_and_refuses_divergence() {
    let r = host_without_git_identity();
    let base = r.src_base().display().to_string();
    r.ok(&r.new_args("w", &base, &[]));
    let project = r.env.project();

    // Into the project's checked-out main: the branch and its files move together.
    agent_commit(&r, "w", "one.txt", "agent one");
    let out = r.ok(&["pull", "w", "--into", "main"]);
    assert!(out.contains("branch main fast-forwarded"), "{out}");
    assert_eq!(
        git(project, &["log", "-1", "--format=%s"]).trim(),
        "agent one"
    );
    assert!(project.join("one.txt").exists());
    assert!(git(project, &["status", "--porcelain"]).trim().is_empty());

    // Both sides move on: refused, nothing changed, the way to merge named.
    commit_local(project, "local.txt", "local two");
    agent_commit(&r, "w", "two.txt", "agent two");
    let local_head = git(project, &["rev-parse", "HEAD"]);
    let out = r.run(&["pull", "w", "--into", "main"]);
    let err = failed(&out);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("cmux: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one line: {err}");
    assert!(
        err.contains("diverged")
            && err.contains("1 commits only in the project, 1 only in the workspace")
            && err.contains(&format!("git -C {} merge cmux/w", project.display()))
            && err.contains("cmux pull w --into w-pulled"),
        "{err}"
    );
    assert_eq!(git(project, &["rev-parse", "HEAD"]), local_head);
    let refused = failed(&r.run(&["rm", "w"]));
    assert!(refused.contains("agent two"), "{refused}");

    // Following the advice by hand brings the commits home: rm agrees.
    git(project, &["merge", "-q", "--no-edit", "cmux/w"]);
    let removed = r.ok(&["rm", "w"]);
    assert!(
        removed.contains("branch w deleted on the host, the project has all its commits"),
        "{removed}"
    );
}

#[test]
fn push_sends_the_projects_new_commits_as_the_base_branch() {
    let r = host_without_git_identity();
    let base = r.src_base().display().to_string();
    r.ok(&r.new_args("w", &base, &[]));
    let project = r.env.project();
    agent_commit(&r, "w", "agent.txt", "agent work");

    commit_local(project, "news.txt", "local news");
    let out = r.run(&["push", "w"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = stdout(&out);
    assert_eq!(
        r.ok(&["exec", "w", "--", "git log -1 --format=%s main"])
            .trim(),
        "local news"
    );
    // The agent rebases onto the project's news.
    r.ok(&["exec", "w", "--", "git rebase -q main"]);
    assert_eq!(
        r.ok(&["exec", "w", "--", "git log --format=%s"]),
        "agent work\nlocal news\nfirst\n"
    );
    let again = r.ok(&["push", "w"]);

    // A workspace on branch main has it checked out on the host: push leaves it and
    // says why.
    r.ok(&r.new_args("main", &base, &[]));
    commit_local(project, "more.txt", "more news");
    let out = r.run(&["push", "w"]);
    let err = failed(&out);
    assert!(
        err.contains("checked out") && err.contains("git rebase"),
        "{err}"
    );
    assert_eq!(
        r.ok(&["exec", "main", "--", "git log -1 --format=%s"])
            .trim(),
        "local news"
    );
    insta::assert_snapshot!(
        "push",
        normalize(
            &r,
            &format!(
                "$ cmux push w\n{pushed}$ cmux push w\n{again}$ cmux push w  # main checked out on the host\n{err}"
            )
        )
    );
}

#[test]
fn pull_and_push_of_a_local_workspace_say_there_is_nothing_to_do() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    env.ok(&["new", "here", "--in-place"]);
    let mut text = String::new();
    for args in [
        ["pull", "w"],
        ["push", "w"],
        ["pull", "here"],
        ["push", "here"],
    ] {
        text.push_str(&format!("$ cmux {}\n{}", args.join(" "), env.ok(&args)));
    }
    insta::assert_snapshot!("local_pull_push", env.normalize(&text));
}
