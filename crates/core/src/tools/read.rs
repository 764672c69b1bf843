//! `read_file`: a text file as numbered lines, a window at a time.

use serde::{Deserialize, Serialize};

use super::text::{has_nul_prefix, lines, numbered, truncate_line};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::runtime::FileKind;

/// Files larger than this are refused (read a range with `bash` instead).
pub const READ_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Lines shown when the input gives no limit.
const DEFAULT_LIMIT: usize = 2000;
/// Characters shown of one line.
const MAX_LINE_CHARS: usize = 2000;

/// Input of [`read_file`].
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ReadFileInput {
    /// The file, relative to the workspace or absolute (`file_path` is accepted too,
    /// as models trained on other harnesses send it).
    #[serde(alias = "file_path")]
    pub path: String,
    /// 1-based number of the first line to show (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// How many lines to show (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Result of [`read_file`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReadFileOutput {
    /// The resolved path.
    pub path: String,
    /// Lines in the whole file.
    pub total_lines: usize,
    /// Number of the first line shown (1-based; 0 when none).
    pub first_line: usize,
    /// Number of the last line shown (0 when none).
    pub last_line: usize,
    /// The shown lines, numbered as `cat -n` does (`     1\ttext`), one per line.
    pub content: String,
    /// Lines cut to 2000 characters.
    pub truncated_lines: usize,
}

impl ReadFileOutput {
    /// What a model sees: the numbered lines and where to continue.
    pub fn to_text(&self) -> String {
        if self.total_lines == 0 {
            return format!("(file {} is empty)", super::text::display_name(&self.path));
        }
        let mut out = self.content.clone();
        if self.last_line < self.total_lines {
            out.push_str(&format!(
                "\n[... showing lines {}-{} of {}; pass offset={} to read more]",
                self.first_line,
                self.last_line,
                self.total_lines,
                self.last_line + 1
            ));
        }
        out
    }
}

/// Reads a text file as numbered lines from `offset` (1-based), at most `limit` lines.
/// Refuses directories, binary files and files over 10 MiB, saying what to use instead.
pub async fn read_file(ctx: &ToolContext, input: ReadFileInput) -> Result<ReadFileOutput> {
    let path = ctx.resolve(&input.path).await?;
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        return Err(Error::invalid(
            "limit is 0: give the number of lines to read (default 2000)",
        ));
    }
    let offset = input.offset.unwrap_or(1).max(1);
    let meta = ctx.runtime.stat(&path).await?;
    match meta.kind {
        FileKind::Dir => {
            return Err(Error::WrongKind {
                host: ctx.host().to_owned(),
                path,
                message: "is a directory, not a file: use list_dir to see its entries".into(),
            })
        }
        FileKind::File => {}
        _ => {
            return Err(Error::WrongKind {
                host: ctx.host().to_owned(),
                path,
                message: "is not a regular file (a socket, fifo or device): read_file reads \
                          regular files only"
                    .into(),
            })
        }
    }
    if meta.len > READ_MAX_FILE_BYTES {
        let q = crate::exec::quote_path(&path);
        return Err(Error::invalid(format!(
            "{}: {path} is {} bytes, over read_file's limit of {READ_MAX_FILE_BYTES} bytes (10 MiB): \
             read a range with bash instead, e.g. `sed -n '1,200p' {q}` for lines or `head -c 65536 {q}` \
             for bytes, or search it with grep",
            ctx.host(),
            meta.len
        )));
    }
    let bytes = ctx.runtime.read_file(&path).await?;
    let binary = || {
        Error::invalid(format!(
            "{}: {path} is a binary file ({} bytes); read_file shows text only: inspect it \
             with bash, e.g. `file {q}` or `od -c {q} | head`",
            ctx.host(),
            bytes.len(),
            q = crate::exec::quote_path(&path)
        ))
    };
    if has_nul_prefix(&bytes) {
        return Err(binary());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| binary())?;
    let all = lines(text);
    let total = all.len();
    let mut out = ReadFileOutput {
        path: path.as_str().to_owned(),
        total_lines: total,
        first_line: 0,
        last_line: 0,
        content: String::new(),
        truncated_lines: 0,
    };
    if total == 0 {
        return Ok(out);
    }
    if offset > total {
        return Err(Error::invalid(format!(
            "offset {offset} is past the end of {path}, which has {total} lines: give an \
             offset between 1 and {total}"
        )));
    }
    let shown = &all[offset - 1..total.min((offset - 1).saturating_add(limit))];
    let mut content = String::new();
    for (i, line) in shown.iter().enumerate() {
        let line = truncate_line(line, MAX_LINE_CHARS);
        if line.len() != shown[i].len() {
            out.truncated_lines += 1;
        }
        if i > 0 {
            content.push('\n');
        }
        content.push_str(&numbered(offset + i, &line));
    }
    out.first_line = offset;
    out.last_line = offset + shown.len() - 1;
    out.content = content;
    Ok(out)
}
