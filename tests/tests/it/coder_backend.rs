//! The Coder backend against the fake `coder` CLI, whose `ssh --stdio` relays to a real
//! test sshd: status handling, starting, config-ssh, login errors, recovery.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmux_backend_coder::{doctor, CheckStatus, CoderOptions, CoderRuntime};
use cmux_core::{ExecRequest, RemotePath, Runtime, RuntimeExt};
use cmux_integration_tests::coder::FakeCoder;
use cmux_integration_tests::sshd::TestSshd;

const BIN: &str = env!("CARGO_BIN_EXE_fake-coder");

fn setup() -> (TestSshd, FakeCoder) {
    let sshd = TestSshd::start();
    let fake = FakeCoder::new(BIN, &sshd, "dev");
    (sshd, fake)
}

async fn echo(rt: &CoderRuntime, text: &str) -> String {
    let out = rt
        .output(ExecRequest::argv(["echo", text]), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("echo on {}: {e}", rt.host()));
    assert!(out.status.success(), "{out:?}");
    out.stdout_lossy().trim().to_owned()
}

fn lines(progress: &Arc<Mutex<Vec<String>>>) -> String {
    progress.lock().map(|l| l.join("\n")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_workspace_is_started_then_used() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.update_workspace("dev", |ws| ws["start_delay_ms"] = 300.into());
    let (opts, progress) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(rt.host(), "coder.dev");
    assert_eq!(rt.kind(), "coder");
    assert_eq!(echo(&rt, "hello").await, "hello");
    assert_eq!(fake.status("dev"), "running");
    assert_eq!(fake.start_count("dev"), 1);
    let said = lines(&progress);
    assert!(
        said.contains("workspace dev is stopped; starting it"),
        "{said}"
    );
    assert!(
        said.contains("has been started"),
        "build log forwarded: {said}"
    );

    // Files go through the same connection.
    let path = RemotePath::new(sshd.scratch().join("f.txt").display().to_string()).expect("path");
    rt.write_file(&path, b"data").await.expect("write");
    assert_eq!(rt.read_file(&path).await.expect("read"), b"data");
}

#[tokio::test(flavor = "multi_thread")]
async fn running_workspace_is_used_without_a_start() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.set_status("dev", "running");
    let (opts, progress) = fake.options();
    let rt = CoderRuntime::new("dev.main", opts).expect("runtime");
    assert_eq!(rt.host(), "coder.dev.main");
    assert_eq!(echo(&rt, "agent").await, "agent");
    assert_eq!(fake.start_count("dev"), 0);
    assert!(lines(&progress).is_empty(), "{}", lines(&progress));
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_workspace_is_waited_for() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.set_status_then(
        "dev",
        "starting",
        Some((Duration::from_millis(600), "running")),
    );
    let (opts, progress) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&rt, "waited").await, "waited");
    assert_eq!(fake.start_count("dev"), 0, "no second build while one runs");
    assert!(
        lines(&progress).contains("is starting; waiting"),
        "{}",
        lines(&progress)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_workspace_is_waited_for_then_started() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.set_status_then(
        "dev",
        "stopping",
        Some((Duration::from_millis(600), "stopped")),
    );
    let (opts, progress) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&rt, "restarted").await, "restarted");
    assert_eq!(fake.start_count("dev"), 1);
    let said = lines(&progress);
    assert!(
        said.contains("is stopping; waiting for it to stop"),
        "{said}"
    );
    assert!(said.contains("is stopped; starting it"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_workspace_errors_clearly() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.set_status("dev", "failed");
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    let err = rt.ensure_ready().await.expect_err("failed workspace");
    let text = err.to_string();
    assert!(text.contains("\"dev\" is in failed state"), "{text}");
    assert!(text.contains("coder start dev"), "{text}");
    assert_eq!(fake.start_count("dev"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_start_build_errors_clearly() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.update_workspace("dev", |ws| ws["fail_start"] = true.into());
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    let text = rt
        .ensure_ready()
        .await
        .expect_err("failing build")
        .to_string();
    assert!(text.contains("failed state"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_deleted_workspaces_error_clearly() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    // Old CLIs print nothing at all for an empty list.
    fake.update(|s| s["empty_list_output"] = "empty".into());
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("nope", opts.clone()).expect("runtime");
    let text = rt.ensure_ready().await.expect_err("missing").to_string();
    assert!(text.contains("no Coder workspace named \"nope\""), "{text}");
    assert!(text.contains("coder list"), "{text}");
    // `name:` matches substrings: `de` must not pick `dev`.
    let rt = CoderRuntime::new("de", opts.clone()).expect("runtime");
    let text = rt.ensure_ready().await.expect_err("prefix").to_string();
    assert!(text.contains("no Coder workspace named \"de\""), "{text}");

    fake.set_status("dev", "deleted");
    fake.update_workspace("dev", |ws| ws["keep_deleted"] = true.into());
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    let text = rt.ensure_ready().await.expect_err("deleted").to_string();
    assert!(text.contains("is deleted"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn not_logged_in_says_how_to_log_in() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.logout();
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("dev", opts.clone()).expect("runtime");
    let text = rt.ensure_ready().await.expect_err("logged out").to_string();
    assert!(text.contains("not logged in"), "{text}");
    assert!(text.contains("coder login"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");

    // An expired token is the same story.
    fake.login();
    fake.update(|s| s["valid_tokens"] = serde_json::json!(["another"]));
    let rt = CoderRuntime::new("dev", opts.clone()).expect("runtime");
    let text = rt.ensure_ready().await.expect_err("bad token").to_string();
    assert!(text.contains("coder login"), "{text}");

    // And an unreachable deployment says so.
    fake.update(|s| {
        s["valid_tokens"] = serde_json::json!([cmux_integration_tests::coder::TOKEN]);
        s["api_unreachable"] = true.into();
    });
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    let text = rt
        .ensure_ready()
        .await
        .expect_err("unreachable")
        .to_string();
    assert!(text.contains("cannot reach the Coder deployment"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_cli_says_how_to_install() {
    let (_sshd, fake) = setup();
    let (opts, _) = fake.options();
    let opts = opts.coder_bin(fake.config_dir().join("no-such-coder"));
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    let text = rt.ensure_ready().await.expect_err("no cli").to_string();
    assert!(text.contains("install"), "{text}");
}

/// Pre-2.19 blocks name each workspace: one created after the last `config-ssh` has no
/// entry. cmux runs `config-ssh --yes --use-previous-options`, which keeps the user's
/// `-o` options (here the ones that let the test sshd in).
#[tokio::test(flavor = "multi_thread")]
async fn config_ssh_runs_when_the_host_does_not_resolve_keeping_previous_options() {
    let (sshd, fake) = setup();
    fake.update(|s| s["config_style"] = "legacy".into());
    fake.append_ssh_config("Host unrelated\n\tUser bob\n");
    // The section is written while `dev` does not exist yet.
    fake.set_status("dev", "deleted");
    fake.config_ssh(&sshd, &[]);
    fake.set_status("dev", "stopped");
    let before = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert!(!before.contains("Host coder.dev"), "{before}");

    let (opts, progress) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&rt, "configured").await, "configured");
    assert!(lines(&progress).contains("coder config-ssh --yes --use-previous-options"));

    let after = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert!(after.starts_with("Host unrelated\n\tUser bob\n"), "{after}");
    assert!(after.contains("Host coder.dev\n"), "{after}");
    for option in fake.user_ssh_options(&sshd) {
        assert!(
            after.contains(&format!("# :ssh-option={option}\n")),
            "{option} dropped: {after}"
        );
        assert!(
            after.contains(&format!("\t{option}\n")),
            "{option} dropped: {after}"
        );
    }
}

/// A user with no Coder section yet (options in their own block): cmux writes the
/// current wildcard section.
#[tokio::test(flavor = "multi_thread")]
async fn config_ssh_writes_the_wildcard_section_when_missing() {
    let (sshd, fake) = setup();
    let own: String = fake
        .user_ssh_options(&sshd)
        .iter()
        .map(|o| format!("\t{o}\n"))
        .collect();
    fake.append_ssh_config(&format!("Host coder.* *.coder\n{own}"));
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&rt, "wildcard").await, "wildcard");
    let after = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert!(after.contains("\nHost coder.*\n"), "{after}");
    assert!(
        after.contains("# ------------END-CODER------------\n"),
        "{after}"
    );
}

/// A deployment with only a hostname suffix: the block is `Host *.coder` + `Match`,
/// and cmux reaches the workspace as `dev.coder`.
#[tokio::test(flavor = "multi_thread")]
async fn suffix_only_block_is_used() {
    let (sshd, fake) = setup();
    fake.update(|s| s["hostname_prefix"] = "".into());
    fake.config_ssh(&sshd, &[]);
    let text = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert!(!text.contains("Host coder."), "{text}");
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&rt, "suffix").await, "suffix");
    assert_eq!(rt.host(), "coder.dev");
}

/// Many cmux workspaces share one Coder workspace: one start, one host, both see
/// each other's files.
#[tokio::test(flavor = "multi_thread")]
async fn two_runtimes_share_one_coder_workspace() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    let (opts, _) = fake.options();
    let a = CoderRuntime::new("dev", opts.clone()).expect("runtime a");
    let b = CoderRuntime::new("dev", opts).expect("runtime b");
    let (ra, rb) = tokio::join!(a.ensure_ready(), b.ensure_ready());
    ra.expect("a ready");
    rb.expect("b ready");
    let dir = sshd.scratch();
    let pa = RemotePath::new(dir.join("ws-a/file").display().to_string()).expect("path");
    let pb = RemotePath::new(dir.join("ws-b/file").display().to_string()).expect("path");
    a.create_dir_all(&pa.parent().expect("parent"))
        .await
        .expect("mkdir a");
    b.create_dir_all(&pb.parent().expect("parent"))
        .await
        .expect("mkdir b");
    a.write_file(&pa, b"from a").await.expect("write a");
    b.write_file(&pb, b"from b").await.expect("write b");
    assert_eq!(b.read_file(&pa).await.expect("b reads a"), b"from a");
    assert_eq!(a.read_file(&pb).await.expect("a reads b"), b"from b");
    assert!(
        fake.start_count("dev") <= 1,
        "one Coder workspace, at most one start build: {}",
        fake.start_count("dev")
    );
}

/// The workspace stops between two operations (autostop, a user's `coder stop`): the
/// second operation starts it again. `--disable-autostart` in the ProxyCommand makes
/// sure it is cmux, not `coder ssh --stdio`, that starts it.
#[tokio::test(flavor = "multi_thread")]
async fn workspace_stopped_between_operations_is_started_again() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &["--disable-autostart"]);
    let text = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert!(text.contains("--disable-autostart=true"), "{text}");
    let (opts, progress) = fake.options();
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&rt, "first").await, "first");
    assert_eq!(fake.start_count("dev"), 1);

    let out = fake.run(&["stop", "dev", "-y"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.status("dev"), "stopped");
    // The tunnel closes when the workspace stops (as `coder ssh --stdio` does): wait
    // for the master to notice, so the next operation meets a dead connection.
    let ssh = rt.ssh().await.expect("ssh runtime").clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let alive = std::process::Command::new("ssh")
            .arg("-F")
            .arg(fake.ssh_config())
            .arg("-S")
            .arg(ssh.control_path())
            .args(["-O", "check", "coder.dev"])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("ssh -O check")
            .success();
        if !alive {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tunnel never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(echo(&rt, "second").await, "second");
    assert_eq!(fake.status("dev"), "running");
    assert_eq!(fake.start_count("dev"), 2);
    assert!(
        lines(&progress).matches("starting it").count() >= 2,
        "{}",
        lines(&progress)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_each_layer_with_fixes() {
    let (sshd, fake) = setup();
    let (opts, _) = fake.options();

    // Nothing configured, stopped: the ssh config fails with its fix, status warns.
    let report = doctor("dev", &opts).await;
    let status = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
            .unwrap_or_else(|| panic!("no check {name}: {report}"))
    };
    assert_eq!(status("coder cli"), CheckStatus::Ok, "{report}");
    assert_eq!(status("login"), CheckStatus::Ok, "{report}");
    assert_eq!(status("ssh config"), CheckStatus::Fail, "{report}");
    assert_eq!(status("workspace"), CheckStatus::Warn, "{report}");
    assert_eq!(status("ssh"), CheckStatus::Skipped, "{report}");
    assert!(
        report
            .to_string()
            .contains("coder config-ssh --yes --use-previous-options"),
        "{report}"
    );
    assert!(!report.ok());

    // Configured and running: everything passes, ssh included.
    fake.config_ssh(&sshd, &[]);
    fake.set_status("dev", "running");
    let report = doctor("dev", &opts).await;
    assert!(report.ok(), "{report}");
    assert!(
        report.checks.iter().all(|c| c.status == CheckStatus::Ok),
        "{report}"
    );

    // Logged out: login fails with `coder login`.
    fake.logout();
    let report = doctor("dev", &opts).await;
    let login = report
        .checks
        .iter()
        .find(|c| c.name == "login")
        .expect("login check");
    assert_eq!(login.status, CheckStatus::Fail, "{report}");
    assert!(
        login.fix.as_deref().unwrap_or("").contains("coder login"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_defaults_and_options_are_usable() {
    // The default options are what the CLI uses: stderr progress, 10 minute bound.
    let opts = CoderOptions::default();
    assert_eq!(opts.start_timeout, Duration::from_secs(600));
    assert!(CoderRuntime::new("bad name", opts).is_err());
}

/// A later CLI call on a warm workspace (live ControlMaster) makes no Coder API call:
/// it works even when the deployment is unreachable.
#[tokio::test(flavor = "multi_thread")]
async fn warm_workspace_needs_no_coder_api_call() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    let (opts, _) = fake.options();
    let first = CoderRuntime::new("dev", opts.clone()).expect("runtime");
    assert_eq!(echo(&first, "cold").await, "cold");
    fake.update(|s| s["api_unreachable"] = true.into());
    let later = CoderRuntime::new("dev", opts).expect("runtime");
    assert_eq!(echo(&later, "warm").await, "warm");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_agent_is_refused_with_the_agent_list() {
    let (sshd, fake) = setup();
    fake.config_ssh(&sshd, &[]);
    fake.set_status("dev", "running");
    let (opts, _) = fake.options();
    let rt = CoderRuntime::new("dev.nope", opts).expect("runtime");
    let text = rt
        .ensure_ready()
        .await
        .expect_err("unknown agent")
        .to_string();
    assert!(text.contains("no agent \"nope\""), "{text}");
    assert!(text.contains("main"), "{text}");
}

/// The fake writes the block of Coder ≥ 2.22 byte for byte (reference §1.2), rewrites
/// it in place on a re-run, and keeps the user's content around it.
#[test]
fn fake_config_ssh_writes_the_reference_block() {
    let sshd = TestSshd::start();
    let fake = FakeCoder::new(BIN, &sshd, "dev");
    fake.append_ssh_config("Host mine\n\tUser me\n");
    let file = fake.ssh_config().display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "config-ssh",
            "-y",
            "--ssh-config-file",
            &file,
            "--coder-binary-path",
            "/usr/local/bin/coder",
        ];
        args.extend(extra);
        let out = fake.run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = run(&[]);
    assert!(said.starts_with(&format!("Updated {file:?}\n")), "{said}");
    let cfg = fake.config_dir().display().to_string();
    let expected = format!(
        "Host mine\n\tUser me\n\n\
# ------------START-CODER-----------\n\
# This section is managed by coder. DO NOT EDIT.\n\
#\n\
# You should not hand-edit this section unless you are removing it, all\n\
# changes will be lost when running \"coder config-ssh\".\n\
#\n\
Host coder.*\n\
\tConnectTimeout=0\n\
\tStrictHostKeyChecking=no\n\
\tUserKnownHostsFile=/dev/null\n\
\tLogLevel ERROR\n\
\tProxyCommand /usr/local/bin/coder --global-config {cfg} ssh --stdio --ssh-host-prefix coder. %h\n\
\n\
Host *.coder\n\
\tConnectTimeout=0\n\
\tStrictHostKeyChecking=no\n\
\tUserKnownHostsFile=/dev/null\n\
\tLogLevel ERROR\n\
\n\
Match host *.coder !exec \"/usr/local/bin/coder connect exists %h\"\n\
\tProxyCommand /usr/local/bin/coder --global-config {cfg} ssh --stdio --hostname-suffix coder %h\n\
# ------------END-CODER------------\n"
    );
    let written = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert_eq!(written, expected);

    // Re-run: nothing to do. Content added after the section stays after it.
    assert_eq!(run(&[]), "No changes to make.\n");
    fake.append_ssh_config("Host later\n\tUser you\n");
    run(&["-o", "ForwardAgent=no"]);
    let written = std::fs::read_to_string(fake.ssh_config()).expect("config");
    assert!(
        written.starts_with("Host mine\n\tUser me\n\n# ------------START-CODER"),
        "{written}"
    );
    assert!(
        written.ends_with("# ------------END-CODER------------\nHost later\n\tUser you\n"),
        "{written}"
    );
    assert!(written.contains("#\n# Last config-ssh options:\n# :ssh-option=ForwardAgent=no\n#\nHost coder.*\n\tForwardAgent=no\n"), "{written}");
}
