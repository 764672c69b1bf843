//! Commands over SSH: exit codes, stdin, env, cwd, stderr untouched by the pgid line.

use cmux_core::{ExecRequest, ExitStatus, Runtime, RuntimeExt, Stdin};
use cmux_integration_tests::sshd::TestSshd;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn exit_codes_stdin_env_cwd() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    rt.ensure_ready().await.expect("connects");
    assert_eq!(rt.kind(), "ssh");
    assert_eq!(rt.host(), sshd.alias());

    let out = rt
        .output(
            ExecRequest::script("echo out; echo err >&2; exit 3"),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::Exited(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n", "the pgid line is stripped");

    let out = rt
        .output(ExecRequest::script("nosuchcommand-xyz"), 1 << 20)
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::Exited(127));

    let out = rt
        .output(ExecRequest::argv(["printf", "%s|", "a b", "it's"]), 1 << 20)
        .await
        .expect("runs");
    assert_eq!(out.stdout_lossy(), "a b|it's|");

    let out = rt
        .output(
            ExecRequest::script("cat; echo \"[$FOO] $GIT_EDITOR $(pwd)\"")
                .env("FOO", "x y")
                .cwd(sshd.scratch_path())
                .stdin(Stdin::Bytes(b"input\n".to_vec())),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(
        out.stdout_lossy(),
        format!("input\n[x y] true {}\n", sshd.scratch().display())
    );

    // Default cwd is the home directory; stdin is empty by default.
    let out = rt
        .output(ExecRequest::script("pwd; cat | wc -c"), 1 << 20)
        .await
        .expect("runs");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    assert_eq!(out.stdout_lossy(), format!("{home}\n0\n"));

    let mut p = rt
        .exec(ExecRequest::script("tr a-z A-Z").stdin(Stdin::Piped))
        .await
        .expect("runs");
    let mut stdin = p.stdin.take().expect("stdin");
    stdin.write_all(b"piped\n").await.expect("write");
    drop(stdin);
    let out = p.output(1 << 20).await.expect("output");
    assert_eq!(out.stdout_lossy(), "PIPED\n");

    let out = rt
        .output(ExecRequest::script("kill -TERM $$"), 1 << 20)
        .await
        .expect("runs");
    assert!(
        matches!(out.status, ExitStatus::Signaled(_)),
        "{:?}",
        out.status
    );
}
