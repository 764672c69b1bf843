//! The conformance suite on `LocalRuntime`: one test per case, so failures name the
//! case. Running as root skips `permission_denied` (root bypasses modes) with a note.

use std::sync::Arc;

use cmux_backend_local::LocalRuntime;
use cmux_core::testkit::{self, Harness};
use cmux_core::RemotePath;

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = RemotePath::new(dir.path().to_str().expect("utf-8 temp dir")).expect("path");
    let runtime = LocalRuntime::new().expect("local runtime");
    Harness::new(Arc::new(runtime), scratch).keep_alive(dir)
}

/// The whole suite through `conformance()`, the entry point third-party backends use:
/// runs the cases a few at a time and reports every failure at once. On the default
/// single-threaded test runtime, which a backend's plain `#[tokio::test]` gets (the
/// per-case tests below use the multi-threaded one).
#[tokio::test]
async fn whole_suite_report() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}

/// `Harness::in_runtime`: the scratch directory made by the runtime (mktemp), removed
/// by the suite after a passing case.
#[tokio::test(flavor = "multi_thread")]
async fn harness_in_runtime() {
    let runtime: cmux_core::SharedRuntime = Arc::new(LocalRuntime::new().expect("runtime"));
    let harness = Harness::in_runtime(runtime.clone()).await;
    let scratch = harness.scratch.clone();
    assert!(runtime
        .read_dir(&scratch)
        .await
        .expect("scratch")
        .is_empty());
    let case = testkit::case("odd_names").expect("case");
    let result = case.run(harness).await;
    assert_eq!(result.status, testkit::CaseStatus::Passed);
    assert!(
        runtime.stat(&scratch).await.is_err(),
        "scratch {scratch:?} removed after a passing case"
    );
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                testkit::run_case(stringify!($name), harness).await;
            }
        )*

        /// Every case of the suite has a test here.
        #[test]
        fn every_case_is_listed() {
            let listed = [$(stringify!($name)),*];
            let missing: Vec<&str> = testkit::cases()
                .iter()
                .map(|c| c.name)
                .filter(|n| !listed.contains(n))
                .collect();
            assert!(missing.is_empty(), "add these cases to conformance_local.rs: {missing:?}");
        }
    };
}

cases!(
    exit_codes,
    stderr_separate,
    stdin_piped,
    stdin_bytes,
    env_and_cwd,
    non_interactive_env,
    argv_literal,
    large_stdout_streams,
    timeout_kills_group,
    cancel_kills_group,
    signal_reported,
    drop_kills_group,
    files_round_trip,
    odd_names,
    atomic_rewrite,
    mode_kept,
    read_file_up_to_checks_kind_and_size,
    write_refuses_unwritable,
    write_through_symlink,
    write_through_symlinked_dir,
    not_found,
    permission_denied,
    read_dir_sorted,
    create_dir_all_idempotent,
    remove_semantics,
    rename_replaces,
    resolve_path,
    open_read_streams,
    read_file_on_dir,
    tool_bash,
    tool_read_file,
    tool_read_image,
    tool_write_file,
    tool_edit_file,
    tool_list_dir,
    tool_glob,
    tool_grep,
    tool_grep_context,
    tool_grep_modes,
    tool_grep_options,
    tool_grep_skipped,
    tool_glob_newest_first,
    tool_gitignore,
    tool_call_json,
    job_start_returns_at_once,
    job_output_since_last_read,
    job_wait,
    job_exit_status,
    job_kill_kills_group,
    job_list,
    job_cleanup,
    job_lost,
    job_output_cap,
    job_session_end,
    job_follow_workspace,
);
