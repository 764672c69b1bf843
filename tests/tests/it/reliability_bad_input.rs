//! Bad input to the agent tools, locally and over SSH: a 1 GiB (sparse) file given to
//! `read_file` is refused with its size and how to read a range, without reading it; a
//! directory where a file is expected is refused by read, write and edit; a file that
//! is not UTF-8 given to edit is refused. Each is a clear error naming the path, and
//! nothing is written (the files and directories are byte-for-byte unchanged and no
//! temporary file is left). The CLI side is in `crates/cli/tests/cli/reliability.rs`.

use std::path::Path;
use std::sync::Arc;

use cmux_core::tools::{
    edit_file, read_file, write_file, EditFileInput, ReadFileInput, ToolContext, WriteFileInput,
};
use cmux_core::{Error, RemotePath, Runtime};
use cmux_integration_tests::sshd::TestSshd;

const GIB: u64 = 1 << 30;

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn bad_input(rt: Arc<dyn Runtime>, scratch: &Path) {
    let ctx = ToolContext::new(
        rt,
        RemotePath::new(scratch.to_str().expect("utf-8")).expect("path"),
    );
    let big = scratch.join("big.log");
    let ok = std::process::Command::new("truncate")
        .args(["-s", "1G"])
        .arg(&big)
        .status()
        .expect("truncate")
        .success();
    assert!(ok);
    std::fs::create_dir(scratch.join("adir")).expect("mkdir");
    std::fs::write(scratch.join("adir/inside.txt"), b"inside").expect("write");
    let binary: &[u8] = b"caf\xe9 \xff\xfe not utf-8\n";
    std::fs::write(scratch.join("latin1.txt"), binary).expect("write");
    let before = entries(scratch);

    // 1 GiB to read_file: refused with the size and a way to read a range.
    let err = read_file(
        &ctx,
        ReadFileInput {
            path: "big.log".into(),
            offset: None,
            limit: None,
        },
    )
    .await
    .expect_err("1 GiB is refused");
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(text.contains(&GIB.to_string()), "names the size: {text}");
    assert!(text.contains("big.log"), "names the file: {text}");
    assert!(
        text.contains("sed -n") && text.contains("head -c"),
        "says how to read a range: {text}"
    );

    // A directory where a file is expected.
    let err = read_file(
        &ctx,
        ReadFileInput {
            path: "adir".into(),
            offset: None,
            limit: None,
        },
    )
    .await
    .expect_err("a directory");
    assert!(matches!(err, Error::WrongKind { .. }), "{err:?}");
    assert!(err.to_string().contains("adir"), "{err}");
    let err = write_file(
        &ctx,
        WriteFileInput {
            path: "adir".into(),
            content: "clobber".into(),
        },
    )
    .await
    .expect_err("write over a directory");
    assert!(err.to_string().contains("adir"), "{err}");
    let err = edit_file(
        &ctx,
        EditFileInput {
            path: "adir".into(),
            old_string: "a".into(),
            new_string: "b".into(),
            replace_all: false,
        },
    )
    .await
    .expect_err("edit a directory");
    assert!(err.to_string().contains("adir"), "{err}");

    // Invalid UTF-8 given to edit.
    let err = edit_file(
        &ctx,
        EditFileInput {
            path: "latin1.txt".into(),
            old_string: "not".into(),
            new_string: "now".into(),
            replace_all: false,
        },
    )
    .await
    .expect_err("not UTF-8");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(
        err.to_string().contains("latin1.txt") && err.to_string().contains("UTF-8"),
        "{err}"
    );

    // Nothing was written anywhere.
    assert_eq!(entries(scratch), before, "no file created or left behind");
    assert_eq!(entries(&scratch.join("adir")), vec!["inside.txt"]);
    assert_eq!(
        std::fs::read(scratch.join("adir/inside.txt")).expect("read"),
        b"inside"
    );
    assert_eq!(
        std::fs::read(scratch.join("latin1.txt")).expect("read"),
        binary
    );
    assert_eq!(std::fs::metadata(&big).expect("stat").len(), GIB);
}

#[tokio::test]
async fn local_tools_refuse_bad_input_cleanly() {
    let dir = tempfile::tempdir().expect("tmp");
    let rt = Arc::new(cmux_backend_local::LocalRuntime::new().expect("runtime"));
    bad_input(rt, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_tools_refuse_bad_input_cleanly() {
    let sshd = TestSshd::start();
    let rt = Arc::new(sshd.runtime());
    bad_input(rt.clone(), &sshd.scratch()).await;
    rt.disconnect().await;
}
