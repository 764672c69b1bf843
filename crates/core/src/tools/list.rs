//! `list_dir`: one level of a directory, with kinds and sizes.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::text::display_name;
use super::tool::{Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::runtime::FileKind;

/// Entries shown at most.
const MAX_ENTRIES: usize = 1000;

/// The `list_dir` tool: see [`ListDirTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListDirTool;

#[async_trait]
impl Tool for ListDirTool {
    const NAME: &'static str = "list_dir";
    const DESCRIPTION: &'static str = "List one directory (default: the workspace root), \
        sorted by name: each entry's kind (file, dir, symlink or other), its size in bytes \
        and its name; directory names end in `/`. At most 1000 entries are shown, with a \
        count of the rest. Relative paths resolve against the workspace. To find files \
        anywhere below a directory, use glob.";
    const EFFECT: Effect = Effect::ReadOnly;
    type Input = ListDirInput;
    type Output = ListDirOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: ListDirInput,
        _cancel: CancellationToken,
    ) -> Result<ListDirOutput> {
        list_dir(ctx, input).await
    }
}

/// Input of [`list_dir`].
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDirInput {
    /// The directory to list, relative to the workspace or absolute (default: the
    /// workspace root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One entry of [`ListDirOutput`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ListDirEntry {
    /// The entry's name.
    pub name: String,
    /// file, dir, symlink or other.
    pub kind: FileKind,
    /// Size in bytes (of the link itself for a symlink).
    pub size: u64,
}

/// Result of [`list_dir`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ListDirOutput {
    /// The resolved directory.
    pub path: String,
    /// Entries sorted by name (at most 1000).
    pub entries: Vec<ListDirEntry>,
    /// Entries left out past the first 1000.
    pub omitted: usize,
}

impl ListDirOutput {
    /// What a model sees: one entry per line, `kind size name`, directories ending in `/`.
    pub fn to_text(&self) -> String {
        if self.entries.is_empty() {
            return format!("(directory {} is empty)", display_name(&self.path));
        }
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let name = display_name(&e.name);
                match e.kind {
                    FileKind::Dir => format!("dir     {:>10}  {name}/", "-"),
                    kind => format!("{:<7} {:>10}  {name}", kind.to_string(), e.size),
                }
            })
            .collect();
        if self.omitted > 0 {
            lines.push(format!(
                "[... {} more entries not shown; use glob or bash to narrow down]",
                self.omitted
            ));
        }
        lines.join("\n")
    }
}

impl ToolResult for ListDirOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

/// Lists one level of a directory, sorted by name.
pub async fn list_dir(ctx: &ToolContext, input: ListDirInput) -> Result<ListDirOutput> {
    let path = ctx.resolve_dir(input.path.as_deref()).await?;
    let mut entries = match ctx.runtime.read_dir(&path).await {
        Ok(entries) => entries,
        Err(Error::WrongKind { host, path, .. }) => {
            return Err(Error::WrongKind {
                host,
                path,
                message: "is not a directory: use read_file to read a file".into(),
            })
        }
        Err(e) => return Err(e),
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let omitted = entries.len().saturating_sub(MAX_ENTRIES);
    entries.truncate(MAX_ENTRIES);
    Ok(ListDirOutput {
        path: path.as_str().to_owned(),
        entries: entries
            .into_iter()
            .map(|e| ListDirEntry {
                name: e.name,
                kind: e.kind,
                size: e.len,
            })
            .collect(),
        omitted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_marks_dirs_and_escapes_names() {
        let out = ListDirOutput {
            path: "/w".into(),
            entries: vec![
                ListDirEntry {
                    name: "a\nb".into(),
                    kind: FileKind::File,
                    size: 3,
                },
                ListDirEntry {
                    name: "src".into(),
                    kind: FileKind::Dir,
                    size: 4096,
                },
                ListDirEntry {
                    name: "l".into(),
                    kind: FileKind::Symlink,
                    size: 1,
                },
            ],
            omitted: 0,
        };
        assert_eq!(
            out.to_text(),
            "file             3  \"a\\nb\"\ndir              -  src/\nsymlink          1  l"
        );
    }
}
