//! `glob`: files matching a glob pattern under a directory, newest first.
//!
//! The pattern is matched by cmux's engine with `globset`, so the semantics are
//! identical on every backend: `*`, `?` and `[...]` stay within one path component,
//! `**` crosses directories, `{a,b}` alternates. Results are sorted by modification
//! time, newest first (the files an agent most likely wants), ties by path. `.git` is
//! skipped, hidden files are listed, symlinks are not followed, and inside a git work
//! tree the files git ignores are skipped (as ripgrep and fd do), unless that leaves
//! nothing. Where a backend runs the engine where the files are
//! ([`Runtime::glob`](crate::Runtime::glob)) that is one step; elsewhere one `find` on
//! the host lists the files (see the `generic` module).

use serde::{Deserialize, Serialize};

use super::generic;
use super::text::display_name;
use super::ToolContext;
use crate::engine::GlobRequest;
use crate::error::{Error, Result};
use crate::path::RemotePath;

/// Results returned at most (the newest).
pub const GLOB_MAX_RESULTS: usize = crate::engine::GLOB_MAX_RESULTS;

/// Input of [`glob()`].
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobInput {
    /// A glob pattern matched against paths relative to the search directory, e.g.
    /// `**/*.rs` or `src/**/mod.rs`.
    pub pattern: String,
    /// The directory to search, relative to the workspace or absolute (default: the
    /// workspace root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Result of [`glob()`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GlobOutput {
    /// The directory `files` are relative to: the workspace when the search was inside
    /// it, else the searched directory.
    pub base: String,
    /// Matching files, relative to `base`, newest first, ties by path (at most 1000:
    /// the newest).
    pub files: Vec<String>,
    /// Matches left out past the first 1000.
    pub omitted: usize,
    /// Set when the listing was incomplete (unreadable directories, huge trees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// True when `base` is not the workspace directory.
    #[serde(skip)]
    pub(crate) outside_root: bool,
}

impl GlobOutput {
    /// What a model sees: one path per line.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        if self.outside_root {
            lines.push(format!("(paths relative to {})", display_name(&self.base)));
        }
        if self.files.is_empty() {
            lines.push("No files matched.".into());
        }
        lines.extend(self.files.iter().map(|f| display_name(f)));
        if self.omitted > 0 {
            lines.push(format!(
                "[... {} more matches not shown; use a narrower pattern or path]",
                self.omitted
            ));
        }
        if let Some(note) = &self.note {
            lines.push(format!("[note: {note}]"));
        }
        lines.join("\n")
    }
}

/// For a search of `dir`: the base results are shown relative to and the prefix that
/// turns a name relative to `dir` into one relative to that base.
pub(crate) fn output_base(ctx: &ToolContext, dir: &RemotePath) -> (RemotePath, String, bool) {
    let root = ctx.root.normalize();
    let dir = dir.normalize();
    if dir.starts_with(&root) {
        let rest = dir
            .as_str()
            .get(root.as_str().len()..)
            .unwrap_or_default()
            .trim_start_matches('/');
        let prefix = if rest.is_empty() {
            String::new()
        } else {
            format!("{rest}/")
        };
        (root, prefix, false)
    } else {
        (dir, String::new(), true)
    }
}

/// Splits an absolute pattern into its literal leading directories and the rest:
/// `/a/b/**/*.rs` → (`/a/b`, `**/*.rs`).
fn split_absolute(pattern: &str) -> (String, String) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts
        .iter()
        .take(parts.len() - 1)
        .take_while(|p| !p.contains(['*', '?', '[', '{', '\\']))
        .count();
    let dir = parts[..literal].join("/");
    let dir = if dir.is_empty() { "/".to_owned() } else { dir };
    (dir, parts[literal..].join("/"))
}

/// Lists the files under `path` (default: the workspace) matching `pattern`.
pub async fn glob(ctx: &ToolContext, input: GlobInput) -> Result<GlobOutput> {
    let (dir, pattern) = match (&input.path, input.pattern.starts_with('/')) {
        (None, true) => {
            let (dir, rest) = split_absolute(&input.pattern);
            (RemotePath::new(dir)?, rest)
        }
        (_, true) => {
            return Err(Error::invalid(format!(
                "glob pattern {:?} is absolute but a path was given too: give the pattern \
                 relative to path",
                input.pattern
            )))
        }
        (path, false) => (
            ctx.resolve_dir(path.as_deref()).await?,
            input.pattern.trim_start_matches("./").to_owned(),
        ),
    };
    if pattern.is_empty() {
        return Err(Error::invalid("glob pattern is empty: give e.g. `**/*.rs`"));
    }
    // Checked here first: a bad pattern is the same error on every path and costs no
    // round trip.
    crate::engine::compile_glob(&pattern).map_err(|e| Error::from_engine(ctx.host(), e))?;
    let req = GlobRequest::new(dir.as_str(), pattern);
    let reply = match ctx.runtime.glob(&req).await? {
        Some(reply) => reply,
        None => generic::glob(ctx, &dir, &req).await?,
    };
    let (base, prefix, outside_root) = output_base(ctx, &dir);
    let notes = reply.notes(&prefix);
    Ok(GlobOutput {
        base: base.as_str().to_owned(),
        files: reply
            .files
            .into_iter()
            .map(|f| format!("{prefix}{}", f.path))
            .collect(),
        omitted: reply.omitted,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        outside_root,
    })
}

/// The `glob` tool: see [`GlobTool::DESCRIPTION`](super::Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobTool;

#[async_trait::async_trait]
impl super::Tool for GlobTool {
    const NAME: &'static str = "glob";
    const DESCRIPTION: &'static str = "Find files whose path matches a glob pattern, \
        searching recursively under the workspace (or `path`). `*` matches within one path \
        segment and `**` across directories, e.g. `**/*.rs`, `src/**/mod.rs` or \
        `*.{ts,tsx}`. `.git` is skipped, and inside a git work tree so are the files git \
        ignores. Returns the matching file paths relative to the workspace, newest first \
        (most recently modified first), at most 1000 (with a count of the rest). Relative paths resolve against the \
        workspace. To search file contents, use grep.";
    const EFFECT: super::Effect = super::Effect::ReadOnly;
    type Input = GlobInput;
    type Output = GlobOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: GlobInput,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> Result<GlobOutput> {
        glob(ctx, input).await
    }
}

impl super::ToolResult for GlobOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_patterns_split_at_the_first_wildcard() {
        assert_eq!(
            split_absolute("/a/b/**/*.rs"),
            ("/a/b".into(), "**/*.rs".into())
        );
        assert_eq!(split_absolute("/*.rs"), ("/".into(), "*.rs".into()));
        assert_eq!(split_absolute("/a/b.rs"), ("/a".into(), "b.rs".into()));
    }
}
