//! grep's request and reply: what travels between cmux-core and whatever runs the
//! search (the local machine, the host helper, or core's generic path), as JSON.

use serde::{Deserialize, Serialize};

use crate::notes::{self, IGNORED_NOTE};

/// Results (matching lines, or files) returned at most by default.
pub const GREP_MAX_RESULTS: usize = 500;
/// Files of this many bytes or more are not searched by default (and are reported).
pub const GREP_MAX_FILE_BYTES: u64 = 4 << 20;
/// The largest single file grep searches when it is given as the path.
pub const GREP_MAX_SINGLE_FILE_BYTES: u64 = 64 << 20;

/// What grep returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
// Inline in schemas: models read a plain enum more reliably than a `$ref`.
#[cfg_attr(feature = "schemars", schemars(inline))]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Matching lines as `path:line:text` (with context lines if asked).
    #[default]
    Content,
    /// The paths of the files that have a match, one per line.
    FilesWithMatches,
    /// The number of matching lines per file, as `path:count`.
    Count,
}

/// A search: a pattern, where to look, and how to report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepRequest {
    /// Absolute POSIX path of the directory (searched recursively) or file to search.
    pub path: String,
    /// A regular expression (Rust `regex` syntax), or the literal text with
    /// `fixed_strings`.
    pub pattern: String,
    /// Only files matching this glob: against the file name when it has no `/`
    /// (`*.rs`), else against the path relative to `path` (`src/**/*.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Only files of this type, as ripgrep names types (`rust`, `py`, `js`...; see
    /// [`crate::filter`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
    /// Letters match either case.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
    /// The pattern is literal text, not a regular expression.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fixed_strings: bool,
    /// The pattern runs over the whole text: it may span lines and `.` matches line
    /// breaks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub multiline: bool,
    /// Lines of context shown before each match (overrides `context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<usize>,
    /// Lines of context shown after each match (overrides `context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
    /// Lines of context shown before and after each match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<usize>,
    /// What to return.
    #[serde(default)]
    pub output_mode: OutputMode,
    /// Results returned at most: matching lines in `content` mode, files otherwise.
    #[serde(default = "default_max_results")]
    pub max_results: usize,
    /// Files of this many bytes or more are not searched (and are reported).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_max_results() -> usize {
    GREP_MAX_RESULTS
}

fn default_max_file_bytes() -> u64 {
    GREP_MAX_FILE_BYTES
}

impl GrepRequest {
    /// A search for `pattern` under `path` with every option at its default.
    pub fn new(path: impl Into<String>, pattern: impl Into<String>) -> GrepRequest {
        GrepRequest {
            path: path.into(),
            pattern: pattern.into(),
            glob: None,
            file_type: None,
            case_insensitive: false,
            fixed_strings: false,
            multiline: false,
            before: None,
            after: None,
            context: None,
            output_mode: OutputMode::Content,
            max_results: GREP_MAX_RESULTS,
            max_file_bytes: GREP_MAX_FILE_BYTES,
        }
    }

    /// Lines of context before each match.
    pub fn before_context(&self) -> usize {
        self.before.or(self.context).unwrap_or(0)
    }

    /// Lines of context after each match.
    pub fn after_context(&self) -> usize {
        self.after.or(self.context).unwrap_or(0)
    }
}

/// Whether the searched path was a directory or one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A directory, searched recursively: result paths are relative to it.
    Dir,
    /// One file: the result path is its file name.
    File,
}

/// One line of output: a matching line or a context line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepLine {
    /// 1-based line number.
    pub number: usize,
    /// The line without its line break (cut to 500 characters, with a marker).
    pub text: String,
    /// True for a context line (shown around a match), false for a matching line.
    #[serde(default, skip_serializing_if = "is_false")]
    pub context: bool,
}

/// The results in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepFile {
    /// The file, relative to the searched directory (its name for a one-file search).
    pub path: String,
    /// Matching lines in the file (1 in `files_with_matches` mode, where the search of
    /// a file stops at its first match).
    pub count: usize,
    /// `content` mode: the matching lines shown and their context, in line order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<GrepLine>,
}

/// Files left out of a search for one reason: how many, and the first few names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipList {
    /// How many files.
    pub count: usize,
    /// The first names in path order (at most [`SkipList::EXAMPLES`]), relative to the
    /// searched directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl SkipList {
    /// Names kept as examples.
    pub const EXAMPLES: usize = 5;

    /// The list of `names` (any order).
    pub fn from_names(mut names: Vec<String>) -> SkipList {
        names.sort();
        let count = names.len();
        names.truncate(Self::EXAMPLES);
        SkipList {
            count,
            examples: names,
        }
    }
}

/// What a search found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepReply {
    /// A directory or one file was searched.
    pub target: Target,
    /// The mode of the results.
    pub output_mode: OutputMode,
    /// The files with matches, by path, within the result cap.
    pub files: Vec<GrepFile>,
    /// Results left out past the cap: matching lines in `content` mode, files
    /// otherwise.
    pub omitted: usize,
    /// Files whose content was examined (binary ones included).
    pub files_searched: usize,
    /// Files skipped as binary (a NUL in the first 8 KiB, or not UTF-8).
    #[serde(default)]
    pub binary: SkipList,
    /// Files skipped for their size (`max_file_bytes` or more).
    #[serde(default)]
    pub too_large: SkipList,
    /// Files and directories that could not be read.
    #[serde(default)]
    pub unreadable: SkipList,
    /// Files skipped because their names are not UTF-8.
    #[serde(default)]
    pub non_utf8_names: usize,
    /// True when the search was in a git work tree and skipped what git ignores.
    #[serde(default)]
    pub respects_gitignore: bool,
    /// The size limit that `too_large` refers to.
    pub max_file_bytes: u64,
    /// Notes added by whatever ran the search (a transfer cap, a listing's warnings),
    /// shown before the engine's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_notes: Vec<String>,
}

impl GrepReply {
    /// Matching lines (content mode) or files (other modes) returned.
    pub fn results(&self) -> usize {
        match self.output_mode {
            OutputMode::Content => self.files.iter().map(|f| f.matching_lines()).sum(),
            OutputMode::FilesWithMatches | OutputMode::Count => self.files.len(),
        }
    }

    /// The notes for a person or a model: what was not searched and why. Names are
    /// shown after `prefix` (the searched directory relative to where the reader
    /// stands, with a trailing `/`, or empty).
    pub fn notes(&self, prefix: &str) -> Vec<String> {
        let mut out = self.extra_notes.clone();
        if self.too_large.count > 0 {
            out.push(notes::too_large(
                &self.too_large,
                self.max_file_bytes,
                prefix,
            ));
        }
        if self.binary.count > 0 {
            out.push(notes::binary(&self.binary, prefix));
        }
        if self.unreadable.count > 0 {
            out.push(notes::unreadable(&self.unreadable, prefix));
        }
        if self.non_utf8_names > 0 {
            out.push(notes::non_utf8_names(self.non_utf8_names));
        }
        if self.files.is_empty() && self.respects_gitignore {
            out.push(IGNORED_NOTE.into());
        }
        out
    }
}

impl GrepFile {
    /// Matching (not context) lines shown for this file.
    pub fn matching_lines(&self) -> usize {
        self.lines.iter().filter(|l| !l.context).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_defaults_from_json() {
        let req: GrepRequest =
            serde_json::from_str(r#"{"path": "/w", "pattern": "x"}"#).expect("json");
        assert_eq!(req, GrepRequest::new("/w", "x"));
        let text = serde_json::to_string(&req).expect("json");
        assert_eq!(
            text,
            r#"{"path":"/w","pattern":"x","output_mode":"content","max_results":500,"max_file_bytes":4194304}"#
        );
        let mut req = GrepRequest::new("/w", "x");
        req.context = Some(2);
        req.after = Some(5);
        assert_eq!((req.before_context(), req.after_context()), (2, 5));
    }

    #[test]
    fn notes_name_skipped_files() {
        let mut reply = GrepReply {
            target: Target::Dir,
            output_mode: OutputMode::Content,
            files: Vec::new(),
            omitted: 0,
            files_searched: 3,
            binary: SkipList::from_names(vec!["b.png".into(), "a\nb.bin".into()]),
            too_large: SkipList::from_names(
                (0..7).map(|i| format!("big{i}.log")).collect::<Vec<_>>(),
            ),
            unreadable: SkipList::default(),
            non_utf8_names: 1,
            respects_gitignore: true,
            max_file_bytes: 4 << 20,
            extra_notes: Vec::new(),
        };
        assert_eq!(
            reply.notes("src/"),
            vec![
                "7 files of 4 MiB or more were not searched: src/big0.log, src/big1.log, \
                 src/big2.log, src/big3.log, src/big4.log and 2 more; search them with bash, \
                 e.g. `grep -n PATTERN FILE`",
                "2 files skipped as binary (a NUL byte or not UTF-8): \"src/a\\nb.bin\", src/b.png",
                "1 file with names that are not UTF-8 was skipped",
                IGNORED_NOTE,
            ]
        );
        reply.too_large = SkipList::from_names(vec!["x".into()]);
        reply.max_file_bytes = 1000;
        assert!(reply.notes("")[0]
            .starts_with("1 file of 1000 bytes or more was not searched: x; search it"));
    }
}
