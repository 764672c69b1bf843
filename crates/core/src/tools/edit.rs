//! `edit_file`: replaces an exact string in a file, keeping its line endings.
//!
//! One read and one write (no stat, no extra round trip): every check happens on the
//! content in memory, and nothing is written when a check fails.

use serde::{Deserialize, Serialize};

use super::text::{display_name, plural, LineEnding};
use super::ToolContext;
use crate::error::{Error, Result};

/// Input of [`edit_file`].
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditFileInput {
    /// The file to edit, relative to the workspace or absolute (`file_path` is
    /// accepted too).
    #[serde(alias = "file_path")]
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
    pub replace_all: bool,
}

/// Result of [`edit_file`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EditFileOutput {
    /// The resolved path.
    pub path: String,
    /// How many occurrences were replaced.
    pub replacements: usize,
    /// 1-based line of the first replacement in the new file.
    pub first_line: usize,
    /// Size of the new file in bytes.
    pub bytes_written: u64,
}

impl EditFileOutput {
    /// What a model sees.
    pub fn to_text(&self) -> String {
        format!(
            "Replaced {} in {} (first at line {})",
            plural(self.replacements, "occurrence", "occurrences"),
            display_name(&self.path),
            self.first_line
        )
    }
}

/// Why an edit cannot be applied to a content (the caller adds the path).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EditFailure {
    EmptyOld,
    Identical,
    Absent,
    NotUnique(usize),
}

/// The edited content, the number of replacements and the 1-based line of the first.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Edited {
    pub(crate) content: String,
    pub(crate) replacements: usize,
    pub(crate) first_line: usize,
}

/// Applies the edit to `content`. When the file uses CRLF line endings, line breaks in
/// `old`/`new` are matched and written as CRLF (models usually send LF); the strings
/// are also tried exactly as given, for mixed files.
pub(crate) fn apply_edit(
    content: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> std::result::Result<Edited, EditFailure> {
    if old.is_empty() {
        return Err(EditFailure::EmptyOld);
    }
    if old == new {
        return Err(EditFailure::Identical);
    }
    let ending = LineEnding::detect(content);
    let mut candidates = vec![(ending.apply(old), ending.apply(new))];
    if candidates[0].0 != old {
        candidates.push((old.to_owned(), new.to_owned()));
    }
    for (old, new) in candidates {
        let count = content.matches(old.as_str()).count();
        if count == 0 {
            continue;
        }
        if count > 1 && !replace_all {
            return Err(EditFailure::NotUnique(count));
        }
        let first = content.find(old.as_str()).unwrap_or(0);
        let first_line = content[..first].matches('\n').count() + 1;
        let content = if replace_all {
            content.replace(old.as_str(), &new)
        } else {
            content.replacen(old.as_str(), &new, 1)
        };
        return Ok(Edited {
            content,
            replacements: count,
            first_line,
        });
    }
    Err(EditFailure::Absent)
}

/// Replaces `old_string` with `new_string` in the file at `path`: exactly one
/// occurrence, or all with `replace_all`. Keeps CRLF line endings. Writes atomically;
/// writes nothing when the edit cannot be applied.
pub async fn edit_file(ctx: &ToolContext, input: EditFileInput) -> Result<EditFileOutput> {
    let path = ctx.resolve(&input.path).await?;
    if input.old_string.is_empty() {
        return Err(Error::invalid(format!(
            "old_string is empty: give the exact text to replace in {path}; to create or \
             overwrite a whole file use write_file"
        )));
    }
    if input.old_string == input.new_string {
        return Err(Error::invalid(format!(
            "old_string and new_string are identical: nothing would change in {path}"
        )));
    }
    let bytes = match ctx.runtime.read_file(&path).await {
        Ok(b) => b,
        Err(Error::NotFound { host, path }) => {
            return Err(Error::invalid(format!(
                "{host}: {path}: no such file: check the path, or create the file with write_file"
            )))
        }
        Err(e) => return Err(e),
    };
    let content = std::str::from_utf8(&bytes).map_err(|_| {
        Error::invalid(format!(
            "{}: {path} is not valid UTF-8 text (binary?): edit_file edits text files only",
            ctx.host()
        ))
    })?;
    let edited = apply_edit(
        content,
        &input.old_string,
        &input.new_string,
        input.replace_all,
    )
    .map_err(|failure| match failure {
        EditFailure::EmptyOld | EditFailure::Identical => {
            Error::invalid(format!("{path}: nothing to replace"))
        }
        EditFailure::Absent => Error::invalid(format!(
            "old_string was not found in {path}: it must match the file exactly, including \
             whitespace, indentation and line endings; read the file again with read_file and \
             copy the text exactly (without the line-number prefixes)"
        )),
        EditFailure::NotUnique(n) => Error::invalid(format!(
            "old_string occurs {n} times in {path}: include more surrounding lines in old_string \
             so it matches exactly one place, or set replace_all to true to replace all {n}"
        )),
    })?;
    ctx.runtime
        .write_file(&path, edited.content.as_bytes())
        .await?;
    Ok(EditFileOutput {
        path: path.as_str().to_owned(),
        replacements: edited.replacements,
        first_line: edited.first_line,
        bytes_written: edited.content.len() as u64,
    })
}

/// The `edit_file` tool: see [`EditFileTool::DESCRIPTION`](super::Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct EditFileTool;

#[async_trait::async_trait]
impl super::Tool for EditFileTool {
    const NAME: &'static str = "edit_file";
    const DESCRIPTION: &'static str = "Replace an exact piece of text in a file. \
        `old_string` must match the file exactly, whitespace and indentation included, and \
        occur exactly once (include surrounding lines to make it unique), unless \
        `replace_all` is true. When it does not match, nothing is written: read the file \
        again and retry with its exact text. Line endings follow the file (a CRLF file \
        stays CRLF). The file is rewritten atomically and keeps its permissions. Relative \
        paths resolve against the workspace. To create a file or replace all of it, use \
        write_file.";
    // A second run could apply a replace_all twice, or report a confusing mismatch.
    const EFFECT: super::Effect = super::Effect::NotIdempotent {
        if_interrupted: "the edit may or may not have been applied: read the file before \
                         retrying",
    };
    type Input = EditFileInput;
    type Output = EditFileOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: EditFileInput,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> Result<EditFileOutput> {
        edit_file(ctx, input).await
    }
}

impl super::ToolResult for EditFileOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_one_or_all() {
        let e = apply_edit("a\nb\nc\n", "b", "B", false).expect("edit");
        assert_eq!(e.content, "a\nB\nc\n");
        assert_eq!((e.replacements, e.first_line), (1, 2));
        assert_eq!(
            apply_edit("x x x", "x", "y", false),
            Err(EditFailure::NotUnique(3))
        );
        let e = apply_edit("x x x", "x", "y", true).expect("edit");
        assert_eq!((e.content.as_str(), e.replacements), ("y y y", 3));
        assert_eq!(apply_edit("abc", "z", "y", false), Err(EditFailure::Absent));
        assert_eq!(
            apply_edit("abc", "", "y", false),
            Err(EditFailure::EmptyOld)
        );
        assert_eq!(
            apply_edit("abc", "a", "a", false),
            Err(EditFailure::Identical)
        );
    }

    #[test]
    fn crlf_files_keep_crlf() {
        let e = apply_edit("one\r\ntwo\r\nthree\r\n", "one\ntwo\n", "1\n2\n", false).expect("edit");
        assert_eq!(e.content, "1\r\n2\r\nthree\r\n");
        // Strings already in CRLF are not doubled.
        let e = apply_edit("one\r\ntwo\r\n", "one\r\n", "uno\r\n", false).expect("edit");
        assert_eq!(e.content, "uno\r\ntwo\r\n");
        // A mostly-LF file with one CRLF line: the exact string still matches.
        let e = apply_edit("a\nb\r\nc\nd\n", "b\r\n", "B\r\n", false).expect("edit");
        assert_eq!(e.content, "a\nB\r\nc\nd\n");
        // LF files are untouched.
        let e = apply_edit("a\nb\n", "a\n", "x\ny\n", false).expect("edit");
        assert_eq!(e.content, "x\ny\nb\n");
    }
}
