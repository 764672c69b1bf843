//! The workspace registry: one JSON file per workspace in `$CMUX_HOME/workspaces/`.
//!
//! Many agents run cmux at once, so:
//! - a name is reserved atomically: the complete record is written to a temporary
//!   file, then hard-linked to `<name>.json`, which fails if the name is taken (the
//!   same guarantee as `O_EXCL`, and no reader ever sees a half-written file);
//! - a record is replaced atomically (temporary file + `rename(2)`, fsynced), so a
//!   `cmux` killed mid-write leaves the old or the new record, never a corrupt one;
//! - one file per workspace: writers of different workspaces never touch the same
//!   file, so none can lose another's entry.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use cmux_core::workspace::Workspace;
use cmux_core::RemotePath;
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// Where a workspace's runtime is. Tagged by `kind`; unknown fields are ignored and a
/// kind written by a newer cmux reads as [`BackendConfig::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackendConfig {
    /// This machine.
    Local,
    /// An SSH host.
    Ssh {
        /// Hostname, `user@host` or a `~/.ssh/config` alias.
        host: String,
        /// Where workspaces live on the host (default `~/cmux`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        src_base: Option<String>,
        /// Accept (and remember) an unknown host key.
        #[serde(default)]
        accept_new_host_key: bool,
        /// The ssh config file used instead of `~/.ssh/config` (`ssh -F`), from
        /// `CMUX_SSH_CONFIG` when the workspace was created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_file: Option<PathBuf>,
    },
    /// A Coder workspace (`coder.<workspace>` over SSH).
    Coder {
        /// The Coder workspace, optionally `<ws>.<agent>`.
        workspace: String,
        /// Where workspaces live in it (default `~/cmux`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        src_base: Option<String>,
        /// The ssh config file `coder config-ssh` writes and ssh reads, instead of
        /// `~/.ssh/config`, from `CMUX_SSH_CONFIG` when the workspace was created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_file: Option<PathBuf>,
    },
    /// A `cmux-host` at the other end of a command's stdio (`docker exec -i box
    /// cmux-host`), in place in an existing directory there.
    Pipe {
        /// The command line, run with `sh -c`.
        command: String,
        /// The workspace directory at the other end (absolute).
        dir: String,
    },
    /// A backend this version of cmux does not know.
    #[serde(other)]
    Unknown,
}

impl BackendConfig {
    /// Short label: `local`, `ssh:<host>`, `coder:<workspace>`.
    pub fn label(&self) -> String {
        match self {
            BackendConfig::Local => "local".into(),
            BackendConfig::Ssh { host, .. } => format!("ssh:{host}"),
            BackendConfig::Coder { workspace, .. } => format!("coder:{workspace}"),
            BackendConfig::Pipe { command, .. } => format!("pipe:{command}"),
            BackendConfig::Unknown => "unknown".into(),
        }
    }
}

/// Whether a workspace is usable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// `cmux new` is creating it (or was interrupted while doing so).
    Creating,
    /// Created.
    #[default]
    Ready,
}

/// One workspace in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Workspace name (also the file name).
    pub name: String,
    /// The project's top-level directory on this machine.
    pub project: PathBuf,
    /// Where the runtime is.
    pub backend: BackendConfig,
    /// The workspace directory inside the runtime.
    pub path: RemotePath,
    /// Its branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// The project directory itself (never deleted).
    #[serde(default)]
    pub in_place: bool,
    /// The project's branch the workspace started from (what `cmux push` sends);
    /// absent in records of older versions and for workspaces made from a tag or a
    /// commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Creation time, seconds since the Unix epoch.
    #[serde(default)]
    pub created_at: u64,
    /// Creating or ready.
    #[serde(default)]
    pub state: State,
    /// Fields written by a newer cmux, kept when the record is rewritten.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Record {
    /// A new record for `ws` on `backend`, created now.
    pub fn new(ws: &Workspace, backend: BackendConfig, state: State) -> Record {
        Record {
            name: ws.name.clone(),
            project: ws.project.clone(),
            backend,
            path: ws.path.clone(),
            branch: ws.branch.clone(),
            in_place: ws.in_place,
            base: ws.base.clone(),
            created_at: now_secs(),
            state,
            extra: BTreeMap::new(),
        }
    }

    /// The lifecycle's view of this workspace.
    pub fn workspace(&self) -> Workspace {
        Workspace {
            name: self.name.clone(),
            project: self.project.clone(),
            path: self.path.clone(),
            branch: self.branch.clone(),
            in_place: self.in_place,
            base: self.base.clone(),
        }
    }

    /// Takes the lifecycle's view back (after a rename, say).
    pub fn update_from(&mut self, ws: &Workspace) {
        self.name = ws.name.clone();
        self.project = ws.project.clone();
        self.path = ws.path.clone();
        self.branch = ws.branch.clone();
        self.in_place = ws.in_place;
        self.base = ws.base.clone();
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A registry entry that could not be read.
#[derive(Debug)]
pub struct BadEntry {
    /// Why (naming the file).
    pub error: String,
}

/// The registry directory.
#[derive(Clone, Debug)]
pub struct Registry {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Registry {
    /// The registry in `dir` (created when missing).
    pub fn open(dir: PathBuf) -> Result<Registry> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| {
                format!(
                    "creating the registry {} (set CMUX_HOME to a writable directory)",
                    dir.display()
                )
            })?;
        Ok(Registry { dir })
    }

    /// The file of workspace `name`.
    pub fn file_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Writes `record` to a fresh temporary file beside the entries, fsynced.
    fn write_temp(&self, record: &Record) -> Result<PathBuf> {
        let temp = self.dir.join(format!(
            ".{}.json.tmp.{}.{}",
            record.name,
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut bytes = serde_json::to_vec_pretty(record).context("encoding the record")?;
        bytes.push(b'\n');
        let result = (|| -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            // Private from the first byte: entries name projects and hosts.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(e).with_context(|| format!("writing {}", temp.display()));
        }
        Ok(temp)
    }

    /// Reserves `record.name` atomically with its complete record. Fails with a
    /// one-line "already exists" error when the name is taken. The reservation is
    /// released on drop unless [`Reservation::keep`] is called.
    pub fn reserve(&self, record: &Record) -> Result<Reservation<'_>> {
        let target = self.file_of(&record.name);
        let temp = self.write_temp(record)?;
        let linked = std::fs::hard_link(&temp, &target);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(Reservation {
                registry: self,
                name: record.name.clone(),
                kept: false,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(duplicate_error(&record.name, self.load(&record.name).ok()))
            }
            Err(e) => Err(e).with_context(|| format!("reserving {}", target.display())),
        }
    }

    /// Replaces `record`'s file atomically.
    pub fn save(&self, record: &Record) -> Result<()> {
        let target = self.file_of(&record.name);
        let temp = self.write_temp(record)?;
        if let Err(e) = std::fs::rename(&temp, &target) {
            let _ = std::fs::remove_file(&temp);
            return Err(e).with_context(|| format!("writing {}", target.display()));
        }
        Ok(())
    }

    /// True when workspace `name` has a file (readable or not).
    pub fn exists(&self, name: &str) -> bool {
        self.file_of(name).exists()
    }

    /// Reads workspace `name`: a one-line error for an unknown name or a corrupt file
    /// (naming the file).
    pub fn load(&self, name: &str) -> Result<Record> {
        // Names become file names: refuse `../x` before touching the disk.
        cmux_core::workspace::validate_name(name)?;
        let file = self.file_of(name);
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::failure(format!(
                    "no workspace named {name:?}: see `cmux list`, or create it with `cmux new {name}`"
                )))
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        parse(&file, &bytes).map_err(CliError::failure)
    }

    /// Removes workspace `name`'s file; fine when already gone.
    pub fn remove(&self, name: &str) -> Result<()> {
        match std::fs::remove_file(self.file_of(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.file_of(name).display())),
        }
    }

    /// Every readable record, sorted by name, and the entries that could not be read.
    pub fn list(&self) -> Result<(Vec<Record>, Vec<BadEntry>)> {
        let mut records = Vec::new();
        let mut bad = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("listing {}", self.dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Temporary files start with '.', which workspace names never do.
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let file = entry.path();
            match std::fs::read(&file) {
                Ok(bytes) => match parse(&file, &bytes) {
                    Ok(record) => records.push(record),
                    Err(error) => bad.push(BadEntry { error }),
                },
                // Removed since the listing: not there any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => bad.push(BadEntry {
                    error: format!("cannot read {}: {e}", file.display()),
                }),
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((records, bad))
    }
}

fn parse(file: &Path, bytes: &[u8]) -> std::result::Result<Record, String> {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    match serde_json::from_slice::<Record>(bytes) {
        Ok(record) if record.name == stem => Ok(record),
        Ok(record) => Err(format!(
            "registry entry {} is corrupt: it names workspace {:?}; fix the file or delete it",
            file.display(),
            record.name
        )),
        Err(e) => Err(format!(
            "registry entry {} is corrupt ({e}): fix the file or delete it (the workspace directory, if any, stays on disk)",
            file.display()
        )),
    }
}

/// The one-line error for a name that is taken.
pub fn duplicate_error(name: &str, existing: Option<Record>) -> anyhow::Error {
    let what = existing
        .map(|r| format!(" ({}, {})", r.backend.label(), r.path))
        .unwrap_or_default();
    CliError::failure(format!(
        "workspace {name:?} already exists{what}: choose another name, or remove it first with `cmux rm {name}`"
    ))
}

/// A reserved name; released on drop unless kept.
#[derive(Debug)]
pub struct Reservation<'a> {
    registry: &'a Registry,
    name: String,
    kept: bool,
}

impl Reservation<'_> {
    /// Keeps the entry.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let _ = self.registry.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_a_base_branch_still_read_and_a_base_round_trips() {
        let old = br#"{"name":"w","project":"/p","backend":{"kind":"local"},"path":"/p/w","branch":"w","in_place":false,"created_at":1,"state":"ready"}"#;
        let record = parse(Path::new("/r/w.json"), old).expect("an older record reads");
        assert_eq!(record.base, None);
        let text = serde_json::to_string(&record).expect("json");
        assert!(!text.contains("base"), "{text}");

        let mut record = record;
        record.base = Some("main".into());
        let text = serde_json::to_vec(&record).expect("json");
        let back = parse(Path::new("/r/w.json"), &text).expect("reads");
        assert_eq!(back.base.as_deref(), Some("main"));
        assert_eq!(back.workspace().base.as_deref(), Some("main"));
    }
}
