//! Cases about running commands.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::util::{diff, noise, q, run, sh, wait_gone, write, HELPER_TIMEOUT};
use super::{Harness, Outcome};
use crate::exec::{ExecRequest, ExitStatus, Stdin};
use crate::runtime::RuntimeExt;

pub(super) async fn exit_codes(h: Harness) -> Outcome {
    for code in [0, 1, 42] {
        let out = run(&h, ExecRequest::script(format!("exit {code}"))).await;
        assert_eq!(
            out.status,
            ExitStatus::Exited(code),
            "`exit {code}` must give Exited({code})"
        );
    }
    let out = run(&h, ExecRequest::argv(["false"])).await;
    assert_eq!(out.status, ExitStatus::Exited(1), "argv `false`");
    Outcome::Passed
}

pub(super) async fn stderr_separate(h: Harness) -> Outcome {
    let out = run(&h, ExecRequest::script("printf out; printf err >&2")).await;
    assert_eq!(out.stdout, b"out", "stdout of `printf out; printf err >&2`");
    assert_eq!(out.stderr, b"err", "stderr of `printf out; printf err >&2`");
    let out = run(
        &h,
        ExecRequest::script("for ((i=0;i<2000;i++)); do echo o$i; echo e$i >&2; done"),
    )
    .await;
    let stdout = out.stdout_lossy();
    let stderr = out.stderr_lossy();
    assert_eq!(
        stdout.lines().count(),
        2000,
        "interleaved stdout line count"
    );
    assert_eq!(
        stderr.lines().count(),
        2000,
        "interleaved stderr line count"
    );
    assert!(
        stdout.lines().all(|l| l.starts_with('o')) && stderr.lines().all(|l| l.starts_with('e')),
        "stdout and stderr lines were mixed"
    );
    Outcome::Passed
}

pub(super) async fn stdin_piped(h: Harness) -> Outcome {
    let data = noise(1 << 20, 7);
    let mut process = h
        .runtime
        .exec(
            ExecRequest::script("cat")
                .stdin(Stdin::Piped)
                .timeout(HELPER_TIMEOUT),
        )
        .await
        .expect("exec cat with piped stdin");
    let mut stdin = process
        .stdin
        .take()
        .expect("Stdin::Piped gives a stdin pipe");
    let mut stdout = process.stdout.take().expect("stdout pipe");
    let input = data.clone();
    // Write and read at once: 1 MiB does not fit in pipe buffers.
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.expect("write to stdin");
        stdin.shutdown().await.expect("close stdin");
    });
    let mut echoed = Vec::new();
    stdout
        .read_to_end(&mut echoed)
        .await
        .expect("read stdout of cat");
    writer.await.expect("stdin writer");
    let status = process.wait().await.expect("wait for cat");
    assert_eq!(status, ExitStatus::Exited(0), "cat with piped stdin");
    assert!(
        echoed == data,
        "bytes piped through cat differ: {}",
        diff(&echoed, &data)
    );
    // Stdin::Null: the command sees end of input at once instead of waiting.
    let out = run(
        &h,
        ExecRequest::script("cat").timeout(Duration::from_secs(20)),
    )
    .await;
    assert_eq!(
        out.status,
        ExitStatus::Exited(0),
        "`cat` with Stdin::Null must see end of input at once"
    );
    assert!(
        out.stdout.is_empty(),
        "`cat` with Stdin::Null printed bytes"
    );
    Outcome::Passed
}

pub(super) async fn stdin_bytes(h: Harness) -> Outcome {
    let data: Vec<u8> = (0..=255u8).cycle().take(256 * 64).collect();
    let out = run(
        &h,
        ExecRequest::script("cat").stdin(Stdin::Bytes(data.clone())),
    )
    .await;
    assert_eq!(out.status, ExitStatus::Exited(0), "cat with Stdin::Bytes");
    assert!(
        out.stdout == data,
        "Stdin::Bytes through cat: {}",
        diff(&out.stdout, &data)
    );
    let out = run(
        &h,
        ExecRequest::script("cat").stdin(Stdin::Bytes(Vec::new())),
    )
    .await;
    assert!(out.stdout.is_empty(), "empty Stdin::Bytes");
    Outcome::Passed
}

pub(super) async fn env_and_cwd(h: Harness) -> Outcome {
    let values = [
        (
            "A",
            "it's \"quoted\" $(echo injected) `echo tick` ; & | > <",
        ),
        ("B", "  spaces  around  "),
        ("C", "line one\nline two\n"),
        ("D", ""),
        ("E", "é✓ \\ \t $HOME ${PATH}"),
    ];
    let mut req = ExecRequest::script("printf '%s\\0' \"$A\" \"$B\" \"$C\" \"$D\" \"$E\"");
    for (k, v) in values {
        req = req.env(k, v);
    }
    let out = run(&h, req).await;
    assert_eq!(out.status, ExitStatus::Exited(0), "printf of env values");
    let got: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    for (i, (k, v)) in values.iter().enumerate() {
        assert_eq!(
            got.get(i).map(String::as_str),
            Some(*v),
            "env {k} must arrive exactly"
        );
    }
    let dir = h.path("cwd it's a \"dir\" $(x) é");
    h.runtime
        .create_dir_all(&dir)
        .await
        .expect("create cwd dir");
    write(&h, &dir.join("marker").expect("path"), b"here").await;
    let out = run(
        &h,
        ExecRequest::script("cat marker; echo; pwd").cwd(dir.clone()),
    )
    .await;
    assert_eq!(out.status, ExitStatus::Exited(0), "command in cwd {dir:?}");
    let text = out.stdout_lossy();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("here"),
        "cwd not applied: marker not found"
    );
    let pwd = lines.next().unwrap_or_default();
    assert!(
        pwd.ends_with(dir.file_name().expect("name")),
        "pwd {pwd:?} does not end with the cwd's name"
    );
    // A missing cwd fails the command (or the exec), never runs it elsewhere.
    let missing = h.path("no such dir");
    match h
        .runtime
        .output(
            ExecRequest::script("echo ran")
                .cwd(missing)
                .timeout(HELPER_TIMEOUT),
            1024,
        )
        .await
    {
        Err(_) => {}
        Ok(out) => assert!(
            !out.status.success() && out.stdout.is_empty(),
            "a command with a missing cwd must not run (got {} and stdout {:?})",
            out.status,
            out.stdout_lossy()
        ),
    }
    Outcome::Passed
}

pub(super) async fn non_interactive_env(h: Harness) -> Outcome {
    let out = sh(
        &h,
        "printf '%s,%s' \"$GIT_TERMINAL_PROMPT\" \"$GIT_EDITOR\"",
    )
    .await;
    assert_eq!(
        out, "0,true",
        "commands must run with GIT_TERMINAL_PROMPT=0 and GIT_EDITOR=true (see \
         ExecRequest::to_shell_script)"
    );
    Outcome::Passed
}

pub(super) async fn argv_literal(h: Harness) -> Outcome {
    let words = [
        "$(echo bad)",
        "`echo bad`",
        "a b",
        "it's",
        "\"dq\"",
        "*",
        "-n",
        "",
        "new\nline",
        "é✓",
        "$HOME",
        ";",
        "|",
        "&&",
        "\\",
    ];
    let mut argv = vec!["printf".to_owned(), "%s\\0".to_owned()];
    argv.extend(words.iter().map(|w| (*w).to_owned()));
    let out = run(&h, ExecRequest::argv(argv)).await;
    assert_eq!(out.status, ExitStatus::Exited(0), "argv printf");
    let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
    for (i, w) in words.iter().enumerate() {
        assert_eq!(
            got.get(i).copied(),
            Some(w.as_bytes()),
            "argv word {w:?} must reach the program literally"
        );
    }
    Outcome::Passed
}

const BIG: u64 = 20_000_000;

pub(super) async fn large_stdout_streams(h: Harness) -> Outcome {
    // Read stdout while waiting: the process must not block on a full pipe.
    let mut process = h
        .runtime
        .exec(ExecRequest::script(format!("yes abcdefghi | head -c {BIG}")).timeout(HELPER_TIMEOUT))
        .await
        .expect("exec of 20 MB writer");
    let mut stdout = process.stdout.take().expect("stdout pipe");
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match stdout.read(&mut buf).await.expect("read stdout") {
                0 => return total,
                n => total += n as u64,
            }
        }
    });
    let status = process.wait().await.expect("wait");
    let total = reader.await.expect("reader");
    assert_eq!(status, ExitStatus::Exited(0), "20 MB writer status");
    assert_eq!(total, BIG, "bytes of stdout streamed");
    // Process::output with a small cap keeps draining both streams, and keeps the
    // beginning (a third of the cap) and the end (two thirds) of each.
    const CAP: usize = 3 << 20;
    let out = h
        .runtime
        .output(
            ExecRequest::script(format!(
                "printf START; yes abcdefghi | head -c {BIG}; printf END; \
                 {{ printf start; yes xyz | head -c {BIG}; printf end; }} >&2"
            ))
            .timeout(HELPER_TIMEOUT),
            CAP,
        )
        .await
        .expect("output with a cap");
    assert_eq!(out.status, ExitStatus::Exited(0), "capped output status");
    assert_eq!(
        out.stdout.len(),
        CAP / 3,
        "stdout: the head is a third of the cap"
    );
    assert_eq!(
        out.stdout_tail.len(),
        CAP - CAP / 3,
        "stdout: the tail is the rest"
    );
    assert!(
        out.stdout.starts_with(b"STARTabcdefghi\n"),
        "stdout keeps its start"
    );
    assert!(out.stdout_tail.ends_with(b"END"), "stdout keeps its end");
    assert_eq!(
        out.stdout_dropped,
        BIG + 8 - CAP as u64,
        "stdout bytes dropped between head and tail"
    );
    assert!(
        out.stderr.starts_with(b"startxyz\n"),
        "stderr keeps its start"
    );
    assert!(out.stderr_tail.ends_with(b"end"), "stderr keeps its end");
    assert_eq!(
        out.stderr_dropped,
        BIG + 8 - CAP as u64,
        "stderr bytes dropped between head and tail"
    );
    Outcome::Passed
}

/// The script both stop cases run: a background sleep (PID written to `pid_file`) and
/// a foreground sleep.
/// One command first, so what a runtime sets up on first use is done.
async fn warm_up(h: &Harness) {
    let out = run(h, ExecRequest::script("true")).await;
    assert_eq!(
        out.status,
        ExitStatus::Exited(0),
        "a first `true` must succeed"
    );
}

/// A script that starts a background `sleep`, writes its PID to `pid_file`, and sleeps
/// itself. The PID goes to a temporary name first and is renamed into place, so
/// `pid_file` exists only once it holds the PID: a redirect creates the file empty
/// before `echo` writes it, and a test that stops the command in between (the machine
/// is loaded) would find no PID to check.
fn sleeper(pid_file: &crate::RemotePath) -> String {
    let partial = crate::RemotePath::new(format!("{}.partial", pid_file.as_str()))
        .unwrap_or_else(|e| panic!("pid file name {pid_file:?}: {e}"));
    format!(
        "sleep 1000 & echo $! > {partial}\nmv {partial} {done}\nsleep 1000\n",
        partial = q(&partial),
        done = q(pid_file)
    )
}

pub(super) async fn timeout_kills_group(h: Harness) -> Outcome {
    let pid_file = h.path("bg.pid");
    // The runtime's own start (a connection, a helper, a login shell) is not the subject:
    // the 1.5 s below must be the command's.
    warm_up(&h).await;
    let req = ExecRequest::script(sleeper(&pid_file)).timeout(Duration::from_millis(1500));
    let out = tokio::time::timeout(Duration::from_secs(60), h.runtime.output(req, 1024))
        .await
        .expect("a command with a 1.5 s timeout was still running after 60 s")
        .expect("exec with a timeout");
    assert_eq!(out.status, ExitStatus::TimedOut, "status after the timeout");
    wait_gone(&h, &pid_file, Duration::from_secs(5)).await;
    Outcome::Passed
}

pub(super) async fn cancel_kills_group(h: Harness) -> Outcome {
    let pid_file = h.path("bg.pid");
    warm_up(&h).await;
    let token = CancellationToken::new();
    let req = ExecRequest::script(sleeper(&pid_file)).cancel_token(token.clone());
    // Cancelled once its background child is running (the PID file is there), not
    // after a fixed time: a slow host (a login shell that takes seconds) must not make
    // the case cancel a command that has not started yet.
    let canceller = {
        let token = token.clone();
        let runtime = h.runtime.clone();
        let pid_file = pid_file.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !matches!(runtime.stat(&pid_file).await, Ok(meta) if meta.len > 0)
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            token.cancel();
        })
    };
    let out = tokio::time::timeout(Duration::from_secs(120), h.runtime.output(req, 1024))
        .await
        .expect("a command cancelled once it ran was still running after 120 s")
        .expect("exec with a cancellation token");
    canceller.await.expect("canceller");
    assert_eq!(out.status, ExitStatus::Cancelled, "status after cancel");
    wait_gone(&h, &pid_file, Duration::from_secs(5)).await;
    Outcome::Passed
}

pub(super) async fn signal_reported(h: Harness) -> Outcome {
    for (name, number) in [("TERM", 15), ("KILL", 9)] {
        let out = run(&h, ExecRequest::script(format!("kill -{name} $$"))).await;
        assert_eq!(
            out.status,
            ExitStatus::Signaled(number),
            "a command killed by SIG{name} must give Signaled({number})"
        );
    }
    Outcome::Passed
}

/// Polls until `path` exists (the command got that far), for up to `within`.
async fn wait_exists(h: &Harness, path: &crate::RemotePath, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while !h.runtime.exists(path).await.expect("exists") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command did not create {path:?} within {} s",
            within.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn drop_kills_group(h: Harness) -> Outcome {
    // A dropped Process kills its group, background children included.
    let pid_file = h.path("bg.pid");
    let process = h
        .runtime
        .exec(ExecRequest::script(sleeper(&pid_file)))
        .await
        .expect("exec of the sleeper");
    wait_exists(&h, &pid_file, Duration::from_secs(30)).await;
    drop(process);
    wait_gone(&h, &pid_file, Duration::from_secs(10)).await;

    // So does a dropped future that owns one (an abandoned tool call).
    let pid_file = h.path("bg2.pid");
    let output = h
        .runtime
        .output(ExecRequest::script(sleeper(&pid_file)), 1024);
    tokio::select! {
        out = output => panic!("the sleeper ended by itself: {out:?}"),
        () = wait_exists(&h, &pid_file, Duration::from_secs(30)) => {}
    }
    wait_gone(&h, &pid_file, Duration::from_secs(10)).await;

    // And what a dropped command held is freed: many dropped commands do not hold up
    // a later one (a backend with a bounded number of channels would wait forever).
    for i in 0..40 {
        let process = h
            .runtime
            .exec(ExecRequest::script("sleep 1000"))
            .await
            .unwrap_or_else(|e| panic!("exec of dropped command {i}: {e}"));
        drop(process);
    }
    let out = run(
        &h,
        ExecRequest::script("echo after").timeout(Duration::from_secs(60)),
    )
    .await;
    assert_eq!(
        (out.status, out.stdout_lossy().as_str()),
        (ExitStatus::Exited(0), "after\n"),
        "a command after 40 dropped ones must run (dropping must free their slots)"
    );
    Outcome::Passed
}
