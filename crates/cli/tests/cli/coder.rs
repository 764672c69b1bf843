//! `cmux` on Coder workspaces, end to end: the fake `coder` CLI of
//! `cmux-integration-tests` (its `ssh --stdio` relays to a real sshd), found next to
//! the `cmux` binary (it is built with the workspace's tests: `cargo test --workspace`).
//! When it was not built (`cargo test -p cmux-cli` alone), the tests say so and pass.

use std::path::PathBuf;
use std::process::{Command, Output};

use cmux_integration_tests::coder::FakeCoder;
use cmux_integration_tests::sshd::TestSshd;

use super::{stderr, stdout, Env};

fn fake_coder_bin() -> Option<PathBuf> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cmux")).with_file_name("fake-coder");
    if bin.is_file() {
        Some(bin)
    } else {
        println!(
            "skipped: {} is missing; build it with `cargo build -p cmux-integration-tests --bin fake-coder`",
            bin.display()
        );
        None
    }
}

/// A project, a `CMUX_HOME`, an sshd and a fake Coder deployment with workspace `dev`
/// (stopped).
struct Deployment {
    env: Env,
    sshd: TestSshd,
    fake: FakeCoder,
}

impl Deployment {
    fn start() -> Option<Deployment> {
        let bin = fake_coder_bin()?;
        let sshd = TestSshd::start();
        let fake = FakeCoder::new(bin.to_str().expect("utf-8 path"), &sshd, "dev");
        Some(Deployment {
            env: Env::new(),
            sshd,
            fake,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(args);
        cmd.env("CMUX_SSH_CONFIG", self.fake.ssh_config())
            .env("CMUX_CODER_BIN", self.fake.bin())
            .env("CODER_CONFIG_DIR", self.fake.config_dir());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cmux runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cmux {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        stdout(&out)
    }
}

#[test]
fn coder_workspace_is_started_and_runs_commands() {
    let Some(d) = Deployment::start() else { return };
    d.fake.config_ssh(&d.sshd, &[]);
    let base = d.sshd.scratch().join("base").display().to_string();
    let out = d.run(&["new", "feat", "--coder", "dev", "--src-base", &base]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("workspace dev is stopped; starting it"),
        "progress on stderr: {}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("coder:dev"), "{}", stdout(&out));
    assert_eq!(d.fake.status("dev"), "running");

    let pwd = d.ok(&["exec", "feat", "--", "pwd"]);
    assert!(pwd.trim().starts_with(&base), "{pwd}");
    assert_eq!(d.ok(&["cat", "feat", "README.md"]), "hello\n");

    // A second cmux workspace on the same Coder workspace: no second start.
    d.ok(&["new", "other", "--coder", "dev", "--src-base", &base]);
    assert_eq!(d.fake.start_count("dev"), 1);

    let report = d.ok(&["doctor", "feat"]);
    assert!(report.contains("dev is running"), "{report}");
    d.ok(&["rm", "feat"]);
}

/// Without `CMUX_CODER_BIN`, `coder` is the one on the CLI's `PATH` (the Coder
/// library reads no environment variable: the CLI passes `PATH` as its search path).
#[test]
fn coder_is_found_on_path() {
    let Some(d) = Deployment::start() else { return };
    d.fake.config_ssh(&d.sshd, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let coder = dir.path().join("coder");
    std::os::unix::fs::symlink(d.fake.bin(), &coder).expect("symlink");
    let path = std::env::join_paths(std::iter::once(dir.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let out = d
        .command(&["doctor", "--coder", "dev"])
        .env_remove("CMUX_CODER_BIN")
        .env("PATH", path)
        .output()
        .expect("cmux runs");
    let report = stdout(&out);
    assert!(
        report.contains(&format!("{} (v2.25.0+fake)", coder.display())),
        "{report}{}",
        stderr(&out)
    );
}

#[test]
fn coder_errors_are_one_line_with_the_fix() {
    let Some(d) = Deployment::start() else { return };
    d.fake.config_ssh(&d.sshd, &[]);
    d.fake.logout();
    let base = d.sshd.scratch().join("base").display().to_string();
    let out = d.run(&["new", "feat", "--coder", "dev", "--src-base", &base]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("coder login"), "{err}");

    // `cmux doctor --coder` says the same, with a fix per failure.
    let out = d.run(&["doctor", "--coder", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("coder login"), "{}", stdout(&out));

    let out = d.run(&["new", "feat", "--coder", "no such", "--src-base", &base]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a Coder workspace"),
        "{}",
        stderr(&out)
    );
}

/// `--ssh coder.dev`, as Coder's docs tell users to write it after `coder config-ssh`,
/// is `--coder dev`: the workspace is started, its host key is Coder's business (no
/// "host key unknown… ssh-keyscan coder.dev", which cannot work through a
/// ProxyCommand), and doctor checks Coder.
#[test]
fn an_ssh_host_behind_coders_proxy_is_a_coder_workspace() {
    let Some(d) = Deployment::start() else { return };
    d.fake.config_ssh(&d.sshd, &[]);
    let base = d.sshd.scratch().join("base").display().to_string();
    let out = d.run(&["new", "feat", "--ssh", "coder.dev", "--src-base", &base]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("coder.dev goes through Coder's ProxyCommand")
            && err.contains("`--coder dev`"),
        "{err}"
    );
    assert!(
        err.contains("workspace dev is stopped; starting it"),
        "{err}"
    );
    assert!(stdout(&out).contains("coder:dev"), "{}", stdout(&out));
    assert_eq!(d.fake.status("dev"), "running");
    let list: serde_json::Value = serde_json::from_str(&d.ok(&["list", "--json"])).expect("json");
    assert_eq!(list[0]["backend"]["kind"], "coder");
    assert_eq!(list[0]["backend"]["workspace"], "dev");
    assert_eq!(d.ok(&["cat", "feat", "README.md"]), "hello\n");

    let report = d.ok(&["doctor", "--ssh", "coder.dev"]);
    assert!(
        report.contains("coder") && report.contains("dev is running"),
        "{report}"
    );
}
