//! [`GenericOnly`]: a runtime that hides another's native tool methods, so the agent
//! tools take the generic path (list + fetch, matched locally) on it. Used to prove
//! that the native and generic paths give the same results on the same tree.

use std::fmt;

use async_trait::async_trait;
use cmux_core::{
    BoxRead, DirEntry, ExecRequest, Metadata, Process, RemotePath, Result, Runtime, SharedRuntime,
};

/// Delegates every required method of the Runtime contract to `inner`, and keeps the
/// default (`Ok(None)`: "use the generic path") for `grep`, `glob` and `edit`.
pub struct GenericOnly(pub SharedRuntime);

impl fmt::Debug for GenericOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GenericOnly({:?})", self.0)
    }
}

#[async_trait]
impl Runtime for GenericOnly {
    fn host(&self) -> &str {
        self.0.host()
    }

    fn kind(&self) -> &str {
        self.0.kind()
    }

    async fn ensure_ready(&self) -> Result<()> {
        self.0.ensure_ready().await
    }

    async fn exec(&self, req: ExecRequest) -> Result<Process> {
        self.0.exec(req).await
    }

    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>> {
        self.0.read_file(path).await
    }

    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        self.0.open_read(path).await
    }

    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        self.0.write_file(path, data).await
    }

    async fn stat(&self, path: &RemotePath) -> Result<Metadata> {
        self.0.stat(path).await
    }

    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>> {
        self.0.read_dir(path).await
    }

    async fn create_dir_all(&self, path: &RemotePath) -> Result<()> {
        self.0.create_dir_all(path).await
    }

    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()> {
        self.0.remove(path, recursive).await
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()> {
        self.0.rename(from, to).await
    }

    async fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        self.0.resolve_path(path).await
    }
}
