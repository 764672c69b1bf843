//! The arguments of each MCP tool: what a model sees as the input schema (field docs
//! become the schema's descriptions) and what `tools/call` arguments are parsed into.
//!
//! Unknown fields are refused (`additionalProperties: false`) so a model that guesses a
//! name (`file_path`, `timeout`) is told the right one instead of being silently
//! ignored. Each struct converts field by field into the core tool's input, so a change
//! of the core input fails to compile here rather than drifting.

use cmux_core::tools::{
    BashInput, EditFileInput, GlobInput, GrepInput, ListDirInput, OutputMode, ReadFileInput,
    WriteFileInput,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// `bash` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BashArgs {
    /// The shell command to run with `bash -c`, e.g. `cargo test 2>&1 | tail -50`.
    /// Runs non-interactively: stdin is empty and editors/pagers are disabled.
    pub command: String,
    /// Seconds before the command and every process it started are killed (default
    /// 120). Raise it for long builds or test suites.
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Working directory, relative to the workspace or absolute (default: the
    /// workspace root). Each call starts fresh: `cd` in one call does not carry over.
    #[serde(default)]
    pub cwd: Option<String>,
}

impl From<BashArgs> for BashInput {
    fn from(a: BashArgs) -> Self {
        BashInput {
            command: a.command,
            timeout_secs: a.timeout_secs,
            cwd: a.cwd,
        }
    }
}

/// `read_file` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// The file to read, relative to the workspace or absolute.
    pub path: String,
    /// 1-based number of the first line to show (default 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub offset: Option<usize>,
    /// How many lines to show (default 2000).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<usize>,
}

impl From<ReadFileArgs> for ReadFileInput {
    fn from(a: ReadFileArgs) -> Self {
        ReadFileInput {
            path: a.path,
            offset: a.offset,
            limit: a.limit,
        }
    }
}

/// `write_file` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// The file to create or replace, relative to the workspace or absolute. Missing
    /// parent directories are created.
    pub path: String,
    /// The complete new content of the file.
    pub content: String,
}

impl From<WriteFileArgs> for WriteFileInput {
    fn from(a: WriteFileArgs) -> Self {
        WriteFileInput {
            path: a.path,
            content: a.content,
        }
    }
}

/// `edit_file` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditFileArgs {
    /// The file to edit, relative to the workspace or absolute.
    pub path: String,
    /// The exact text to replace, including whitespace and indentation. It must occur
    /// exactly once unless `replace_all` is true: include surrounding lines to make it
    /// unique.
    pub old_string: String,
    /// The text to put in its place (may be empty to delete).
    pub new_string: String,
    /// Replace every occurrence of `old_string` instead of requiring exactly one
    /// (default false).
    #[serde(default)]
    pub replace_all: Option<bool>,
}

impl From<EditFileArgs> for EditFileInput {
    fn from(a: EditFileArgs) -> Self {
        EditFileInput {
            path: a.path,
            old_string: a.old_string,
            new_string: a.new_string,
            replace_all: a.replace_all.unwrap_or(false),
        }
    }
}

/// `list_dir` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDirArgs {
    /// The directory to list, relative to the workspace or absolute (default: the
    /// workspace root).
    #[serde(default)]
    pub path: Option<String>,
}

impl From<ListDirArgs> for ListDirInput {
    fn from(a: ListDirArgs) -> Self {
        ListDirInput { path: a.path }
    }
}

/// `glob` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobArgs {
    /// A glob pattern matched against paths relative to the search directory, e.g.
    /// `**/*.rs` or `src/**/mod.rs`.
    pub pattern: String,
    /// The directory to search, relative to the workspace or absolute (default: the
    /// workspace root).
    #[serde(default)]
    pub path: Option<String>,
}

impl From<GlobArgs> for GlobInput {
    fn from(a: GlobArgs) -> Self {
        GlobInput {
            pattern: a.pattern,
            path: a.path,
        }
    }
}

/// `grep` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepArgs {
    /// A regular expression (Rust regex syntax, like ripgrep) matched against each
    /// line, e.g. `fn\s+main` or `TODO|FIXME`.
    pub pattern: String,
    /// The file or directory to search, relative to the workspace or absolute
    /// (default: the workspace root).
    #[serde(default)]
    pub path: Option<String>,
    /// Only search files matching this glob: matched against the file name when it has
    /// no `/` (`*.rs`), else against the path relative to `path` (`src/**/*.ts`).
    #[serde(default)]
    pub glob: Option<String>,
    /// Only search files of this type, by ripgrep's type names: `rust`, `py`, `js`,
    /// `ts`, `go`, `c`, `cpp`, `java`, `md`, `json`, `yaml`, `toml`, `sh`, `html`,
    /// `css`...
    #[serde(default, rename = "type")]
    pub file_type: Option<String>,
    /// `content` (default): matching lines as `path:line:text`; `files_with_matches`:
    /// only the paths of files with a match; `count`: matching lines per file.
    #[serde(default)]
    pub output_mode: OutputMode,
    /// Match letters in either case (`-i` is accepted too).
    #[serde(default, alias = "-i")]
    pub case_insensitive: Option<bool>,
    /// Search for the pattern as literal text, not a regular expression.
    #[serde(default)]
    pub fixed_strings: Option<bool>,
    /// Let the pattern span lines (`.` matches line breaks too); every line a match
    /// touches is shown.
    #[serde(default)]
    pub multiline: Option<bool>,
    /// Lines of context to show before each match (`-B` is accepted too).
    #[serde(default, alias = "-B")]
    pub before_context: Option<usize>,
    /// Lines of context to show after each match (`-A` is accepted too).
    #[serde(default, alias = "-A")]
    pub after_context: Option<usize>,
    /// Lines of context to show before and after each match (`-C` is accepted too).
    #[serde(default, alias = "-C")]
    pub context: Option<usize>,
}

impl From<GrepArgs> for GrepInput {
    fn from(a: GrepArgs) -> Self {
        GrepInput {
            pattern: a.pattern,
            path: a.path,
            glob: a.glob,
            file_type: a.file_type,
            output_mode: a.output_mode,
            case_insensitive: a.case_insensitive.unwrap_or(false),
            fixed_strings: a.fixed_strings.unwrap_or(false),
            multiline: a.multiline.unwrap_or(false),
            before_context: a.before_context,
            after_context: a.after_context,
            context: a.context,
        }
    }
}
