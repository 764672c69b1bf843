//! `read_file`: a text file as numbered lines, a window at a time; an image as an
//! image.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use tokio_util::sync::CancellationToken;

use super::image::{has_image_extension, image_type};
use super::text::{display_name, has_nul_prefix, lines, numbered, truncate_line};
use super::tool::{Content, Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::runtime::{FileKind, SmallFile};

/// Files larger than this are refused (read a range with `bash` instead).
pub const READ_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Images larger than this are refused: 3.75 MiB is 5 MiB once base64-encoded, the
/// most model APIs accept for one image.
pub const READ_MAX_IMAGE_BYTES: u64 = 3 * 1024 * 1024 + 768 * 1024;
/// Lines shown when the input gives no limit.
const DEFAULT_LIMIT: usize = 2000;
/// Characters shown of one line.
const MAX_LINE_CHARS: usize = 2000;

/// The `read_file` tool: see [`ReadFileTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadFileTool;

#[async_trait]
impl Tool for ReadFileTool {
    const NAME: &'static str = "read_file";
    const DESCRIPTION: &'static str = "Read a file. A text file comes back as numbered \
        lines (like `cat -n`), at most 2000 lines per call: pass `offset` (the 1-based \
        first line) and `limit` to read further; lines over 2000 characters are cut with a \
        note. An image (PNG, JPEG, GIF or WebP, recognised by its content, up to 3.75 MiB) \
        comes back as an image you can look at, e.g. a screenshot; `offset` and `limit` do \
        not apply to it. Files over 10 MiB, other binary files and directories are refused \
        with what to use instead (bash with `sed -n` or `head -c` for a range, grep to \
        search, list_dir for a directory). Relative paths resolve against the workspace; \
        absolute paths and `~` work too.";
    const EFFECT: Effect = Effect::ReadOnly;
    type Input = ReadFileInput;
    type Output = ReadFileOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: ReadFileInput,
        _cancel: CancellationToken,
    ) -> Result<ReadFileOutput> {
        read_file(ctx, input).await
    }
}

/// Input of [`read_file`].
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileInput {
    /// The file to read, relative to the workspace or absolute (`file_path` is
    /// accepted too).
    #[serde(alias = "file_path")]
    pub path: String,
    /// 1-based number of the first line to show (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub offset: Option<usize>,
    /// How many lines to show (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit: Option<usize>,
}

/// Result of [`read_file`]: a window of a text file, or an image. Serializes with a
/// `kind` field, `text` or `image`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadFileOutput {
    /// A text file's lines.
    Text(ReadText),
    /// An image.
    Image(ReadImage),
}

impl ReadFileOutput {
    /// The text read, unless the file was an image.
    pub fn as_text(&self) -> Option<&ReadText> {
        match self {
            ReadFileOutput::Text(text) => Some(text),
            ReadFileOutput::Image(_) => None,
        }
    }

    /// The image read, if the file was one.
    pub fn as_image(&self) -> Option<&ReadImage> {
        match self {
            ReadFileOutput::Image(image) => Some(image),
            ReadFileOutput::Text(_) => None,
        }
    }

    /// What a model reads: the numbered lines and where to continue, or a line naming
    /// the image (its content goes to MCP clients as an image block).
    pub fn to_text(&self) -> String {
        match self {
            ReadFileOutput::Text(text) => text.to_text(),
            ReadFileOutput::Image(image) => image.to_text(),
        }
    }
}

impl ToolResult for ReadFileOutput {
    fn text(&self) -> String {
        self.to_text()
    }

    fn content(&self) -> Vec<Content> {
        match self {
            ReadFileOutput::Text(text) => vec![Content::Text(text.to_text())],
            ReadFileOutput::Image(image) => vec![
                Content::Image {
                    mime_type: image.mime_type,
                    data: image.data.clone(),
                },
                Content::Text(image.to_text()),
            ],
        }
    }
}

/// An image [`read_file`] read.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReadImage {
    /// The resolved path.
    pub path: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub mime_type: &'static str,
    /// The file's bytes (base64 in JSON).
    #[serde(serialize_with = "as_base64")]
    pub data: Vec<u8>,
}

impl ReadImage {
    /// One line naming the image, its type and size.
    pub fn to_text(&self) -> String {
        format!(
            "[image {}: {}, {} bytes]",
            display_name(&self.path),
            self.mime_type,
            self.data.len()
        )
    }
}

fn as_base64<S: Serializer>(data: &[u8], serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&Content::base64(data))
}

/// Lines of a text file [`read_file`] read.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReadText {
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

impl ReadText {
    /// What a model sees: the numbered lines and where to continue.
    pub fn to_text(&self) -> String {
        if self.total_lines == 0 {
            return format!("(file {} is empty)", display_name(&self.path));
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

/// Reads a text file as numbered lines from `offset` (1-based), at most `limit` lines,
/// or an image (PNG, JPEG, GIF, WebP, told by its first bytes) whole. Refuses
/// directories, other binary files, files over 10 MiB and images over 3.75 MiB, saying
/// what to use instead.
pub async fn read_file(ctx: &ToolContext, input: ReadFileInput) -> Result<ReadFileOutput> {
    let path = ctx.resolve(&input.path).await?;
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        return Err(Error::invalid(
            "limit is 0: give the number of lines to read (default 2000)",
        ));
    }
    let offset = input.offset.unwrap_or(1).max(1);
    // One call: the kind and size checks travel with the read (one round trip where
    // the backend can).
    let bytes = match ctx
        .runtime
        .read_file_up_to(&path, READ_MAX_FILE_BYTES)
        .await?
    {
        SmallFile::Read(bytes) => bytes,
        SmallFile::NotAFile(FileKind::Dir) => {
            return Err(Error::WrongKind {
                host: ctx.host().to_owned(),
                path,
                message: "is a directory, not a file: use list_dir to see its entries".into(),
            })
        }
        SmallFile::NotAFile(_) => {
            return Err(Error::WrongKind {
                host: ctx.host().to_owned(),
                path,
                message: "is not a regular file (a socket, fifo or device): read_file reads \
                          regular files only"
                    .into(),
            })
        }
        SmallFile::TooLarge(len) if has_image_extension(path.as_str()) => {
            return Err(image_too_large(ctx, &path, "an image", len));
        }
        SmallFile::TooLarge(len) => {
            let q = crate::exec::quote_path(&path);
            return Err(Error::invalid(format!(
                "{}: {path} is {len} bytes, over read_file's limit of {READ_MAX_FILE_BYTES} bytes (10 MiB): \
                 read a range with bash instead, e.g. `sed -n '1,200p' {q}` for lines or `head -c 65536 {q}` \
                 for bytes, or search it with grep",
                ctx.host(),
            )));
        }
    };
    if let Some(mime_type) = image_type(&bytes) {
        if bytes.len() as u64 > READ_MAX_IMAGE_BYTES {
            let what = format!("a {mime_type} image");
            return Err(image_too_large(ctx, &path, &what, bytes.len() as u64));
        }
        return Ok(ReadFileOutput::Image(ReadImage {
            path: path.as_str().to_owned(),
            mime_type,
            data: bytes,
        }));
    }
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
    let mut out = ReadText {
        path: path.as_str().to_owned(),
        total_lines: total,
        first_line: 0,
        last_line: 0,
        content: String::new(),
        truncated_lines: 0,
    };
    if total == 0 {
        return Ok(ReadFileOutput::Text(out));
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
    Ok(ReadFileOutput::Text(out))
}

/// The refusal of an image over [`READ_MAX_IMAGE_BYTES`] (`what`: "a image/png image").
fn image_too_large(ctx: &ToolContext, path: &crate::RemotePath, what: &str, len: u64) -> Error {
    Error::invalid(format!(
        "{}: {path} is {what} of {len} bytes, over read_file's image limit of \
         {READ_MAX_IMAGE_BYTES} bytes (3.75 MiB, 5 MiB once base64-encoded, the most model \
         APIs accept): read a smaller copy instead, e.g. made with ImageMagick: \
         `convert {q} -resize 50% /tmp/smaller.png`, or crop it to the part you need",
        ctx.host(),
        q = crate::exec::quote_path(path)
    ))
}
