//! The conformance suite: the contract every [`Runtime`](crate::Runtime) implements.
//!
//! A backend proves itself by running the suite from its own tests. Give it a factory
//! that returns a fresh [`Harness`] (a runtime and an empty, unique scratch directory
//! inside it) for each case:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use cmux_core::{RemotePath, SharedRuntime};
//! # fn my_runtime() -> SharedRuntime { unimplemented!() }
//! use cmux_core::testkit::{self, Harness};
//!
//! async fn harness() -> Harness {
//!     let dir = tempfile::tempdir().expect("temp dir");
//!     let scratch = RemotePath::new(dir.path().to_str().expect("utf-8")).expect("path");
//!     // `keep_alive` holds the TempDir until the case is over.
//!     Harness::new(my_runtime(), scratch).keep_alive(dir)
//! }
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     testkit::conformance(harness).await.assert_passed();
//! }
//!
//! // A remote backend can let the suite make its scratch directories with mktemp:
//! async fn remote_harness() -> Harness {
//!     Harness::in_runtime(my_runtime()).await
//! }
//!
//! // Or one test per case, for finer reports:
//! #[tokio::test(flavor = "multi_thread")]
//! async fn timeout_kills_group() {
//!     testkit::run_case("timeout_kills_group", harness).await;
//! }
//! ```
//!
//! Every case runs on its own harness and touches only its scratch directory, so
//! cases may run in parallel. A case fails by panicking; [`conformance`] runs every
//! case, catches those panics and reports all failures at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod exec_cases;
mod file_cases;
mod job_cases;
mod tool_cases;
mod util;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::path::RemotePath;
use crate::runtime::{RuntimeExt, SharedRuntime};
use crate::tools::ToolContext;

/// What one case runs on: a runtime and an empty scratch directory inside it.
pub struct Harness {
    /// The runtime under test.
    pub runtime: SharedRuntime,
    /// An empty directory, unique to this case, absolute, inside the runtime.
    pub scratch: RemotePath,
    keep_alive: Vec<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("runtime", &self.runtime)
            .field("scratch", &self.scratch)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness for `runtime` with the scratch directory `scratch` (absolute, empty,
    /// used by this case only).
    pub fn new(runtime: SharedRuntime, scratch: RemotePath) -> Self {
        Harness {
            runtime,
            scratch,
            keep_alive: Vec::new(),
        }
    }

    /// A harness whose scratch directory is made inside the runtime itself with
    /// `mktemp -d` (under `$TMPDIR` or `/tmp`): the easy choice for a remote backend.
    /// The suite removes it after a case that passed; a failed case keeps it.
    pub async fn in_runtime(runtime: SharedRuntime) -> Harness {
        let out = runtime
            .output(
                crate::ExecRequest::script(
                    "mktemp -d \"${TMPDIR:-/tmp}/cmux-conformance.XXXXXXXX\"",
                )
                .timeout(Duration::from_secs(60)),
                4096,
            )
            .await
            .unwrap_or_else(|e| panic!("creating a scratch directory with mktemp failed: {e}"));
        assert!(
            out.status.success(),
            "mktemp -d in the runtime failed ({}): {}",
            out.status,
            out.stderr_lossy()
        );
        let dir = out.stdout_lossy().trim_end_matches('\n').to_owned();
        let scratch = RemotePath::new(dir).expect("mktemp printed a path");
        assert!(
            scratch.is_absolute(),
            "mktemp printed a relative path: {scratch:?}"
        );
        Harness::new(runtime, scratch)
    }

    /// Keeps `guard` (a `TempDir`, a test server...) alive until the case is over.
    pub fn keep_alive(mut self, guard: impl Any + Send + Sync) -> Self {
        self.keep_alive.push(Box::new(guard));
        self
    }

    /// `scratch/name`.
    pub fn path(&self, name: &str) -> RemotePath {
        self.scratch.join(name).expect("valid scratch path")
    }

    /// Agent tools rooted at the scratch directory.
    pub fn tools(&self) -> ToolContext {
        ToolContext::new(self.runtime.clone(), self.scratch.clone())
    }
}

/// How a case ended without failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// The case does not apply to this runtime (the reason says why).
    Skipped(String),
}

/// The future a case returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One named conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// Stable name, usable with [`run_case`].
    pub name: &'static str,
    /// What the case checks, in a few words.
    pub checks: &'static str,
    run: fn(Harness) -> CaseFuture,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// Longest a case may take before it is reported as hung.
const CASE_DEADLINE: Duration = Duration::from_secs(180);

impl Case {
    /// Runs the case on `harness`, catching its panic (a failure) and a hang.
    pub async fn run(&self, harness: Harness) -> CaseResult {
        let started = Instant::now();
        let runtime = harness.runtime.clone();
        let scratch = harness.scratch.clone();
        let future = (self.run)(harness);
        let task = tokio::spawn(async move { tokio::time::timeout(CASE_DEADLINE, future).await });
        let status = match task.await {
            Ok(Ok(Outcome::Passed)) => CaseStatus::Passed,
            Ok(Ok(Outcome::Skipped(why))) => CaseStatus::Skipped(why),
            Ok(Err(_)) => CaseStatus::Failed(format!(
                "did not finish within {} s (hung?); scratch {scratch}",
                CASE_DEADLINE.as_secs()
            )),
            Err(e) => {
                let message = match e.try_into_panic() {
                    Ok(payload) => panic_message(payload.as_ref()),
                    Err(e) => format!("case task failed: {e}"),
                };
                CaseStatus::Failed(format!("{message} (scratch {scratch})"))
            }
        };
        if !matches!(status, CaseStatus::Failed(_)) {
            // Best effort: a failed case keeps its scratch directory for inspection.
            let _ = runtime.remove(&scratch, true).await;
        }
        CaseResult {
            name: self.name,
            status,
            elapsed: started.elapsed(),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "panicked".into()
    }
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    /// Every check held.
    Passed,
    /// Not applicable to this runtime.
    Skipped(String),
    /// A check failed; the message says which and why.
    Failed(String),
}

/// The result of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: &'static str,
    /// How it ended.
    pub status: CaseStatus,
    /// How long it took.
    pub elapsed: Duration,
}

/// The results of a conformance run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One result per case, in suite order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// The failed cases.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.status, CaseStatus::Failed(_)))
            .collect()
    }

    /// Panics listing every failed case (prints the report either way).
    #[track_caller]
    pub fn assert_passed(&self) {
        println!("{self}");
        let failures = self.failures();
        if !failures.is_empty() {
            let list: Vec<String> = failures
                .iter()
                .map(|r| match &r.status {
                    CaseStatus::Failed(m) => format!("- {}: {m}", r.name),
                    _ => String::new(),
                })
                .collect();
            panic!(
                "{} of {} conformance cases failed:\n{}",
                failures.len(),
                self.results.len(),
                list.join("\n")
            );
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            let ms = r.elapsed.as_millis();
            match &r.status {
                CaseStatus::Passed => writeln!(f, "ok      {} ({ms} ms)", r.name)?,
                CaseStatus::Skipped(why) => writeln!(f, "skipped {}: {why}", r.name)?,
                CaseStatus::Failed(m) => writeln!(f, "FAILED  {} ({ms} ms): {m}", r.name)?,
            }
        }
        let failed = self.failures().len();
        write!(
            f,
            "{} cases: {} passed, {} skipped, {failed} failed",
            self.results.len(),
            self.results
                .iter()
                .filter(|r| r.status == CaseStatus::Passed)
                .count(),
            self.results
                .iter()
                .filter(|r| matches!(r.status, CaseStatus::Skipped(_)))
                .count(),
        )
    }
}

macro_rules! suite {
    ($($module:ident :: $name:ident => $checks:literal,)*) => {
        /// Every case of the suite, in order.
        pub fn cases() -> Vec<Case> {
            vec![$(Case {
                name: stringify!($name),
                checks: $checks,
                run: |h| Box::pin($module::$name(h)),
            }),*]
        }
    };
}

suite! {
    exec_cases::exit_codes => "exit codes 0, 1 and 42 are reported as Exited(code)",
    exec_cases::stderr_separate => "stderr arrives apart from stdout",
    exec_cases::stdin_piped => "Stdin::Piped streams bytes in while stdout streams out; Stdin::Null gives EOF",
    exec_cases::stdin_bytes => "Stdin::Bytes feeds all 256 byte values",
    exec_cases::env_and_cwd => "env values with quotes, spaces, newlines and $() arrive intact; cwd is applied",
    exec_cases::non_interactive_env => "commands see GIT_TERMINAL_PROMPT=0 and GIT_EDITOR=true",
    exec_cases::argv_literal => "argv words reach the program literally",
    exec_cases::large_stdout_streams => "20 MB of stdout (and of stderr) stream without deadlock; output() keeps both ends",
    exec_cases::timeout_kills_group => "a timeout reports TimedOut and kills background children",
    exec_cases::cancel_kills_group => "a cancel reports Cancelled and kills background children",
    exec_cases::signal_reported => "death by signal is reported as Signaled(n)",
    exec_cases::drop_kills_group => "dropping a Process (or a future owning one) kills its group and frees its slot",
    file_cases::files_round_trip => "files round-trip byte-exact: all 256 byte values, empty, 10 MiB",
    file_cases::odd_names => "names with spaces, quotes, $(), backticks, newlines, leading -, non-ASCII",
    file_cases::atomic_rewrite => "a concurrent reader sees the old or the new content, never a mix",
    file_cases::mode_kept => "rewriting a file keeps its mode (0755, 0600)",
    file_cases::read_file_up_to_checks_kind_and_size => "read_file_up_to reads a regular file within the limit, gives the length of a larger one and the kind of a directory or fifo (without waiting on it)",
    file_cases::write_refuses_unwritable => "write_file refuses a read-only file and another user's file (NotWritable), even through a symlink; remove + write replaces it",
    file_cases::write_through_symlink => "writing through a symlink updates the target; the link stays",
    file_cases::write_through_symlinked_dir => "a link's target is relative to the link's real directory (d -> deep/sub, deep/sub/f -> ../g)",
    file_cases::not_found => "missing paths give Error::NotFound for every operation",
    file_cases::permission_denied => "unreadable files and directories give Error::PermissionDenied",
    file_cases::read_dir_sorted => "read_dir is sorted by name with the right kinds and sizes",
    file_cases::create_dir_all_idempotent => "create_dir_all creates parents and is idempotent",
    file_cases::remove_semantics => "remove: files, empty dirs, non-empty dirs only recursively, links not followed",
    file_cases::rename_replaces => "rename replaces an existing file and moves directories",
    file_cases::resolve_path => "resolve_path expands ~, ~/x and relative paths against the home",
    file_cases::open_read_streams => "open_read streams a file's exact bytes",
    file_cases::read_file_on_dir => "read_file of a directory is an error naming the path",
    tool_cases::tool_bash => "bash tool: output, exit status, stderr, cwd, timeout, head and tail of long output, cancel",
    tool_cases::tool_read_file => "read_file tool: numbering, offset/limit, long lines, empty, binary, big, dir",
    tool_cases::tool_read_image => "read_file tool: PNG, JPEG, GIF and WebP told by content come back as images; size cap",
    tool_cases::tool_write_file => "write_file tool: creates parents, relative to the workspace",
    tool_cases::tool_edit_file => "edit_file tool: unique/absent/not unique/replace_all/CRLF/refusals",
    tool_cases::tool_list_dir => "list_dir tool: kinds, sizes, sorting, errors",
    tool_cases::tool_glob => "glob tool: ** and *, .git skipped, odd names, cap",
    tool_cases::tool_grep => "grep tool: path:line:text, glob filter, binary and .git skipped, cap",
    tool_cases::tool_grep_context => "grep context lines: before, after, around, merged groups, -A/-B/-C",
    tool_cases::tool_grep_modes => "grep output modes: content, files_with_matches, count, cap in files",
    tool_cases::tool_grep_options => "grep -i, fixed strings, multiline, file types, hidden files, errors",
    tool_cases::tool_grep_skipped => "grep counts and names files skipped as too large, binary or non-UTF-8 names",
    tool_cases::tool_glob_newest_first => "glob sorts newest first, ties by path; the cap keeps the newest",
    tool_cases::tool_gitignore => "glob and grep skip files git ignores inside a work tree (ripgrep's rules)",
    tool_cases::tool_call_json => "tools called by name with JSON input (as over MCP), JSON output",
    job_cases::job_start_returns_at_once => "bash run_in_background returns a job id at once; the job outlives that call and later ones, in the workspace",
    job_cases::job_output_since_last_read => "a read returns the output since the last read (stdout and stderr interleaved), the offset shared by every reader",
    job_cases::job_wait => "a read with a wait returns at new output or at the job's end, and when its time is up",
    job_cases::job_exit_status => "an ended job reports its exit code or its signal (exit 143 is not SIGTERM)",
    job_cases::job_kill_kills_group => "kill ends the job's whole process group (SIGTERM, then SIGKILL), leaves an ended job alone, refuses unknown ids",
    job_cases::job_list => "list shows every job of the workspace (and only those) with state, command, pgid and output sizes",
    job_cases::job_cleanup => "job files are private (0700/0600) in the cache dir; removed once read and ended, or 24 h after the end; running jobs kept",
    job_cases::job_lost => "a job whose supervisor died is lost, not running forever; kill ends what is left of it",
    job_cases::job_output_cap => "a big read keeps head and tail with the file holding everything; pages read everything in order",
    job_cases::job_session_end => "ending a job session kills the jobs it started and only those",
    job_cases::job_follow_workspace => "jobs follow a renamed workspace (running ones go on); a removed workspace's jobs are killed with their groups and their files removed",
}

/// The smallest valid PNG (one transparent pixel): test data for image reads.
pub const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xaeB`\x82";

/// The case called `name`, if there is one.
pub fn case(name: &str) -> Option<Case> {
    cases().into_iter().find(|c| c.name == name)
}

/// Cases run at once by [`conformance`].
const PARALLEL_CASES: usize = 4;

/// Runs every case, each on a fresh harness from `factory`, a few at a time, and
/// reports each case's result. Call [`Report::assert_passed`] to fail a test.
pub async fn conformance<F, Fut>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
{
    conformance_of(|_| true, factory).await
}

/// [`conformance`] for the cases `select` picks, e.g. `|c| c.name.starts_with("job_")`.
pub async fn conformance_of<F, Fut>(select: impl Fn(&Case) -> bool, factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
{
    let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL_CASES));
    let mut handles = Vec::new();
    for case in cases().into_iter().filter(|c| select(c)) {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let harness = factory().await;
        handles.push(tokio::spawn(async move {
            let result = case.run(harness).await;
            drop(permit);
            result
        }));
    }
    let mut report = Report::default();
    for handle in handles {
        report.results.push(handle.await.expect("case runner"));
    }
    report
}

/// Runs the case called `name` on a harness from `factory`; panics when it fails (or
/// does not exist), prints a note when it is skipped.
pub async fn run_case<F, Fut>(name: &str, factory: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Harness>,
{
    let case = case(name).unwrap_or_else(|| {
        let names: Vec<_> = cases().iter().map(|c| c.name).collect();
        panic!("no conformance case {name:?}; cases: {}", names.join(", "))
    });
    let result = case.run(factory().await).await;
    match result.status {
        CaseStatus::Passed => {}
        CaseStatus::Skipped(why) => println!("conformance case {name} skipped: {why}"),
        CaseStatus::Failed(message) => panic!("conformance case {name} failed: {message}"),
    }
}
