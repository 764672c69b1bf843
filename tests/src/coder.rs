//! [`FakeCoder`]: a fake Coder deployment for one test — the `fake-coder` binary's
//! config dir and state, an ssh config file, and a workspace whose `ssh --stdio`
//! relays to a [`TestSshd`].
//!
//! Everything lives in the test's own temp dir and is passed explicitly
//! (`--global-config`, `-F`), never through the process environment: tests run in
//! parallel in one process.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::sshd::TestSshd;

/// The session token the fake deployment accepts.
pub const TOKEN: &str = "tok-123";
/// The fake deployment's URL.
pub const URL: &str = "https://coder.example.test";

/// A fake Coder deployment. See the module docs.
#[derive(Debug)]
pub struct FakeCoder {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl FakeCoder {
    /// A logged-in deployment with one workspace `name`, `stopped`, whose agent `main`
    /// is `sshd`. `bin` is `env!("CARGO_BIN_EXE_fake-coder")`. No ssh config yet.
    pub fn new(bin: &str, sshd: &TestSshd, name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cmux-coder-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let fake = FakeCoder {
            dir,
            bin: PathBuf::from(bin),
        };
        std::fs::create_dir_all(fake.config_dir().join("fake"))
            .unwrap_or_else(|e| panic!("config dir: {e}"));
        let state = json!({
            "version": "v2.25.0+fake",
            "username": "testuser",
            "valid_tokens": [TOKEN],
            "hostname_prefix": "coder.",
            "hostname_suffix": "coder",
            "ssh_config_options": {},
            "identity_file": sshd.client_key_path().display().to_string(),
            "ssh_user": sshd.user(),
            "workspaces": [],
        });
        fake.write_state(&state);
        fake.add_workspace(name, sshd, "stopped");
        fake.login();
        fake
    }

    /// Adds workspace `name` (agent `main`) in `status`, relaying to `sshd`.
    pub fn add_workspace(&self, name: &str, sshd: &TestSshd, status: &str) {
        let port = sshd.port();
        let ws_name = name.to_owned();
        let name = name.to_owned();
        self.update(move |state| {
            let mut ws = json!({
                "id": format!("00000000-0000-4000-8000-{:012}", name.len()),
                "name": name,
                "owner": "testuser",
                "template": "docker",
                "template_display_name": "Docker",
                "outdated": false,
                "agents": [{"name": "main"}],
                "start_delay_ms": 0,
                "fail_start": false,
                "target": {"kind": "tcp", "host": "127.0.0.1", "port": port},
            });
            ws["status"] = json!("running");
            if let Some(list) = state["workspaces"].as_array_mut() {
                list.push(ws);
            }
        });
        self.set_status(&ws_name, status);
    }

    /// The fake's `--global-config` dir (holds `url`, `session`, `fake/state.json`).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("coderv2")
    }

    /// The ssh config file of this test (the "user's ~/.ssh/config").
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// A `CMUX_HOME`-like dir for this test (control sockets live under it).
    pub fn cmux_home(&self) -> PathBuf {
        self.dir.path().join("cmux")
    }

    /// The fake binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The ssh options a user gives `coder config-ssh -o` so the test sshd lets them in.
    pub fn user_ssh_options(&self, sshd: &TestSshd) -> Vec<String> {
        vec![
            format!("IdentityFile {}", sshd.client_key_path().display()),
            "IdentitiesOnly yes".into(),
            format!("User {}", sshd.user()),
        ]
    }

    /// Runs the fake CLI with this deployment's `--global-config`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("--global-config")
            .arg(self.config_dir())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("fake-coder {args:?}: {e}"))
    }

    /// `coder config-ssh -y --ssh-config-file <ssh_config>` with the user's `-o`
    /// options for `sshd` plus `extra` flags; panics when it fails.
    pub fn config_ssh(&self, sshd: &TestSshd, extra: &[&str]) {
        let file = self.ssh_config().display().to_string();
        let options = self.user_ssh_options(sshd);
        let mut args = vec!["config-ssh", "-y", "--ssh-config-file", file.as_str()];
        for o in &options {
            args.extend(["-o", o.as_str()]);
        }
        args.extend(extra);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "config-ssh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Logs in (writes `url` and `session`).
    pub fn login(&self) {
        std::fs::write(self.config_dir().join("url"), URL).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(self.config_dir().join("session"), TOKEN).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Logs out (removes `url` and `session`).
    pub fn logout(&self) {
        let _ = std::fs::remove_file(self.config_dir().join("url"));
        let _ = std::fs::remove_file(self.config_dir().join("session"));
    }

    /// The state as the fake sees it.
    pub fn state(&self) -> Value {
        let _lock = self.lock();
        self.read_state()
    }

    fn read_state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_path()).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn state_path(&self) -> PathBuf {
        self.config_dir().join("fake/state.json")
    }

    fn lock(&self) -> std::fs::File {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.config_dir().join("fake/state.lock"))
            .unwrap_or_else(|e| panic!("{e}"));
        file.lock().unwrap_or_else(|e| panic!("{e}"));
        file
    }

    fn write_state(&self, state: &Value) {
        let tmp = self.config_dir().join("fake/state.json.harness");
        let text = serde_json::to_string_pretty(state).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&tmp, self.state_path()).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Changes the state under the fake's lock.
    pub fn update(&self, f: impl FnOnce(&mut Value)) {
        let _lock = self.lock();
        let mut state = self.read_state();
        f(&mut state);
        self.write_state(&state);
    }

    /// Changes workspace `name` under the fake's lock.
    pub fn update_workspace(&self, name: &str, f: impl FnOnce(&mut Value)) {
        self.update(|state| {
            let ws = state["workspaces"]
                .as_array_mut()
                .and_then(|l| l.iter_mut().find(|w| w["name"] == name))
                .unwrap_or_else(|| panic!("no fake workspace {name}"));
            f(ws);
        });
    }

    /// Workspace `name` as stored.
    pub fn workspace(&self, name: &str) -> Value {
        self.state()["workspaces"]
            .as_array()
            .and_then(|l| l.iter().find(|w| w["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no fake workspace {name}"))
    }

    /// `latest_build.status` of `name`, as `coder list` would show it now.
    pub fn status(&self, name: &str) -> String {
        let out = self.run(&["list", "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
        list.as_array()
            .and_then(|l| l.iter().find(|w| w["name"] == name))
            .map(|w| {
                w["latest_build"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    }

    /// How many start builds `name` had.
    pub fn start_count(&self, name: &str) -> u64 {
        self.workspace(name)["start_count"].as_u64().unwrap_or(0)
    }

    /// Sets `status` with the matching transition, job status and agent states; when
    /// `settle` is given, the status becomes `to` after that long.
    pub fn set_status_then(&self, name: &str, status: &str, settle: Option<(Duration, &str)>) {
        let (transition, job, agent, life) = match status {
            "running" => ("start", "succeeded", "connected", "ready"),
            "starting" | "pending" => ("start", "running", "connecting", "starting"),
            "stopping" => ("stop", "running", "connected", "shutting_down"),
            "stopped" => ("stop", "succeeded", "disconnected", "off"),
            "failed" => ("start", "failed", "disconnected", "off"),
            "canceling" => ("start", "canceling", "disconnected", "off"),
            "deleted" => ("delete", "succeeded", "disconnected", "off"),
            other => panic!("set_status: unknown status {other}"),
        };
        let settle = settle.map(|(d, to)| (d, to.to_owned()));
        self.update_workspace(name, move |ws| {
            ws["status"] = json!(status);
            ws["transition"] = json!(transition);
            ws["job_status"] = json!(job);
            for a in ws["agents"].as_array_mut().into_iter().flatten() {
                a["status"] = json!(agent);
                a["lifecycle_state"] = json!(life);
            }
            let obj = ws
                .as_object_mut()
                .unwrap_or_else(|| panic!("workspace object"));
            obj.remove("ready_at");
            obj.remove("settle_to");
            if let Some((after, to)) = settle {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                obj.insert("ready_at".into(), json!(now + after.as_millis() as u64));
                obj.insert("settle_to".into(), json!(to));
            }
        });
    }

    /// Sets `status` (see [`FakeCoder::set_status_then`]).
    pub fn set_status(&self, name: &str, status: &str) {
        self.set_status_then(name, status, None);
    }

    /// [`cmux_backend_coder::CoderOptions`] for this deployment: the fake binary, its
    /// config dir, this test's ssh config and control dir, fast polling, and progress
    /// lines collected into the returned buffer.
    pub fn options(&self) -> (cmux_backend_coder::CoderOptions, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let progress = cmux_backend_coder::Progress::new(move |line| {
            if let Ok(mut l) = sink.lock() {
                l.push(line.to_owned());
            }
        });
        let ssh = cmux_backend_ssh::SshOptions::default()
            .config_file(self.ssh_config())
            .control_dir(self.cmux_home().join("ssh"));
        let opts = cmux_backend_coder::CoderOptions::default()
            .coder_bin(&self.bin)
            .global_config(self.config_dir())
            .ssh(ssh)
            .poll_interval(Duration::from_millis(100))
            .start_timeout(Duration::from_secs(60))
            .progress(progress);
        (opts, lines)
    }

    /// Appends `text` to the ssh config file (the user's own content).
    pub fn append_ssh_config(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ssh_config())
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
