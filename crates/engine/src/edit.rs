//! edit: replacing an exact string in a text, keeping its line endings. A pure
//! function on the content; reading and the atomic write are the caller's.

use serde::{Deserialize, Serialize};

use crate::error::shown;
use crate::text::LineEnding;

/// What to replace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditSpec {
    /// The exact text to replace (must occur once unless `replace_all`).
    pub old_string: String,
    /// The replacement.
    pub new_string: String,
    /// Replace every occurrence instead of requiring exactly one.
    #[serde(default)]
    pub replace_all: bool,
}

/// Why an edit cannot be applied. Nothing is written then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum EditFailure {
    /// `old_string` is empty.
    EmptyOld,
    /// `old_string` and `new_string` are the same.
    Identical,
    /// The file is not UTF-8 text.
    NotText,
    /// `old_string` does not occur.
    Absent,
    /// `old_string` occurs more than once and `replace_all` is false.
    NotUnique {
        /// How many times it occurs.
        count: usize,
    },
}

impl EditFailure {
    /// What to tell the agent about the file at `path`: what is wrong and what to do.
    pub fn message(&self, path: &str) -> String {
        let path = shown(path);
        match self {
            EditFailure::EmptyOld => format!(
                "old_string is empty: give the exact text to replace in {path}; to create or \
                 overwrite a whole file use write_file"
            ),
            EditFailure::Identical => {
                format!("old_string and new_string are identical: nothing would change in {path}")
            }
            EditFailure::NotText => {
                format!("{path} is not valid UTF-8 text (binary?): edit_file edits text files only")
            }
            EditFailure::Absent => format!(
                "old_string was not found in {path}: it must match the file exactly, including \
                 whitespace, indentation and line endings; read the file again with read_file \
                 and copy the text exactly (without the line-number prefixes)"
            ),
            EditFailure::NotUnique { count } => format!(
                "old_string occurs {count} times in {path}: include more surrounding lines in \
                 old_string so it matches exactly one place, or set replace_all to true to \
                 replace all {count}"
            ),
        }
    }
}

/// An applied edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edited {
    /// The new content.
    pub content: String,
    /// How many occurrences were replaced.
    pub replacements: usize,
    /// 1-based line of the first replacement in the new content.
    pub first_line: usize,
}

/// What an edit done where the file lives (read, replace, atomic write) reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum EditReply {
    /// The file was rewritten.
    Applied {
        /// How many occurrences were replaced.
        replacements: usize,
        /// 1-based line of the first replacement in the new file.
        first_line: usize,
        /// Size of the new file in bytes.
        bytes_written: u64,
    },
    /// The edit could not be applied; the file is unchanged.
    Failed {
        /// Why.
        failure: EditFailure,
    },
}

impl EditSpec {
    /// Checks what can be checked without the file.
    pub fn validate(&self) -> Result<(), EditFailure> {
        if self.old_string.is_empty() {
            return Err(EditFailure::EmptyOld);
        }
        if self.old_string == self.new_string {
            return Err(EditFailure::Identical);
        }
        Ok(())
    }
}

/// Applies `spec` to a file's `content`. When the text uses CRLF line endings, line
/// breaks in `old_string`/`new_string` are matched and written as CRLF (models usually
/// send LF); the strings are also tried exactly as given, for mixed files.
pub fn apply_edit(content: &[u8], spec: &EditSpec) -> Result<Edited, EditFailure> {
    spec.validate()?;
    let content = std::str::from_utf8(content).map_err(|_| EditFailure::NotText)?;
    let (old, new) = (spec.old_string.as_str(), spec.new_string.as_str());
    let ending = LineEnding::detect(content);
    let mut candidates = vec![(ending.apply(old), ending.apply(new))];
    if candidates[0].0 != old {
        candidates.push((old.to_owned(), new.to_owned()));
    }
    for (old, new) in candidates {
        let Some(first) = content.find(old.as_str()) else {
            continue;
        };
        let count = content.matches(old.as_str()).count();
        if count > 1 && !spec.replace_all {
            return Err(EditFailure::NotUnique { count });
        }
        let first_line = memchr::memchr_iter(b'\n', &content.as_bytes()[..first]).count() + 1;
        let content = if spec.replace_all {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(old: &str, new: &str, all: bool) -> EditSpec {
        EditSpec {
            old_string: old.into(),
            new_string: new.into(),
            replace_all: all,
        }
    }

    #[test]
    fn replaces_one_or_all() {
        let e = apply_edit(b"a\nb\nc\n", &spec("b", "B", false)).expect("edit");
        assert_eq!(e.content, "a\nB\nc\n");
        assert_eq!((e.replacements, e.first_line), (1, 2));
        assert_eq!(
            apply_edit(b"x x x", &spec("x", "y", false)),
            Err(EditFailure::NotUnique { count: 3 })
        );
        let e = apply_edit(b"x x x", &spec("x", "y", true)).expect("edit");
        assert_eq!((e.content.as_str(), e.replacements), ("y y y", 3));
        assert_eq!(
            apply_edit(b"abc", &spec("z", "y", false)),
            Err(EditFailure::Absent)
        );
        assert_eq!(
            apply_edit(b"abc", &spec("", "y", false)),
            Err(EditFailure::EmptyOld)
        );
        assert_eq!(
            apply_edit(b"abc", &spec("a", "a", false)),
            Err(EditFailure::Identical)
        );
        assert_eq!(
            apply_edit(b"a\xffb", &spec("a", "b", false)),
            Err(EditFailure::NotText)
        );
    }

    #[test]
    fn crlf_files_keep_crlf() {
        let e = apply_edit(
            b"one\r\ntwo\r\nthree\r\n",
            &spec("one\ntwo\n", "1\n2\n", false),
        )
        .expect("edit");
        assert_eq!(e.content, "1\r\n2\r\nthree\r\n");
        let e = apply_edit(b"one\r\ntwo\r\n", &spec("one\r\n", "uno\r\n", false)).expect("edit");
        assert_eq!(e.content, "uno\r\ntwo\r\n");
        let e = apply_edit(b"a\nb\r\nc\nd\n", &spec("b\r\n", "B\r\n", false)).expect("edit");
        assert_eq!(e.content, "a\nB\r\nc\nd\n");
        let e = apply_edit(b"a\nb\n", &spec("a\n", "x\ny\n", false)).expect("edit");
        assert_eq!(e.content, "x\ny\nb\n");
    }

    #[test]
    fn messages_say_what_to_do() {
        let m = EditFailure::NotUnique { count: 2 }.message("/w/a.rs");
        assert!(
            m.contains("2 times in /w/a.rs") && m.contains("replace_all"),
            "{m}"
        );
        let m = EditFailure::Absent.message("/w/a\nb");
        assert!(
            m.contains("\"/w/a\\nb\"") && m.contains("whitespace"),
            "{m}"
        );
        let json = serde_json::to_string(&EditReply::Failed {
            failure: EditFailure::NotUnique { count: 2 },
        })
        .expect("json");
        assert_eq!(
            json,
            r#"{"outcome":"failed","failure":{"reason":"not_unique","count":2}}"#
        );
    }
}
