//! # cmux-engine
//!
//! The pure, synchronous parts of cmux's agent tools: grep, glob and edit as they run
//! where the files are. cmux-core uses it on this machine and on content fetched from
//! a host; the host helper (`cmux-host`) links it to run the same searches on the
//! host. One implementation, so every path gives the same answer.
//!
//! - [`grep_fs`] runs a [`GrepRequest`] over the local filesystem and returns a
//!   [`GrepReply`]; [`Searcher`] is its per-file matcher (bytes of one file in,
//!   matching lines out) and [`GrepCollector`] assembles a reply from per-file
//!   outcomes, for callers that fetch contents themselves.
//! - [`glob_fs`] runs a [`GlobRequest`]: matching files, newest first.
//! - [`apply_edit`] applies an [`EditSpec`] to a file's text.
//!
//! Requests and replies serialize with serde (JSON over the helper's protocol). Paths
//! in requests are absolute POSIX strings; paths in replies are relative to the
//! searched directory.
//!
//! Walking rules (ripgrep's, through the `ignore` crate): `.git` skipped, hidden files
//! included, symlinks not followed, and inside a git work tree the files git ignores
//! (`.gitignore`, `.git/info/exclude`) skipped, unless that leaves no file at all (an
//! ignored directory searched on purpose is searched whole). No cap on the total size
//! searched; files of 4 MiB or more, binary files and unreadable paths are skipped,
//! counted and named in the reply's notes.
//!
//! ```no_run
//! let mut req = cmux_engine::GrepRequest::new("/home/me/project", r"fn\s+main");
//! req.file_type = Some("rust".into());
//! req.context = Some(2);
//! let reply = cmux_engine::grep_fs(&req)?;
//! for file in &reply.files {
//!     for line in &file.lines {
//!         println!("{}:{}:{}", file.path, line.number, line.text);
//!     }
//! }
//! # Ok::<(), cmux_engine::Error>(())
//! ```

#![deny(missing_docs)]

mod collect;
mod edit;
mod error;
pub mod filter;
mod glob;
mod grep;
mod grep_fs;
mod notes;
mod search;
pub mod temp_names;
pub mod text;
mod walk;

pub use collect::GrepCollector;
pub use edit::{apply_edit, EditFailure, EditReply, EditSpec, Edited};
pub use error::{shown, Error, Result};
pub use filter::FileFilter;
pub use glob::{
    compile_glob, glob_fs, sort_newest_first, GlobFile, GlobReply, GlobRequest, Mtime,
    GLOB_MAX_RESULTS,
};
pub use grep::{
    GrepFile, GrepLine, GrepReply, GrepRequest, OutputMode, SkipList, Target, GREP_MAX_FILE_BYTES,
    GREP_MAX_RESULTS, GREP_MAX_SINGLE_FILE_BYTES,
};
pub use grep_fs::grep_fs;
pub use notes::IGNORED_NOTE;
pub use search::{FileMatches, FileSearch, Searcher, MAX_LINE_CHARS};
#[cfg(test)]
mod test_tree;
