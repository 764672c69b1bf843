//! `grep`: lines matching a regular expression in the files under a directory.
//!
//! Decision: the regex is matched here, with the Rust `regex` crate, never by the
//! host's grep, so the syntax and semantics are identical on every backend (GNU grep,
//! busybox grep and BSD grep disagree on `-E`, `\b`, Unicode classes...). The files
//! travel in two round trips whatever their number: one `find` lists them (files of
//! 4 MiB or more are left out, `.git` is skipped, and inside a git work tree so are
//! the files git ignores, as ripgrep does), the optional `glob` filter is
//! applied here, and one `tar` stream brings the contents (at most 64 MiB in total;
//! see the `files` module). One file given as `path` is read directly.
//!
//! Files with a NUL byte in their first 8 KiB or that are not valid UTF-8 are skipped
//! as binary. Lines are matched without their line break (and without a CR before it),
//! so `^` and `$` anchor at line boundaries.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::files::{fetch_files, list_files, ListResult};
use super::glob::{matcher, output_base, IGNORED_NOTE};
use super::text::{display_name, has_nul_prefix, plural, truncate_line};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::runtime::FileKind;

/// Matches returned at most.
pub const GREP_MAX_MATCHES: usize = 500;
/// Files of this size or more are not searched.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Total bytes of file content searched per call.
const MAX_TOTAL_BYTES: usize = 64 << 20;
/// Characters shown of a matching line.
const MAX_LINE_CHARS: usize = 500;

/// Input of [`grep()`].
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepInput {
    /// A regular expression (Rust regex syntax, like ripgrep) matched against each
    /// line, e.g. `fn\s+main` or `TODO|FIXME`.
    pub pattern: String,
    /// The file or directory to search, relative to the workspace or absolute
    /// (default: the workspace root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only search files matching this glob: matched against the file name when it has
    /// no `/` (`*.rs`), else against the path relative to `path` (`src/**/*.ts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
}

/// One matching line.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GrepMatch {
    /// The file, relative to the output's `base`.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// The line (cut to 500 characters).
    pub text: String,
}

/// Result of [`grep()`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GrepOutput {
    /// The directory match paths are relative to: the workspace when the search was
    /// inside it, else the searched directory.
    pub base: String,
    /// Matches by path then line (at most 500).
    pub matches: Vec<GrepMatch>,
    /// Matches left out past the first 500.
    pub omitted: usize,
    /// Files searched.
    pub files_searched: usize,
    /// Files skipped as binary.
    pub binary_skipped: usize,
    /// Set when not every file could be searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip)]
    outside_root: bool,
}

impl GrepOutput {
    /// What a model sees: `path:line:text` lines.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        if self.outside_root {
            lines.push(format!("(paths relative to {})", display_name(&self.base)));
        }
        if self.matches.is_empty() {
            lines.push(format!(
                "No matches ({} searched).",
                plural(self.files_searched, "file", "files")
            ));
        }
        lines.extend(
            self.matches
                .iter()
                .map(|m| format!("{}:{}:{}", display_name(&m.path), m.line, m.text)),
        );
        if self.omitted > 0 {
            lines.push(format!(
                "[... {} more matches not shown; narrow the pattern, path or glob]",
                self.omitted
            ));
        }
        if let Some(note) = &self.note {
            lines.push(format!("[note: {note}]"));
        }
        lines.join("\n")
    }
}

/// A pattern compiled for lines, and in multi-line mode for the whole text, to skip
/// files that cannot match without splitting them into lines.
pub(crate) struct Matcher {
    line: Regex,
    prefilter: Option<Regex>,
}

impl Matcher {
    pub(crate) fn new(pattern: &str) -> Result<Matcher> {
        let line = Regex::new(pattern).map_err(|e| {
            Error::invalid(format!(
                "invalid regular expression {pattern:?} (Rust regex syntax; escape literal \
                 characters like ( [ . with \\): {e}"
            ))
        })?;
        // `\A` and `\z` anchor at the text's ends only in multi-line mode: no prefilter.
        let prefilter = if pattern.contains("\\A") || pattern.contains("\\z") {
            None
        } else {
            RegexBuilder::new(pattern).multi_line(true).build().ok()
        };
        Ok(Matcher { line, prefilter })
    }
}

/// Matches `pattern` against every line of `content` (a file named `path`), adding
/// to `out`. Returns false for a binary file (not searched).
pub(crate) fn search(re: &Matcher, path: &str, content: &[u8], out: &mut Vec<GrepMatch>) -> bool {
    if has_nul_prefix(content) {
        return false;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return false;
    };
    if let Some(pre) = &re.prefilter {
        if !pre.is_match(text) && !text.contains('\r') {
            // No line can match when the whole text does not (a CR before a line
            // break could hide a `$` match, hence the check).
            return true;
        }
    }
    let re = &re.line;
    for (i, line) in super::text::lines(text).into_iter().enumerate() {
        if re.is_match(line) {
            out.push(GrepMatch {
                path: path.to_owned(),
                line: i + 1,
                text: truncate_line(line, MAX_LINE_CHARS).into_owned(),
            });
        }
    }
    true
}

/// Searches the files under `path` (default: the workspace), or one file, for lines
/// matching `pattern`.
pub async fn grep(ctx: &ToolContext, input: GrepInput) -> Result<GrepOutput> {
    let re = Matcher::new(&input.pattern)?;
    let glob = match input.glob.as_deref() {
        None | Some("") => None,
        Some(g) => Some((matcher(g.trim_start_matches("./"))?, g.contains('/'))),
    };
    let dir = ctx.resolve_dir(input.path.as_deref()).await?;
    let mut matches = Vec::new();
    let mut notes = Vec::new();
    let mut searched = 0;
    let mut binary = 0;
    let (base, outside_root) = match list_files(ctx, &dir, Some(MAX_FILE_BYTES)).await? {
        ListResult::File => {
            // One file: searched whatever the glob says, as grep does.
            let (base, _, outside) = match dir.parent() {
                Some(parent) => output_base(ctx, &parent),
                None => output_base(ctx, &dir),
            };
            let meta = ctx.runtime.stat(&dir).await?;
            if meta.kind != FileKind::File {
                return Err(Error::WrongKind {
                    host: ctx.host().to_owned(),
                    path: dir,
                    message: "is not a regular file or directory".into(),
                });
            }
            if meta.len > MAX_TOTAL_BYTES as u64 {
                return Err(Error::invalid(format!(
                    "{}: {dir} is {} bytes, over grep's limit of {MAX_TOTAL_BYTES} bytes: \
                     search it with bash instead, e.g. `grep -n PATTERN {}`",
                    ctx.host(),
                    meta.len,
                    crate::exec::quote_path(&dir)
                )));
            }
            let content = ctx.runtime.read_file(&dir).await?;
            let normalized = dir.normalize();
            let shown = match normalized.as_str().get(base.as_str().len()..) {
                Some(rest) if !outside => rest.trim_start_matches('/').to_owned(),
                _ => dir.file_name().unwrap_or(dir.as_str()).to_owned(),
            };
            searched = 1;
            if !search(&re, &shown, &content, &mut matches) {
                binary = 1;
            }
            (base, outside)
        }
        ListResult::Dir(listing) => {
            let (base, prefix, outside) = output_base(ctx, &dir);
            let names: Vec<String> = listing
                .files
                .into_iter()
                .filter(|f| match &glob {
                    None => true,
                    Some((m, true)) => m.is_match(f.as_str()),
                    Some((m, false)) => m.is_match(f.rsplit('/').next().unwrap_or(f)),
                })
                .collect();
            let fetched = fetch_files(ctx, &dir, &names, MAX_TOTAL_BYTES).await?;
            for (name, content) in &fetched.files {
                searched += 1;
                if !search(&re, &format!("{prefix}{name}"), content, &mut matches) {
                    binary += 1;
                }
            }
            if fetched.cut || listing.cut {
                notes.push(format!(
                    "only {searched} of {} files were searched (the total size limit of 64 MiB \
                     was reached); narrow path or glob",
                    names.len()
                ));
            }
            if listing.non_utf8 > 0 {
                notes.push(format!(
                    "{} files with names that are not UTF-8 were skipped",
                    listing.non_utf8
                ));
            }
            if let Some(w) = listing.warnings {
                notes.push(format!("find reported: {w}"));
            }
            if matches.is_empty() && listing.respects_gitignore {
                notes.push(IGNORED_NOTE.into());
            }
            (base, outside)
        }
    };
    let omitted = matches.len().saturating_sub(GREP_MAX_MATCHES);
    matches.truncate(GREP_MAX_MATCHES);
    Ok(GrepOutput {
        base: base.as_str().to_owned(),
        matches,
        omitted,
        files_searched: searched,
        binary_skipped: binary,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        outside_root,
    })
}

/// The `grep` tool: see [`GrepTool::DESCRIPTION`](super::Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrepTool;

#[async_trait::async_trait]
impl super::Tool for GrepTool {
    const NAME: &'static str = "grep";
    const DESCRIPTION: &'static str = "Search file contents for a regular expression \
        (Rust regex syntax, like ripgrep: `fn\\s+main`, `TODO|FIXME`; escape `(`, `[`, `.` \
        and the like to match them literally), recursively under the workspace or in the \
        given file or directory, optionally only in files matching a glob. Returns \
        `path:line:text` for each matching line, paths relative to the workspace, at most \
        500 matches (with a count of the rest) and 500 characters per line. Skips `.git`, \
        binary files, files of 4 MiB or more and, inside a git work tree, the files git \
        ignores; at most 64 MiB of files are searched per call, with a note when the limit \
        was reached. Relative paths resolve against the workspace. To find files by name, \
        use glob.";
    const EFFECT: super::Effect = super::Effect::ReadOnly;
    type Input = GrepInput;
    type Output = GrepOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: GrepInput,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> Result<GrepOutput> {
        grep(ctx, input).await
    }
}

impl super::ToolResult for GrepOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lines_and_skips_binary() {
        let re = Matcher::new("fo+$").expect("regex");
        let mut out = Vec::new();
        assert!(search(&re, "a.txt", b"foo\nbar\r\nxfoo\r\n", &mut out));
        assert_eq!(
            out.iter()
                .map(|m| (m.line, m.text.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "foo"), (3, "xfoo")]
        );
        assert!(!search(&re, "b", b"foo\0", &mut out));
        assert!(!search(&re, "c", b"foo\xff", &mut out));
        assert_eq!(out.len(), 2);
        // Anchors still match per line after the whole-text prefilter.
        let re = Matcher::new("^bar").expect("regex");
        let mut out = Vec::new();
        assert!(search(&re, "d", b"foo\nbar\n", &mut out));
        assert_eq!(out.len(), 1);
    }
}
