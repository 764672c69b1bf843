//! `grep`: lines matching a regular expression in the files under a directory.
//!
//! Decision: the regex is matched by cmux's engine ([`crate::engine`], the Rust `regex`
//! crate), never by the host's grep, so the syntax and semantics are identical on every
//! backend (GNU grep, busybox grep and BSD grep disagree on `-E`, `\b`, Unicode
//! classes...). Where a backend can run the engine where the files are
//! ([`Runtime::grep`](crate::Runtime::grep): this machine, the host helper), the whole
//! search runs there in one step with no cap on the total size. Elsewhere the generic
//! path lists the files with one `find` and brings their contents in one `tar` stream
//! (at most 64 MiB per call, said in the note), then matches them here with the same
//! engine (see the `generic` module).
//!
//! Walking rules (ripgrep's): `.git` skipped, hidden files searched, symlinks not
//! followed, and inside a git work tree the files git ignores are skipped, unless that
//! leaves no file at all. Files of 4 MiB or more and binary files (a NUL byte in the
//! first 8 KiB, or not UTF-8) are skipped, counted and named in the note. Lines are
//! matched without their line break (and without a CR before it), so `^` and `$`
//! anchor at line boundaries.

use serde::{Deserialize, Serialize};

use super::generic;
use super::glob::output_base;
use super::text::{display_name, plural};
use super::ToolContext;
use crate::engine::{FileFilter, GrepRequest, OutputMode, Searcher, Target};
use crate::error::{Error, Result};

/// Results (matching lines, or files) returned at most.
pub const GREP_MAX_MATCHES: usize = crate::engine::GREP_MAX_RESULTS;

/// Input of [`grep()`].
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepInput {
    /// A regular expression (Rust `regex` syntax, like ripgrep), matched against each
    /// line, e.g. `fn\s+main` or `TODO|FIXME`. Literal text with `fixed_strings`.
    pub pattern: String,
    /// The file or directory to search, relative to the workspace or absolute
    /// (default: the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only files matching this glob: against the file name when it has no `/`
    /// (`*.rs`), else against the path relative to `path` (`src/**/*.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Only files of this type, by ripgrep's type names: `rust`, `py`, `js`, `ts`,
    /// `go`, `c`, `cpp`, `java`, `md`, `json`, `yaml`, `toml`, `sh`, `html`, `css`...
    /// (matched on the file name, like `rg --type`).
    #[serde(
        default,
        rename = "type",
        alias = "file_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_type: Option<String>,
    /// `content` (default): matching lines as `path:line:text`; `files_with_matches`:
    /// only the paths of files with a match; `count`: `path:count` of matching lines
    /// per file.
    #[serde(default)]
    pub output_mode: OutputMode,
    /// Match letters in either case (like `rg -i`; `-i` is accepted too).
    #[serde(default, alias = "-i", alias = "ignore_case")]
    pub case_insensitive: bool,
    /// Search for the pattern as literal text, not a regular expression (like
    /// `rg -F`).
    #[serde(default, alias = "-F", alias = "literal")]
    pub fixed_strings: bool,
    /// Let the pattern span lines: it runs over the whole file and `.` matches line
    /// breaks (like `rg -U --multiline-dotall`); every line a match touches is shown.
    #[serde(default, alias = "-U")]
    pub multiline: bool,
    /// Lines of context to show before each match (content mode; `-B` is accepted
    /// too).
    #[serde(default, alias = "-B", skip_serializing_if = "Option::is_none")]
    pub before_context: Option<usize>,
    /// Lines of context to show after each match (content mode; `-A` is accepted too).
    #[serde(default, alias = "-A", skip_serializing_if = "Option::is_none")]
    pub after_context: Option<usize>,
    /// Lines of context to show before and after each match (content mode; `-C` is
    /// accepted too).
    #[serde(default, alias = "-C", skip_serializing_if = "Option::is_none")]
    pub context: Option<usize>,
}

impl GrepInput {
    /// A search for `pattern` in the workspace with every option at its default.
    pub fn new(pattern: impl Into<String>) -> GrepInput {
        GrepInput {
            pattern: pattern.into(),
            ..GrepInput::default()
        }
    }
}

/// One output line of `content` mode: a matching line or a context line.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GrepMatch {
    /// The file, relative to the output's `base`.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// The line (cut to 500 characters).
    pub text: String,
    /// True for a context line shown around a match.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
}

/// The matching lines of one file, for `count` mode.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GrepCount {
    /// The file, relative to the output's `base`.
    pub path: String,
    /// Its matching lines.
    pub count: usize,
}

/// Result of [`grep()`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GrepOutput {
    /// The directory paths are relative to: the workspace when the search was inside
    /// it, else the searched directory.
    pub base: String,
    /// What the results are.
    pub output_mode: OutputMode,
    /// `content` mode: matching lines (and context lines) by path then line; at most
    /// 500 matching lines.
    pub matches: Vec<GrepMatch>,
    /// `files_with_matches` mode: the files with a match, by path (at most 500).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// `count` mode: matching lines per file, by path (at most 500 files).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<GrepCount>,
    /// Results left out past the cap: matching lines in `content` mode, files
    /// otherwise.
    pub omitted: usize,
    /// Files searched.
    pub files_searched: usize,
    /// Files skipped as binary.
    pub binary_skipped: usize,
    /// Files skipped for their size (4 MiB or more).
    pub too_large_skipped: usize,
    /// Set when not every file could be searched, or to say why nothing was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip)]
    outside_root: bool,
    #[serde(skip)]
    separators: bool,
}

impl GrepOutput {
    /// What a model sees: `path:line:text` lines (`path-line-text` for context, `--`
    /// between groups), paths, or `path:count` lines, then the notes.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        if self.outside_root {
            lines.push(format!("(paths relative to {})", display_name(&self.base)));
        }
        let empty = self.matches.is_empty() && self.files.is_empty() && self.counts.is_empty();
        if empty {
            lines.push(format!(
                "No matches ({} searched).",
                plural(self.files_searched, "file", "files")
            ));
        }
        let mut previous: Option<&GrepMatch> = None;
        for m in &self.matches {
            if let Some(p) = previous {
                if self.separators && (p.path != m.path || p.line + 1 != m.line) {
                    lines.push("--".into());
                }
            }
            let sep = if m.context { '-' } else { ':' };
            lines.push(format!(
                "{}{sep}{}{sep}{}",
                display_name(&m.path),
                m.line,
                m.text
            ));
            previous = Some(m);
        }
        lines.extend(self.files.iter().map(|f| display_name(f)));
        lines.extend(
            self.counts
                .iter()
                .map(|c| format!("{}:{}", display_name(&c.path), c.count)),
        );
        if self.omitted > 0 {
            let what = match self.output_mode {
                OutputMode::Content => "matches",
                OutputMode::FilesWithMatches | OutputMode::Count => "files",
            };
            lines.push(format!(
                "[... {} more {what} not shown; narrow the pattern, path or glob]",
                self.omitted
            ));
        }
        if let Some(note) = &self.note {
            lines.push(format!("[note: {note}]"));
        }
        lines.join("\n")
    }
}

/// The engine's request for `input`, searching `path` (absolute).
fn request(input: &GrepInput, path: &str) -> GrepRequest {
    let mut req = GrepRequest::new(path, input.pattern.clone());
    req.glob = input.glob.clone().filter(|g| !g.is_empty());
    req.file_type = input.file_type.clone().filter(|t| !t.is_empty());
    req.case_insensitive = input.case_insensitive;
    req.fixed_strings = input.fixed_strings;
    req.multiline = input.multiline;
    req.before = input.before_context;
    req.after = input.after_context;
    req.context = input.context;
    req.output_mode = input.output_mode;
    req
}

/// Searches the files under `path` (default: the workspace), or one file, for lines
/// matching `pattern`.
pub async fn grep(ctx: &ToolContext, input: GrepInput) -> Result<GrepOutput> {
    let dir = ctx.resolve_dir(input.path.as_deref()).await?;
    let req = request(&input, dir.as_str());
    // Checked here first, so a bad pattern is the same error on every path and costs
    // no round trip.
    let engine_error = |e| Error::from_engine(ctx.host(), e);
    let searcher = Searcher::new(&req).map_err(engine_error)?;
    let filter =
        FileFilter::new(req.glob.as_deref(), req.file_type.as_deref()).map_err(engine_error)?;
    let reply = match ctx.runtime.grep(&req).await? {
        Some(reply) => reply,
        None => generic::grep(ctx, &dir, &req, &searcher, &filter).await?,
    };
    let (base, prefix, outside_root) = match reply.target {
        Target::Dir => output_base(ctx, &dir),
        // One file: shown relative to the workspace when inside it, else by name.
        Target::File => {
            let parent = dir.parent().unwrap_or_else(|| dir.clone());
            let (base, prefix, outside) = output_base(ctx, &parent);
            let name = dir.file_name().unwrap_or(dir.as_str());
            (base, format!("{prefix}{name}"), outside)
        }
    };
    let path_of = |rel: &str| match reply.target {
        Target::Dir => format!("{prefix}{rel}"),
        Target::File => prefix.clone(),
    };
    let mut out = GrepOutput {
        base: base.as_str().to_owned(),
        output_mode: reply.output_mode,
        matches: Vec::new(),
        files: Vec::new(),
        counts: Vec::new(),
        omitted: reply.omitted,
        files_searched: reply.files_searched,
        binary_skipped: reply.binary.count,
        too_large_skipped: reply.too_large.count,
        note: None,
        outside_root,
        separators: req.before_context() + req.after_context() > 0,
    };
    for file in &reply.files {
        let path = path_of(&file.path);
        match reply.output_mode {
            OutputMode::Content => out.matches.extend(file.lines.iter().map(|l| GrepMatch {
                path: path.clone(),
                line: l.number,
                text: l.text.clone(),
                context: l.context,
            })),
            OutputMode::FilesWithMatches => out.files.push(path),
            OutputMode::Count => out.counts.push(GrepCount {
                path,
                count: file.count,
            }),
        }
    }
    let notes = match reply.target {
        Target::Dir => reply.notes(&prefix),
        Target::File => reply.notes(""),
    };
    out.note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(out)
}

/// The `grep` tool: see [`GrepTool::DESCRIPTION`](super::Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrepTool;

#[async_trait::async_trait]
impl super::Tool for GrepTool {
    const NAME: &'static str = "grep";
    const DESCRIPTION: &'static str = "Search file contents for a regular expression \
        (Rust regex syntax, like ripgrep: `fn\\s+main`, `TODO|FIXME`; escape `(`, `[`, `.` \
        and the like, or set fixed_strings, to match them literally), recursively under the \
        workspace or in the given file or directory. Skips `.git`, files git ignores inside \
        a git work tree, binary files and files of 4 MiB or more (counted and named in a \
        note). Options: `glob` or `type` (ripgrep file types: rust, py, ts, go, md...) to \
        filter files; case_insensitive (-i); fixed_strings (-F); multiline (-U: the \
        pattern may span lines); before_context/after_context/context (-B/-A/-C). \
        output_mode: `content` (default: `path:line:text` per matching line, context lines \
        as `path-line-text`), `files_with_matches` (paths only) or `count` (`path:count`). \
        At most 500 results with a count of the rest, 500 characters per line. Relative \
        paths resolve against the workspace. To find files by name, use glob.";
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
