//! Crash during a write: a child process (`cmux-writer`) replacing a 1 MiB file with
//! cmux writes of alternating complete contents (all `A`, all `B`) is SIGKILLed at a
//! random moment, 200 times per backend (local, and SSH against the real test sshd).
//! After every kill the target holds exactly the complete old or the complete new
//! content. The temporary files the killed writers left are then removed by the
//! documented rule of `cmux_core::temp` (older than 10 minutes, swept by the next write
//! into the directory), while a fresh temporary file (a live writer's) and look-alike
//! names are kept.
//!
//! The random kill delays come from `fastrand`; the seed is printed so a failure can be
//! replayed with `CMUX_CRASH_SEED=<seed>`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cmux_core::{RemotePath, Runtime};
use cmux_integration_tests::sshd::TestSshd;

/// Kills per backend.
const KILLS: usize = 200;
/// Size of each content.
const SIZE: usize = 1 << 20;

fn seed() -> u64 {
    let seed = std::env::var("CMUX_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash test seed: CMUX_CRASH_SEED={seed}");
    seed
}

/// Runs `KILLS` rounds of: start the writer, wait until its first write is done, let it
/// write on for a random 0-`max_ms` ms, SIGKILL it, check the target. Returns how many
/// rounds left a temporary file behind (kills that landed mid-write).
fn kill_rounds(
    writer: impl Fn() -> Command,
    target: &Path,
    max_ms: u64,
    diag: impl Fn() -> String,
) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed());
    let dir = target.parent().expect("target has a parent");
    let mut mid_write = 0;
    let mut seen_temps = temp_files(dir);
    for round in 0..KILLS {
        let mut child = writer()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cmux-writer starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read ready line");
        if line != "ready\n" {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("round {round}: the writer did not start: {line:?} {err}");
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..max_ms * 1000)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reaped");
        assert!(
            status.code().is_none(),
            "round {round}: the writer ended by itself ({status}): {}\n{}",
            {
                let mut err = String::new();
                let _ = child
                    .stderr
                    .take()
                    .expect("stderr")
                    .read_to_string(&mut err);
                err
            },
            diag()
        );
        let data = std::fs::read(target).expect("the target always exists");
        let whole = |b: u8| data.len() == SIZE && data.iter().all(|x| *x == b);
        assert!(
            whole(b'A') || whole(b'B'),
            "round {round}: torn target: {} bytes, {} A, {} B",
            data.len(),
            data.iter().filter(|b| **b == b'A').count(),
            data.iter().filter(|b| **b == b'B').count()
        );
        let temps = temp_files(dir);
        if temps.len() > seen_temps.len() {
            mid_write += 1;
        }
        seen_temps = temps;
    }
    eprintln!("{KILLS} kills, {mid_write} landed mid-write (left a temporary file)");
    mid_write
}

/// The cmux temporary files in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| cmux_core::temp::is_temp_name(n))
        .collect();
    names.sort();
    names
}

/// Ages `files` by an hour (as if their writers died an hour ago); for a staging
/// directory (the SSH backend's private one), the temporary file inside it too.
fn age(files: &[PathBuf]) {
    let an_hour_ago = cmux_core::temp::now_unix() - 3600;
    let inside: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.is_dir())
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    for f in inside.iter().chain(files) {
        let ok = Command::new("touch")
            .arg("-m")
            .arg("-d")
            .arg(format!("@{an_hour_ago}"))
            .arg(f)
            .status()
            .expect("touch runs")
            .success();
        assert!(ok, "touch {}", f.display());
    }
}

/// The leftovers of the kills, aged, plus look-alikes; one write through `rt` (whose
/// first write into the directory sweeps it) must remove exactly the stale temporary
/// files.
async fn sweep_check(rt: &dyn Runtime, target: &Path, leftovers_expected: bool) {
    let dir = target.parent().expect("parent");
    let leftovers = temp_files(dir);
    assert!(
        !leftovers_expected || !leftovers.is_empty(),
        "the kills left no temporary file: nothing to clean"
    );
    let young = dir.join(cmux_core::temp::temp_name("target"));
    let unrelated_old = [
        dir.join(".target.cmux-tmp.notapid.1"),
        dir.join("notes.txt"),
    ];
    std::fs::write(&young, b"a live writer's temp file").expect("young temp");
    for f in &unrelated_old {
        std::fs::write(f, b"keep me").expect("write");
    }
    let mut aged: Vec<PathBuf> = leftovers.iter().map(|n| dir.join(n)).collect();
    aged.push(dir.join(cmux_core::temp::temp_name("other-file")));
    std::fs::write(aged.last().expect("one"), b"x").expect("write");
    aged.extend(unrelated_old.iter().cloned());
    age(&aged);

    let remote = RemotePath::new(target.to_str().expect("utf-8")).expect("path");
    rt.write_file(&remote, &vec![b'A'; SIZE])
        .await
        .expect("the write after the crashes succeeds");
    assert_eq!(std::fs::read(target).expect("read"), vec![b'A'; SIZE]);
    let left = temp_files(dir);
    assert_eq!(
        left,
        vec![young
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned()],
        "only the live writer's temporary file is left"
    );
    for f in &unrelated_old {
        assert!(f.exists(), "{} is not a cmux temp file: kept", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_writer_killed_200_times_never_tears_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let target = dir.path().join("target");
    std::fs::write(&target, vec![b'A'; SIZE]).expect("initial content");
    let t = target.clone();
    let mid_write = tokio::task::spawn_blocking(move || {
        kill_rounds(
            || {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_cmux-writer"));
                cmd.args(["local", t.to_str().expect("utf-8"), &SIZE.to_string()]);
                cmd
            },
            &t,
            30,
            String::new,
        )
    })
    .await
    .expect("rounds");
    let rt = cmux_backend_local::LocalRuntime::new().expect("runtime");
    sweep_check(&rt, &target, mid_write > 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_writer_killed_200_times_never_tears_the_file() {
    let sshd = TestSshd::start();
    let target = sshd.scratch().join("target");
    std::fs::write(&target, vec![b'A'; SIZE]).expect("initial content");
    let ctl = sshd.dir().join("ctl");
    let (t, alias, config) = (target.clone(), sshd.alias().to_owned(), sshd.config_path());
    let (sshd_log, ctl_dir) = (sshd.dir().join("sshd.log"), ctl.clone());
    let diag = move || {
        let mut text = std::fs::read_to_string(&sshd_log).unwrap_or_default();
        text = text.lines().rev().take(30).collect::<Vec<_>>().join("\n");
        for e in std::fs::read_dir(&ctl_dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                text.push_str(&format!(
                    "\n--- {}:\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
        }
        text
    };
    let mid_write = tokio::task::spawn_blocking(move || {
        kill_rounds(
            || {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_cmux-writer"));
                cmd.args(["ssh", t.to_str().expect("utf-8"), &SIZE.to_string(), &alias])
                    .arg(&config)
                    .arg(&ctl);
                cmd
            },
            &t,
            60,
            diag,
        )
    })
    .await
    .expect("rounds");
    // A killed writer's SFTP session may still be starting (the host's shell rc) with
    // its requests queued: let every session finish before aging the left-overs.
    let left =
        crate::reliability_orphans::sessions_settled(sshd.port(), Duration::from_secs(120)).await;
    assert!(left.is_empty(), "sessions still running: {left:?}");
    // The same options as the writers: the test attaches to their master.
    let rt = sshd.runtime();
    sweep_check(&rt, &target, mid_write > 0).await;
    rt.disconnect().await;
}
