//! How to connect to a host: OpenSSH's client configuration, resolved for one host.
//!
//! The pure-Rust transport has no ssh binary to ask, yet "configuration is OpenSSH's"
//! still holds: [`resolve`] asks `ssh -G` when an `ssh` program runs
//! ([`ConfigSource::SshG`]), and otherwise reads the files itself
//! ([`ConfigSource::Builtin`]). Both give the same [`HostConfig`] for the keywords
//! below; a test compares them against the real `ssh -G`.
//!
//! Resolving blocks (files, or a short-lived `ssh -G`): call it from `spawn_blocking`.
//!
//! With `ssh -G`, ssh has applied its defaults (its default identity list may name more
//! kinds, such as `id_xmss` and `id_dsa`, than the builtin one) and expanded most
//! values; IdentityFile and ProxyCommand tokens are expanded here, as ssh does later.
//!
//! ## The builtin reader: what it follows of OpenSSH (9.x) and what it does not
//!
//! - Files: `Lookup::config_file` alone when given (like `ssh -F`, it must exist);
//!   else `~/.ssh/config` then `/etc/ssh/ssh_config`, both optional. `~` is the
//!   passwd home given in [`Lookup::home`], never `$HOME`.
//! - The user's `~/.ssh/config` and every included file must belong to the user or root
//!   and not be writable by group or others, else an error (ssh refuses them too).
//! - The first value obtained for a keyword wins; `IdentityFile` accumulates instead
//!   (duplicates dropped). `UserKnownHostsFile`/`GlobalKnownHostsFile` take their whole
//!   list from the first line that sets them.
//! - Lines: `Keyword value` or `Keyword=value`, keywords case-insensitive, `#` comments,
//!   blank lines, arguments in double or single quotes, `\` escapes for quotes,
//!   backslash and space. `ProxyCommand` takes the rest of the line verbatim.
//! - `Host pattern...`: `*` and `?` wildcards, `!pattern` excludes the block even when
//!   another pattern matches, case-sensitive, against the host word as written.
//! - `Match`: `all`, `host` (the HostName so far, else the host word), `originalhost`,
//!   `user` (the target user so far), `localuser`, each `!`-negatable and taking a
//!   comma-separated pattern list (`Match user=bob` works too, as in OpenSSH). `canonical` and `final` are true only in a second
//!   pass, run when a `Match final` is seen (the hostname is never canonicalised, as
//!   with OpenSSH's default `CanonicalizeHostname no`). `exec`, `localnetwork`,
//!   `address` and the other criteria are refused with an error naming the file and
//!   line, but only when they would decide the block (an earlier criterion that already
//!   failed skips them, as OpenSSH skips `exec`).
//! - `Include path...`: globs; relative paths are relative to `~/.ssh` (user files) or
//!   `/etc/ssh` (the system file); inside a `Host`/`Match` block it applies only when the
//!   block matches; nesting deeper than 16 is an error.
//! - Keywords read: HostName, User, Port, IdentityFile, IdentitiesOnly, IdentityAgent,
//!   HostKeyAlias, UserKnownHostsFile, GlobalKnownHostsFile, StrictHostKeyChecking,
//!   HashKnownHosts, ProxyCommand, ProxyJump, ConnectTimeout, ServerAliveInterval,
//!   ServerAliveCountMax. Every other keyword is ignored (misspellings too, where
//!   OpenSSH would refuse them). A bad value (`Port abc`, extra arguments) is an error
//!   naming `file:line`, even in a block that does not match, as in OpenSSH.
//! - The port and user written with the host win over the config (like `-p`/`-l`).
//! - `ProxyCommand` and `ProxyJump`: whichever comes first wins (`none` included).
//! - Tokens: `%h` in HostName; `%% %d %h %i %k %L %l %n %p %r %u` in IdentityFile,
//!   IdentityAgent and UserKnownHostsFile; `%% %h %k %n %p %r` in ProxyCommand. Any
//!   other token is an error, and so is `${VAR}` in a path: this library reads no
//!   environment variables. An IdentityAgent of `none`, `SSH_AUTH_SOCK` or `$NAME` is
//!   returned as written for the caller to interpret.
//! - `~` and `~/` are the given home; `~user` paths are refused (no passwd lookups).
//! - The final HostName and HostKeyAlias are lowercased, as ssh does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cmux_core::Error;

/// Where ssh config comes from: the crate's public option, used as is (`Auto` is
/// `ssh -G` when an `ssh` program runs, else the builtin reader).
pub(crate) use crate::options::ConfigSource;

/// OpenSSH's `StrictHostKeyChecking`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StrictHostKeyChecking {
    /// Refuse unknown and changed keys.
    Yes,
    /// Add unknown keys, refuse changed ones.
    AcceptNew,
    /// Add unknown keys, accept changed ones.
    No,
    /// Ask the user about unknown keys (OpenSSH's default).
    Ask,
}

/// How to connect to one host, with OpenSSH's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostConfig {
    /// `HostName` (`%h` expanded, lowercased), default: the host word.
    pub(crate) hostname: String,
    /// `Port`, default 22.
    pub(crate) port: u16,
    /// `User`, default: the local user name.
    pub(crate) user: String,
    /// `IdentityFile`s with `~` and tokens expanded; OpenSSH's default list if none.
    pub(crate) identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly`.
    pub(crate) identities_only: bool,
    /// `IdentityAgent` as set (`none`, `SSH_AUTH_SOCK`, `$NAME`, or an expanded path).
    pub(crate) identity_agent: Option<String>,
    /// `HostKeyAlias`, lowercased.
    pub(crate) host_key_alias: Option<String>,
    /// `UserKnownHostsFile`s, expanded; empty for `none`.
    pub(crate) user_known_hosts_files: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`s; empty for `none`.
    pub(crate) global_known_hosts_files: Vec<PathBuf>,
    /// `StrictHostKeyChecking`, default `Ask`.
    pub(crate) strict_host_key_checking: StrictHostKeyChecking,
    /// `HashKnownHosts`.
    pub(crate) hash_known_hosts: bool,
    /// `ProxyCommand` with `%h %p %r %n %k %%` expanded; `None` for unset or `none`.
    pub(crate) proxy_command: Option<String>,
    /// `ProxyJump` as written (comma-separated); `None` for unset or `none`.
    pub(crate) proxy_jump: Option<String>,
    /// `ConnectTimeout`; `None` for unset or 0.
    pub(crate) connect_timeout: Option<Duration>,
    /// `ServerAliveInterval`; `None` for 0 (the default).
    pub(crate) server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`, default 3.
    pub(crate) server_alive_count_max: u32,
}

/// What to resolve: the host as the user wrote it, and the local account.
pub(crate) struct Lookup<'a> {
    /// The host word as written: alias, name, or `user@name`.
    pub(crate) host: &'a str,
    /// A port written with the host (`host:port`); wins over the config like `ssh -p`.
    pub(crate) port: Option<u16>,
    /// A user written with the host (`ssh://user@...`); wins like `ssh -l`.
    pub(crate) user: Option<&'a str>,
    /// Like `ssh -F`: replaces `~/.ssh/config` and skips `/etc/ssh/ssh_config`.
    pub(crate) config_file: Option<&'a Path>,
    /// The local user's home, from the passwd entry (the library reads no env vars).
    pub(crate) home: &'a Path,
    /// The local user's login name.
    pub(crate) local_user: &'a str,
}

/// How long `ssh -G` / `ssh -V` may take (both answer in milliseconds).
const SSH_CAP: Duration = Duration::from_secs(10);

/// Resolves how to connect to `lookup.host`, from `source`.
pub(crate) fn resolve(lookup: &Lookup<'_>, source: ConfigSource) -> Result<HostConfig, Error> {
    let target = Target::split(lookup)?;
    let use_ssh_g = match source {
        ConfigSource::Auto => openssh_client_available(),
        ConfigSource::SshG => true,
        ConfigSource::Builtin => false,
    };
    if use_ssh_g {
        resolve_with_ssh_g(lookup, &target)
    } else {
        resolve_builtin(lookup, &target)
    }
}

/// Whether an `ssh` program that answers `ssh -V` is on PATH (checked once per process).
pub(crate) fn openssh_client_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let mut command = Command::new("ssh");
        command.arg("-V");
        matches!(run_capped(command, SSH_CAP), Ok(Some(out)) if out.status.success())
    })
}

/// The host word split into the name ssh matches and what the command line fixes.
struct Target<'a> {
    /// The host word without any `user@` (OpenSSH's "original host", `%n`).
    name: &'a str,
    /// The user given with the host, which no config line can change.
    user: Option<&'a str>,
    /// The port given with the host, which no config line can change.
    port: Option<u16>,
}

impl<'a> Target<'a> {
    /// Splits `user@` off the host word; the user given apart wins over it.
    fn split(lookup: &Lookup<'a>) -> Result<Self, Error> {
        // ssh splits at the last `@`; a user given apart (`-l`) wins over it.
        let (word_user, name) = match lookup.host.rsplit_once('@') {
            Some((user, name)) => (Some(user).filter(|u| !u.is_empty()), name),
            None => (None, lookup.host),
        };
        if name.is_empty() || name.starts_with('-') {
            return Err(Error::invalid(format!(
                "`{}` is not a host name (write it as `host`, `user@host` or an alias from ~/.ssh/config)",
                lookup.host
            )));
        }
        Ok(Target {
            name,
            user: lookup.user.or(word_user),
            port: lookup.port,
        })
    }
}

// ---------------------------------------------------------------------------------
// `ssh -G`
// ---------------------------------------------------------------------------------

/// Asks `ssh -G` (with `-F`, `-p`, `-l` as given) and reads its answer.
fn resolve_with_ssh_g(lookup: &Lookup<'_>, target: &Target<'_>) -> Result<HostConfig, Error> {
    let mut command = Command::new("ssh");
    command.arg("-G");
    if let Some(file) = lookup.config_file {
        command.arg("-F").arg(file);
    }
    if let Some(port) = target.port {
        command.arg("-p").arg(port.to_string());
    }
    if let Some(user) = target.user {
        command.arg("-l").arg(user);
    }
    command.arg("--").arg(target.name);
    let output = match run_capped(command, SSH_CAP) {
        Ok(Some(output)) => output,
        Ok(None) => {
            return Err(Error::backend(
                "ssh",
                format!(
                    "`ssh -G {}` did not answer within {} s",
                    target.name,
                    SSH_CAP.as_secs()
                ),
            ))
        }
        Err(err) => {
            return Err(Error::backend(
                "ssh",
                format!(
                    "cannot run `ssh -G {}`: {err} (install OpenSSH's client, or use the builtin config reader)",
                    target.name
                ),
            ))
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // ssh says this whenever stdin is not a terminal; it explains nothing here.
        let diagnostic: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.starts_with("Pseudo-terminal will not be allocated"))
            .collect();
        return Err(Error::invalid(format!(
            "{}: OpenSSH rejects the ssh configuration (`ssh -G` failed): {}",
            target.name,
            diagnostic.join("\n").trim()
        )));
    }
    parse_ssh_g(&String::from_utf8_lossy(&output.stdout), lookup, target)
}

/// Turns `ssh -G` output into a [`HostConfig`]. ssh has applied the defaults and
/// expanded HostName, the known-hosts files and IdentityAgent; IdentityFile and
/// ProxyCommand come out as written.
fn parse_ssh_g(text: &str, lookup: &Lookup<'_>, target: &Target<'_>) -> Result<HostConfig, Error> {
    let bad = |key: &str, value: &str| {
        Error::invalid(format!(
            "{}: unexpected `ssh -G` output: `{key} {value}`",
            target.name
        ))
    };
    let mut hostname = None;
    let mut port = None;
    let mut user = None;
    let mut raw_identity_files = Vec::new();
    let mut config = HostConfig {
        hostname: String::new(),
        port: 22,
        user: String::new(),
        identity_files: Vec::new(),
        identities_only: false,
        identity_agent: None,
        host_key_alias: None,
        user_known_hosts_files: Vec::new(),
        global_known_hosts_files: Vec::new(),
        strict_host_key_checking: StrictHostKeyChecking::Ask,
        hash_known_hosts: false,
        proxy_command: None,
        proxy_jump: None,
        connect_timeout: None,
        server_alive_interval: None,
        server_alive_count_max: 3,
    };
    let mut raw_proxy_command = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let value = value.trim();
        let not_none = || (!value.eq_ignore_ascii_case("none")).then(|| value.to_owned());
        match key {
            "hostname" => hostname = Some(value.to_owned()),
            "port" => port = Some(parse_port(value).ok_or_else(|| bad(key, value))?),
            "user" => user = Some(value.to_owned()),
            "identityfile" => raw_identity_files.push(value.to_owned()),
            "identitiesonly" => {
                config.identities_only = parse_flag(value).ok_or_else(|| bad(key, value))?
            }
            "identityagent" => config.identity_agent = Some(value.to_owned()),
            "hostkeyalias" => config.host_key_alias = Some(value.to_owned()),
            "userknownhostsfile" => config.user_known_hosts_files = path_list(value),
            "globalknownhostsfile" => config.global_known_hosts_files = path_list(value),
            "stricthostkeychecking" => {
                config.strict_host_key_checking =
                    parse_strict(value).ok_or_else(|| bad(key, value))?
            }
            "hashknownhosts" => {
                config.hash_known_hosts = parse_flag(value).ok_or_else(|| bad(key, value))?
            }
            "proxycommand" => raw_proxy_command = not_none(),
            "proxyjump" => config.proxy_jump = not_none(),
            "connecttimeout" => {
                config.connect_timeout = match not_none() {
                    None => None,
                    Some(v) => positive_secs(convtime(&v).ok_or_else(|| bad(key, value))?),
                }
            }
            "serveraliveinterval" => {
                config.server_alive_interval =
                    positive_secs(convtime(value).ok_or_else(|| bad(key, value))?)
            }
            "serveralivecountmax" => {
                config.server_alive_count_max = value.parse().map_err(|_| bad(key, value))?
            }
            _ => {}
        }
    }
    let (Some(hostname), Some(port), Some(user)) = (hostname, port, user) else {
        return Err(bad("(missing hostname, port or user)", ""));
    };
    config.hostname = hostname;
    config.port = port;
    config.user = user;
    let tokens = Tokens::new(&config, lookup, target);
    config.identity_files = raw_identity_files
        .iter()
        .map(|raw| expand_path(raw, &tokens, "IdentityFile", PATH_TOKENS))
        .collect::<Result<_, _>>()
        .map_err(|msg| Error::invalid(format!("{}: {msg}", target.name)))?;
    config.proxy_command = raw_proxy_command
        .map(|raw| expand_tokens(&raw, &tokens, PROXY_COMMAND_TOKENS))
        .transpose()
        .map_err(|msg| Error::invalid(format!("{}: ProxyCommand: {msg}", target.name)))?;
    Ok(config)
}

/// A space-separated list of paths, empty for `none`.
fn path_list(value: &str) -> Vec<PathBuf> {
    if value.eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    value.split_whitespace().map(PathBuf::from).collect()
}

/// What a process printed, once it exited.
struct Captured {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` with stdin null, killing it after `cap` (then `Ok(None)`).
fn run_capped(mut command: Command, cap: Duration) -> std::io::Result<Option<Captured>> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let stdout = child.stdout.take().map(drain_on_thread);
    let stderr = child.stderr.take().map(drain_on_thread);
    let deadline = Instant::now() + cap;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let collect = |handle: Option<std::thread::JoinHandle<Vec<u8>>>| {
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(Some(Captured {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }))
}

/// Reads `pipe` to its end on a thread of its own.
fn drain_on_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

// ---------------------------------------------------------------------------------
// The builtin reader
// ---------------------------------------------------------------------------------

/// OpenSSH's limit on nested `Include`s.
const MAX_INCLUDE_DEPTH: usize = 16;
/// OpenSSH's limit on `IdentityFile`s.
const MAX_IDENTITY_FILES: usize = 100;
/// The identity files ssh tries when none is configured (the kinds russh can use, in
/// OpenSSH's order).
const DEFAULT_IDENTITY_FILES: &[&str] = &[
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
];
/// OpenSSH's default UserKnownHostsFile.
const DEFAULT_USER_KNOWN_HOSTS: &[&str] = &["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];
/// OpenSSH's default GlobalKnownHostsFile.
const DEFAULT_GLOBAL_KNOWN_HOSTS: &[&str] =
    &["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// `ProxyCommand` or `ProxyJump`, whichever was set first.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Proxy {
    /// `ProxyCommand none` or `ProxyJump none`.
    Direct,
    /// `ProxyCommand`, as written.
    Command(String),
    /// `ProxyJump`, as written.
    Jump(String),
}

/// Values obtained so far, as written (first wins, except identity files).
#[derive(Default)]
struct Settings {
    hostname: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<String>,
    identities_only: Option<bool>,
    identity_agent: Option<String>,
    host_key_alias: Option<String>,
    user_known_hosts: Option<Vec<String>>,
    global_known_hosts: Option<Vec<String>>,
    strict_host_key_checking: Option<StrictHostKeyChecking>,
    hash_known_hosts: Option<bool>,
    proxy: Option<Proxy>,
    connect_timeout: Option<u64>,
    server_alive_interval: Option<u64>,
    server_alive_count_max: Option<u32>,
}

/// How a file is read (OpenSSH's `SSHCONF_*` flags).
#[derive(Clone, Copy)]
struct FileFlags {
    /// A user file: `~` allowed in Include, relative Includes under `~/.ssh`.
    user_config: bool,
    /// Refuse the file unless owned by us or root and not group/world-writable.
    check_permissions: bool,
    /// Inside an Include of a block that did not match: no block can become active.
    never_match: bool,
}

/// A `file:line` to name in errors.
struct Location<'p> {
    file: &'p Path,
    line: usize,
}

impl Location<'_> {
    /// An invalid-input error prefixed with `file:line`.
    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::invalid(format!("{}:{}: {message}", self.file.display(), self.line))
    }
}

/// One run over the config files.
struct Reader<'a> {
    lookup: &'a Lookup<'a>,
    target: &'a Target<'a>,
    settings: Settings,
    /// The name `Host` lines match: the host word, then in the final pass the
    /// resolved (lowercased) HostName, as ssh does.
    host_for_host_lines: String,
    /// Second pass, where `Match canonical`/`final` are true.
    final_pass: bool,
    wants_final_pass: bool,
}

/// Reads the files with the builtin reader (twice when a `Match final` asks for it).
fn resolve_builtin(lookup: &Lookup<'_>, target: &Target<'_>) -> Result<HostConfig, Error> {
    let mut reader = Reader {
        lookup,
        target,
        // What the command line fixes is set before any file, so first-wins keeps it.
        settings: Settings {
            user: target.user.map(str::to_owned),
            port: target.port,
            ..Settings::default()
        },
        host_for_host_lines: target.name.to_owned(),
        final_pass: false,
        wants_final_pass: false,
    };
    reader.read_all_files()?;
    if reader.wants_final_pass {
        reader.final_pass = true;
        reader.host_for_host_lines = reader.hostname_so_far().to_ascii_lowercase();
        reader.read_all_files()?;
    }
    finish(reader.settings, lookup, target)
}

impl Reader<'_> {
    /// One pass over the top-level files, each starting active.
    fn read_all_files(&mut self) -> Result<(), Error> {
        match self.lookup.config_file {
            Some(file) => {
                let flags = FileFlags {
                    user_config: true,
                    check_permissions: false,
                    never_match: false,
                };
                if !self.read_file(file, flags, &mut true, 0)? {
                    return Err(Error::invalid(format!(
                        "{}: cannot read the ssh config file: no such file",
                        file.display()
                    )));
                }
            }
            None => {
                let user_file = self.lookup.home.join(".ssh/config");
                let user_flags = FileFlags {
                    user_config: true,
                    check_permissions: true,
                    never_match: false,
                };
                self.read_file(&user_file, user_flags, &mut true, 0)?;
                let system_flags = FileFlags {
                    user_config: false,
                    check_permissions: false,
                    never_match: false,
                };
                self.read_file(Path::new("/etc/ssh/ssh_config"), system_flags, &mut true, 0)?;
            }
        }
        Ok(())
    }

    /// Reads one file; `Ok(false)` when it does not exist.
    fn read_file(
        &mut self,
        file: &Path,
        flags: FileFlags,
        active: &mut bool,
        depth: usize,
    ) -> Result<bool, Error> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(Error::invalid(format!(
                "{}: too many nested Include (more than {MAX_INCLUDE_DEPTH}); is an Include including itself?",
                file.display()
            )));
        }
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            // A directory matched by a glob reads as empty in OpenSSH.
            Err(_) if file.is_dir() => return Ok(true),
            Err(err) => {
                return Err(Error::invalid(format!(
                    "{}: cannot read the ssh config file: {err}",
                    file.display()
                )))
            }
        };
        if flags.check_permissions {
            check_owner_and_mode(file)?;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            let at = Location {
                file,
                line: index + 1,
            };
            self.read_line(line, &at, flags, active, depth)?;
        }
        Ok(true)
    }

    /// One line: a block start, an Include, or a keyword.
    fn read_line(
        &mut self,
        line: &str,
        at: &Location<'_>,
        flags: FileFlags,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), Error> {
        let Some((keyword, rest)) = split_keyword(line) else {
            return Ok(());
        };
        if rest.is_empty() {
            return Err(at.error(format!("no argument after keyword \"{keyword}\"")));
        }
        let args =
            split_args(rest, keyword == "match").ok_or_else(|| at.error("invalid quotes"))?;
        match keyword.as_str() {
            "host" => {
                let matched = host_line_matches(&self.host_for_host_lines, &args)
                    .map_err(|msg| at.error(msg))?;
                *active = matched && !flags.never_match;
            }
            "match" => {
                let matched = !flags.never_match && self.match_line_matches(&args, at)?;
                *active = matched;
            }
            "include" => self.include(&args, at, flags, active, depth)?,
            _ => self
                .apply_keyword(&keyword, &args, rest, *active)
                .map_err(|msg| at.error(msg))?,
        }
        Ok(())
    }

    /// Stores one keyword's value when `active`; checks the value either way.
    fn apply_keyword(
        &mut self,
        keyword: &str,
        args: &[String],
        rest: &str,
        active: bool,
    ) -> Result<(), String> {
        let s = &mut self.settings;
        match keyword {
            "hostname" => set_first(active, &mut s.hostname, one_arg(keyword, args)?.to_owned()),
            "user" => set_first(active, &mut s.user, one_arg(keyword, args)?.to_owned()),
            "port" => {
                let value = one_arg(keyword, args)?;
                let port = parse_port(value).ok_or_else(|| format!("bad port '{value}'"))?;
                set_first(active, &mut s.port, port);
            }
            "identityfile" => {
                let value = one_arg(keyword, args)?.to_owned();
                if active && !s.identity_files.contains(&value) {
                    if s.identity_files.len() >= MAX_IDENTITY_FILES {
                        return Err(format!(
                            "too many identity files (more than {MAX_IDENTITY_FILES})"
                        ));
                    }
                    s.identity_files.push(value);
                }
            }
            "identitiesonly" => set_first(active, &mut s.identities_only, flag_arg(keyword, args)?),
            "identityagent" => set_first(
                active,
                &mut s.identity_agent,
                one_arg(keyword, args)?.to_owned(),
            ),
            "hostkeyalias" => set_first(
                active,
                &mut s.host_key_alias,
                one_arg(keyword, args)?.to_owned(),
            ),
            "userknownhostsfile" => set_first(
                active,
                &mut s.user_known_hosts,
                file_list_arg(keyword, args)?,
            ),
            "globalknownhostsfile" => set_first(
                active,
                &mut s.global_known_hosts,
                file_list_arg(keyword, args)?,
            ),
            "stricthostkeychecking" => {
                let value = one_arg(keyword, args)?;
                let strict = parse_strict(value)
                    .ok_or_else(|| format!("unsupported StrictHostKeyChecking value '{value}'"))?;
                set_first(active, &mut s.strict_host_key_checking, strict);
            }
            "hashknownhosts" => {
                set_first(active, &mut s.hash_known_hosts, flag_arg(keyword, args)?)
            }
            "proxycommand" => {
                // The rest of the line, verbatim: it is a shell command.
                let command = rest.to_owned();
                let proxy = if command.eq_ignore_ascii_case("none") {
                    Proxy::Direct
                } else {
                    Proxy::Command(command)
                };
                set_first(active, &mut s.proxy, proxy);
            }
            "proxyjump" => {
                let jumps = rest.split('#').next().unwrap_or_default().trim();
                if jumps.is_empty() {
                    return Err("missing argument for ProxyJump".to_owned());
                }
                let proxy = if jumps.eq_ignore_ascii_case("none") {
                    Proxy::Direct
                } else {
                    Proxy::Jump(jumps.to_owned())
                };
                set_first(active, &mut s.proxy, proxy);
            }
            "connecttimeout" => set_first(active, &mut s.connect_timeout, time_arg(keyword, args)?),
            "serveraliveinterval" => set_first(
                active,
                &mut s.server_alive_interval,
                time_arg(keyword, args)?,
            ),
            "serveralivecountmax" => {
                let value = one_arg(keyword, args)?;
                let count = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| i32::try_from(*n).is_ok())
                    .ok_or_else(|| format!("bad number '{value}'"))?;
                set_first(active, &mut s.server_alive_count_max, count);
            }
            // OpenSSH knows many keywords this transport does not use.
            _ => {}
        }
        Ok(())
    }

    /// Reads the files an `Include` line names, in glob order.
    fn include(
        &mut self,
        args: &[String],
        at: &Location<'_>,
        flags: FileFlags,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), Error> {
        if args.is_empty() {
            return Err(at.error("missing argument for Include"));
        }
        let enclosing_active = *active;
        for arg in args {
            let pattern = self
                .include_pattern(arg, flags)
                .map_err(|msg| at.error(msg))?;
            let paths = glob::glob(&pattern)
                .map_err(|err| at.error(format!("bad Include pattern '{arg}': {err}")))?;
            for path in paths.flatten() {
                let nested = FileFlags {
                    check_permissions: true,
                    never_match: flags.never_match || !enclosing_active,
                    ..flags
                };
                self.read_file(&path, nested, active, depth + 1)?;
                // A Host or Match inside the included file ends with it.
                *active = enclosing_active;
            }
        }
        Ok(())
    }

    /// The glob an Include argument stands for: anchored and `~`-expanded.
    fn include_pattern(&self, arg: &str, flags: FileFlags) -> Result<String, String> {
        if arg.starts_with('~') && !flags.user_config {
            return Err(format!("bad include path {arg} (no ~ in system files)"));
        }
        let anchored = if arg.starts_with('/') || arg.starts_with('~') {
            arg.to_owned()
        } else if flags.user_config {
            format!("~/.ssh/{arg}")
        } else {
            format!("/etc/ssh/{arg}")
        };
        Ok(expand_tilde(&anchored, self.lookup.home)?
            .to_string_lossy()
            .into_owned())
    }

    /// The HostName so far (`%h` expanded), else the host word: what `Match host` sees.
    fn hostname_so_far(&self) -> String {
        match &self.settings.hostname {
            Some(hostname) => expand_hostname(hostname, self.target.name),
            None => self.target.name.to_owned(),
        }
    }

    /// Evaluates a `Match` line, as OpenSSH's `match_cfg_line` does.
    fn match_line_matches(&mut self, args: &[String], at: &Location<'_>) -> Result<bool, Error> {
        if args.is_empty() {
            return Err(at.error("missing Match criteria"));
        }
        let mut result = true;
        let mut criteria = args.iter();
        let mut seen_other_than_canonical_final = false;
        while let Some(raw) = criteria.next() {
            let (negate, criterion) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, raw.as_str()),
            };
            let lower = criterion.to_ascii_lowercase();
            match lower.as_str() {
                "all" => {
                    if seen_other_than_canonical_final || criteria.next().is_some() {
                        return Err(
                            at.error("'all' cannot be combined with other Match attributes")
                        );
                    }
                    return Ok(result && !negate);
                }
                "canonical" | "final" => {
                    if lower == "final" && !negate {
                        self.wants_final_pass = true;
                    }
                    if self.final_pass == negate {
                        result = false;
                    }
                    continue;
                }
                _ => {}
            }
            seen_other_than_canonical_final = true;
            let Some(value) = criteria.next() else {
                return Err(at.error(format!("missing Match criteria for {criterion}")));
            };
            let matched = match lower.as_str() {
                "host" => pattern_list_matches(&self.hostname_so_far(), value, true),
                "originalhost" => pattern_list_matches(self.target.name, value, true),
                "user" => {
                    let user = self.settings.user.as_deref();
                    pattern_list_matches(user.unwrap_or(self.lookup.local_user), value, false)
                }
                "localuser" => pattern_list_matches(self.lookup.local_user, value, false),
                "exec" | "localnetwork" | "address" | "localaddress" | "localport" | "rdomain"
                | "tagged" | "sessiontype" | "command" | "version" => {
                    if !result {
                        // An earlier criterion failed: OpenSSH does not evaluate this one.
                        continue;
                    }
                    return Err(at.error(format!(
                        "the builtin ssh config reader does not evaluate `Match {criterion}` \
                         (install OpenSSH's client so cmux can ask `ssh -G`, or remove it)"
                    )));
                }
                _ => {
                    return Err(at.error(format!("unsupported Match attribute {criterion}")));
                }
            };
            if matched == negate {
                result = false;
            }
        }
        Ok(result)
    }
}

/// Applies defaults and expansions to what the files said.
fn finish(
    settings: Settings,
    lookup: &Lookup<'_>,
    target: &Target<'_>,
) -> Result<HostConfig, Error> {
    let invalid = |msg: String| Error::invalid(format!("{}: {msg}", target.name));
    let hostname = match &settings.hostname {
        Some(hostname) => expand_hostname(hostname, target.name),
        None => target.name.to_owned(),
    }
    .to_ascii_lowercase();
    let mut config = HostConfig {
        hostname,
        port: settings.port.unwrap_or(22),
        user: settings
            .user
            .unwrap_or_else(|| lookup.local_user.to_owned()),
        identity_files: Vec::new(),
        identities_only: settings.identities_only.unwrap_or(false),
        identity_agent: None,
        host_key_alias: settings.host_key_alias.map(|a| a.to_ascii_lowercase()),
        user_known_hosts_files: Vec::new(),
        global_known_hosts_files: Vec::new(),
        strict_host_key_checking: settings
            .strict_host_key_checking
            .unwrap_or(StrictHostKeyChecking::Ask),
        hash_known_hosts: settings.hash_known_hosts.unwrap_or(false),
        proxy_command: None,
        proxy_jump: None,
        connect_timeout: settings.connect_timeout.and_then(positive_secs),
        server_alive_interval: settings.server_alive_interval.and_then(positive_secs),
        server_alive_count_max: settings.server_alive_count_max.unwrap_or(3),
    };
    let tokens = Tokens::new(&config, lookup, target);
    let identity_files: Vec<&str> = if settings.identity_files.is_empty() {
        DEFAULT_IDENTITY_FILES.to_vec()
    } else {
        settings.identity_files.iter().map(String::as_str).collect()
    };
    config.identity_files = identity_files
        .into_iter()
        .map(|raw| expand_path(raw, &tokens, "IdentityFile", PATH_TOKENS))
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    config.identity_agent = settings
        .identity_agent
        .map(|agent| expand_identity_agent(agent, &tokens))
        .transpose()
        .map_err(invalid)?;
    config.user_known_hosts_files =
        known_hosts_list(settings.user_known_hosts, DEFAULT_USER_KNOWN_HOSTS)
            .iter()
            .map(|raw| expand_path(raw, &tokens, "UserKnownHostsFile", PATH_TOKENS))
            .collect::<Result<_, _>>()
            .map_err(invalid)?;
    // ssh expands neither `~` nor tokens in GlobalKnownHostsFile.
    config.global_known_hosts_files =
        known_hosts_list(settings.global_known_hosts, DEFAULT_GLOBAL_KNOWN_HOSTS)
            .into_iter()
            .map(PathBuf::from)
            .collect();
    match settings.proxy {
        None | Some(Proxy::Direct) => {}
        Some(Proxy::Command(raw)) => {
            config.proxy_command = Some(
                expand_tokens(&raw, &tokens, PROXY_COMMAND_TOKENS)
                    .map_err(|msg| invalid(format!("ProxyCommand: {msg}")))?,
            );
        }
        Some(Proxy::Jump(jumps)) => config.proxy_jump = Some(jumps),
    }
    Ok(config)
}

/// The configured list (empty for `none`), else the default.
fn known_hosts_list(configured: Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    match configured {
        Some(list) if matches!(list.as_slice(), [only] if only.eq_ignore_ascii_case("none")) => {
            Vec::new()
        }
        Some(list) => list,
        None => default.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// IdentityAgent with `~` and tokens expanded, except its special values.
fn expand_identity_agent(agent: String, tokens: &Tokens) -> Result<String, String> {
    // Special values, and `$NAME` (an environment variable the caller resolves).
    if agent == "none" || agent == "SSH_AUTH_SOCK" || agent.starts_with('$') {
        return Ok(agent);
    }
    Ok(expand_path(&agent, tokens, "IdentityAgent", PATH_TOKENS)?
        .to_string_lossy()
        .into_owned())
}

/// Stores `value` unless an earlier line already set the keyword (or the block is off).
fn set_first<T>(active: bool, slot: &mut Option<T>, value: T) {
    if active && slot.is_none() {
        *slot = Some(value);
    }
}

/// The single, non-empty argument of `keyword`.
fn one_arg<'a>(keyword: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [value] if !value.is_empty() => Ok(value),
        [] | [_] => Err(format!("missing argument for {keyword}")),
        _ => Err(format!("keyword {keyword} extra arguments at end of line")),
    }
}

/// A yes/no argument.
fn flag_arg(keyword: &str, args: &[String]) -> Result<bool, String> {
    let value = one_arg(keyword, args)?;
    parse_flag(value).ok_or_else(|| format!("unsupported {keyword} value '{value}' (yes or no)"))
}

/// A time argument in seconds (see [`convtime`]).
fn time_arg(keyword: &str, args: &[String]) -> Result<u64, String> {
    let value = one_arg(keyword, args)?;
    convtime(value).ok_or_else(|| format!("invalid time value '{value}'"))
}

/// A list of files, or `none` alone.
fn file_list_arg(keyword: &str, args: &[String]) -> Result<Vec<String>, String> {
    if args.is_empty() || args.iter().any(String::is_empty) {
        return Err(format!("missing argument for {keyword}"));
    }
    if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
        return Err(format!(
            "keyword {keyword} \"none\" argument must appear alone"
        ));
    }
    Ok(args.to_vec())
}

/// A port number, 1 to 65535.
fn parse_port(value: &str) -> Option<u16> {
    value.parse::<u16>().ok().filter(|port| *port != 0)
}

/// `yes`/`true` or `no`/`false`, any case.
fn parse_flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// A StrictHostKeyChecking value, as written in a file or printed by `ssh -G`.
fn parse_strict(value: &str) -> Option<StrictHostKeyChecking> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(StrictHostKeyChecking::Yes),
        "no" | "false" | "off" => Some(StrictHostKeyChecking::No),
        "accept-new" => Some(StrictHostKeyChecking::AcceptNew),
        "ask" => Some(StrictHostKeyChecking::Ask),
        _ => None,
    }
}

/// `secs` as a duration, `None` for 0 (which means "no limit" to ssh).
fn positive_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// OpenSSH's `convtime`: `90`, `1m30s`, `2h`... in seconds, at most `i32::MAX`.
fn convtime(value: &str) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let mut chars = after.chars();
        let (unit, after_unit) = match chars.next().map(|c| c.to_ascii_lowercase()) {
            None => (1, after),
            Some('s') => (1, chars.as_str()),
            Some('m') => (60, chars.as_str()),
            Some('h') => (3600, chars.as_str()),
            Some('d') => (86_400, chars.as_str()),
            Some('w') => (604_800, chars.as_str()),
            Some(c) if c.is_ascii_digit() => (1, after),
            Some(_) => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = after_unit;
    }
    (total <= i32::MAX as u64).then_some(total)
}

/// The lowercase keyword and the rest of the line (after whitespace and at most one
/// `=`), or `None` for a blank line or a comment.
fn split_keyword(line: &str) -> Option<(String, &str)> {
    let line = line
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find([' ', '\t', '=']).unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Some((
        keyword.to_ascii_lowercase(),
        rest.trim_start_matches([' ', '\t']),
    ))
}

/// OpenSSH's `argv_split`: words split on blanks (and `=` when `equals_separates`, as
/// OpenSSH splits `Match` lines: `Match user=bob`), `"` or `'` quoting, `\` escaping a
/// quote, backslash or (outside quotes) a space, and `#` starting a comment between
/// words. `None` on an unterminated quote.
fn split_args(text: &str, equals_separates: bool) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let separator = |c: &char| *c == ' ' || *c == '\t' || (equals_separates && *c == '=');
        while chars.next_if(separator).is_some() {}
        match chars.peek() {
            None | Some('#') => return Some(args),
            Some(_) => {}
        }
        let mut arg = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => {
                    let escapable = |next: &char| {
                        matches!(next, '\'' | '"' | '\\') || (quote.is_none() && *next == ' ')
                    };
                    match chars.next_if(escapable) {
                        Some(escaped) => arg.push(escaped),
                        None => arg.push('\\'),
                    }
                }
                (' ' | '\t', None) => break,
                ('=', None) if equals_separates => break,
                ('"' | '\'', None) => quote = Some(c),
                (_, Some(open)) if c == open => quote = None,
                _ => arg.push(c),
            }
        }
        if quote.is_some() {
            return None;
        }
        args.push(arg);
    }
}

/// Whether a `Host` line selects its block for `host`: some pattern matches and no
/// `!pattern` does.
fn host_line_matches(host: &str, patterns: &[String]) -> Result<bool, String> {
    let mut matched = false;
    for pattern in patterns {
        if pattern.is_empty() {
            return Err("empty Host pattern".to_owned());
        }
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard_matches(host, negated) => return Ok(false),
            Some(_) => {}
            None => matched |= wildcard_matches(host, pattern),
        }
    }
    Ok(matched)
}

/// OpenSSH's `match_pattern_list`: a comma-separated list where a matching `!pattern`
/// vetoes, and otherwise any matching pattern matches.
fn pattern_list_matches(text: &str, list: &str, ignore_case: bool) -> bool {
    let text = if ignore_case {
        text.to_ascii_lowercase()
    } else {
        text.to_owned()
    };
    let mut matched = false;
    for pattern in list.split(',') {
        let pattern = if ignore_case {
            pattern.to_ascii_lowercase()
        } else {
            pattern.to_owned()
        };
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard_matches(&text, negated) => return false,
            Some(_) => {}
            None => matched |= wildcard_matches(&text, &pattern),
        }
    }
    matched
}

/// `*` (any run) and `?` (any one character) matching of the whole `text`.
fn wildcard_matches(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0, 0);
    // Where the last `*` was, and the text position it currently stands in for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|tail| tail.iter().all(|c| *c == '*'))
}

/// Refuses a file another user could have written (OpenSSH's `secure_permissions`).
fn check_owner_and_mode(file: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).map_err(|err| {
        Error::invalid(format!(
            "{}: cannot read the ssh config file: {err}",
            file.display()
        ))
    })?;
    let owner_ok = meta.uid() == 0 || meta.uid() == current_uid();
    if owner_ok && meta.mode() & 0o022 == 0 {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}: bad owner or permissions (ssh refuses it too): it must belong to you or root \
         and not be writable by others; fix with `chmod go-w {}`",
        file.display(),
        file.display()
    )))
}

// ---------------------------------------------------------------------------------
// Expansions
// ---------------------------------------------------------------------------------

/// Tokens allowed in IdentityFile, IdentityAgent and UserKnownHostsFile.
const PATH_TOKENS: &str = "dhikLlnpru";
/// Tokens allowed in ProxyCommand.
const PROXY_COMMAND_TOKENS: &str = "hknpr";

/// Values of the `%` tokens for one host.
struct Tokens {
    home: String,
    hostname: String,
    host_key_alias_or_name: String,
    original_host: String,
    port: String,
    remote_user: String,
    local_user: String,
}

impl Tokens {
    /// The token values for `config` as resolved so far.
    fn new(config: &HostConfig, lookup: &Lookup<'_>, target: &Target<'_>) -> Self {
        Tokens {
            home: lookup.home.to_string_lossy().into_owned(),
            hostname: config.hostname.clone(),
            host_key_alias_or_name: config
                .host_key_alias
                .clone()
                .unwrap_or_else(|| target.name.to_owned()),
            original_host: target.name.to_owned(),
            port: config.port.to_string(),
            remote_user: config.user.clone(),
            local_user: lookup.local_user.to_owned(),
        }
    }

    /// The value of `%token`, `None` for a token without one.
    fn value(&self, token: char) -> Option<String> {
        Some(match token {
            'd' => self.home.clone(),
            'h' => self.hostname.clone(),
            'i' => current_uid().to_string(),
            'k' => self.host_key_alias_or_name.clone(),
            'l' => local_hostname()?,
            'L' => local_hostname()?
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned(),
            'n' => self.original_host.clone(),
            'p' => self.port.clone(),
            'r' => self.remote_user.clone(),
            'u' => self.local_user.clone(),
            _ => return None,
        })
    }
}

/// HostName's only token is `%h`, the host word.
fn expand_hostname(hostname: &str, original_host: &str) -> String {
    // Any other token is kept as written; ssh would refuse it, and the connection
    // attempt then fails on the odd name.
    let mut out = String::with_capacity(hostname.len());
    let mut chars = hostname.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(original_host),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `%x` tokens of `allowed` (and `%%`) replaced; any other token is an error.
fn expand_tokens(text: &str, tokens: &Tokens, allowed: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(token) if allowed.contains(token) => out.push_str(
                &tokens
                    .value(token)
                    .ok_or_else(|| format!("cannot find the value of %{token} in '{text}'"))?,
            ),
            Some(token) => {
                return Err(format!(
                    "unsupported token %{token} in '{text}' (this reader knows %% {})",
                    allowed
                        .chars()
                        .map(|known| format!("%{known}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ))
            }
            None => return Err(format!("'{text}' ends with a lone %")),
        }
    }
    Ok(out)
}

/// A path with `~` and tokens expanded.
fn expand_path(
    raw: &str,
    tokens: &Tokens,
    keyword: &str,
    allowed: &str,
) -> Result<PathBuf, String> {
    if raw.contains("${") {
        return Err(format!(
            "{keyword} '{raw}': environment variables are not expanded here; write the path"
        ));
    }
    let home = Path::new(&tokens.home);
    let expanded = expand_tilde(raw, home).map_err(|msg| format!("{keyword}: {msg}"))?;
    let expanded = expand_tokens(&expanded.to_string_lossy(), tokens, allowed)
        .map_err(|msg| format!("{keyword}: {msg}"))?;
    Ok(PathBuf::from(expanded))
}

/// `~` or `~/...` with our home; `~user` is refused (no passwd lookups of others).
fn expand_tilde(raw: &str, home: &Path) -> Result<PathBuf, String> {
    let Some(after) = raw.strip_prefix('~') else {
        return Ok(PathBuf::from(raw));
    };
    if after.is_empty() {
        return Ok(home.to_path_buf());
    }
    match after.strip_prefix('/') {
        Some(rest) => Ok(home.join(rest)),
        None => Err(format!(
            "'{raw}': ~user paths are not supported; write the full path"
        )),
    }
}

/// The user id this process runs as (`%i`, and the owner a config file may have).
#[allow(unsafe_code)]
fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// This machine's host name (`%l`), once per process.
#[allow(unsafe_code)]
fn local_hostname() -> Option<String> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for writes of its length; gethostname writes at
        // most that many bytes.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return None;
        }
        let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(buf.get(..len)?).into_owned();
        (!name.is_empty()).then_some(name)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory standing in for the user's home, removed on drop.
    struct Home {
        dir: PathBuf,
    }

    impl Home {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "cmux-ssh-config-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(dir.join(".ssh")).expect("create home");
            Home { dir }
        }

        /// Writes `text` at `relative` (under the home) and returns its path.
        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.dir.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create parent");
            }
            std::fs::write(&path, text).expect("write config");
            path
        }

        /// Resolves `host` with `config` as `-F` file, with the builtin reader.
        fn builtin(&self, host: &str, config: &str) -> Result<HostConfig, Error> {
            let file = self.write(".ssh/test_config", config);
            self.resolve(host, &file, None, None, ConfigSource::Builtin)
        }

        fn resolve(
            &self,
            host: &str,
            file: &Path,
            port: Option<u16>,
            user: Option<&str>,
            source: ConfigSource,
        ) -> Result<HostConfig, Error> {
            resolve(
                &Lookup {
                    host,
                    port,
                    user,
                    config_file: Some(file),
                    home: &self.dir,
                    local_user: "me",
                },
                source,
            )
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn error_text(result: Result<HostConfig, Error>) -> String {
        match result {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn alias_takes_hostname_port_user_and_identity_file() {
        let home = Home::new();
        let config = home
            .builtin(
                "web",
                "Host web\n  HostName Web-1.Example.org\n  Port 2222\n  User deploy\n  IdentityFile ~/.ssh/web_%r_%h_%p\n",
            )
            .expect("resolve");
        assert_eq!(config.hostname, "web-1.example.org");
        assert_eq!(config.port, 2222);
        assert_eq!(config.user, "deploy");
        assert_eq!(
            config.identity_files,
            vec![home.dir.join(".ssh/web_deploy_web-1.example.org_2222")]
        );
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let home = Home::new();
        let config = home
            .builtin(
                "db",
                "Host db\n User first\n IdentityFile /k/one\nHost *\n User second\n Port 10\n IdentityFile /k/two\n IdentityFile /k/one\n",
            )
            .expect("resolve");
        assert_eq!(config.user, "first");
        assert_eq!(config.port, 10);
        assert_eq!(
            config.identity_files,
            vec![PathBuf::from("/k/one"), PathBuf::from("/k/two")]
        );
    }

    #[test]
    fn negated_host_pattern_excludes_the_block() {
        let home = Home::new();
        let text = "Host *.example !secret.example\n User wild\n";
        let config = home.builtin("secret.example", text).expect("resolve");
        assert_eq!(config.user, "me");
        let config = home.builtin("open.example", text).expect("resolve");
        assert_eq!(config.user, "wild");
        // Host patterns are case-sensitive, as in OpenSSH.
        let config = home.builtin("Secret.example", text).expect("resolve");
        assert_eq!(config.user, "wild");
    }

    #[test]
    fn include_globs_relative_to_dot_ssh() {
        let home = Home::new();
        home.write(".ssh/conf.d/10-a.conf", "Host a\n User from-a\n");
        home.write(".ssh/conf.d/20-b.conf", "Host b\n User from-b\n");
        home.write(".ssh/conf.d/ignored.txt", "Host a\n User wrong\n");
        let text = "Include conf.d/*.conf\nHost *\n User fallback\n";
        assert_eq!(home.builtin("a", text).expect("a").user, "from-a");
        assert_eq!(home.builtin("b", text).expect("b").user, "from-b");
        assert_eq!(home.builtin("c", text).expect("c").user, "fallback");
    }

    #[test]
    fn include_inside_a_block_applies_only_when_it_matches() {
        let home = Home::new();
        home.write(".ssh/inner", "Port 2200\nHost *\n User inner\n");
        let text = "Host a\n Include ~/.ssh/inner\nHost *\n Port 1\n";
        let a = home.builtin("a", text).expect("a");
        assert_eq!((a.port, a.user.as_str()), (2200, "inner"));
        // The `Host *` inside the file of a block that did not match stays inactive.
        let b = home.builtin("b", text).expect("b");
        assert_eq!((b.port, b.user.as_str()), (1, "me"));
    }

    #[test]
    fn include_loop_stops_at_the_depth_limit() {
        let home = Home::new();
        home.write(".ssh/self", "Include self\n");
        let message = error_text(home.builtin("a", "Include self\n"));
        assert!(message.contains("too many nested Include"), "{message}");
    }

    #[test]
    fn group_writable_include_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let home = Home::new();
        let path = home.write(".ssh/shared", "User x\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        let message = error_text(home.builtin("a", "Include shared\n"));
        assert!(message.contains("bad owner or permissions"), "{message}");
    }

    #[test]
    fn match_host_user_and_all() {
        let home = Home::new();
        let text = "Host short\n HostName long.example\n User alice\n\
                    Match host long.example user alice\n Port 2001\n\
                    Match originalhost short !user bob\n IdentitiesOnly yes\n\
                    Match localuser me\n HostKeyAlias Alias\n\
                    Match all\n ConnectTimeout 7\n";
        let config = home.builtin("short", text).expect("resolve");
        assert_eq!(config.port, 2001);
        assert!(config.identities_only);
        assert_eq!(config.host_key_alias.as_deref(), Some("alias"));
        assert_eq!(config.connect_timeout, Some(Duration::from_secs(7)));
        let other = home.builtin("other", text).expect("resolve");
        assert_eq!(other.port, 22);
        assert!(!other.identities_only);
        assert_eq!(other.connect_timeout, Some(Duration::from_secs(7)));
    }

    #[test]
    fn match_final_runs_a_second_pass_on_the_resolved_name() {
        let home = Home::new();
        let text = "Host a\n HostName Real\nMatch final\n Port 2\nHost real\n User r\n";
        let config = home.builtin("a", text).expect("resolve");
        assert_eq!((config.port, config.user.as_str()), (2, "r"));
        let without_final = home
            .builtin(
                "a",
                "Host a\n HostName real\nHost real\n User r\nMatch canonical\n Port 3\n",
            )
            .expect("resolve");
        assert_eq!(
            (without_final.port, without_final.user.as_str()),
            (22, "me")
        );
    }

    #[test]
    fn match_exec_is_refused_with_its_location() {
        let home = Home::new();
        let file = home.write(
            ".ssh/exec_config",
            "Host a\n User x\nMatch exec \"true\"\n Port 3\n",
        );
        let message = error_text(home.resolve("a", &file, None, None, ConfigSource::Builtin));
        assert!(
            message.contains(&format!("{}:3:", file.display())),
            "{message}"
        );
        assert!(message.contains("Match exec"), "{message}");
        // After a criterion that failed, exec is skipped, as OpenSSH skips it.
        let config = home
            .builtin("a", "Match host other exec \"true\"\n Port 3\n")
            .expect("resolve");
        assert_eq!(config.port, 22);
    }

    #[test]
    fn equals_signs_quotes_and_comments() {
        let home = Home::new();
        let text = "# comment\n\nHOST=q\n  user = \"Some User\"\n\tPort=2022 # trailing\n \
                    IdentityFile \"/keys/with space\"\n UserKnownHostsFile 'a b' /c\n";
        let config = home.builtin("q", text).expect("resolve");
        assert_eq!(config.user, "Some User");
        assert_eq!(config.port, 2022);
        assert_eq!(
            config.identity_files,
            vec![PathBuf::from("/keys/with space")]
        );
        assert_eq!(
            config.user_known_hosts_files,
            vec![PathBuf::from("a b"), PathBuf::from("/c")]
        );
        let message = error_text(home.builtin("q", "User \"unterminated\n"));
        assert!(message.contains("invalid quotes"), "{message}");
    }

    #[test]
    fn bad_port_names_file_and_line_even_in_another_block() {
        let home = Home::new();
        let file = home.write(".ssh/bad", "Host a\n Port 22\nHost b\n Port abc\n");
        let message = error_text(home.resolve("a", &file, None, None, ConfigSource::Builtin));
        assert!(
            message.contains(&format!("{}:4:", file.display())),
            "{message}"
        );
        assert!(message.contains("bad port 'abc'"), "{message}");
        let message = error_text(home.builtin("a", "Port 22 23\n"));
        assert!(message.contains("extra arguments"), "{message}");
    }

    #[test]
    fn proxy_command_tokens_are_expanded() {
        let home = Home::new();
        let config = home
            .builtin(
                "jumpy",
                "Host jumpy\n HostName inner\n User u\n ProxyCommand ssh -W %h:%p gw # %r %n %k 100%%\n",
            )
            .expect("resolve");
        assert_eq!(
            config.proxy_command.as_deref(),
            Some("ssh -W inner:22 gw # u jumpy jumpy 100%")
        );
        assert_eq!(config.proxy_jump, None);
        let message = error_text(home.builtin("x", "ProxyCommand nc %z\n"));
        assert!(message.contains("%z"), "{message}");
    }

    #[test]
    fn proxy_jump_and_proxy_command_first_one_wins() {
        let home = Home::new();
        let jump = home
            .builtin("x", "ProxyJump gw1,gw2 # comment\nProxyCommand nc %h %p\n")
            .expect("resolve");
        assert_eq!(jump.proxy_jump.as_deref(), Some("gw1,gw2"));
        assert_eq!(jump.proxy_command, None);
        let direct = home
            .builtin("x", "ProxyJump none\nProxyCommand nc %h %p\n")
            .expect("resolve");
        assert_eq!((direct.proxy_jump, direct.proxy_command), (None, None));
        let command = home
            .builtin("x", "ProxyCommand nc %h %p\nProxyJump gw\n")
            .expect("resolve");
        assert_eq!(command.proxy_command.as_deref(), Some("nc x 22"));
        assert_eq!(command.proxy_jump, None);
    }

    #[test]
    fn port_and_user_written_with_the_host_win() {
        let home = Home::new();
        let file = home.write(
            ".ssh/win",
            "Match user cli\n Port 9\nHost h\n User cfg\n Port 1\n",
        );
        let config = home
            .resolve("h", &file, Some(3333), Some("cli"), ConfigSource::Builtin)
            .expect("resolve");
        assert_eq!((config.user.as_str(), config.port), ("cli", 3333));
        let config = home
            .resolve("word@h", &file, None, None, ConfigSource::Builtin)
            .expect("resolve");
        assert_eq!((config.user.as_str(), config.port), ("word", 1));
        let config = home
            .resolve("word@h", &file, None, Some("cli"), ConfigSource::Builtin)
            .expect("resolve");
        assert_eq!((config.user.as_str(), config.port), ("cli", 9));
    }

    #[test]
    fn defaults_apply_when_nothing_is_configured() {
        let home = Home::new();
        let config = home.builtin("Plain.Host", "").expect("resolve");
        let ssh = home.dir.join(".ssh");
        assert_eq!(
            config,
            HostConfig {
                hostname: "plain.host".to_owned(),
                port: 22,
                user: "me".to_owned(),
                identity_files: [
                    "id_rsa",
                    "id_ecdsa",
                    "id_ecdsa_sk",
                    "id_ed25519",
                    "id_ed25519_sk"
                ]
                .iter()
                .map(|name| ssh.join(name))
                .collect(),
                identities_only: false,
                identity_agent: None,
                host_key_alias: None,
                user_known_hosts_files: vec![ssh.join("known_hosts"), ssh.join("known_hosts2")],
                global_known_hosts_files: vec![
                    PathBuf::from("/etc/ssh/ssh_known_hosts"),
                    PathBuf::from("/etc/ssh/ssh_known_hosts2"),
                ],
                strict_host_key_checking: StrictHostKeyChecking::Ask,
                hash_known_hosts: false,
                proxy_command: None,
                proxy_jump: None,
                connect_timeout: None,
                server_alive_interval: None,
                server_alive_count_max: 3,
            }
        );
    }

    #[test]
    fn other_keywords_and_values() {
        let home = Home::new();
        let text = "Host k\n StrictHostKeyChecking accept-new\n HashKnownHosts yes\n \
                    ServerAliveInterval 1m30s\n ServerAliveCountMax 5\n ConnectTimeout 0\n \
                    IdentityAgent ~/agent.sock\n UserKnownHostsFile none\n \
                    GlobalKnownHostsFile /g\n SomeUnknownKeyword whatever\n";
        let config = home.builtin("k", text).expect("resolve");
        assert_eq!(
            config.strict_host_key_checking,
            StrictHostKeyChecking::AcceptNew
        );
        assert!(config.hash_known_hosts);
        assert_eq!(config.server_alive_interval, Some(Duration::from_secs(90)));
        assert_eq!(config.server_alive_count_max, 5);
        assert_eq!(config.connect_timeout, None);
        let agent = home.dir.join("agent.sock");
        assert_eq!(config.identity_agent.as_deref(), agent.to_str());
        assert!(config.user_known_hosts_files.is_empty());
        assert_eq!(config.global_known_hosts_files, vec![PathBuf::from("/g")]);
        let message = error_text(home.builtin("k", "IdentityFile ${HOME}/k\n"));
        assert!(message.contains("environment variables"), "{message}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let home = Home::new();
        let missing = home.dir.join("nope");
        let message = error_text(home.resolve("a", &missing, None, None, ConfigSource::Builtin));
        assert!(message.contains("no such file"), "{message}");
    }

    #[test]
    fn wildcards_and_times() {
        assert!(wildcard_matches("web-12.example", "web-*.example"));
        assert!(wildcard_matches("ab", "a?"));
        assert!(wildcard_matches("", "*"));
        assert!(!wildcard_matches("abc", "a?"));
        assert!(wildcard_matches("aXbXc", "*b*c"));
        assert!(!wildcard_matches("aXbXd", "*b*c"));
        assert!(pattern_list_matches("Host.A", "x,host.*", true));
        assert!(!pattern_list_matches("host.a", "host.*,!host.a", true));
        assert_eq!(convtime("90"), Some(90));
        assert_eq!(convtime("1h2M3s"), Some(3723));
        assert_eq!(convtime("1w"), Some(604_800));
        assert_eq!(convtime("x"), None);
        assert_eq!(convtime(""), None);
        assert_eq!(convtime("99999999999"), None);
    }

    #[test]
    fn odd_input_never_panics() {
        let home = Home::new();
        let nasty = [
            "",
            "=",
            "==",
            "Host",
            "Host \"",
            "Host ''",
            "Host !",
            "Host=",
            "Match",
            "Match !",
            "Match all all",
            "Match host",
            "Match user",
            "Match final all",
            "Match bogus x",
            "Include",
            "Include [",
            "Port",
            "Port 0",
            "Port 65536",
            "Port -1",
            "User \\",
            "User a\\ b",
            "ProxyCommand",
            "ProxyJump #",
            "ConnectTimeout 1q",
            "HostName %",
            "HostName %h%",
            "IdentityFile %",
            "IdentityFile ~x/y",
            "IdentityFile \u{0}",
            "\u{feff}Host x",
            "ServerAliveCountMax 4294967295",
            "Host *\n HostName é%hé",
            "UserKnownHostsFile none x",
            "StrictHostKeyChecking maybe",
            "\\\"\\'",
        ];
        for text in nasty {
            for host in ["x", "é", "a@", "@b", "*"] {
                // Errors are fine; panics are not.
                let _ = home.builtin(host, text);
            }
        }
        for text in nasty {
            let _ = split_args(text, true);
            let _ = split_args(text, false);
            let _ = split_keyword(text);
            let _ = convtime(text);
            let _ = wildcard_matches(text, text);
        }
    }

    #[test]
    fn failing_ssh_g_names_the_host_and_quotes_ssh() {
        if !openssh_client_available() {
            return;
        }
        let home = Home::new();
        let file = home.write(".ssh/broken", "Port abc\n");
        let message =
            error_text(home.resolve("broken-host", &file, None, None, ConfigSource::SshG));
        assert!(message.contains("broken-host"), "{message}");
        assert!(message.contains("abc"), "{message}");
        assert!(!message.contains("Pseudo-terminal"), "{message}");
    }

    /// The builtin reader against the real `ssh -G`, on a file exercising every field.
    #[test]
    fn builtin_agrees_with_ssh_g() {
        if !openssh_client_available() {
            eprintln!("no ssh client: skipping the comparison with ssh -G");
            return;
        }
        let home = Home::new();
        home.write(
            ".ssh/extra.d/one.conf",
            "Host inc\n  Port 2200\n  User included\n",
        );
        let text = "\
Include extra.d/*.conf
Host alias !nope
  HostName Real-%h.example
  Port 2022
  User deploy
  IdentityFile ~/.ssh/alias_%r_%h_%p_%n
  IdentityFile /abs/key
  IdentitiesOnly yes
  HostKeyAlias AliasKey
  UserKnownHostsFile ~/kh1 /abs/kh2
  GlobalKnownHostsFile /g1 /g2
  StrictHostKeyChecking accept-new
  HashKnownHosts yes
  ProxyCommand nc %h %p # %r %n %%
  ConnectTimeout 1m5s
  ServerAliveInterval 15
  ServerAliveCountMax 7
Host jumpy
  ProxyJump gw1,gw2
  ProxyCommand never-used
  StrictHostKeyChecking no
Match host real-alias.example
  IdentityAgent ~/agent.sock
Match originalhost other user=someone
  Port 1
Host *
  IdentityFile ~/.ssh/id_test
  User=\"fallback\"
  ConnectTimeout 0
";
        let file = home.write(".ssh/compare", text);
        // ssh -G reads the passwd home and user, so the builtin reader must too.
        let passwd_home = cmux_core::local_user::home_dir().expect("passwd home");
        let passwd_user = cmux_core::local_user::user_name().expect("passwd user");
        for (host, port, user) in [
            ("alias", None, None),
            ("inc", None, None),
            ("jumpy", None, None),
            ("other", Some(2), Some("someone")),
            ("someone@other", None, None),
            ("Mixed.Case", None, None),
        ] {
            let lookup = |source| {
                resolve(
                    &Lookup {
                        host,
                        port,
                        user,
                        config_file: Some(&file),
                        home: &passwd_home,
                        local_user: &passwd_user,
                    },
                    source,
                )
                .expect("resolve")
            };
            assert_eq!(
                lookup(ConfigSource::Builtin),
                lookup(ConfigSource::SshG),
                "builtin vs ssh -G for {host}"
            );
        }
    }
}
