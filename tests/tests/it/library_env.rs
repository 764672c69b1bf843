//! Library crates read no environment variables (a project rule): configuration comes
//! through options, and the CLI maps variables to them. Checked on the sources, and by
//! running the library in a process whose `HOME` and `PATH` say something else.

use std::path::{Path, PathBuf};

use cmux_backend_local::LocalRuntime;
use cmux_core::Runtime;

/// Crates that are programs, not libraries: they may read their environment.
const PROGRAMS: &[&str] = &["cli", "bench", "host"];

/// What reads an environment variable at run time.
const READS: &[&str] = &[
    "env::var(",
    "env::var_os(",
    "env::vars(",
    "env::vars_os(",
    "env::home_dir(",
    "env::temp_dir(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn library_crates_read_no_environment_variables() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut found = Vec::new();
    let mut scanned = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if PROGRAMS.contains(&name.as_str()) {
            continue;
        }
        // src/ only: a build script runs at build time and reads what cargo sets.
        let mut files = Vec::new();
        let src = entry.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            // Unit tests live at the end of a file, after `#[cfg(test)]`.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                if READS.iter().any(|read| line.contains(read)) {
                    found.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
            scanned += 1;
        }
    }
    assert!(
        scanned > 50,
        "only {scanned} files scanned under {crates:?}"
    );
    assert!(
        found.is_empty(),
        "library code reads environment variables (move each to an option the CLI sets):\n{}",
        found.join("\n")
    );
}

/// The home of this user in the passwd database, as `getent` shows it.
fn passwd_home() -> String {
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id -u");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    let out = std::process::Command::new("getent")
        .args(["passwd", &uid])
        .output()
        .expect("getent");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    line.trim()
        .split(':')
        .nth(5)
        .expect("home field")
        .to_owned()
}

/// Run by [`local_runtime_ignores_home_and_coder_ignores_path`] in a child process
/// whose `HOME`, `PATH` and `CMUX_CODER_BIN` lie.
#[tokio::test]
#[ignore = "run in a child process by local_runtime_ignores_home_and_coder_ignores_path"]
async fn child_with_a_lying_environment() {
    assert_eq!(
        std::env::var("HOME").as_deref(),
        Ok("/nonexistent-home"),
        "run me through the parent test"
    );
    let runtime = LocalRuntime::new().expect("a runtime without a usable HOME");
    let home = runtime.resolve_path("~").await.expect("~");
    let expected = std::env::var("CMUX_IT_PASSWD_HOME").expect("the parent's passwd home");
    assert_eq!(home.as_str(), expected);

    // `coder` is searched in the caller's search path, never in PATH (where the
    // parent put one) nor at CMUX_CODER_BIN.
    let search = std::env::var_os("CMUX_IT_SEARCH_PATH").expect("search path");
    let options = cmux_backend_coder::CoderOptions::default().search_path(search.clone());
    let cli = cmux_backend_coder::CoderCli::locate(
        options.coder_bin.as_deref(),
        options.search_path.as_deref(),
        None,
    )
    .expect("coder in the search path");
    assert_eq!(cli.bin(), Path::new(&search).join("coder"));
    println!("child checks passed");
}

#[test]
fn local_runtime_ignores_home_and_coder_ignores_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (searched, on_path) = (dir.path().join("searched"), dir.path().join("on-path"));
    for d in [&searched, &on_path] {
        std::fs::create_dir(d).expect("mkdir");
        std::fs::write(d.join("coder"), "#!/bin/sh\n").expect("write");
    }
    let out = std::process::Command::new(cmux_integration_tests::sshd::test_binary())
        .args([
            "library_env::child_with_a_lying_environment",
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("HOME", "/nonexistent-home")
        .env("PATH", &on_path)
        .env("CMUX_CODER_BIN", on_path.join("coder"))
        .env("CMUX_IT_SEARCH_PATH", &searched)
        .env("CMUX_IT_PASSWD_HOME", passwd_home())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child checks passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
