//! Latency figures (run by hand: `cargo test -p cmux-integration-tests --test it
//! ssh_bench -- --ignored --nocapture`). Prints medians; asserts nothing about time.

use std::time::{Duration, Instant};

use cmux_core::{ExecRequest, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::{SshdOptions, TestSshd};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn measure<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    median(times)
}

#[tokio::test]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
async fn ssh_bench() {
    // Twice: with the login user's own shell startup (root's ~/.bashrc here runs
    // `pyenv init`, which dominates every command), and with an empty HOME for the
    // sessions (`SetEnv HOME=...`), which shows the transport's own cost.
    bench_one("user's ~/.bashrc", SshdOptions::default()).await;
    let empty_home = tempfile::tempdir().expect("tmp");
    bench_one(
        "empty HOME (no rc files)",
        SshdOptions {
            server_config: vec![format!("SetEnv HOME={}", empty_home.path().display())],
            ..Default::default()
        },
    )
    .await;
}

async fn bench_one(label: &str, options: SshdOptions) {
    let sshd = TestSshd::start_with(options);
    let rt = sshd.runtime();
    rt.ensure_ready().await.expect("ready");
    let file = sshd.scratch_path().join("4k").expect("join");
    let data = vec![b'x'; 4096];
    rt.write_file(&file, &data).await.expect("write");
    let n = 100;
    let exec = measure(n, || async {
        let out = rt
            .output(ExecRequest::script("true"), 1024)
            .await
            .expect("exec");
        assert!(out.status.success());
    })
    .await;
    let read = measure(n, || async {
        assert_eq!(rt.read_file(&file).await.expect("read").len(), 4096);
    })
    .await;
    let write = measure(n, || async {
        rt.write_file(&file, &data).await.expect("write");
    })
    .await;
    let stat = measure(n, || async {
        rt.stat(&file).await.expect("stat");
    })
    .await;
    let sock = rt.control_path();
    let process = measure(50, || async {
        let status = tokio::process::Command::new("ssh")
            .arg("-F")
            .arg(sshd.config_path())
            .args(["-o", "ControlMaster=auto", "-o"])
            .arg(format!("ControlPath={}", sock.display()))
            .args([sshd.alias(), "true"])
            .status()
            .await
            .expect("ssh");
        assert!(status.success());
    })
    .await;
    println!("median over {n} runs on a loopback sshd, {label}:");
    println!("  exec `true`        {:>8.2?}", exec);
    println!("  read 4 KiB         {:>8.2?}", read);
    println!("  write 4 KiB        {:>8.2?}", write);
    println!("  stat               {:>8.2?}", stat);
    println!(
        "  ssh -o ControlPath=… host true (process per op) {:>8.2?}",
        process
    );
}
