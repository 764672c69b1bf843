//! Connection faults over SSH, through the cutting proxy (`LatencyProxy`) in front of
//! the real test sshd: the proxy cutting the TCP connection mid-command, sshd killed
//! mid-transfer, the ControlMaster killed mid-command. The operation in flight fails
//! with a connection error naming the host, well before its own timeout (each wait is
//! guarded so a hang fails the test instead of blocking it), and the next operation
//! succeeds once the host is back. While the host is down (the proxy refuses new
//! connections), many concurrent callers cause at most 6 connection attempts a minute,
//! pro rata, after the first.
//!
//! The client config points at the proxy's port (own `ssh_config` with the harness's
//! `HostKeyAlias`, known_hosts and client key), so every TCP connection cmux makes is
//! counted by `connections_accepted()`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmux_backend_ssh::{SshOptions, SshRuntime};
use cmux_core::{Error, ExecRequest, Runtime, RuntimeExt};
use cmux_integration_tests::proxy::LatencyProxy;
use cmux_integration_tests::sshd::{TestSshd, HOST_KEY_ALIAS};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The alias of the host behind the proxy.
const HOST: &str = "cmux-faulty-host";

/// A real sshd behind a cutting proxy, and a client config that goes through it.
struct Faulty {
    sshd: TestSshd,
    proxy: LatencyProxy,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Faulty {
    async fn start(one_way: Duration) -> Faulty {
        let sshd = TestSshd::start();
        let target = format!("127.0.0.1:{}", sshd.port()).parse().expect("addr");
        let proxy = LatencyProxy::start(target, one_way).await.expect("proxy");
        let dir = tempfile::tempdir().expect("tmp");
        let config = dir.path().join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host {HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlias {HOST_KEY_ALIAS}\n  ConnectTimeout 5\n  LogLevel ERROR\n",
                port = proxy.port(),
                user = sshd.user(),
                key = sshd.client_key_path().display(),
                kh = sshd.known_hosts_path().display(),
            ),
        )
        .expect("ssh config");
        Faulty {
            sshd,
            proxy,
            dir,
            config,
        }
    }

    fn options(&self) -> SshOptions {
        SshOptions::default()
            .config_file(&self.config)
            .control_dir(self.dir.path().join("ctl"))
    }

    fn runtime(&self) -> SshRuntime {
        SshRuntime::new(HOST, self.options()).expect("runtime")
    }

    /// The pid of the master serving `rt` (`ssh -O check`).
    fn master_pid(&self, rt: &SshRuntime) -> u32 {
        let out = std::process::Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .arg("-S")
            .arg(rt.control_path())
            .args(["-O", "check", HOST])
            .output()
            .expect("ssh -O check");
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.split("pid=")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no master pid in {text:?}"))
    }
}

/// Asserts `err` is a connection error naming the host.
fn assert_connection_error(err: &Error, what: &str) {
    assert!(
        err.is_connection(),
        "{what}: not a connection error: {err:?}"
    );
    assert!(
        err.to_string().contains(HOST),
        "{what}: host not named: {err}"
    );
}

/// Retries `echo back` until the host answers (the reconnect backoff may hold the
/// first attempts back for up to ~13 s).
async fn recovers(rt: &SshRuntime, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rt.output(ExecRequest::script("echo back"), 1024).await {
            Ok(out) => {
                assert_eq!(out.stdout, b"back\n", "{what}");
                return;
            }
            Err(e) if e.is_connection() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{what}: no recovery: {e}"),
        }
    }
}

/// Starts `echo started; sleep 600` with a 60 s timeout and returns once it runs.
async fn running_command(rt: &SshRuntime) -> cmux_core::Process {
    let mut p = rt
        .exec(ExecRequest::script("echo started; sleep 600").timeout(Duration::from_secs(60)))
        .await
        .expect("command starts");
    let mut lines = BufReader::new(p.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the command starts within 30 s")
        .expect("read");
    assert_eq!(first.as_deref(), Some("started"));
    // Keep reading in the background so the channel is never blocked on us.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    p
}

/// Waits for `p`, which must fail well before its 60 s timeout.
async fn fails_before_timeout(p: &mut cmux_core::Process, what: &str) {
    let result = tokio::time::timeout(Duration::from_secs(45), p.wait())
        .await
        .unwrap_or_else(|_| panic!("{what}: wait hung past 45 s"));
    match result {
        Err(e) => assert_connection_error(&e, what),
        Ok(status) => panic!("{what}: the lost connection gave a status: {status:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cut_mid_command_fails_with_the_host_then_recovers() {
    let f = Faulty::start(Duration::ZERO).await;
    let rt = f.runtime();
    for round in 0..2 {
        let mut p = running_command(&rt).await;
        f.proxy.cut_all();
        fails_before_timeout(&mut p, &format!("cut {round}")).await;
        recovers(&rt, &format!("after cut {round}")).await;
    }
    rt.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_mid_command_fails_with_the_host_then_recovers() {
    let f = Faulty::start(Duration::ZERO).await;
    let rt = f.runtime();
    let mut p = running_command(&rt).await;
    let pid = f.master_pid(&rt);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    fails_before_timeout(&mut p, "master killed").await;
    recovers(&rt, "after the master was killed").await;
    assert_ne!(f.master_pid(&rt), pid, "a new master");
    rt.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_killed_mid_transfer_keeps_the_old_file_then_recovers() {
    // 10 ms each way: a 64 MiB write takes long enough to be caught in flight.
    let mut f = Faulty::start(Duration::from_millis(10)).await;
    let rt = Arc::new(f.runtime());
    let scratch = f.sshd.scratch();
    let local = scratch.join("big.bin");
    std::fs::write(&local, b"old content").expect("old");
    let path = cmux_core::RemotePath::new(local.to_str().expect("utf-8")).expect("path");
    rt.ensure_ready().await.expect("connected");

    let writer = {
        let (rt, path) = (rt.clone(), path.clone());
        tokio::spawn(async move { rt.write_file(&path, &vec![b'N'; 64 << 20]).await })
    };
    // Wait until the transfer is under way (its temporary file exists), then kill sshd.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let in_flight = std::fs::read_dir(&scratch)
            .expect("list")
            .flatten()
            .any(|e| cmux_core::temp::is_temp_name(&e.file_name().to_string_lossy()));
        if in_flight {
            break;
        }
        assert!(
            !writer.is_finished(),
            "the write ended before it was caught"
        );
        assert!(Instant::now() < deadline, "the transfer never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    f.sshd.stop();
    let result = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the write returns once sshd is gone")
        .expect("task");
    let err = result.expect_err("a write cut by a dead sshd fails");
    assert_connection_error(&err, "sshd killed mid-transfer");
    assert_eq!(
        std::fs::read(&local).expect("target"),
        b"old content",
        "the target keeps its old content"
    );

    f.sshd.restart();
    recovers(&rt, "after sshd restarted").await;
    rt.write_file(&path, b"new content").await.expect("write");
    assert_eq!(std::fs::read(&local).expect("target"), b"new content");
    rt.disconnect().await;
}

/// Connection attempts allowed in `elapsed` at 6 a minute pro rata, after the first.
fn allowed(elapsed: Duration) -> u64 {
    1 + (elapsed.as_secs_f64() * 6.0 / 60.0).floor() as u64
}

/// `callers` tasks on each of `runtimes` retry an operation every 20 ms for `secs`
/// while the host is down; returns the connection attempts and the time they took.
async fn hammer_down_host(
    f: &Faulty,
    runtimes: &[Arc<SshRuntime>],
    callers: usize,
    secs: u64,
) -> (u64, Duration) {
    f.proxy.refuse_new(true);
    f.proxy.cut_all();
    let before = f.proxy.connections_accepted();
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for rt in runtimes {
        for i in 0..callers {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                let mut errors = 0u32;
                while Instant::now() < until {
                    let result = if i % 2 == 0 {
                        rt.output(ExecRequest::script("true"), 64).await.map(|_| ())
                    } else {
                        rt.stat(&cmux_core::RemotePath::new("/").expect("path"))
                            .await
                            .map(|_| ())
                    };
                    match result {
                        Err(e) if e.is_connection() => errors += 1,
                        Err(e) => panic!("down host: not a connection error: {e}"),
                        Ok(()) => panic!("down host answered"),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                errors
            }));
        }
    }
    for t in tasks {
        assert!(t.await.expect("caller") > 0);
    }
    (f.proxy.connections_accepted() - before, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_host_sees_at_most_six_attempts_a_minute_from_many_callers() {
    let f = Faulty::start(Duration::ZERO).await;
    let rt = Arc::new(f.runtime());
    rt.ensure_ready().await.expect("connected");
    let (attempts, elapsed) = hammer_down_host(&f, std::slice::from_ref(&rt), 40, 25).await;
    eprintln!("{attempts} connection attempts in {elapsed:?} from 40 callers");
    assert!(
        attempts <= allowed(elapsed),
        "{attempts} connection attempts in {elapsed:?}: more than 6 a minute (allowed {})",
        allowed(elapsed)
    );
    f.proxy.refuse_new(false);
    recovers(&rt, "host back").await;
    rt.disconnect().await;
}

/// Separate processes each have their own runtime state: two runtimes with different
/// options (so they share no in-process state, only the control socket directory and
/// host, as two `cmux` processes do) still respect one budget for the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_host_budget_is_shared_by_separate_runtimes() {
    let f = Faulty::start(Duration::ZERO).await;
    let first = Arc::new(f.runtime());
    let mut other = f.options();
    other.channels_per_connection = 7;
    let second = Arc::new(SshRuntime::new(HOST, other).expect("runtime"));
    first.ensure_ready().await.expect("connected");
    let (attempts, elapsed) = hammer_down_host(&f, &[first.clone(), second.clone()], 10, 25).await;
    eprintln!("{attempts} connection attempts in {elapsed:?} from 2 runtimes");
    assert!(
        attempts <= allowed(elapsed),
        "{attempts} connection attempts in {elapsed:?} (allowed {})",
        allowed(elapsed)
    );
    f.proxy.refuse_new(false);
    recovers(&first, "host back").await;
    recovers(&second, "host back").await;
    first.disconnect().await;
}
