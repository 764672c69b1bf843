//! Quoting and names, as properties (proptest): arbitrary strings (quotes, `$()`,
//! backticks, `;`, `|`, `&`, globs, `~`, newlines, tabs, carriage returns, escape
//! characters, a leading `-`, non-ASCII) as argv words, env values, the cwd and file
//! names. Exec returns them exactly (`printf '%s\0'`), file operations create exactly
//! that name (checked with `read_dir` and on disk), and nothing is interpreted by a
//! shell (a sentinel command substitution would create a file that must never appear).
//!
//! Cases: 2,000 per property on the local backend (`PROPTEST_CASES` raises it, never
//! lowers it); over SSH a quarter of that (500 by default) because each case costs a few
//! round trips: 2,000 would take ~20 s there with an empty shell rc, and minutes with a
//! heavy one. The quoting code is the same (`cmux_core::quote`,
//! `ExecRequest::to_shell_script`); SSH adds its own wrapper and SFTP names, which the
//! smaller run covers.
//!
//! Paths are UTF-8 by design (`cmux_core::path`): a name that is not valid UTF-8 cannot
//! be given to cmux; the test at the end shows such a name on the host is listed with
//! replacement characters and is not touched by an operation on the listed name.

use std::path::Path;
use std::sync::Arc;

use cmux_core::{Error, ExecRequest, RemotePath, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::{SshdOptions, TestSshd};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Characters shells and terminals care about, drawn often.
const NASTY: &[char] = &[
    '\'', '"', '$', '(', ')', '`', ';', '|', '&', '<', '>', '*', '?', '[', ']', '{', '}', '~', '!',
    '#', '\\', ' ', '\n', '\t', '\r', '\u{1b}', '-', '=', '%', 'é', '✓', '日', '\u{200b}',
];

/// A sentinel a shell would run if it interpreted any word: `$(touch …)` and backticks.
fn sentinel(dir: &Path) -> String {
    format!("$(touch {0}/PWNED)`touch {0}/PWNED`", dir.display())
}

fn word() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => proptest::sample::select(NASTY),
        2 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
        1 => proptest::char::range('a', 'z'),
    ];
    proptest::collection::vec(ch, 0..12).prop_map(String::from_iter)
}

/// A file or directory name: a word that is not empty, `.`, `..`, and holds no `/`.
fn name() -> impl Strategy<Value = String> {
    word()
        .prop_map(|w| w.replace('/', "_"))
        .prop_filter("a plain name", |n| !n.is_empty() && n != "." && n != "..")
}

fn cases(scale: u32) -> u32 {
    let env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    (env.max(2000) / scale).max(1)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn split0(bytes: &[u8]) -> Vec<String> {
    let mut parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    // `printf '%s\0'` ends every word with a NUL: drop the empty tail.
    parts.pop();
    parts
}

/// The properties, on `rt` whose files are visible here under `scratch` (the SSH
/// "host" is this machine).
fn properties(rt: Arc<dyn Runtime>, scratch: &Path, scale: u32) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = cases(scale);
    let root = scratch.to_str().expect("utf-8 scratch").to_owned();
    let pwned = scratch.join("PWNED");

    // argv: every word comes back exactly, whatever it holds.
    runner(n)
        .run(&proptest::collection::vec(word(), 1..5), |words| {
            let mut argv = vec!["printf".to_owned(), "%s\\0".to_owned()];
            argv.extend(words.iter().cloned());
            argv.push(sentinel(scratch));
            let out = tokio
                .block_on(rt.output(ExecRequest::argv(argv), 1 << 20))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(out.status.success(), "{:?}", out);
            let mut want = words.clone();
            want.push(sentinel(scratch));
            prop_assert_eq!(split0(&out.stdout), want);
            prop_assert!(!pwned.exists(), "a word was run by a shell");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("argv words: {e}"));

    // env values and cwd: exported and entered exactly.
    runner(n)
        .run(&(word(), word(), name()), |(v1, v2, dir)| {
            let local = scratch.join(&dir);
            std::fs::create_dir_all(&local).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let cwd = RemotePath::new(format!("{root}/{dir}")).expect("path");
            let req = ExecRequest::script(r#"printf '%s\0' "$PWD" "$CMUX_V1" "$CMUX_V2""#)
                .env("CMUX_V1", v1.clone())
                .env("CMUX_V2", format!("{v2}{}", sentinel(scratch)))
                .cwd(cwd.clone());
            let out = tokio
                .block_on(rt.output(req, 1 << 20))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let _ = std::fs::remove_dir(&local);
            prop_assert!(out.status.success(), "{:?}", out);
            prop_assert_eq!(
                split0(&out.stdout),
                vec![
                    cwd.as_str().to_owned(),
                    v1.clone(),
                    format!("{v2}{}", sentinel(scratch))
                ]
            );
            prop_assert!(!pwned.exists(), "a value was run by a shell");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("env values and cwd: {e}"));

    // File names: created, listed, read, renamed and removed under exactly that name.
    let files = scratch.join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let files_root = RemotePath::new(files.to_str().expect("utf-8")).expect("path");
    runner(n)
        .run(&(name(), name()), |(a, b)| {
            let result = tokio.block_on(async {
                let pa = files_root.join(&a)?;
                rt.write_file(&pa, a.as_bytes()).await?;
                let listed = rt.read_dir(&files_root).await?;
                let read = rt.read_file(&pa).await?;
                let on_disk = std::fs::read(files.join(&a)).ok();
                let mut renamed = None;
                if a != b {
                    let pb = files_root.join(&b)?;
                    rt.rename(&pa, &pb).await?;
                    renamed = Some((
                        rt.read_dir(&files_root).await?,
                        std::fs::read(files.join(&b)).ok(),
                    ));
                    rt.remove(&pb, false).await?;
                } else {
                    rt.remove(&pa, false).await?;
                }
                let after = rt.read_dir(&files_root).await?;
                Ok::<_, Error>((listed, read, on_disk, renamed, after))
            });
            let (listed, read, on_disk, renamed, after) =
                result.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
            prop_assert_eq!(names, vec![a.as_str()]);
            prop_assert_eq!(&read, a.as_bytes());
            prop_assert_eq!(on_disk.as_deref(), Some(a.as_bytes()));
            if let Some((listed, on_disk)) = renamed {
                let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
                prop_assert_eq!(names, vec![b.as_str()]);
                prop_assert_eq!(on_disk.as_deref(), Some(a.as_bytes()));
            }
            prop_assert!(after.is_empty(), "left behind: {:?}", after);
            prop_assert!(!pwned.exists(), "a name was run by a shell");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("file names: {e}"));
}

#[test]
fn local_words_values_cwd_and_names_are_exact() {
    let dir = tempfile::tempdir().expect("tmp");
    let rt = Arc::new(cmux_backend_local::LocalRuntime::new().expect("runtime"));
    properties(rt, dir.path(), 1);
}

#[test]
fn ssh_words_values_cwd_and_names_are_exact() {
    // Sessions get an empty HOME, so the login shell reads no rc file: this machine's
    // root `~/.bashrc` (pyenv) costs ~150 ms per command, which measures the host's
    // shell startup, not quoting.
    let empty_home = tempfile::tempdir().expect("tmp");
    let sshd = TestSshd::start_with(SshdOptions {
        server_config: vec![format!("SetEnv HOME={}", empty_home.path().display())],
        ..Default::default()
    });
    let rt = Arc::new(sshd.runtime());
    properties(rt, &sshd.scratch(), 4);
}

/// A name that is not UTF-8, made on the host by other means: listed with U+FFFD
/// (never mangled into another existing file), and an operation on the listed name
/// touches nothing.
#[tokio::test]
async fn non_utf8_names_are_listed_lossily_and_never_touched() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tmp");
    let odd = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"bad-\xff-name"));
    std::fs::write(&odd, b"kept").expect("write");
    let rt = cmux_backend_local::LocalRuntime::new().expect("runtime");
    let root = RemotePath::new(dir.path().to_str().expect("utf-8")).expect("path");
    let listed = rt.read_dir(&root).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "bad-\u{fffd}-name");
    let shown = root.join(&listed[0].name).expect("join");
    assert!(matches!(
        rt.read_file(&shown).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        rt.remove(&shown, false).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(std::fs::read(&odd).expect("still there"), b"kept");
    // A path with a NUL byte (the one byte POSIX names cannot hold) is invalid input.
    assert!(matches!(
        RemotePath::new("a\0b"),
        Err(Error::InvalidInput { .. })
    ));
}
