//! The notes a search adds below its results: what was not searched and why, with the
//! next step. One wording for every path (the local machine, the host helper, the
//! generic path), so the same tree gives the same words.

use crate::error::shown;
use crate::grep::SkipList;

/// Said when nothing was found in a git work tree, where ignored files are skipped.
pub const IGNORED_NOTE: &str =
    "files ignored by git (.gitignore) were not searched; use bash with find or grep to include them";

/// Files skipped for their size.
pub(crate) fn too_large(list: &SkipList, limit: u64, prefix: &str) -> String {
    format!(
        "{} of {} or more {} not searched: {}; search {} with bash, e.g. `grep -n PATTERN FILE`",
        files(list.count),
        size(limit),
        were(list.count),
        describe(list, prefix),
        if list.count == 1 { "it" } else { "them" },
    )
}

/// Files skipped as binary.
pub(crate) fn binary(list: &SkipList, prefix: &str) -> String {
    format!(
        "{} skipped as binary (a NUL byte or not UTF-8): {}",
        files(list.count),
        describe(list, prefix)
    )
}

/// Paths that could not be read.
pub(crate) fn unreadable(list: &SkipList, prefix: &str) -> String {
    format!(
        "{} could not be read (check their permissions): {}",
        plural(list.count, "path", "paths"),
        describe(list, prefix)
    )
}

/// Files skipped for their names.
pub(crate) fn non_utf8_names(count: usize) -> String {
    format!(
        "{} with names that are not UTF-8 {} skipped",
        files(count),
        were(count)
    )
}

/// "a, b, c and 2 more", each name after `prefix` and escaped for one line.
fn describe(list: &SkipList, prefix: &str) -> String {
    let names = list
        .examples
        .iter()
        .map(|n| shown(&format!("{prefix}{n}")).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    match list.count.saturating_sub(list.examples.len()) {
        0 => names,
        more => format!("{names} and {more} more"),
    }
}

/// "1 file" / "2 files".
fn files(n: usize) -> String {
    plural(n, "file", "files")
}

/// "1 path" / "2 paths".
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn were(n: usize) -> &'static str {
    if n == 1 {
        "was"
    } else {
        "were"
    }
}

/// "4 MiB", or bytes when not a whole number of MiB.
fn size(bytes: u64) -> String {
    if bytes > 0 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}
