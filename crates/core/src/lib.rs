//! # cmux-core
//!
//! The contract every cmux backend implements, and everything built once on top of it.
//!
//! - [`Runtime`]: one place where commands run and files live (this machine, an SSH
//!   host, a Coder workspace, or your own backend). Object safe: hold it as
//!   `Arc<dyn Runtime>`.
//! - [`ExecRequest`] / [`Process`] / [`ExitStatus`]: streaming commands with timeouts
//!   and cancellation that kill the whole process group.
//! - [`RemotePath`]: POSIX paths inside a runtime, never the local `PathBuf`.
//! - [`quote`]: the one shell-quoting routine.
//! - [`temp`]: temporary files of atomic writes and the rule that cleans left-overs.
//! - [`jobs`]: background jobs (start, read output since the last read, kill, list) on
//!   any runtime.
//! - [`tools`]: the agent tools (bash, read, write, edit, list, glob, grep), identical on
//!   every backend because they only use the trait (or a backend's native grep, glob
//!   and edit, which give the same results).
//! - [`engine`]: the tools' pure parts (`cmux-engine`), re-exported for backends that
//!   run them where the files are.
//! - [`local_user`]: this machine's account (its passwd home), for backends that
//!   need it without reading environment variables.
//! - [`workspace`]: the workspace lifecycle (create, init, delete, rename, fork).
//! - `testkit` (feature `testkit`): the conformance suite a backend runs from its own
//!   tests.
//!
//! ```no_run
//! # async fn demo(rt: std::sync::Arc<dyn cmux_core::Runtime>) -> cmux_core::Result<()> {
//! use cmux_core::{ExecRequest, RuntimeExt};
//! let out = rt.output(ExecRequest::script("echo hello"), 1 << 20).await?;
//! assert_eq!(out.stdout, b"hello\n");
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub use cmux_engine as engine;

pub mod error;
pub mod exec;
pub mod jobs;
pub mod local_user;
pub mod path;
pub mod quote;
pub mod runtime;
pub mod temp;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tools;
pub mod workspace;

pub use error::{Error, Result};
pub use exec::{
    BoxRead, BoxWrite, Command, ExecRequest, ExitStatus, Output, Process, ProcessControl, Stdin,
};
pub use path::RemotePath;
pub use runtime::{DirEntry, FileKind, Metadata, Runtime, RuntimeExt, SharedRuntime, SmallFile};
