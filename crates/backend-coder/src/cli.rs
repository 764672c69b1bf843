//! [`CoderCli`]: runs the user's `coder` binary and turns its failures into errors that
//! say what to run next.
//!
//! Only stdout is parsed (JSON); stderr carries warnings and errors. Version and feature
//! warnings are silenced with `CODER_NO_VERSION_WARNING=1` / `CODER_NO_FEATURE_WARNING=1`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cmux_core::{Error, Result};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::status::Workspace;
use crate::Progress;

/// The environment variable the cmux CLI reads into
/// [`CoderOptions::coder_bin`](crate::CoderOptions::coder_bin), named in this crate's
/// messages. This crate itself reads no environment variable.
pub const CODER_BIN_ENV: &str = "CMUX_CODER_BIN";

/// Where `coder` is looked for when the caller gives neither a binary nor a search
/// path: where Coder's install script and packages put it (`/usr/local/bin`,
/// `/usr/bin`), and Homebrew's prefix on Apple silicon.
pub const DEFAULT_SEARCH_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/opt/homebrew/bin";

/// How long a quick API command (`whoami`, `list`, `config-ssh`) may take.
const QUICK: Duration = Duration::from_secs(60);

/// What `coder whoami -o json` says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Login {
    /// The deployment URL.
    pub url: String,
    /// The user name.
    pub username: String,
}

/// A located `coder` binary plus the global flags cmux passes to it.
#[derive(Clone, Debug)]
pub struct CoderCli {
    bin: PathBuf,
    global_config: Option<PathBuf>,
}

/// A finished CLI call.
struct CliOutput {
    code: i32,
    stdout: String,
    stderr: String,
}

impl CoderCli {
    /// Finds the binary: `explicit`, else `coder` in the directories of `search_path`
    /// (`PATH` syntax; default [`DEFAULT_SEARCH_PATH`]). `global_config` is passed as
    /// `--global-config` (default: the CLI's own).
    pub fn locate(
        explicit: Option<&Path>,
        search_path: Option<&OsStr>,
        global_config: Option<&Path>,
    ) -> Result<Self> {
        let bin = match explicit {
            Some(p) => p.to_path_buf(),
            None => find_in(
                "coder",
                search_path.unwrap_or(OsStr::new(DEFAULT_SEARCH_PATH)),
            )
            .ok_or_else(not_installed)?,
        };
        if !bin.is_file() {
            return Err(Error::backend(
                "coder",
                format!(
                    "the Coder CLI {} does not exist; install it (`curl -fsSL https://coder.com/install.sh | sh`) \
                     or point {CODER_BIN_ENV} at it",
                    bin.display()
                ),
            ));
        }
        Ok(CoderCli {
            bin,
            global_config: global_config.map(Path::to_path_buf),
        })
    }

    /// The binary in use.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        if let Some(dir) = &self.global_config {
            cmd.arg("--global-config").arg(dir);
        }
        cmd.args(args)
            .env("CODER_NO_VERSION_WARNING", "1")
            .env("CODER_NO_FEATURE_WARNING", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `coder <args>` to completion (killed after `limit`).
    async fn run(&self, args: &[&str], limit: Duration) -> Result<CliOutput> {
        let mut child = self
            .command(args)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let read_all = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let (a, b) = tokio::join!(
                async {
                    match out.as_mut() {
                        Some(o) => o.read_to_end(&mut stdout).await.map(|_| ()),
                        None => Ok(()),
                    }
                },
                async {
                    match err.as_mut() {
                        Some(e) => e.read_to_end(&mut stderr).await.map(|_| ()),
                        None => Ok(()),
                    }
                }
            );
            a.and(b)?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, stdout, stderr))
        };
        let (status, stdout, stderr) = match tokio::time::timeout(limit, read_all).await {
            Ok(r) => r.map_err(|e| self.io_error(args, e))?,
            Err(_) => {
                return Err(Error::TimedOut {
                    host: "coder".into(),
                    what: format!("`coder {}`", args.join(" ")),
                    secs: limit.as_secs_f64(),
                })
            }
        };
        Ok(CliOutput {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn spawn_error(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            not_installed()
        } else {
            Error::backend(
                "coder",
                format!(
                    "cannot run the Coder CLI {}: {e}; check it is executable, or reinstall it \
                     (`curl -fsSL https://coder.com/install.sh | sh`)",
                    self.bin.display()
                ),
            )
        }
    }

    fn io_error(&self, args: &[&str], e: std::io::Error) -> Error {
        Error::backend(
            "coder",
            format!("`coder {}` failed to run: {e}", args.join(" ")),
        )
    }

    /// The CLI's version (`coder version -o json`), e.g. `v2.25.0+abc`.
    pub async fn version(&self) -> Result<String> {
        let out = self.run(&["version", "-o", "json"], QUICK).await?;
        if out.code != 0 {
            return Err(classify("coder version", &out.stderr, None));
        }
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).map_err(|e| {
            Error::backend(
                "coder",
                format!("`coder version -o json` printed something else than JSON ({e})"),
            )
        })?;
        Ok(v.get("version")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown")
            .to_owned())
    }

    /// Who is logged in (`coder whoami -o json`); an error saying how to log in otherwise.
    pub async fn whoami(&self) -> Result<Login> {
        let out = self.run(&["whoami", "-o", "json"], QUICK).await?;
        if out.code != 0 {
            return Err(classify("coder whoami", &out.stderr, None));
        }
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).map_err(|e| {
            Error::backend(
                "coder",
                format!("`coder whoami -o json` printed something else than JSON ({e})"),
            )
        })?;
        let first = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
        let field = |k: &str| {
            first
                .get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Login {
            url: field("url"),
            username: field("username"),
        })
    }

    /// The logged-in user's workspace named exactly `name`, or `None`.
    ///
    /// `--search name:` matches substrings server-side, so the exact match is done
    /// here. Old CLIs print nothing (not `[]`) when nothing matches.
    pub async fn workspace(&self, name: &str) -> Result<Option<Workspace>> {
        let query = format!("owner:me name:{name}");
        let out = self
            .run(&["list", "--search", &query, "-o", "json"], QUICK)
            .await?;
        if out.code != 0 {
            return Err(classify("coder list", &out.stderr, Some(name)));
        }
        let text = out.stdout.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            Error::backend(
                "coder",
                format!("`coder list -o json` printed something else than a JSON array ({e}); is the CLI older than v2?"),
            )
        })?;
        Ok(list
            .iter()
            .map(Workspace::from_json)
            .find(|w| w.name == name))
    }

    /// `coder start <name> -y`, its build log sent to `progress` line by line; killed
    /// after `limit`.
    pub async fn start(&self, name: &str, limit: Duration, progress: &Progress) -> Result<()> {
        let args = ["start", name, "-y"];
        let mut child = self
            .command(&args)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stdout = child.stdout.take();
        let mut stderr_pipe = child.stderr.take();
        let run = async {
            let forward = async {
                if let Some(out) = stdout {
                    let mut lines = BufReader::new(out).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let line = line.trim();
                        if !line.is_empty() {
                            progress.report(&format!("coder: {line}"));
                        }
                    }
                }
            };
            let collect = async {
                let mut buf = Vec::new();
                if let Some(err) = stderr_pipe.as_mut() {
                    let _ = err.read_to_end(&mut buf).await;
                }
                buf
            };
            let ((), stderr) = tokio::join!(forward, collect);
            let status = child.wait().await;
            (status, stderr)
        };
        match tokio::time::timeout(limit, run).await {
            Ok((Ok(status), _)) if status.success() => Ok(()),
            Ok((Ok(_), stderr)) => Err(classify(
                &format!("coder start {name}"),
                &String::from_utf8_lossy(&stderr),
                Some(name),
            )),
            Ok((Err(e), _)) => Err(self.io_error(&args, e)),
            Err(_) => Err(Error::TimedOut {
                host: format!("coder.{name}"),
                what: format!("`coder start {name}`"),
                secs: limit.as_secs_f64(),
            }),
        }
    }

    /// `coder config-ssh --yes --use-previous-options [--ssh-config-file F]`: writes or
    /// refreshes the Coder section, keeping every option the user set before.
    pub async fn config_ssh(&self, ssh_config_file: Option<&Path>) -> Result<String> {
        let mut args = vec!["config-ssh", "--yes", "--use-previous-options"];
        let file;
        if let Some(f) = ssh_config_file {
            file = f.to_string_lossy().into_owned();
            args.push("--ssh-config-file");
            args.push(&file);
        }
        let out = self.run(&args, QUICK).await?;
        if out.code != 0 {
            return Err(classify("coder config-ssh", &out.stderr, None));
        }
        Ok(out.stdout)
    }
}

/// Looks `name` up in the directories of `search_path` (`PATH` syntax).
fn find_in(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn not_installed() -> Error {
    Error::backend(
        "coder",
        format!(
            "the Coder CLI `coder` is not installed (not on PATH, {CODER_BIN_ENV} unset); install it with \
             `curl -fsSL https://coder.com/install.sh | sh`, then run `coder login <your Coder URL>`"
        ),
    )
}

/// The last meaningful line of the CLI's stderr (`error: ...` preferred).
fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Encountered an error running"))
        .collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .copied()
        .unwrap_or("(no output)");
    let line = line.strip_prefix("error:").unwrap_or(line).trim();
    format!("{:?}", cmux_core::runtime::tail(line, 400))
        .trim_matches('"')
        .to_owned()
}

/// Turns a failed `coder` call into an error with the command that fixes it.
pub(crate) fn classify(what: &str, stderr: &str, workspace: Option<&str>) -> Error {
    let line = error_line(stderr);
    let lower = stderr.to_lowercase();
    let message = if lower.contains("not logged in")
        || lower.contains("try logging in")
        || lower.contains("please login")
        || lower.contains("401")
    {
        format!("not logged in to Coder (`{what}`: {line}); run `coder login <your Coder URL>`")
    } else if lower.contains("dial tcp")
        || lower.contains("connection refused")
        || lower.contains("no such host")
        || lower.contains("i/o timeout")
        || lower.contains("context deadline exceeded")
        || lower.contains("tls:")
        || lower.contains("certificate")
    {
        format!(
            "cannot reach the Coder deployment (`{what}`: {line}); check the network or VPN, \
             then `coder whoami` (run `coder login <url>` if the deployment moved)"
        )
    } else if let (Some(ws), true) = (workspace, lower.contains("resource not found")) {
        format!(
            "no Coder workspace named {ws:?} for the logged-in user (`{what}`: {line}); \
             `coder list` shows yours, `coder create {ws}` makes one"
        )
    } else {
        format!("`{what}` failed: {line}")
    };
    Error::backend("coder", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_not_logged_in_with_the_fix() {
        let e = classify(
            "coder whoami",
            "Encountered an error running \"coder whoami\", see \"coder whoami --help\" for more information\nerror: You are not logged in. Try logging in using 'coder login <url>'.\n",
            None,
        );
        let text = e.to_string();
        assert!(text.contains("not logged in"), "{text}");
        assert!(text.contains("coder login"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn classifies_unreachable_and_not_found() {
        let e = classify(
            "coder list",
            "error: Get \"https://x/api/v2/users/me\": dial tcp 10.0.0.1:443: connect: connection refused",
            None,
        );
        assert!(e.to_string().contains("cannot reach"), "{e}");
        let e = classify(
            "coder start dev",
            "error: Resource not found or you do not have access to this resource",
            Some("dev"),
        );
        assert!(
            e.to_string().contains("no Coder workspace named \"dev\""),
            "{e}"
        );
    }

    #[test]
    fn missing_binary_says_how_to_install() {
        let e = CoderCli::locate(Some(Path::new("/nonexistent/coder")), None, None)
            .expect_err("missing binary");
        assert!(e.to_string().contains("install"), "{e}");
        let e = CoderCli::locate(None, Some(OsStr::new("/nonexistent:")), None)
            .expect_err("not in the search path");
        assert!(e.to_string().contains("install"), "{e}");
    }

    #[test]
    fn the_search_path_is_the_callers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("coder");
        std::fs::write(&bin, "#!/bin/sh\n").expect("write");
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().expect("utf-8")])
            .expect("join");
        let cli = CoderCli::locate(None, Some(&path), None).expect("found");
        assert_eq!(cli.bin(), bin);
    }
}
