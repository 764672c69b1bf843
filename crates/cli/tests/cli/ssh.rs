//! `cmux` on SSH workspaces, end to end, against a real sshd per test (the harness of
//! `cmux-integration-tests`). Each test has its own sshd, its own `CMUX_HOME`, points
//! cmux at the test's ssh config with `CMUX_SSH_CONFIG`, and keeps workspaces under the
//! server's scratch directory (`--src-base`), so nothing lands in the real home.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cmux_integration_tests::sshd::{SshdOptions, TestSshd};

use super::{git, stderr, stdout, Env};

/// A project, a `CMUX_HOME` and an sshd.
pub(crate) struct Remote {
    pub(crate) env: Env,
    pub(crate) sshd: TestSshd,
}

impl Remote {
    pub(crate) fn start() -> Remote {
        Remote::with(SshdOptions::default())
    }

    pub(crate) fn with(options: SshdOptions) -> Remote {
        Remote {
            env: Env::new(),
            sshd: TestSshd::start_with(options),
        }
    }

    pub(crate) fn host(&self) -> &str {
        self.sshd.alias()
    }

    /// Where workspaces live on the host.
    pub(crate) fn src_base(&self) -> PathBuf {
        self.sshd.scratch().join("base")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(args);
        cmd.env("CMUX_SSH_CONFIG", self.sshd.config_path());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cmux runs")
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cmux {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        stdout(&out)
    }

    pub(crate) fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cmux starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("cmux ends")
    }

    /// `cmux new <name> --ssh <alias> --src-base <scratch>/base [extra...]`.
    pub(crate) fn new_args<'a>(
        &'a self,
        name: &'a str,
        base: &'a str,
        extra: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec!["new", name, "--ssh", self.host(), "--src-base", base];
        args.extend_from_slice(extra);
        args
    }

    pub(crate) fn new_ws(&self, name: &str) -> Output {
        let base = self.src_base().display().to_string();
        self.run(&self.new_args(name, &base, &[]))
    }

    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.env.workspace_path(name)
    }

    /// The control sockets cmux made for this test's hosts.
    pub(crate) fn masters(&self) -> Vec<PathBuf> {
        masters(&self.env)
    }

    /// Asks every master of this test to exit (the next command must connect anew).
    pub(crate) fn stop_masters(&self) {
        stop_masters(&self.env, &self.sshd.config_path(), self.host());
    }
}

/// The control sockets cmux made under `env`'s `CMUX_HOME`.
pub(crate) fn masters(env: &Env) -> Vec<PathBuf> {
    let dir = env.home.path().join("ssh");
    let mut socks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_none())
                .collect()
        })
        .unwrap_or_default();
    socks.sort();
    socks
}

/// Asks every master cmux made under `env`'s `CMUX_HOME` for `host` (of ssh config
/// `config`) to exit: the next command must connect anew.
pub(crate) fn stop_masters(env: &Env, config: &Path, host: &str) {
    for sock in masters(env) {
        let _ = Command::new("ssh")
            .arg("-F")
            .arg(config)
            .arg("-S")
            .arg(&sock)
            .args(["-O", "exit", host])
            .stderr(Stdio::null())
            .status();
    }
}

/// An ssh config (in the server's temp dir) whose host `slow-<alias>` reaches `sshd`
/// through a ProxyCommand that sleeps `secs` first and then runs `sshd -i`: every new
/// connection takes at least that long, whatever the machine's load. (In its own
/// `sh -c`: ssh runs a ProxyCommand as `exec <command>`.) Returns the config file and
/// the host.
pub(crate) fn slow_host_config(sshd: &TestSshd, secs: u32) -> (PathBuf, String) {
    let host = format!("slow-{}", sshd.alias());
    let dir = sshd.dir();
    let config = dir.join("slow_ssh_config");
    let text = format!(
        "Host {host}\n  ProxyCommand sh -c 'sleep {secs}; exec {sshd_bin} -i -f {sshd_config}'\n  \
         User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  HostKeyAlias {alias}\n  \
         UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n",
        sshd_bin = cmux_integration_tests::sshd::SSHD,
        sshd_config = dir.join("sshd_config").display(),
        user = sshd.user(),
        key = sshd.client_key_path().display(),
        alias = cmux_integration_tests::sshd::HOST_KEY_ALIAS,
        known = sshd.known_hosts_path().display(),
    );
    std::fs::write(&config, text).expect("write the slow ssh config");
    (config, host)
}

/// The `cmux: connect...` lines of `stderr`, with their durations as `[T]`.
pub(crate) fn connect_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| line.starts_with("cmux: connect"))
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let (open, rest) = match word.strip_prefix('(') {
                        Some(rest) => ("(", rest),
                        None => ("", word),
                    };
                    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        format!("{open}[T]")
                    } else {
                        word.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Issue 12 §7: a connection attempt over 2 s says so on stderr, and how it ended;
/// stdout keeps only the `--json` document.
#[test]
fn a_slow_connection_says_so_on_stderr() {
    let r = Remote::start();
    let (config, host) = slow_host_config(&r.sshd, 3);
    let base = r.src_base().display().to_string();
    let out = r
        .env
        .command(&["new", "w", "--ssh", &host, "--src-base", &base, "--json"])
        .env("CMUX_SSH_CONFIG", &config)
        .output()
        .expect("cmux runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let record: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("stdout is the JSON record alone");
    assert_eq!(record["name"], "w");
    let lines = connect_lines(&stderr(&out)).replace(&host, "[HOST]");
    insta::assert_snapshot!("slow_connection", lines);

    // A later command on the live master connects nothing: no line. Without it, the
    // next one connects anew, and says so again.
    let exec = || {
        let out = r
            .env
            .command(&["exec", "w", "--", "echo on-the-host"])
            .env("CMUX_SSH_CONFIG", &config)
            .output()
            .expect("cmux runs");
        assert_eq!(stdout(&out), "on-the-host\n", "{}", stderr(&out));
        connect_lines(&stderr(&out)).replace(&host, "[HOST]")
    };
    assert_eq!(exec(), "");
    stop_masters(&r.env, &config, &host);
    assert_eq!(exec(), lines);
}

fn git_commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

#[test]
fn ssh_workspace_runs_every_command_on_the_host() {
    let r = Remote::start();
    std::fs::write(r.env.project().join("README.md"), "local edit\n").expect("write");
    let out = r.new_ws("w1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not carried"), "{}", stderr(&out));
    // The push's progress, as plain lines (stderr is not a terminal here).
    let push_done = format!("cmux: push to {}: Writing objects: ", r.host());
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l.starts_with(&push_done) && l.ends_with(", done")),
        "{}",
        stderr(&out)
    );
    let created = stdout(&out);
    assert!(
        created.contains(&format!(
            "created workspace w1 (ssh:{}, branch w1)",
            r.host()
        )),
        "{created}"
    );
    let ws = r.path_of("w1");
    assert!(ws.starts_with(r.src_base()), "{}", ws.display());
    // The committed README, not the local edit.
    assert_eq!(
        std::fs::read_to_string(ws.join("README.md")).expect("on the host"),
        "hello\n"
    );
    assert!(ws
        .parent()
        .expect("project dir")
        .join(".cmux-base.git")
        .is_dir());

    let json: serde_json::Value = serde_json::from_str(&r.ok(&["list", "--json"])).expect("json");
    let backend = &json[0]["backend"];
    assert_eq!(backend["kind"], "ssh");
    assert_eq!(backend["host"], r.host());
    assert_eq!(
        backend["config_file"],
        r.sshd.config_path().display().to_string()
    );
    assert_eq!(backend["accept_new_host_key"], false);
    assert!(r.ok(&["list"]).contains(&format!("ssh:{}", r.host())));

    // exec: through sshd, exit codes, timeout, script vs argv, cwd, env, stdin, streams.
    assert_eq!(
        r.ok(&[
            "exec",
            "w1",
            "--",
            "test -n \"$SSH_CONNECTION\" && echo via-sshd"
        ]),
        "via-sshd\n"
    );
    assert_eq!(r.run(&["exec", "w1", "--", "true"]).status.code(), Some(0));
    assert_eq!(
        r.run(&["exec", "w1", "--", "exit 3"]).status.code(),
        Some(3)
    );
    let timed = r.run(&["exec", "w1", "--timeout", "0.5", "--", "sleep 30"]);
    assert_eq!(timed.status.code(), Some(124), "{}", stderr(&timed));
    assert_eq!(
        r.ok(&["exec", "w1", "--", "pwd"]).trim(),
        ws.display().to_string()
    );
    assert_eq!(
        r.ok(&["exec", "w1", "--", "printf", "[%s]", "a b", "$(x)"]),
        "[a b][$(x)]"
    );
    std::fs::create_dir(ws.join("sub")).expect("mkdir");
    assert_eq!(
        r.ok(&[
            "exec",
            "w1",
            "--cwd",
            "sub",
            "--env",
            "X=1 2",
            "--",
            "echo \"$X\"; pwd"
        ]),
        format!("1 2\n{}\n", ws.join("sub").display())
    );
    let piped = r.run_stdin(&["exec", "w1", "--", "tr a-z A-Z"], b"shout\n");
    assert_eq!(stdout(&piped), "SHOUT\n", "{}", stderr(&piped));
    let both = r.run(&["exec", "w1", "--", "echo out; echo err >&2; exit 7"]);
    assert_eq!(
        (stdout(&both).as_str(), stderr(&both).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(both.status.code(), Some(7));
    let killed = r.run(&["exec", "w1", "--", "kill -9 $$"]);
    assert_eq!(killed.status.code(), Some(137), "{}", stderr(&killed));

    // cat / write / edit / ls, checked on the host's side.
    assert_eq!(r.ok(&["cat", "w1", "README.md"]), "hello\n");
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let wrote = r.run_stdin(&["write", "w1", "dir/bin.dat"], &data);
    assert!(wrote.status.success(), "{}", stderr(&wrote));
    assert_eq!(std::fs::read(ws.join("dir/bin.dat")).expect("read"), data);
    assert_eq!(r.run(&["cat", "w1", "dir/bin.dat"]).stdout, data);
    r.ok(&["edit", "w1", "README.md", "--old", "hello", "--new", "bye"]);
    assert_eq!(
        std::fs::read_to_string(ws.join("README.md")).expect("read"),
        "bye\n"
    );
    let absent = r.run(&["edit", "w1", "README.md", "--old", "zzz", "--new", "y"]);
    assert_eq!(absent.status.code(), Some(1));
    let ls = r.ok(&["ls", "w1"]);
    assert!(ls.contains("README.md") && ls.contains("dir/"), "{ls}");
    let ls_json: serde_json::Value =
        serde_json::from_str(&r.ok(&["ls", "w1", "dir", "--json"])).expect("json");
    assert_eq!(ls_json["entries"][0]["name"], "bin.dat");
    assert_eq!(ls_json["entries"][0]["size"], 70_000);
    let missing = r.run(&["cat", "w1", "nope.txt"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert!(
        err.contains("nope.txt") && err.contains(r.host()),
        "names the path and the host: {err}"
    );

    // rm: refused with uncommitted changes, then with a commit the project lacks;
    // forced; idempotent.
    let refused = r.run(&["rm", "w1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("uncommitted changes"),
        "{}",
        stderr(&refused)
    );
    r.ok(&[
        "exec",
        "w1",
        "--",
        "git add -A && git -c user.name=t -c user.email=t@t.invalid commit -qm remote-only",
    ]);
    let refused = r.run(&["rm", "w1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("commits the local project does not have")
            && stderr(&refused).contains("remote-only")
            && stderr(&refused).contains("bring them home with `cmux pull w1`"),
        "{}",
        stderr(&refused)
    );
    assert!(ws.exists());
    let forced = r.ok(&["rm", "w1", "--force"]);
    assert!(
        forced.contains(
            "branch w1 deleted on the host, with --force: any commits only it had are gone"
        ),
        "{forced}"
    );
    assert!(!ws.exists());
    let again = r.run(&["rm", "w1"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(r.ok(&["list", "--json"]).trim(), "[]");
}

#[test]
fn ssh_rm_of_a_clean_workspace_and_of_one_already_gone() {
    let r = Remote::start();
    for name in ["a", "b"] {
        let out = r.new_ws(name);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (a, b) = (r.path_of("a"), r.path_of("b"));
    let out = r.ok(&["rm", "a"]);
    assert!(!a.exists());
    assert_eq!(
        out.trim(),
        format!(
            "removed workspace a (ssh:{}: removed {}; branch a deleted on the host, the project has all its commits)",
            r.host(),
            a.display()
        )
    );
    // The host's shared repository dropped the branch with the worktree.
    let bare = a.parent().expect("project dir").join(".cmux-base.git");
    assert!(git(&bare, &["branch", "--list", "a"]).trim().is_empty());
    std::fs::remove_dir_all(&b).expect("remove by hand");
    let out = r.ok(&["rm", "b"]);
    assert!(
        out.contains("already gone; branch b left in the host's shared repository"),
        "{out}"
    );
    assert_eq!(r.ok(&["list", "--json"]).trim(), "[]");
}

#[test]
fn second_workspace_pushes_only_new_objects_then_rename_and_fork() {
    let r = Remote::start();
    let out = r.new_ws("first");
    assert!(out.status.success(), "{}", stderr(&out));
    let first = r.path_of("first");
    let bare = first.parent().expect("project dir").join(".cmux-base.git");
    // Keep every later push as a pack of its own, so its object count is exactly
    // what travelled.
    git(&bare, &["config", "receive.unpackLimit", "1"]);
    let packs_before = packs(&bare);

    std::fs::write(r.env.project().join("new.txt"), "new\n").expect("write");
    git_commit_all(r.env.project(), "second");
    let out = r.new_ws("second");
    assert!(out.status.success(), "{}", stderr(&out));
    let new_packs: Vec<PathBuf> = packs(&bare)
        .into_iter()
        .filter(|p| !packs_before.contains(p))
        .collect();
    assert_eq!(new_packs.len(), 1, "one push: {new_packs:?}");
    let sent = objects_in_pack(&bare, &new_packs[0]);
    assert_eq!(
        sent, 3,
        "only the new commit, its tree and the new blob travel"
    );
    let second = r.path_of("second");
    assert!(second.join("new.txt").exists());

    // rename on the host: directory and branch.
    std::fs::write(second.join("three.txt"), "3\n").expect("write");
    r.ok(&[
        "exec",
        "second",
        "--",
        "git add -A && git -c user.name=t -c user.email=t@t.invalid commit -qm third",
    ]);
    let out = r.ok(&["rename", "second", "renamed"]);
    assert!(out.contains("renamed workspace renamed"), "{out}");
    let renamed = r.path_of("renamed");
    assert!(!second.exists() && renamed.join("three.txt").exists());
    assert!(renamed.starts_with(r.src_base()));
    assert_eq!(
        r.ok(&["exec", "renamed", "--", "git branch --show-current"])
            .trim(),
        "renamed"
    );
    assert_eq!(
        r.run(&["exec", "second", "--", "true"]).status.code(),
        Some(1),
        "the old name is gone"
    );

    // fork on the host: same HEAD, new branch.
    r.ok(&["fork", "renamed", "forked"]);
    let forked = r.path_of("forked");
    assert!(forked.starts_with(r.src_base()));
    assert!(forked.join("three.txt").exists());
    assert_eq!(
        r.ok(&["exec", "forked", "--", "git branch --show-current"])
            .trim(),
        "forked"
    );
    assert_eq!(
        git(&forked, &["rev-parse", "HEAD"]),
        git(&renamed, &["rev-parse", "HEAD"])
    );
}

fn packs(bare: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(bare.join("objects/pack"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "idx"))
                .collect()
        })
        .unwrap_or_default()
}

fn objects_in_pack(bare: &Path, idx: &Path) -> usize {
    let out = Command::new("git")
        .arg("-C")
        .arg(bare)
        .arg("show-index")
        .stdin(std::fs::File::open(idx).expect("open idx"))
        .output()
        .expect("git show-index");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn init_hook_runs_on_the_host_with_output_streamed() {
    let r = Remote::start();
    let hook = r.env.project().join(".cmux/init");
    std::fs::create_dir_all(hook.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &hook,
        "#!/bin/bash\necho \"name=$CMUX_WORKSPACE_NAME runtime=$CMUX_RUNTIME\"\n\
         echo \"pwd=$PWD\"\ntest -n \"$SSH_CONNECTION\" && echo on-the-host\n\
         echo to-stderr >&2\ntouch initialized\nexit ${CMUX_TEST_EXIT:-0}\n",
    )
    .expect("write hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    git_commit_all(r.env.project(), "hook");

    let out = r.new_ws("hooked");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = r.path_of("hooked");
    let err = stderr(&out);
    assert!(err.contains("name=hooked runtime=ssh"), "{err}");
    assert!(err.contains(&format!("pwd={}", ws.display())), "{err}");
    assert!(err.contains("on-the-host"), "{err}");
    assert!(err.contains("to-stderr"), "{err}");
    assert!(ws.join("initialized").exists());
}

#[test]
fn unknown_host_key_is_refused_then_accepted_and_remembered() {
    let r = Remote::with(SshdOptions {
        empty_known_hosts: true,
        ..Default::default()
    });
    let out = r.new_ws("w");
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(r.host()) && err.contains("--accept-new-host-key"),
        "{err}"
    );
    assert_eq!(r.ok(&["list", "--json"]).trim(), "[]", "nothing recorded");
    let doctor = r.run(&["doctor", "--ssh", r.host()]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(
        stdout(&doctor).contains("FAIL ssh connection"),
        "{}",
        stdout(&doctor)
    );
    assert!(
        std::fs::read_to_string(r.sshd.known_hosts_path())
            .expect("read")
            .trim()
            .is_empty(),
        "nothing accepted yet"
    );

    let base = r.src_base().display().to_string();
    let out = r.run(&r.new_args("w", &base, &["--accept-new-host-key"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!std::fs::read_to_string(r.sshd.known_hosts_path())
        .expect("read")
        .trim()
        .is_empty());
    let json: serde_json::Value = serde_json::from_str(&r.ok(&["list", "--json"])).expect("json");
    assert_eq!(json[0]["backend"]["accept_new_host_key"], true);

    // Remembered: with the key forgotten again and no master up, the workspace's next
    // connection accepts it again without the flag.
    r.sshd.forget_host_key();
    r.stop_masters();
    assert_eq!(r.ok(&["exec", "w", "--", "echo again"]), "again\n");
    let doctor = r.run(&["doctor", "--ssh", r.host(), "--accept-new-host-key"]);
    assert!(doctor.status.success(), "{}", stdout(&doctor));
}

#[test]
fn doctor_shows_what_ssh_resolved_and_checks_the_host() {
    let r = Remote::start();
    let out = r.run(&["doctor", "--ssh", r.host()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let host_report = normalize_doctor(&r, &stdout(&out));

    let created = r.new_ws("w");
    assert!(created.status.success(), "{}", stderr(&created));
    let out = r.run(&["doctor", "w"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ws_report = normalize_doctor(&r, &stdout(&out));
    insta::assert_snapshot!(
        "ssh_doctor",
        format!("$ cmux doctor --ssh [HOST]\n{host_report}\n$ cmux doctor w\n{ws_report}")
    );

    let json = r.run(&["doctor", "--ssh", r.host(), "--json"]);
    assert!(json.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(doc["ok"], true);
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["what"].as_str().expect("what"))
        .collect();
    assert_eq!(
        names,
        [
            "ssh config",
            "ssh connection",
            "ssh bash",
            "ssh git",
            "ssh sftp",
            "ssh mode"
        ]
    );
    let resolved = &doc["checks"][0]["data"];
    assert_eq!(resolved["hostname"], "127.0.0.1");
    assert_eq!(resolved["port"], r.sshd.port().to_string());
    assert_eq!(
        resolved["identity_files"][0],
        r.sshd.client_key_path().display().to_string()
    );

    // A host that refuses: the failure and its fix.
    r.sshd.revoke_client_key();
    r.stop_masters();
    let out = r.run(&["doctor", "w"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL ssh connection") && text.contains("fix: "),
        "{text}"
    );
    let out = r.run(&["exec", "w", "--", "true"]);
    assert_eq!(out.status.code(), Some(255));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(r.host()) && err.contains("authorized_keys"),
        "names the host and the next step: {err}"
    );
}

/// Replaces what depends on the machine and the test (paths, port, versions, user).
pub(crate) fn normalize_doctor(r: &Remote, text: &str) -> String {
    let local = |cmd: &str| {
        let out = Command::new("bash")
            .args(["-c", cmd])
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let bash_version = local("echo $BASH_VERSION");
    let git_version = local("git --version");
    let home = local("echo ~");
    let text = r
        .env
        .normalize(text)
        .replace(&r.sshd.dir().display().to_string(), "[SSHD]")
        .replace(r.host(), "[HOST]")
        .replace(&format!(":{}", r.sshd.port()), ":[PORT]")
        .replace(&git_version, "git version [VERSION]")
        .replace(&bash_version, "[VERSION]")
        .replace(&format!("{}@", r.sshd.user()), "[USER]@");
    // The helper's version and build id change with every release and source change.
    let text = match cmux_host_bundle::bundled() {
        Some(b) => text
            .replace(&format!("(build {})", b.build), "(build [BUILD])")
            .replace(&format!("cmux-host {}", b.version), "cmux-host [VERSION]"),
        None => text,
    };
    text.lines()
        .map(|l| {
            if l.contains("home is") {
                l.replace(&home, "[REMOTE_HOME]")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn exec_exits_255_naming_the_host_when_it_is_down_then_recovers() {
    let mut r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    r.sshd.stop();
    let out = r.run(&["exec", "w", "--", "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(r.host()), "names the host: {err}");
    assert!(
        err.contains("Connection refused"),
        "ssh's diagnostic: {err}"
    );
    assert!(err.contains("check that sshd runs"), "the next step: {err}");
    let cat = r.run(&["cat", "w", "README.md"]);
    assert_eq!(cat.status.code(), Some(255), "{}", stderr(&cat));

    r.sshd.restart();
    // The host's connection budget (shared by every cmux process: one attempt per
    // ~10 s while it is down) holds new attempts back for a moment, failing fast and
    // saying so; then cmux reconnects by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = r.run(&["exec", "w", "--", "echo back"]);
        if out.status.success() {
            assert_eq!(stdout(&out), "back\n");
            break;
        }
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(255), "{err}");
        assert!(
            err.contains("cmux waits"),
            "fails fast while waiting: {err}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no reconnect within 60 s: {err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn hundred_exec_processes_at_once_on_one_ssh_workspace_all_succeed() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    // No master up: the burst also races to start one.
    r.stop_masters();
    let children: Vec<_> = (0..100)
        .map(|i| {
            r.command(&["exec", "w", "--", &format!("echo {i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cmux starts")
        })
        .collect();
    let mut failures = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("cmux ends");
        if !out.status.success() || stdout(&out) != format!("{i}\n") {
            failures.push(format!(
                "#{i}: exit {:?}, stdout {:?}, stderr {:?}",
                out.status.code(),
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 100 failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let masters = r.masters();
    assert_eq!(masters.len(), 1, "one shared master: {masters:?}");
}

#[test]
fn interrupting_ssh_exec_kills_the_command_group_on_the_host() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = r.path_of("w");
    let child = r
        .command(&["exec", "w", "--", crate::GROUP_COMMAND])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cmux starts");
    crate::signal_and_check_group(child, &ws.join("bg.pid"), "INT", 130, " on the host");
}

#[test]
fn hundred_mixed_file_and_exec_processes_at_once_all_succeed() {
    let r = Remote::start();
    let out = r.new_ws("w");
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = r.path_of("w");
    // Each process opens its own channel (exec) or SFTP session (cat, write, ls) on
    // the one shared master: far more than the host's MaxSessions at once.
    let children: Vec<_> = (0..100)
        .map(|i| {
            let name = format!("f{i}.txt");
            let args: Vec<String> = match i % 4 {
                0 => vec!["exec".into(), "w".into(), "--".into(), format!("echo {i}")],
                1 => vec!["cat".into(), "w".into(), "README.md".into()],
                2 => vec!["write".into(), "w".into(), name],
                _ => vec!["ls".into(), "w".into()],
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut child = r
                .command(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cmux starts");
            if i % 4 == 2 {
                use std::io::Write;
                let mut stdin = child.stdin.take().expect("stdin");
                stdin.write_all(format!("{i}\n").as_bytes()).expect("write");
            } else {
                drop(child.stdin.take());
            }
            child
        })
        .collect();
    let mut failures = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("cmux ends");
        let expected_ok = match i % 4 {
            0 => stdout(&out) == format!("{i}\n"),
            1 => stdout(&out) == "hello\n",
            2 => {
                std::fs::read_to_string(ws.join(format!("f{i}.txt"))).ok() == Some(format!("{i}\n"))
            }
            _ => stdout(&out).contains("README.md"),
        };
        if !out.status.success() || !expected_ok {
            failures.push(format!(
                "#{i}: exit {:?}, stdout {:?}, stderr {:?}",
                out.status.code(),
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 100 failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn doctor_names_a_host_without_sftp_and_the_fix() {
    let mut r = Remote::start();
    let config = r.sshd.dir().join("sshd_config");
    let without: String = std::fs::read_to_string(&config)
        .expect("sshd_config")
        .lines()
        .filter(|l| !l.starts_with("Subsystem"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, without).expect("write sshd_config");
    r.sshd.restart();
    // The host helper needs no SFTP: doctor says so, and workspaces work.
    let out = r.run(&["doctor", "--ssh", r.host()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("not needed: this host uses the host helper"),
        "{text}"
    );
    let created = r.new_ws("with-helper");
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    // The shell/SFTP path needs it: one line naming the host and the fix.
    let run_fallback = |args: &[&str]| {
        r.command(args)
            .env("CMUX_HOST_HELPER", "off")
            .output()
            .expect("cmux runs")
    };
    let out = run_fallback(&["doctor", "--ssh", r.host()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("ok   ssh bash") && text.contains("FAIL ssh sftp"),
        "{text}"
    );
    assert!(
        text.contains("fix: ") && text.contains("Subsystem sftp"),
        "{text}"
    );
    let out = run_fallback(&["doctor", "--ssh", r.host(), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["checks"][4]["what"], "ssh sftp");
    assert_eq!(doc["checks"][4]["ok"], false);
    // Files need it on that path: one line naming the host and the fix.
    let out = run_fallback(&["cat", "with-helper", "README.md"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(r.host()) && err.contains("Subsystem sftp"),
        "{err}"
    );
}
