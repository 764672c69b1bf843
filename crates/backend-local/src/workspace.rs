//! [`LocalSource`]: workspaces on this machine are git worktrees of the project itself
//! under `$CMUX_HOME/src/<project-id>/<name>` (directories created 0700), or the project
//! directory in place.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use async_trait::async_trait;
use cmux_core::workspace::{
    BaseBranch, Progress, Project, SourceLayout, SourceProvider, StartPoint, Synced,
};
use cmux_core::{Error, RemotePath, Result};

/// The local backend's [`SourceProvider`]: the project repository is already here, so
/// there is nothing to sync, and a workspace's branch lives in the project itself
/// (deleting the worktree never loses a commit).
#[derive(Clone, Debug)]
pub struct LocalSource {
    src_dir: PathBuf,
}

impl LocalSource {
    /// Workspaces go under `<cmux_home>/src/<project-id>/<name>`. `cmux_home` must be
    /// absolute.
    pub fn new(cmux_home: impl Into<PathBuf>) -> Self {
        LocalSource {
            src_dir: cmux_home.into().join("src"),
        }
    }
}

fn remote(path: &std::path::Path) -> Result<RemotePath> {
    let text = path.to_str().ok_or_else(|| {
        Error::invalid(format!(
            "{} is not valid UTF-8: use a UTF-8 path",
            path.display()
        ))
    })?;
    RemotePath::new(text)
}

#[async_trait]
impl SourceProvider for LocalSource {
    async fn layout(&self, project: &Project) -> Result<SourceLayout> {
        Ok(SourceLayout {
            repo: remote(project.path())?,
            base_dir: remote(&self.src_dir.join(project.id()))?,
        })
    }

    async fn sync(
        &self,
        project: &Project,
        _start: &StartPoint,
        _progress: &dyn Progress,
    ) -> Result<Synced> {
        // Private before the first worktree lands there: the checkouts of a project are
        // nobody else's business (git would make these directories 0755).
        let base = self.src_dir.join(project.id());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)
            .map_err(|e| Error::Io {
                host: "local".into(),
                context: format!("creating {} (mode 0700)", base.display()),
                source: e,
            })?;
        // The commit is the project's own, and so are its branches.
        Ok(Synced {
            base: BaseBranch::Shared,
            transferred: false,
        })
    }

    fn shares_project_repository(&self) -> bool {
        // A workspace's branch is a branch of the project already.
        true
    }

    async fn in_place_dir(&self, project: &Project) -> Result<RemotePath> {
        remote(project.path())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use cmux_core::workspace::{
        CreateOptions, DeleteOutcome, HookStream, InitOutcome, Lifecycle, NoProgress,
        ProgressEvent, Project,
    };
    use cmux_core::ExitStatus;

    use super::LocalSource;
    use crate::LocalRuntime;

    struct Dirs {
        root: PathBuf,
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

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

    fn setup(tag: &str) -> (Dirs, Project, Lifecycle) {
        let root = std::env::temp_dir().join(format!(
            "cmux-local-ws-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let project = root.join("proj");
        std::fs::create_dir_all(project.join(".cmux")).expect("mkdir");
        git(&project, &["init", "-q", "-b", "main"]);
        std::fs::write(project.join("a.txt"), "a\n").expect("write");
        std::fs::write(
            project.join(".cmux/init"),
            "#!/bin/sh\necho \"$CMUX_WORKSPACE_NAME $CMUX_RUNTIME\"\necho oops >&2\nexit 4\n",
        )
        .expect("write hook");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            project.join(".cmux/init"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        git(&project, &["add", "-A"]);
        git(&project, &["commit", "-q", "-m", "one"]);
        let runtime = Arc::new(LocalRuntime::new().expect("runtime"));
        let source = Arc::new(LocalSource::new(root.join("home")));
        let lifecycle = Lifecycle::new(runtime, source).with_lock_dir(root.join("home/locks"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let project = rt.block_on(Project::open(&project)).expect("project opens");
        (Dirs { root }, project, lifecycle)
    }

    #[tokio::test]
    async fn create_init_delete_rename_fork() {
        let (dirs, project, lifecycle) = tokio::task::spawn_blocking(|| setup("life"))
            .await
            .expect("setup");
        let ws = lifecycle
            .create("w", &project, &CreateOptions::default(), &NoProgress)
            .await
            .expect("create");
        let expected = dirs.root.join("home/src").join(project.id()).join("w");
        assert_eq!(ws.path.as_str(), expected.to_str().expect("utf8"));
        assert_eq!(ws.branch.as_deref(), Some("w"));

        let lines = Mutex::new(Vec::new());
        let progress = |e: ProgressEvent<'_>| {
            if let ProgressEvent::HookLine { stream, line } = e {
                lines.lock().expect("lock").push((stream, line.to_owned()));
            }
        };
        let outcome = lifecycle.init(&ws, &progress).await.expect("init");
        assert_eq!(outcome, InitOutcome::Failed(ExitStatus::Exited(4)));
        let lines = lines.into_inner().expect("lines");
        assert!(lines.contains(&(HookStream::Stdout, "w local".to_owned())));
        assert!(lines.contains(&(HookStream::Stderr, "oops".to_owned())));

        // Dirty: refused, then forced.
        std::fs::write(expected.join("new.txt"), "x").expect("write");
        let err = lifecycle
            .delete(&ws, false, &NoProgress)
            .await
            .expect_err("dirty refused");
        assert!(err.to_string().contains("uncommitted changes"), "{err}");
        git(&expected, &["add", "-A"]);
        git(&expected, &["commit", "-q", "-m", "work"]);

        let renamed = lifecycle
            .rename(&ws, "w2", &NoProgress)
            .await
            .expect("rename");
        assert_eq!(renamed.branch.as_deref(), Some("w2"));
        assert!(Path::new(renamed.path.as_str()).join("new.txt").exists());

        let forked = lifecycle
            .fork(&renamed, "w3", &NoProgress)
            .await
            .expect("fork");
        assert!(Path::new(forked.path.as_str()).join("new.txt").exists());

        assert_eq!(
            lifecycle
                .delete(&renamed, false, &NoProgress)
                .await
                .expect("rm"),
            DeleteOutcome::Removed
        );
        assert_eq!(
            lifecycle
                .delete(&renamed, false, &NoProgress)
                .await
                .expect("rm again"),
            DeleteOutcome::AlreadyGone
        );
        // The branch stayed in the project; a new workspace of that name resumes it.
        let again = lifecycle
            .create("w2", &project, &CreateOptions::default(), &NoProgress)
            .await
            .expect("resume branch");
        assert!(Path::new(again.path.as_str()).join("new.txt").exists());
        let clash = CreateOptions {
            from: Some("main".into()),
            ..Default::default()
        };
        let err = lifecycle
            .create(
                "w3x",
                &project,
                &CreateOptions {
                    branch: Some("w3".into()),
                    ..clash
                },
                &NoProgress,
            )
            .await
            .expect_err("existing branch with --from");
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[tokio::test]
    async fn in_place_is_never_deleted() {
        let (_dirs, project, lifecycle) = tokio::task::spawn_blocking(|| setup("inplace"))
            .await
            .expect("setup");
        let options = CreateOptions {
            in_place: true,
            ..Default::default()
        };
        let ws = lifecycle
            .create("here", &project, &options, &NoProgress)
            .await
            .expect("create");
        assert_eq!(ws.path.as_str(), project.path_str());
        assert_eq!(ws.branch.as_deref(), Some("main"));
        assert_eq!(
            lifecycle.delete(&ws, true, &NoProgress).await.expect("rm"),
            DeleteOutcome::KeptInPlace
        );
        assert!(project.path().join("a.txt").exists());
    }
}
