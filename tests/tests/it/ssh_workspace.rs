//! The workspace lifecycle on an SSH host: shared bare repository filled by a local
//! push over the ControlMaster, worktrees, init hook, rm safety, rename and fork.

use std::path::Path;
use std::sync::{Arc, Mutex};

use cmux_backend_ssh::source::SshSource;
use cmux_core::workspace::{
    CreateOptions, DeleteOutcome, HookStream, Lifecycle, NoProgress, ProgressEvent, Project,
};
use cmux_integration_tests::sshd::TestSshd;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn lifecycle_on_an_ssh_host() {
    let sshd = TestSshd::start();
    let project_dir = sshd.dir().join("proj");
    std::fs::create_dir_all(project_dir.join(".cmux")).expect("mkdir");
    git(&project_dir, &["init", "-q", "-b", "main"]);
    std::fs::write(project_dir.join("a.txt"), "a\n").expect("write");
    std::fs::write(
        project_dir.join(".cmux/init"),
        "#!/bin/sh\necho \"hello $CMUX_WORKSPACE_NAME $CMUX_RUNTIME\"\n",
    )
    .expect("hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        project_dir.join(".cmux/init"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    git(&project_dir, &["add", "-A"]);
    git(&project_dir, &["commit", "-q", "-m", "one"]);
    let project = Project::open(&project_dir).await.expect("project");

    let rt = Arc::new(sshd.runtime());
    let src_base = sshd.scratch().join("src");
    let source = Arc::new(SshSource::new((*rt).clone()).with_src_base(src_base.to_string_lossy()));
    let lifecycle = Lifecycle::new(rt.clone(), source).with_lock_dir(sshd.dir().join("locks"));

    let w1 = lifecycle
        .create("w1", &project, &CreateOptions::default(), &NoProgress)
        .await
        .expect("create w1");
    let host_dir = Path::new(w1.path.as_str()).to_path_buf();
    assert!(host_dir.starts_with(&src_base), "{host_dir:?}");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("a.txt")).expect("a"),
        "a\n"
    );
    let bare = src_base.join(project.id()).join(".cmux-base.git");
    assert!(bare.join("HEAD").exists(), "shared bare repository");

    let lines = Mutex::new(Vec::new());
    let progress = |e: ProgressEvent<'_>| {
        if let ProgressEvent::HookLine { stream, line } = e {
            lines.lock().expect("lock").push((stream, line.to_owned()));
        }
    };
    lifecycle.init(&w1, &progress).await.expect("init");
    assert!(lines
        .lock()
        .expect("lock")
        .contains(&(HookStream::Stdout, "hello w1 ssh".to_owned())));

    // A new local commit reaches the second workspace through the same bare repo, and
    // only the new objects travel: keep every push as a pack to count them.
    git(&bare, &["config", "receive.unpackLimit", "1"]);
    for i in 0..20 {
        std::fs::write(project_dir.join(format!("f{i}.txt")), format!("{i}\n")).expect("write");
    }
    git(&project_dir, &["add", "-A"]);
    git(&project_dir, &["commit", "-q", "-m", "many files"]);
    lifecycle
        .create("w0", &project, &CreateOptions::default(), &NoProgress)
        .await
        .expect("create w0");
    let in_pack = |bare: &Path| -> u64 {
        git(bare, &["count-objects", "-v"])
            .lines()
            .find_map(|l| l.strip_prefix("in-pack: "))
            .and_then(|n| n.parse().ok())
            .expect("in-pack count")
    };
    let before = in_pack(&bare);
    std::fs::write(project_dir.join("b.txt"), "b\n").expect("write");
    git(&project_dir, &["add", "-A"]);
    git(&project_dir, &["commit", "-q", "-m", "two"]);
    let w2 = lifecycle
        .create("w2", &project, &CreateOptions::default(), &NoProgress)
        .await
        .expect("create w2");
    assert!(Path::new(w2.path.as_str()).join("b.txt").exists());
    // commit + root tree + blob (+ a delta base index-pack appends to complete a thin
    // pack), not the 22 objects of the previous push again.
    let sent = in_pack(&bare) - before;
    assert!(
        (3..=4).contains(&sent),
        "{sent} objects: only the new ones should travel"
    );

    // A commit made on the host only: rm refuses, unless forced.
    std::fs::write(host_dir.join("c.txt"), "c\n").expect("write");
    git(&host_dir, &["add", "-A"]);
    git(&host_dir, &["commit", "-q", "-m", "host only"]);
    let err = lifecycle
        .delete(&w1, false, &NoProgress)
        .await
        .expect_err("unsynced commit refused");
    assert!(err.to_string().contains("host only"), "{err}");

    let renamed = lifecycle
        .rename(&w1, "w1b", &NoProgress)
        .await
        .expect("rename");
    assert!(Path::new(renamed.path.as_str()).join("c.txt").exists());
    let forked = lifecycle
        .fork(&renamed, "w3", &NoProgress)
        .await
        .expect("fork");
    assert!(Path::new(forked.path.as_str()).join("c.txt").exists());

    assert_eq!(
        lifecycle
            .delete(&renamed, true, &NoProgress)
            .await
            .expect("forced rm"),
        DeleteOutcome::Removed
    );
    assert_eq!(
        lifecycle
            .delete(&renamed, true, &NoProgress)
            .await
            .expect("rm again"),
        DeleteOutcome::AlreadyGone
    );
    assert_eq!(
        lifecycle
            .delete(&w2, false, &NoProgress)
            .await
            .expect("clean rm"),
        DeleteOutcome::Removed
    );
}

/// A second workspace whose commit the host has runs no `git push` (the sync is one
/// command: a `pre-receive` hook in the shared repository would see a push), gets the
/// base branch and the project's identity; a new local commit is pushed, and moves the
/// base branch too. A hook printing a forged result line changes nothing. Helper mode
/// and the shell/SFTP fallback alike.
#[tokio::test]
async fn warm_sync_pushes_nothing_and_sets_the_base_branch_and_identity() {
    for fallback in [false, true] {
        let sshd = TestSshd::start();
        let project_dir = sshd.dir().join("proj");
        std::fs::create_dir_all(&project_dir).expect("mkdir");
        git(&project_dir, &["init", "-q", "-b", "main"]);
        git(&project_dir, &["config", "user.name", "Project Person"]);
        git(
            &project_dir,
            &["config", "user.email", "person@project.invalid"],
        );
        std::fs::write(project_dir.join("a.txt"), "a\n").expect("write");
        git(&project_dir, &["add", "-A"]);
        git(&project_dir, &["commit", "-q", "-m", "one"]);
        let project = Project::open(&project_dir).await.expect("project");
        let rt = Arc::new(if fallback {
            sshd.fallback_runtime()
        } else {
            sshd.runtime()
        });
        let src_base = sshd.scratch().join("src");
        let source =
            Arc::new(SshSource::new((*rt).clone()).with_src_base(src_base.to_string_lossy()));
        let lifecycle = Lifecycle::new(rt.clone(), source).with_lock_dir(sshd.dir().join("locks"));
        let w1 = lifecycle
            .create("w1", &project, &CreateOptions::default(), &NoProgress)
            .await
            .expect("create w1");
        assert_eq!(w1.base.as_deref(), Some("main"));
        let bare = src_base.join(project.id()).join(".cmux-base.git");
        let pushed = sshd.scratch().join("pushed");
        let hooks = bare.join("hooks");
        std::fs::create_dir_all(&hooks).expect("hooks dir");
        let hook = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let path = hooks.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("hook");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        };
        hook(
            "pre-receive",
            &format!("cat >/dev/null; echo x >> '{}'", pushed.display()),
        );
        hook(
            "reference-transaction",
            "cat >/dev/null; echo 'cmux-sync: missing new none'; echo 'cmux-create: taken'",
        );

        let w2 = lifecycle
            .create("w2", &project, &CreateOptions::default(), &NoProgress)
            .await
            .expect("create w2");
        assert!(
            !pushed.exists(),
            "fallback={fallback}: the warm sync pushed"
        );
        assert_eq!(w2.base.as_deref(), Some("main"));
        let local_main = git(&project_dir, &["rev-parse", "main"]);
        assert_eq!(git(&bare, &["rev-parse", "refs/heads/main"]), local_main);
        // The repository's own file (this file's `git` helper passes `-c user.name`).
        let config = |key: &str| git(&bare, &["config", "--file", "config", key]);
        assert_eq!(config("user.name"), "Project Person");
        assert_eq!(config("user.email"), "person@project.invalid");

        std::fs::write(project_dir.join("b.txt"), "b\n").expect("write");
        git(&project_dir, &["add", "-A"]);
        git(&project_dir, &["commit", "-q", "-m", "two"]);
        let w3 = lifecycle
            .create("w3", &project, &CreateOptions::default(), &NoProgress)
            .await
            .expect("create w3");
        assert!(
            pushed.exists(),
            "fallback={fallback}: a new commit is pushed"
        );
        assert!(Path::new(w3.path.as_str()).join("b.txt").exists());
        assert_eq!(
            git(&bare, &["rev-parse", "refs/heads/main"]),
            git(&project_dir, &["rev-parse", "main"])
        );
    }
}
