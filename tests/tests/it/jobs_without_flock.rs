//! Background jobs on a host without `setsid(1)` and `flock(1)` (macOS, minimal
//! images): the supervisor gets a process group of its own (`set -m`) instead of a
//! session, and a lost supervisor is told by its PID and start time instead of a lock.
//! The job conformance cases run on a local runtime whose commands see a `PATH` with
//! every program of /usr/bin and /bin but those two.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cmux_backend_local::LocalRuntime;
use cmux_core::testkit::{self, Harness};
use cmux_core::{BoxRead, DirEntry, ExecRequest, Metadata, Process, RemotePath, Result, Runtime};

/// A local runtime whose commands run with `PATH` set to `path`.
#[derive(Debug)]
struct WithPath {
    inner: LocalRuntime,
    path: String,
}

#[async_trait]
impl Runtime for WithPath {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    async fn ensure_ready(&self) -> Result<()> {
        self.inner.ensure_ready().await
    }
    async fn exec(&self, req: ExecRequest) -> Result<Process> {
        self.inner.exec(req.env("PATH", self.path.clone())).await
    }
    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>> {
        self.inner.read_file(path).await
    }
    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        self.inner.open_read(path).await
    }
    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        self.inner.write_file(path, data).await
    }
    async fn stat(&self, path: &RemotePath) -> Result<Metadata> {
        self.inner.stat(path).await
    }
    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>> {
        self.inner.read_dir(path).await
    }
    async fn create_dir_all(&self, path: &RemotePath) -> Result<()> {
        self.inner.create_dir_all(path).await
    }
    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()> {
        self.inner.remove(path, recursive).await
    }
    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()> {
        self.inner.rename(from, to).await
    }
    async fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        self.inner.resolve_path(path).await
    }
}

/// A directory of links to every program of /usr/bin and /bin except `left_out`.
fn programs_without(dir: &Path, left_out: &[&str]) {
    for bin in ["/usr/bin", "/bin"] {
        let Ok(entries) = std::fs::read_dir(bin) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if left_out.iter().any(|l| name == **l) || dir.join(&name).exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), dir.join(&name));
        }
    }
}

/// Runs the job cases on local runtimes whose `PATH` is `bin`.
async fn job_cases_with_path(bin: &Path) {
    let path = bin.to_str().expect("utf-8").to_owned();
    let report = testkit::conformance_of(
        |case| case.name.starts_with("job_"),
        || {
            let path = path.clone();
            async move {
                let dir = tempfile::tempdir().expect("temp dir");
                let scratch = RemotePath::new(dir.path().to_str().expect("utf-8")).expect("path");
                let runtime = WithPath {
                    inner: LocalRuntime::new().expect("runtime"),
                    path,
                };
                Harness::new(Arc::new(runtime), scratch).keep_alive(dir)
            }
        },
    )
    .await;
    report.assert_passed();
}

/// What `command -v` finds for `programs` with `PATH` = `bin`.
async fn found(bin: &Path, programs: &str) -> String {
    let probe = WithPath {
        inner: LocalRuntime::new().expect("runtime"),
        path: bin.to_str().expect("utf-8").to_owned(),
    };
    let out = cmux_core::RuntimeExt::output(
        &probe,
        ExecRequest::script(format!("command -v {programs}")),
        4096,
    )
    .await
    .expect("probe");
    out.stdout_lossy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_cases_without_setsid_and_flock() {
    let bin = tempfile::tempdir().expect("bin dir");
    programs_without(bin.path(), &["setsid", "flock"]);
    let found = found(bin.path(), "setsid flock bash ps find").await;
    assert!(
        !found.contains("setsid") && !found.contains("flock") && found.contains("/ps"),
        "the PATH must hide setsid and flock only: {found}"
    );
    job_cases_with_path(bin.path()).await;
}

/// A file system without locks (an NFS home without lockd): `flock` fails, and jobs
/// go the way of hosts without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_cases_when_flock_fails() {
    let bin = tempfile::tempdir().expect("bin dir");
    programs_without(bin.path(), &["flock"]);
    let flock = bin.path().join("flock");
    std::fs::write(
        &flock,
        "#!/bin/sh\necho 'flock: failed to get lock: No locks available' >&2\nexit 1\n",
    )
    .expect("fake flock");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&flock, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(found(bin.path(), "flock")
        .await
        .contains(flock.to_str().expect("utf-8")));
    job_cases_with_path(bin.path()).await;
}
