//! A fake `coder` CLI for cmux's tests, faithful to the real one where cmux depends on it
//! (see `shared/reference/coder-cli.md` §7): the same subcommands, flags, stdout/stderr
//! split, messages and exit codes, with the deployment replaced by a state file.
//!
//! - Config dir: `--global-config DIR`, else `CODER_CONFIG_DIR`, else
//!   `$HOME/.config/coderv2`; `url` and `session` live there as with the real CLI.
//! - State: `DIR/fake/state.json` (locked with `DIR/fake/state.lock`, written
//!   atomically), which the ProxyCommand finds through the `--global-config` that
//!   `config-ssh` embeds. Tests flip its knobs mid-run (`fail_start`, `start_delay_ms`,
//!   `api_unreachable`, ...).
//! - `ssh --stdio <host>` relays stdin/stdout to the workspace's `target` (a TCP port
//!   of a test sshd, or `sshd -i` in inetd mode), autostarting a stopped workspace and
//!   closing the tunnel when the workspace stops, as the real one does.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::exit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const START_TOKEN: &str = "# ------------START-CODER-----------";
const END_TOKEN: &str = "# ------------END-CODER------------";
const SECTION_HEADER: &str = "# This section is managed by coder. DO NOT EDIT.";
const DOCS_HEADER: &str = "\n#\n# You should not hand-edit this section unless you are removing it, all\n# changes will be lost when running \"coder config-ssh\".\n";
const OPTIONS_HEADER: &str = "#\n# Last config-ssh options:\n";

/// A failure of a subcommand: printed the way the real CLI prints errors, exit 1.
struct Failure(String);

type Outcome = Result<i32, Failure>;

fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(message.into()))
}

struct Globals {
    config_dir: PathBuf,
    url: Option<String>,
    token: Option<String>,
    headers: Vec<String>,
    header_command: Option<String>,
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let (globals, args) = parse_globals(raw);
    let sub = args.first().cloned().unwrap_or_default();
    if sub.is_empty()
        || args.iter().any(|a| a == "--help" || a == "-h") && !is_after_dashdash(&args)
    {
        println!("USAGE:\n  coder [global-flags] <subcommand>\n\n(fake coder for cmux tests)");
        exit(0);
    }
    let rest = args[1..].to_vec();
    let result = run(&globals, &sub, rest);
    match result {
        Ok(code) => exit(code),
        Err(Failure(message)) => {
            let display = match sub.as_str() {
                "ls" => "list".to_owned(),
                other => other.to_owned(),
            };
            eprintln!(
                "Encountered an error running \"coder {display}\", see \"coder {display} --help\" for more information"
            );
            eprintln!("error: {message}");
            exit(1);
        }
    }
}

fn is_after_dashdash(args: &[String]) -> bool {
    let help = args.iter().position(|a| a == "--help" || a == "-h");
    let dd = args.iter().position(|a| a == "--");
    matches!((help, dd), (Some(h), Some(d)) if d < h)
}

fn parse_globals(raw: Vec<String>) -> (Globals, Vec<String>) {
    let mut config: Option<String> = None;
    let mut url = None;
    let mut token = None;
    let mut headers = Vec::new();
    let mut header_command = None;
    let mut args = Vec::new();
    let mut iter = raw.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            args.push(arg);
            args.extend(iter.by_ref());
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |inline: Option<String>| inline.or_else(|| iter.next()).unwrap_or_default();
        match name.as_str() {
            "--global-config" => config = Some(value(inline)),
            "--url" => url = Some(value(inline)),
            "--token" => token = Some(value(inline)),
            "--header" => headers.push(value(inline)),
            "--header-command" => header_command = Some(value(inline)),
            "--no-version-warning"
            | "--no-feature-warning"
            | "-v"
            | "--verbose"
            | "--use-keyring"
            | "--disable-direct-connections"
            | "--force-tty" => {}
            _ => args.push(arg),
        }
    }
    let config_dir = config
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CODER_CONFIG_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".config/coderv2")
        });
    let config_dir = absolute(&config_dir);
    (
        Globals {
            config_dir,
            url: url.or_else(|| std::env::var("CODER_URL").ok()),
            token: token.or_else(|| std::env::var("CODER_SESSION_TOKEN").ok()),
            headers,
            header_command,
        },
        args,
    )
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    }
}

/// Flags of one subcommand: `value` flags take an argument (`--x v` or `--x=v`),
/// `bools` may be given as `--x` or `--x=true|false`. Unknown flags are errors.
struct Parsed {
    values: BTreeMap<String, Vec<String>>,
    bools: BTreeMap<String, bool>,
    positional: Vec<String>,
    after_dashdash: Vec<String>,
}

impl Parsed {
    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
    fn flag(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
    fn given(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.bools.contains_key(name)
    }
}

fn parse_flags(args: Vec<String>, values: &[&str], bools: &[&str]) -> Result<Parsed, Failure> {
    let mut parsed = Parsed {
        values: BTreeMap::new(),
        bools: BTreeMap::new(),
        positional: Vec::new(),
        after_dashdash: Vec::new(),
    };
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            parsed.after_dashdash = iter.by_ref().collect();
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            parsed.positional.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let canonical = values
            .iter()
            .chain(bools.iter())
            .flat_map(|spec| spec.split('|').map(move |alias| (alias, spec)))
            .find(|(alias, _)| *alias == name)
            .map(|(_, spec)| spec.split('|').next().unwrap_or_default().to_owned());
        let Some(canonical) = canonical else {
            return fail(format!("unknown flag: {name}"));
        };
        if values.iter().any(|spec| spec.split('|').any(|a| a == name)) {
            let Some(v) = inline.or_else(|| iter.next()) else {
                return fail(format!("flag needs an argument: {name}"));
            };
            parsed.values.entry(canonical).or_default().push(v);
        } else {
            let v = match inline.as_deref() {
                None | Some("true") | Some("yes") => true,
                Some("false") | Some("no") => false,
                Some(other) => return fail(format!("invalid argument {other:?} for {name}")),
            };
            parsed.bools.insert(canonical, v);
        }
    }
    Ok(parsed)
}

fn run(globals: &Globals, sub: &str, args: Vec<String>) -> Outcome {
    match sub {
        "version" => cmd_version(globals, args),
        "login" => cmd_login(globals, args),
        "logout" => cmd_logout(globals, args),
        "connect" => cmd_connect(globals, args),
        "whoami" => cmd_whoami(globals, args),
        "list" | "ls" => cmd_list(globals, args),
        "start" => cmd_start(globals, args),
        "stop" => cmd_stop(globals, args),
        "create" => cmd_create(globals, args),
        "delete" => cmd_delete(globals, args),
        "config-ssh" => cmd_config_ssh(globals, args),
        "ssh" => cmd_ssh(globals, args),
        other => fail(format!("unknown subcommand {other:?}")),
    }
}

// ---------------------------------------------------------------- state

struct Store {
    dir: PathBuf,
}

/// The state lock, held for a read-modify-write (ProxyCommands run concurrently).
struct Locked {
    _file: fs::File,
}

impl Store {
    fn new(globals: &Globals) -> Self {
        Store {
            dir: globals.config_dir.join("fake"),
        }
    }

    fn lock(&self) -> Result<Locked, Failure> {
        fs::create_dir_all(&self.dir).map_err(|e| Failure(format!("fake state dir: {e}")))?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("state.lock"))
            .map_err(|e| Failure(format!("fake state lock: {e}")))?;
        file.lock()
            .map_err(|e| Failure(format!("fake state lock: {e}")))?;
        Ok(Locked { _file: file })
    }

    fn load(&self) -> Result<Value, Failure> {
        let path = self.dir.join("state.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(json!({})),
            Err(e) => return fail(format!("fake state {}: {e}", path.display())),
        };
        let mut state: Value = serde_json::from_str(&text)
            .map_err(|e| Failure(format!("fake state {}: {e}", path.display())))?;
        settle(&mut state);
        Ok(state)
    }

    fn save(&self, state: &Value) -> Result<(), Failure> {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join(format!("state.json.{}", std::process::id()));
        let text =
            serde_json::to_string_pretty(state).map_err(|e| Failure(format!("fake state: {e}")))?;
        fs::write(&tmp, text).map_err(|e| Failure(format!("fake state: {e}")))?;
        fs::rename(&tmp, &path).map_err(|e| Failure(format!("fake state: {e}")))
    }

    /// Runs `f` on the state under the lock and saves it.
    /// Saved even when `f` fails: a failed build is recorded, as on a real server.
    fn update<T>(&self, f: impl FnOnce(&mut Value) -> Result<T, Failure>) -> Result<T, Failure> {
        let _lock = self.lock()?;
        let mut state = self.load()?;
        let out = f(&mut state);
        self.save(&state)?;
        out
    }

    fn read(&self) -> Result<Value, Failure> {
        let _lock = self.lock()?;
        self.load()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Applies transitions whose time has come (`ready_at` → `settle_to`).
fn settle(state: &mut Value) {
    let now = now_ms();
    if let Some(list) = state.get_mut("workspaces").and_then(Value::as_array_mut) {
        for ws in list {
            let due = ws
                .get("ready_at")
                .and_then(Value::as_u64)
                .is_some_and(|t| t <= now);
            if due {
                let to = ws
                    .get("settle_to")
                    .and_then(Value::as_str)
                    .unwrap_or("running")
                    .to_owned();
                set_status(ws, &to);
            }
        }
    }
}

/// Sets a status with the transition, job status and agent states that go with it.
fn set_status(ws: &mut Value, status: &str) {
    let (transition, job, agent_status, lifecycle) = match status {
        "running" => ("start", "succeeded", "connected", "ready"),
        "starting" | "pending" => ("start", "running", "connecting", "starting"),
        "stopping" => ("stop", "running", "connected", "shutting_down"),
        "stopped" => ("stop", "succeeded", "disconnected", "off"),
        "failed" => (
            ws.get("transition")
                .and_then(Value::as_str)
                .unwrap_or("start"),
            "failed",
            "disconnected",
            "off",
        ),
        "canceling" => ("start", "canceling", "disconnected", "off"),
        "canceled" => ("start", "canceled", "disconnected", "off"),
        "deleting" => ("delete", "running", "disconnected", "off"),
        "deleted" => ("delete", "succeeded", "disconnected", "off"),
        _ => ("start", "unknown", "disconnected", "off"),
    };
    let transition = transition.to_owned();
    ws["status"] = json!(status);
    ws["transition"] = json!(transition);
    ws["job_status"] = json!(job);
    if let Some(agents) = ws.get_mut("agents").and_then(Value::as_array_mut) {
        for agent in agents {
            agent["status"] = json!(agent_status);
            agent["lifecycle_state"] = json!(lifecycle);
        }
    }
    if let Some(obj) = ws.as_object_mut() {
        obj.remove("ready_at");
        obj.remove("settle_to");
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

// ---------------------------------------------------------------- auth

struct Session {
    url: String,
    username: String,
}

/// The auth gate every API command passes first.
fn auth(globals: &Globals, state: &Value) -> Result<Session, Failure> {
    let url = globals.url.clone().or_else(|| {
        fs::read_to_string(globals.config_dir.join("url"))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    });
    let Some(url) = url else {
        return fail("You are not logged in. Try logging in using 'coder login <url>'.");
    };
    if state.get("api_unreachable").and_then(Value::as_bool) == Some(true) {
        return fail(format!(
            "Get \"{url}/api/v2/users/me\": dial tcp 127.0.0.1:1: connect: connection refused"
        ));
    }
    let token = globals.token.clone().or_else(|| {
        fs::read_to_string(globals.config_dir.join("session"))
            .ok()
            .map(|s| s.trim().to_owned())
    });
    let valid = state
        .get("valid_tokens")
        .and_then(Value::as_array)
        .is_some_and(|tokens| {
            token
                .as_deref()
                .is_some_and(|t| tokens.iter().any(|v| v.as_str() == Some(t)))
        });
    if !valid {
        return fail(
            "unexpected status code 401: Unauthorized. Try logging in using 'coder login <url>'.",
        );
    }
    Ok(Session {
        url,
        username: str_of(state, "username").to_owned(),
    })
}

// ---------------------------------------------------------------- simple commands

fn cmd_version(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(args, &["--output|-o"], &[])?;
    let state = Store::new(globals).read()?;
    let version = str_of(&state, "version");
    let version = if version.is_empty() {
        "v2.25.0+fake"
    } else {
        version
    };
    if p.value("--output") == Some("json") {
        println!(
            "{}",
            json!({"version": version, "external_url": "https://github.com/coder/coder"})
        );
    } else {
        println!("Coder {version}");
    }
    Ok(0)
}

fn cmd_whoami(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(args, &["--output|-o"], &[])?;
    let state = Store::new(globals).read()?;
    let session = auth(globals, &state)?;
    if p.value("--output") == Some("json") {
        let me = json!([{
            "url": session.url,
            "username": session.username,
            "user_id": "00000000-0000-4000-8000-000000000001",
            "organization_ids": [],
            "roles": {},
        }]);
        println!("{me}");
    } else {
        println!(
            "Coder is running at {}, You're authenticated as {} !",
            session.url, session.username
        );
    }
    Ok(0)
}

fn cmd_login(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(args, &[], &["--use-token-as-session"])?;
    let Some(url) = p
        .positional
        .first()
        .cloned()
        .or_else(|| globals.url.clone())
    else {
        return fail("a URL is required in a non-interactive session: coder login <url>");
    };
    let Some(token) = globals.token.clone() else {
        return fail("the session token must be given with --token or CODER_SESSION_TOKEN in a non-interactive session");
    };
    let store = Store::new(globals);
    let state = store.read()?;
    let valid = state
        .get("valid_tokens")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|v| v.as_str() == Some(token.as_str())));
    if !valid {
        return fail(format!(
            "unexpected status code 401: Unauthorized. Try logging in using 'coder login {url}'."
        ));
    }
    fs::create_dir_all(&globals.config_dir).map_err(|e| Failure(e.to_string()))?;
    write_private(&globals.config_dir.join("url"), &url)?;
    write_private(&globals.config_dir.join("session"), &token)?;
    println!(
        "Welcome to Coder, {}! You're authenticated.",
        str_of(&state, "username")
    );
    Ok(0)
}

fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure(format!("write {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Failure(format!("write {}: {e}", path.display())))
}

fn cmd_logout(globals: &Globals, args: Vec<String>) -> Outcome {
    parse_flags(args, &[], &["--yes|-y"])?;
    let _ = fs::remove_file(globals.config_dir.join("url"));
    let _ = fs::remove_file(globals.config_dir.join("session"));
    println!("You are no longer logged in. You can log in using 'coder login <url>'.");
    Ok(0)
}

fn cmd_connect(globals: &Globals, args: Vec<String>) -> Outcome {
    // `coder connect exists <host>`: exit 1 unless Coder Connect is simulated, so the
    // config's `Match ... !exec` applies the ProxyCommand.
    if args.first().map(String::as_str) != Some("exists") {
        return fail("unknown connect subcommand");
    }
    let state = Store::new(globals).read()?;
    Ok(
        if state.get("coder_connect").and_then(Value::as_bool) == Some(true) {
            0
        } else {
            1
        },
    )
}

// ---------------------------------------------------------------- workspaces

fn workspace_json(ws: &Value, owner: &str) -> Value {
    let agents: Vec<Value> = ws
        .get("agents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            json!({
                "name": str_of(&a, "name"),
                "status": str_of(&a, "status"),
                "lifecycle_state": str_of(&a, "lifecycle_state"),
                "operating_system": "linux",
            })
        })
        .collect();
    let name = str_of(ws, "name");
    let owner = if str_of(ws, "owner").is_empty() {
        owner
    } else {
        str_of(ws, "owner")
    };
    json!({
        "id": str_of(ws, "id"),
        "created_at": "2026-01-01T00:00:00Z",
        "owner_name": owner,
        "organization_name": "coder",
        "template_name": str_of(ws, "template"),
        "template_display_name": str_of(ws, "template_display_name"),
        "latest_build": {
            "workspace_name": name,
            "workspace_owner_name": owner,
            "build_number": ws.get("build_number").and_then(Value::as_u64).unwrap_or(1),
            "transition": str_of(ws, "transition"),
            "job": {"status": str_of(ws, "job_status"), "type": "workspace_build"},
            "reason": "initiator",
            "resources": [{"name": "dev", "type": "docker_container", "agents": agents}],
            "status": str_of(ws, "status"),
        },
        "outdated": ws.get("outdated").and_then(Value::as_bool).unwrap_or(false),
        "name": name,
        "health": {"healthy": true, "failing_agents": []},
    })
}

fn cmd_list(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(
        args,
        &["--output|-o", "--search", "--column|-c"],
        &["--all|-a"],
    )?;
    let store = Store::new(globals);
    let state = store.read()?;
    let session = auth(globals, &state)?;
    let default_query = if p.flag("--all") { "" } else { "owner:me" };
    let query = p.value("--search").unwrap_or(default_query).to_owned();
    let mut owner_filter: Option<String> = None;
    let mut name_filter: Option<String> = None;
    let mut status_filter: Option<String> = None;
    for token in query.split_whitespace() {
        let (key, value) = token.split_once(':').unwrap_or(("name", token));
        match key {
            "owner" | "user" => {
                owner_filter = Some(if value == "me" {
                    session.username.clone()
                } else {
                    value.to_owned()
                })
            }
            "name" => name_filter = Some(value.to_lowercase()),
            "status" => status_filter = Some(value.to_owned()),
            _ => {}
        }
    }
    let rows: Vec<Value> = state
        .get("workspaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|ws| str_of(ws, "status") != "deleted" || ws.get("keep_deleted").is_some())
        .filter(|ws| {
            let owner = if str_of(ws, "owner").is_empty() {
                session.username.as_str()
            } else {
                str_of(ws, "owner")
            };
            owner_filter.as_deref().is_none_or(|o| o == owner)
                && name_filter
                    .as_deref()
                    .is_none_or(|n| str_of(ws, "name").to_lowercase().contains(n))
                && status_filter
                    .as_deref()
                    .is_none_or(|s| s == str_of(ws, "status"))
        })
        .map(|ws| workspace_json(&ws, &session.username))
        .collect();
    let json_out = p.value("--output") == Some("json");
    if rows.is_empty() {
        let old_style = str_of(&state, "empty_list_output") == "empty";
        if json_out && !old_style {
            println!("[]");
        } else {
            eprintln!("No workspaces found! Create one:\n\n   coder create <name>\n");
        }
        return Ok(0);
    }
    if json_out {
        let text = serde_json::to_string_pretty(&Value::Array(rows))
            .map_err(|e| Failure(e.to_string()))?;
        println!("{text}");
    } else {
        println!("WORKSPACE  TEMPLATE  STATUS  HEALTHY  LAST BUILT  CURRENT VERSION  OUTDATED");
        for row in rows {
            println!(
                "{}/{}  {}  {}  true  1m  v1  false",
                str_of(&row, "owner_name"),
                str_of(&row, "name"),
                str_of(&row, "template_name"),
                display_status(str_of(&row["latest_build"], "status"))
            );
        }
    }
    Ok(0)
}

fn display_status(status: &str) -> &'static str {
    match status {
        "running" => "Started",
        "stopped" => "Stopped",
        "starting" => "Starting",
        "stopping" => "Stopping",
        "failed" => "Failed",
        "canceling" => "Canceling",
        "canceled" => "Canceled",
        "pending" => "Queued",
        "deleting" => "Deleting",
        "deleted" => "Deleted",
        _ => "Unknown",
    }
}

/// Finds `owner/name` or `name` among the workspaces the session can see.
fn find_index(state: &Value, session: &Session, name: &str) -> Result<usize, Failure> {
    let (owner, bare) = match name.split_once('/') {
        Some((o, n)) => (o.to_owned(), n.to_owned()),
        None => (session.username.clone(), name.to_owned()),
    };
    state
        .get("workspaces")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter().position(|ws| {
                let ws_owner = if str_of(ws, "owner").is_empty() {
                    session.username.as_str()
                } else {
                    str_of(ws, "owner")
                };
                str_of(ws, "name") == bare && ws_owner == owner && str_of(ws, "status") != "deleted"
            })
        })
        .ok_or_else(|| {
            Failure("Resource not found or you do not have access to this resource".into())
        })
}

fn workspace_mut(state: &mut Value, index: usize) -> Result<&mut Value, Failure> {
    state
        .get_mut("workspaces")
        .and_then(|w| w.get_mut(index))
        .ok_or_else(|| Failure("fake state changed under us".into()))
}

/// Begins a start build. Returns the time the build completes, or the failure.
fn begin_start(ws: &mut Value) -> Result<u64, Failure> {
    let name = str_of(ws, "name").to_owned();
    if ws.get("fail_start").and_then(Value::as_bool) == Some(true) {
        set_status(ws, "failed");
        ws["transition"] = json!("start");
        return fail(format!(
            "build failed: workspace {name:?}: terraform apply: fake failure (fail_start is set)"
        ));
    }
    let delay = ws
        .get("start_delay_ms")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let count = ws.get("start_count").and_then(Value::as_u64).unwrap_or(0);
    ws["start_count"] = json!(count + 1);
    let build = ws.get("build_number").and_then(Value::as_u64).unwrap_or(1);
    ws["build_number"] = json!(build + 1);
    let ready_at = now_ms() + delay;
    set_status(ws, "starting");
    ws["ready_at"] = json!(ready_at);
    ws["settle_to"] = json!("running");
    Ok(ready_at)
}

/// Waits (without the lock) until the workspace leaves `starting`; returns its status.
fn wait_until_settled(store: &Store, index: usize) -> Result<String, Failure> {
    loop {
        let state = store.read()?;
        let ws = state
            .get("workspaces")
            .and_then(|w| w.get(index))
            .ok_or_else(|| Failure("fake state changed under us".into()))?;
        let status = str_of(ws, "status");
        if !matches!(status, "starting" | "pending" | "stopping") {
            return Ok(status.to_owned());
        }
        let wait = ws
            .get("ready_at")
            .and_then(Value::as_u64)
            .map(|t| t.saturating_sub(now_ms()))
            .unwrap_or(100)
            .clamp(10, 200);
        std::thread::sleep(Duration::from_millis(wait));
    }
}

fn stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize % 12],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn cmd_start(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(
        args,
        &[
            "--parameter",
            "--build-option",
            "--rich-parameter-file",
            "--parameter-default",
        ],
        &[
            "--yes|-y",
            "--no-wait",
            "--always-prompt",
            "--build-options",
        ],
    )?;
    let Some(name) = p.positional.first().cloned() else {
        return fail("wanted 1 args but got 0 [start]");
    };
    let store = Store::new(globals);
    let (index, already) = store.update(|state| {
        let session = auth(globals, state)?;
        let index = find_index(state, &session, &name)?;
        let ws = workspace_mut(state, index)?;
        match str_of(ws, "status") {
            "running" => Ok((index, Some("running"))),
            "starting" | "pending" => Ok((index, Some("starting"))),
            "stopping" | "canceling" | "deleting" => fail(format!(
                "unexpected status code 409: A workspace build is already active. Try again once workspace {name:?} has finished its {} build.",
                str_of(ws, "transition")
            )),
            _ => begin_start(ws).map(|_| (index, None)),
        }
    })?;
    match already {
        Some("running") => {
            println!("\nThe {name} workspace is already running!");
            return Ok(0);
        }
        Some(_) => println!("The {name} workspace is already starting."),
        None => {}
    }
    if p.flag("--no-wait") {
        return Ok(0);
    }
    println!("==> ⧗ Queued\n==> ⧗ Running\n==> ⧗ Setting up\n==> ⧗ Starting workspace");
    let status = wait_until_settled(&store, index)?;
    if status != "running" {
        return fail(format!("build failed: workspace {name:?} is {status}"));
    }
    println!("\nThe {name} workspace has been started at {}!", stamp());
    Ok(0)
}

fn cmd_stop(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(args, &[], &["--yes|-y"])?;
    let Some(name) = p.positional.first().cloned() else {
        return fail("wanted 1 args but got 0 [stop]");
    };
    let store = Store::new(globals);
    let index = store.update(|state| {
        let session = auth(globals, state)?;
        let index = find_index(state, &session, &name)?;
        let ws = workspace_mut(state, index)?;
        let delay = ws.get("stop_delay_ms").and_then(Value::as_u64).unwrap_or(0);
        if delay == 0 {
            set_status(ws, "stopped");
        } else {
            set_status(ws, "stopping");
            ws["ready_at"] = json!(now_ms() + delay);
            ws["settle_to"] = json!("stopped");
        }
        Ok(index)
    })?;
    wait_until_settled(&store, index)?;
    println!("\nThe {name} workspace has been stopped at {}!", stamp());
    Ok(0)
}

fn cmd_create(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(
        args,
        &[
            "--template|-t",
            "--org|-O",
            "--preset",
            "--parameter",
            "--template-version",
        ],
        &["--yes|-y"],
    )?;
    let Some(name) = p.positional.first().cloned() else {
        return fail("a workspace name is required in a non-interactive session");
    };
    let Some(template) = p.value("--template").map(str::to_owned) else {
        return fail("a template is required in a non-interactive session: --template");
    };
    if !p.flag("--yes") {
        return fail("EOF");
    }
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid {
        return fail(format!("workspace name {name:?} is invalid: use letters, digits and single dashes, at most 32 characters"));
    }
    Store::new(globals).update(|state| {
        let session = auth(globals, state)?;
        if find_index(state, &session, &name).is_ok() {
            return fail(format!(
                "A workspace with the name {name:?} already exists."
            ));
        }
        let mut ws = json!({
            "id": format!("00000000-0000-4000-8000-{:012}", now_ms() % 1_000_000_000_000),
            "name": name, "owner": session.username, "template": template,
            "template_display_name": template, "outdated": false,
            "agents": [{"name": "main"}],
        });
        set_status(&mut ws, "running");
        if let Some(list) = state.get_mut("workspaces").and_then(Value::as_array_mut) {
            list.push(ws);
        } else {
            state["workspaces"] = json!([ws]);
        }
        Ok(())
    })?;
    println!("\nThe {name} workspace has been created at {}!", stamp());
    Ok(0)
}

fn cmd_delete(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(args, &[], &["--yes|-y", "--orphan"])?;
    let Some(name) = p.positional.first().cloned() else {
        return fail("wanted 1 args but got 0 [delete]");
    };
    Store::new(globals).update(|state| {
        let session = auth(globals, state)?;
        let index = find_index(state, &session, &name)?;
        set_status(workspace_mut(state, index)?, "deleted");
        Ok(())
    })?;
    println!("\nThe {name} workspace has been deleted at {}!", stamp());
    Ok(0)
}

// ---------------------------------------------------------------- config-ssh

#[derive(Clone, Default, PartialEq)]
struct SshOptions {
    wait: String,
    host_prefix: String,
    hostname_suffix: String,
    disable_autostart: bool,
    no_wildcard: bool,
    ssh_options: Vec<String>,
    headers: Vec<String>,
    header_command: String,
}

impl SshOptions {
    fn stored_lines(&self) -> String {
        let mut out = String::new();
        if !self.wait.is_empty() && self.wait != "auto" {
            out.push_str(&format!("# :wait={}\n", self.wait));
        }
        if !self.host_prefix.is_empty() {
            out.push_str(&format!("# :ssh-host-prefix={}\n", self.host_prefix));
        }
        if !self.hostname_suffix.is_empty() {
            out.push_str(&format!("# :hostname-suffix={}\n", self.hostname_suffix));
        }
        if self.disable_autostart {
            out.push_str("# :disable-autostart=true\n");
        }
        if self.no_wildcard {
            out.push_str("# :no-wildcard=true\n");
        }
        for o in &self.ssh_options {
            out.push_str(&format!("# :ssh-option={o}\n"));
        }
        for h in &self.headers {
            out.push_str(&format!("# :header={h}\n"));
        }
        if !self.header_command.is_empty() {
            out.push_str(&format!("# :header-command={}\n", self.header_command));
        }
        out
    }

    fn parse_stored(section: &str) -> SshOptions {
        let mut o = SshOptions {
            wait: "auto".into(),
            ..SshOptions::default()
        };
        for line in section.lines() {
            let Some(rest) = line.strip_prefix("# :") else {
                continue;
            };
            let Some((key, value)) = rest.split_once('=') else {
                continue;
            };
            match key {
                "wait" => o.wait = value.to_owned(),
                "ssh-host-prefix" => o.host_prefix = value.to_owned(),
                "hostname-suffix" => o.hostname_suffix = value.to_owned(),
                "disable-autostart" => o.disable_autostart = value == "true",
                "no-wildcard" => o.no_wildcard = value == "true",
                "ssh-option" => o.ssh_options.push(value.to_owned()),
                "header" => o.headers.push(value.to_owned()),
                "header-command" => o.header_command = value.to_owned(),
                _ => {}
            }
        }
        o
    }

    fn same_as(&self, other: &SshOptions) -> bool {
        let sorted = |v: &Vec<String>| {
            let mut v = v.clone();
            v.sort();
            v
        };
        self.wait == other.wait
            && self.host_prefix == other.host_prefix
            && self.hostname_suffix == other.hostname_suffix
            && self.disable_autostart == other.disable_autostart
            && self.no_wildcard == other.no_wildcard
            && sorted(&self.ssh_options) == sorted(&other.ssh_options)
            && sorted(&self.headers) == sorted(&other.headers)
            && self.header_command == other.header_command
    }
}

/// Splits the file into (before, section, after), with the real CLI's errors.
fn split_on_section(raw: &str) -> Result<(String, Option<String>, String), Failure> {
    let starts = raw.matches(START_TOKEN).count();
    let ends = raw.matches(END_TOKEN).count();
    if starts > 1 || ends > 1 {
        return fail(
            "Malformed config: ssh config has multiple coder sections, please remove all but one",
        );
    }
    match (raw.find(START_TOKEN), raw.find(END_TOKEN)) {
        (None, None) => Ok((raw.to_owned(), None, String::new())),
        (None, Some(_)) => fail("Malformed config: ssh config has end header, but missing start header"),
        (Some(_), None) => fail("Malformed config: ssh config has start header, but missing end header"),
        (Some(s), Some(e)) if e < s => fail("Malformed config: ssh config has coder section, but it is malformed and the END header is before the START header"),
        (Some(s), Some(e)) => {
            // As the real CLI: the section takes the newline before it and the one
            // after it, so a re-run rewrites it in place byte for byte.
            let start = s.saturating_sub(1);
            let mut end = e + END_TOKEN.len();
            if end < raw.len() {
                end += 1;
            }
            Ok((
                raw[..start].to_owned(),
                Some(raw[start..end].to_owned()),
                raw[end..].to_owned(),
            ))
        }
    }
}

/// `Key=Value` or `Key Value` → (key, value).
fn split_option(option: &str) -> Result<(String, String), Failure> {
    let trimmed = option.trim();
    let idx = trimmed.find(['=', ' ', '\t']);
    match idx {
        Some(i) => Ok((trimmed[..i].to_owned(), trimmed[i + 1..].trim().to_owned())),
        None => fail(format!(
            "invalid ssh config option {option:?}: expected key=value or key value"
        )),
    }
}

/// User options, then deployment options, then defaults: first key wins (case
/// insensitive), an empty value removes the key.
fn merge_options(user: &[String], deployment: &Value) -> Result<Vec<String>, Failure> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut add = |option: String| -> Result<(), Failure> {
        let (key, value) = split_option(&option)?;
        let key = key.to_lowercase();
        if seen.contains(&key) {
            return Ok(());
        }
        seen.push(key);
        if !value.is_empty() {
            out.push(option);
        }
        Ok(())
    };
    for o in user {
        add(o.clone())?;
    }
    if let Some(map) = deployment.as_object() {
        for (k, v) in map {
            add(format!("{k} {}", v.as_str().unwrap_or("")))?;
        }
    }
    for o in [
        "ConnectTimeout=0",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "LogLevel ERROR",
    ] {
        add(o.to_owned())?;
    }
    Ok(out)
}

fn proxy_escape(value: &str) -> Result<String, Failure> {
    if value.contains('\n') {
        return fail(format!("invalid path {value:?}: contains a newline"));
    }
    if value.contains([' ', '\t']) {
        Ok(format!("\"{}\"", value.replace('"', "\\\"")))
    } else {
        Ok(value.to_owned())
    }
}

fn match_exec_escape(value: &str) -> Result<String, Failure> {
    if value.contains('"') {
        return fail(format!("invalid path {value:?}: contains a double quote"));
    }
    let mut out = String::new();
    for c in value.chars() {
        if matches!(c, ' ' | '\t' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

fn cmd_config_ssh(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(
        args,
        &[
            "--ssh-config-file",
            "--coder-binary-path",
            "--ssh-option|-o",
            "--ssh-host-prefix",
            "--hostname-suffix",
            "--wait",
        ],
        &[
            "--yes|-y",
            "--dry-run|-n",
            "--use-previous-options",
            "--disable-autostart",
            "--no-wildcard",
            "--skip-proxy-command",
            "--force-unix-filepaths",
        ],
    )?;
    let env_bool = |k: &str| std::env::var(k).is_ok_and(|v| v == "true" || v == "1");
    let store = Store::new(globals);
    let state = store.read()?;
    auth(globals, &state)?;

    let file = p
        .value("--ssh-config-file")
        .map(str::to_owned)
        .or_else(|| std::env::var("CODER_SSH_CONFIG_FILE").ok())
        .unwrap_or_else(|| "~/.ssh/config".into());
    let file = match file.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => PathBuf::from(file),
    };
    let raw = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return fail(format!("read ssh config failed: {e}")),
    };
    let (before, section, after) = split_on_section(&raw)?;

    let mut opts = SshOptions {
        wait: p.value("--wait").unwrap_or("auto").to_owned(),
        host_prefix: p.value("--ssh-host-prefix").unwrap_or("").to_owned(),
        hostname_suffix: p.value("--hostname-suffix").unwrap_or("").to_owned(),
        disable_autostart: p.flag("--disable-autostart")
            || env_bool("CODER_CONFIGSSH_DISABLE_AUTOSTART"),
        no_wildcard: p.flag("--no-wildcard") || env_bool("CODER_CONFIGSSH_NO_WILDCARD"),
        ssh_options: p.all("--ssh-option"),
        headers: globals.headers.clone(),
        header_command: globals.header_command.clone().unwrap_or_default(),
    };
    let use_previous =
        p.flag("--use-previous-options") || env_bool("CODER_SSH_USE_PREVIOUS_OPTIONS");
    if let Some(section) = &section {
        let last = SshOptions::parse_stored(section);
        if use_previous {
            opts = last;
        } else if !opts.same_as(&last) && !p.flag("--yes") {
            print!("New options differ from previous options. Use new options? (yes/no) ");
            let _ = io::stdout().flush();
            let mut line = String::new();
            let n = io::stdin().lock().read_line(&mut line).unwrap_or(0);
            if n == 0 {
                return Ok(0);
            }
            if !matches!(line.trim(), "yes" | "y") {
                opts = last;
            }
        }
    }
    if opts.wait != "auto" && p.flag("--skip-proxy-command") {
        return fail("cannot specify both --skip-proxy-command and --wait");
    }

    let bin = match p.value("--coder-binary-path") {
        Some(b) => b.to_owned(),
        None => std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map(|p| p.display().to_string())
            .map_err(|e| Failure(format!("current executable: {e}")))?,
    };
    let prefix = if p.given("--ssh-host-prefix") || !opts.host_prefix.is_empty() {
        opts.host_prefix.clone()
    } else {
        state
            .get("hostname_prefix")
            .and_then(Value::as_str)
            .unwrap_or("coder.")
            .to_owned()
    };
    let suffix = if p.given("--hostname-suffix") || !opts.hostname_suffix.is_empty() {
        opts.hostname_suffix.clone()
    } else {
        str_of(&state, "hostname_suffix").to_owned()
    };
    let options = merge_options(
        &opts.ssh_options,
        state.get("ssh_config_options").unwrap_or(&Value::Null),
    )?;
    let mut root_flags = format!(
        "--global-config {}",
        proxy_escape(&globals.config_dir.display().to_string())?
    );
    for h in &opts.headers {
        root_flags.push_str(&format!(" --header {h:?}"));
    }
    if !opts.header_command.is_empty() {
        root_flags.push_str(&format!(" --header-command {:?}", opts.header_command));
    }
    let mut ssh_flags = String::new();
    if opts.wait != "auto" {
        ssh_flags.push_str(&format!(" --wait={}", opts.wait));
    }
    if opts.disable_autostart {
        ssh_flags.push_str(" --disable-autostart=true");
    }
    let escaped_bin = proxy_escape(&bin)?;
    let proxy = |target: &str| {
        format!("\tProxyCommand {escaped_bin} {root_flags} ssh --stdio{ssh_flags} {target}\n")
    };
    let skip_proxy = p.flag("--skip-proxy-command");

    let mut body = String::new();
    let legacy = std::env::var("FAKE_CODER_CONFIG_STYLE").is_ok_and(|v| v == "legacy")
        || str_of(&state, "config_style") == "legacy";
    if legacy || opts.no_wildcard {
        // One stanza per workspace (and per agent), workspace name baked in.
        let mut hosts: Vec<String> = Vec::new();
        for ws in state
            .get("workspaces")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if str_of(&ws, "status") == "deleted" {
                continue;
            }
            let name = str_of(&ws, "name").to_owned();
            let agents: Vec<String> = ws
                .get("agents")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| str_of(x, "name").to_owned()).collect())
                .unwrap_or_default();
            if agents.len() <= 1 {
                hosts.push(name.clone());
            }
            hosts.extend(agents.iter().map(|a| format!("{name}.{a}")));
        }
        hosts.sort();
        let legacy_prefix = if prefix.is_empty() {
            "coder."
        } else {
            prefix.as_str()
        };
        for h in &hosts {
            body.push_str(&format!(
                "Host {legacy_prefix}{h}\n\tHostName {legacy_prefix}{h}\n"
            ));
            for o in &options {
                body.push_str(&format!("\t{o}\n"));
            }
            if !skip_proxy {
                body.push_str(&proxy(h));
            }
        }
    } else {
        if !prefix.is_empty() {
            body.push_str(&format!("Host {prefix}*\n"));
            for o in &options {
                body.push_str(&format!("\t{o}\n"));
            }
            if !skip_proxy {
                body.push_str(&proxy(&format!("--ssh-host-prefix {prefix} %h")));
            }
        }
        if !suffix.is_empty() {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&format!("Host *.{suffix}\n"));
            for o in &options {
                body.push_str(&format!("\t{o}\n"));
            }
            if !skip_proxy {
                body.push_str(&format!(
                    "\nMatch host *.{suffix} !exec \"{} connect exists %h\"\n",
                    match_exec_escape(&bin)?
                ));
                body.push_str(&proxy(&format!("--hostname-suffix {suffix} %h")));
            }
        }
    }

    let mut new = before.clone();
    if !before.is_empty() {
        new.push('\n');
    }
    new.push_str(START_TOKEN);
    new.push('\n');
    new.push_str(SECTION_HEADER);
    new.push_str(DOCS_HEADER);
    let stored = opts.stored_lines();
    if !stored.is_empty() {
        new.push_str(OPTIONS_HEADER);
        new.push_str(&stored);
    }
    new.push_str("#\n");
    new.push_str(&body);
    new.push_str(END_TOKEN);
    new.push('\n');
    new.push_str(&after);

    if new == raw {
        println!("No changes to make.");
        return Ok(0);
    }
    let change = format!("Update the coder section in {}", file.display());
    if p.flag("--dry-run") {
        eprintln!("Dry run, the following changes would be made to your SSH configuration:\n\n  * {change}\n");
        println!("--- {}\n+++ {}", file.display(), file.display());
        for line in raw.lines() {
            println!("-{line}");
        }
        for line in new.lines() {
            println!("+{line}");
        }
        return Ok(0);
    }
    if !p.flag("--yes") {
        print!("The following changes will be made to your SSH configuration:\n\n    * {change}\n\n  Continue? (yes/no) ");
        let _ = io::stdout().flush();
        let mut line = String::new();
        let n = io::stdin().lock().read_line(&mut line).unwrap_or(0);
        if n == 0 || !matches!(line.trim(), "yes" | "y") {
            return Ok(0);
        }
    }
    if let Some(dir) = file.parent() {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.as_os_str().is_empty() && !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Failure(format!("create {}: {e}", dir.display())))?;
        }
    }
    let tmp = file.with_file_name(format!(
        ".{}.{}.tmp",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    fs::write(&tmp, &new).map_err(|e| Failure(format!("write ssh config failed: {e}")))?;
    fs::rename(&tmp, &file).map_err(|e| Failure(format!("write ssh config failed: {e}")))?;
    println!("Updated {:?}", file.display().to_string());
    let first = state
        .get("workspaces")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|w| str_of(w, "status") != "deleted"))
        .map(|w| str_of(w, "name").to_owned());
    match first {
        Some(ws) => {
            let example = if !suffix.is_empty() && !legacy {
                format!("{ws}.{suffix}")
            } else {
                format!("{}{ws}", if prefix.is_empty() { "coder." } else { prefix.as_str() })
            };
            println!("You should now be able to ssh into your workspace.\nFor example, try running:\n\n\t$ ssh {example}");
        }
        None => println!("You don't have any workspaces yet, try creating one with:\n\n\t$ coder create <workspace>"),
    }
    Ok(0)
}

// ---------------------------------------------------------------- ssh

fn cmd_ssh(globals: &Globals, args: Vec<String>) -> Outcome {
    let p = parse_flags(
        args,
        &[
            "--ssh-host-prefix",
            "--hostname-suffix",
            "--wait",
            "--usage-app",
            "--network-info-dir",
            "--network-info-interval",
            "--log-dir|-l",
            "--env|-e",
            "--identity-agent",
            "--remote-forward|-R",
            "--workspace-poll-interval",
        ],
        &[
            "--stdio",
            "--no-wait",
            "--disable-autostart",
            "--forward-agent|-A",
            "--forward-gpg|-G",
            "--tty|-t",
            "--force-new-tunnel",
        ],
    )?;
    let Some(host) = p.positional.first().cloned() else {
        return fail("wanted 1 args but got 0 [ssh]");
    };
    let mut name = host.clone();
    if let Some(prefix) = p.value("--ssh-host-prefix") {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_owned();
        }
    }
    if let Some(suffix) = p.value("--hostname-suffix") {
        if let Some(rest) = name.strip_suffix(&format!(".{suffix}")) {
            name = rest.to_owned();
        }
    }
    // normalizeWorkspaceInput: owner--ws, owner/ws, ws.agent, owner--ws--agent ...
    let name = name.replacen("--", "/", 1);
    let (owner_ws, agent) = match name.split_once('.') {
        Some((w, a)) => (w.to_owned(), Some(a.to_owned())),
        None => match name.split_once('/').and_then(|(o, rest)| {
            rest.split_once("--")
                .map(|(w, a)| (format!("{o}/{w}"), a.to_owned()))
        }) {
            Some((w, a)) => (w, Some(a)),
            None => (name.clone(), None),
        },
    };
    let autostart = !(p.flag("--disable-autostart")
        || std::env::var("CODER_SSH_DISABLE_AUTOSTART").is_ok_and(|v| v == "true"));

    let store = Store::new(globals);
    let (index, target, started) = store.update(|state| {
        let session = auth(globals, state)?;
        let index = find_index(state, &session, &owner_ws)?;
        let ws = workspace_mut(state, index)?;
        let ws_name = str_of(ws, "name").to_owned();
        let agents: Vec<String> = ws
            .get("agents")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| str_of(x, "name").to_owned()).collect())
            .unwrap_or_default();
        match &agent {
            Some(a) if !agents.contains(a) => return fail(format!("agent not found by name {a:?}")),
            None if agents.is_empty() => return fail(format!("workspace {ws_name:?} has no agents")),
            _ => {}
        }
        let mut started = false;
        if str_of(ws, "transition") != "start" {
            if !autostart {
                return fail("workspace must be started");
            }
            if str_of(ws, "transition") == "delete" {
                return fail(format!("workspace {ws_name:?} is deleted"));
            }
            if str_of(ws, "job_status") == "failed" {
                return fail(format!(
                    "workspace {ws_name:?} is in failed state, unable to autostart the workspace"
                ));
            }
            if str_of(ws, "status") != "stopped" {
                return fail(format!(
                    "workspace must be started; was unable to autostart as the last build job is {:?}, expected \"stopped\"",
                    str_of(ws, "status")
                ));
            }
            eprintln!("Workspace was stopped, starting workspace to allow connecting to {ws_name:?}...");
            begin_start(ws)?;
            started = true;
        } else if str_of(ws, "job_status") == "failed" {
            return fail(format!(
                "workspace {ws_name:?} is in failed state, unable to autostart the workspace"
            ));
        }
        Ok((index, ws.get("target").cloned().unwrap_or(Value::Null), started))
    })?;
    let _ = started;
    let status = wait_until_settled(&store, index)?;
    if status != "running" {
        return fail(format!("workspace build ended {status}"));
    }
    if p.value("--wait") == Some("yes") {
        eprintln!("✔ Waiting for the workspace agent to connect");
    }
    if p.flag("--stdio") {
        return relay(&store, index, &target);
    }
    command_mode(
        &state_for_identity(&store)?,
        &target,
        p.after_dashdash
            .iter()
            .chain(p.positional.iter().skip(1))
            .cloned()
            .collect(),
    )
}

fn state_for_identity(store: &Store) -> Result<Value, Failure> {
    store.read()
}

/// `coder ssh <ws> [-- cmd]`: a plain ssh to the target with the test identity.
fn command_mode(state: &Value, target: &Value, command: Vec<String>) -> Outcome {
    let port = target.get("port").and_then(Value::as_u64).unwrap_or(22);
    let host = target
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1");
    let user = str_of(state, "ssh_user");
    let user = if user.is_empty() {
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    } else {
        user.to_owned()
    };
    let mut cmd = std::process::Command::new("ssh");
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
    ]);
    let identity = str_of(state, "identity_file");
    if !identity.is_empty() {
        cmd.args(["-i", identity]);
    }
    cmd.args(["-p", &port.to_string(), &format!("{user}@{host}")]);
    if !command.is_empty() {
        cmd.arg("--").args(command);
    }
    let status = cmd.status().map_err(|e| Failure(format!("ssh: {e}")))?;
    Ok(status.code().unwrap_or(255))
}

/// `--stdio`: nothing but relayed bytes on stdout. Closes the tunnel when the workspace
/// stops, as the real CLI's `watchAndClose` does.
fn relay(store: &Store, index: usize, target: &Value) -> Outcome {
    if str_of(target, "kind") == "inetd" {
        let config = str_of(target, "sshd_config");
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new("/usr/sbin/sshd")
            .args(["-i", "-f", config])
            .exec();
        return fail(format!("exec sshd -i: {err}"));
    }
    let host = target
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1");
    let port = target.get("port").and_then(Value::as_u64).unwrap_or(0);
    let socket = TcpStream::connect((host, port as u16))
        .map_err(|e| Failure(format!("dial workspace agent {host}:{port}: {e}")))?;
    let to_socket = socket.try_clone().map_err(|e| Failure(e.to_string()))?;
    let closer = socket.try_clone().map_err(|e| Failure(e.to_string()))?;
    std::thread::spawn(move || {
        let mut to_socket = to_socket;
        let mut stdin = io::stdin().lock();
        let _ = io::copy(&mut stdin, &mut to_socket);
        let _ = to_socket.shutdown(Shutdown::Write);
    });
    let watch_dir = store.dir.clone();
    std::thread::spawn(move || {
        let store = Store { dir: watch_dir };
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let running = store.read().ok().is_some_and(|state| {
                state
                    .get("workspaces")
                    .and_then(|w| w.get(index))
                    .is_some_and(|ws| str_of(ws, "status") == "running")
            });
            if !running {
                eprintln!("Workspace stopped, closing the connection.");
                let _ = closer.shutdown(Shutdown::Both);
                exit(0);
            }
        }
    });
    let mut from_socket = socket;
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from_socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stdout.write_all(&buf[..n]).is_err() || stdout.flush().is_err() {
                    break;
                }
            }
        }
    }
    Ok(0)
}
