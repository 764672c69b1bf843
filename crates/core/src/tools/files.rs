//! Listing and fetching many files in one round trip each, for the generic path of
//! `glob` and `grep` (see the `generic` module).
//!
//! Listing: one script run in the directory. Outside a git work tree it is one
//! `find . -name .git -prune -o -type f ...` (POSIX find options, plus GNU find's
//! `-printf` where the host has it, for modification times); inside one, `git
//! ls-files` names the files git does not ignore and `find` keeps the regular ones, as
//! ripgrep's rules do (tracked files that match an ignore rule are left out too, and
//! the user's global excludes file is not read, like the engine). Filtering by glob
//! and type happens here, locally, with the engine. One known difference from the
//! engine's walk: a git repository nested in the work tree (a submodule, a clone
//! inside it) is one entry to `git ls-files`, so its files are not listed here, while
//! the engine walks them with their own rules.
//!
//! Fetching: one `bash` script that reads the NUL-separated list of names on its stdin
//! and streams them as a tar archive (`tar -cf -`, in batches of 200 names), cut at a
//! total size by `head -c`. Tar gives an exact, binary-safe framing (names with
//! newlines, any content) with one process per batch rather than per file, and is on
//! every host cmux targets. Where `tar` is missing, files are read one by one through
//! [`Runtime::read_file`](crate::Runtime::read_file), a few at a time.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::tar::{self, Entry};
use super::ToolContext;
use crate::engine::Mtime;
use crate::error::{Error, Result};
use crate::exec::{ExecRequest, ExitStatus, Stdin};
use crate::path::RemotePath;
use crate::quote::quote;
use crate::runtime::{tail, RuntimeExt};

/// Deadline of one listing or fetch command.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of listing kept (about 600,000 names).
const LIST_CAP: usize = 32 << 20;
/// Printed on stderr by the listing script before its own work (see [`listing_script`]).
const STDERR_MARKER: &str = "[cmux: listing starts]\n";

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its path relative to the directory, without `./`.
    pub(crate) name: String,
    /// Its modification time, when the listing asked for times and the host's find
    /// could print them.
    pub(crate) modified: Option<Mtime>,
}

/// Files under a directory.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// The regular files (under the size limit, if one was given), sorted by name.
    pub(crate) files: Vec<Listed>,
    /// Files left out for their size, sorted.
    pub(crate) too_large: Vec<String>,
    /// True when the listing was cut at [`LIST_CAP`].
    pub(crate) cut: bool,
    /// Names skipped because they are not valid UTF-8.
    pub(crate) non_utf8: usize,
    /// What find complained about (unreadable directories...), shortened.
    pub(crate) warnings: Option<String>,
    /// True when the listing came from git and left out ignored files.
    pub(crate) respects_gitignore: bool,
    /// True when times were asked for and the host's find printed them.
    pub(crate) has_mtimes: bool,
}

/// What the listing found at `dir`.
#[derive(Debug)]
pub(crate) enum ListResult {
    /// `dir` is a directory: its files.
    Dir(Listing),
    /// `dir` is a file (or a link to one).
    File,
}

/// Lists the regular files under `dir` (recursively, `.git` skipped, symlinks not
/// followed). Inside a git work tree, files git ignores are left out; when that leaves
/// nothing (an ignored directory was searched on purpose), every file is listed.
/// `max_size`: files of this many bytes or more go to `too_large`. `mtimes`: ask for
/// modification times.
pub(crate) async fn list_files(
    ctx: &ToolContext,
    dir: &RemotePath,
    max_size: Option<u64>,
    mtimes: bool,
) -> Result<ListResult> {
    match list_with(ctx, dir, max_size, mtimes, true).await? {
        ListResult::Dir(l)
            if l.respects_gitignore && l.files.is_empty() && l.too_large.is_empty() && !l.cut =>
        {
            list_with(ctx, dir, max_size, mtimes, false).await
        }
        other => Ok(other),
    }
}

/// The listing script (see the module docs). Its output: the listing's kind (`git` or
/// `find`) and whether records carry times (`T` or `P`), then one NUL-terminated
/// record per file: `./name` (a file, POSIX find), `f[TIME ]./name` (a file, GNU
/// find), `L[TIME ]./name` (too large), `i./name` (tracked by git but ignored by its
/// rules: left out).
fn listing_script(dir: &RemotePath, max_size: Option<u64>, mtimes: bool, use_git: bool) -> String {
    let time = if mtimes { "%T@ " } else { "" };
    let (gnu, posix) = match max_size {
        Some(n) => (
            format!("\\( -size -{n}c -printf 'f{time}%p\\0' -o -printf 'L{time}%p\\0' \\)"),
            format!("\\( -size -{n}c -print0 -o -exec printf 'L%s\\0' {{}} + \\)"),
        ),
        None => (format!("-printf 'f{time}%p\\0'"), "-print0".to_owned()),
    };
    let timed = if mtimes { "T" } else { "P" };
    // `$sel`: find's actions for this host; `eval`/`sh -c` run our own text only.
    let select = format!(
        "if find . -maxdepth 0 -printf '' >/dev/null 2>&1; then fmt={timed}; sel={gnu}; \
         else fmt=P; sel={posix}; fi\n",
        gnu = quote(&gnu),
        posix = quote(&posix),
    );
    let git = if use_git {
        "if command -v git >/dev/null 2>&1 && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then\n\
         printf 'git\\0%s\\0' \"$fmt\"\n\
         g() { git -c core.excludesFile=/dev/null ls-files -z --exclude-standard \"$@\" 2>/dev/null; }\n\
         g --cached --others | while IFS= read -r -d '' f; do printf './%s\\0' \"$f\"; done \\\n\
         | xargs -0 sh -c '[ $# -gt 0 ] || exit 0; exec find \"$@\" -prune -type f '\"$sel\" sh 2>/dev/null\n\
         g --cached --ignored | while IFS= read -r -d '' f; do printf 'i./%s\\0' \"$f\"; done\n\
         exit 0\n\
         fi\n"
    } else {
        ""
    };
    // The marker on stderr separates what the shell's startup files print (a host's
    // rc noise) from find's own complaints, the only ones worth a note.
    format!(
        "printf '%s' {marker} >&2\nd={d}\n[ -e \"$d\" ] || exit 3\n[ -d \"$d\" ] || exit 4\ncd -- \"$d\" || exit 5\n\
         {select}{git}printf 'find\\0%s\\0' \"$fmt\"\n\
         eval \"exec find . -name .git -prune -o -type f $sel\"\n",
        d = quote(dir.as_str()),
        marker = quote(STDERR_MARKER),
    )
}

async fn list_with(
    ctx: &ToolContext,
    dir: &RemotePath,
    max_size: Option<u64>,
    mtimes: bool,
    use_git: bool,
) -> Result<ListResult> {
    let script = listing_script(dir, max_size, mtimes, use_git);
    let out = ctx
        .runtime
        .output(
            ExecRequest::script(script).timeout(COMMAND_TIMEOUT),
            LIST_CAP,
        )
        .await?;
    let stderr = out.stderr_lossy();
    let stderr = match stderr.rfind(STDERR_MARKER) {
        Some(at) => stderr[at + STDERR_MARKER.len()..].to_owned(),
        None => stderr,
    };
    match out.status {
        ExitStatus::Exited(0 | 1) => {}
        ExitStatus::Exited(3) => {
            return Err(Error::NotFound {
                host: ctx.host().to_owned(),
                path: dir.clone(),
            })
        }
        ExitStatus::Exited(4) => return Ok(ListResult::File),
        ExitStatus::Exited(5) => {
            return Err(Error::PermissionDenied {
                host: ctx.host().to_owned(),
                path: dir.clone(),
            })
        }
        ExitStatus::TimedOut => {
            return Err(Error::TimedOut {
                host: ctx.host().to_owned(),
                what: format!("listing the files under {dir} (narrow the path)"),
                secs: COMMAND_TIMEOUT.as_secs_f64(),
            })
        }
        status => {
            return Err(Error::CommandFailed {
                host: ctx.host().to_owned(),
                command: format!("find in {dir}"),
                code: status.shell_code(),
                stderr: tail(&stderr, 1000),
            })
        }
    }
    let mut listing = parse_listing(&out.stdout);
    listing.cut = out.stdout_dropped > 0;
    listing.warnings = (!stderr.trim().is_empty()).then(|| tail(&stderr, 500));
    Ok(ListResult::Dir(listing))
}

/// Reads the listing script's output (see [`listing_script`]).
fn parse_listing(stdout: &[u8]) -> Listing {
    let mut listing = Listing::default();
    let mut records: Vec<&[u8]> = stdout.split(|b| *b == 0).collect();
    // The piece after the last NUL is empty, or a record cut by the cap.
    records.pop();
    let mut records = records.into_iter();
    listing.respects_gitignore = records.next() == Some(b"git");
    let timed = records.next() == Some(b"T");
    listing.has_mtimes = timed;
    let mut ignored: HashSet<&[u8]> = HashSet::new();
    for record in records {
        let (kind, rest) = match record.first() {
            Some(b'.') => (b'f', record),
            Some(&tag) => (tag, &record[1..]),
            None => continue,
        };
        if kind == b'i' {
            ignored.insert(rest);
            continue;
        }
        let (modified, name) = match (
            timed && record.first() != Some(&b'.'),
            rest.iter().position(|b| *b == b' '),
        ) {
            (true, Some(space)) => (
                std::str::from_utf8(&rest[..space])
                    .ok()
                    .and_then(Mtime::parse),
                &rest[space + 1..],
            ),
            _ => (None, rest),
        };
        if ignored.contains(name) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(name) else {
            listing.non_utf8 += 1;
            continue;
        };
        let text = text.strip_prefix("./").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        match kind {
            b'L' => listing.too_large.push(text.to_owned()),
            _ => listing.files.push(Listed {
                name: text.to_owned(),
                modified,
            }),
        }
    }
    if !ignored.is_empty() {
        // The ignored names come last: drop those listed before them.
        let ignored: HashSet<&str> = ignored
            .iter()
            .filter_map(|n| std::str::from_utf8(n).ok())
            .map(|n| n.strip_prefix("./").unwrap_or(n))
            .collect();
        listing.files.retain(|f| !ignored.contains(f.name.as_str()));
        listing.too_large.retain(|f| !ignored.contains(f.as_str()));
    }
    listing.files.sort_by(|a, b| a.name.cmp(&b.name));
    listing.too_large.sort();
    listing
}

/// Contents fetched for a list of files.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// (relative name, content), in the order of the request.
    pub(crate) files: Vec<(String, Vec<u8>)>,
    /// True when the total cap stopped the fetch before every file.
    pub(crate) cut: bool,
}

/// Fetches the content of `names` (relative to `dir`), at most `cap` bytes in total.
pub(crate) async fn fetch_files(
    ctx: &ToolContext,
    dir: &RemotePath,
    names: &[String],
    cap: usize,
) -> Result<Fetched> {
    if names.is_empty() {
        return Ok(Fetched::default());
    }
    let mut list = Vec::new();
    for name in names {
        list.extend_from_slice(name.as_bytes());
        list.push(0);
    }
    // Archive overhead (headers, padding) comes on top of the content.
    let stream_cap = cap + names.len() * 1536 + 1024;
    let script = format!(
        "command -v tar >/dev/null 2>&1 || exit 7\n\
         cd -- {d} || exit 5\n\
         files=()\n\
         while IFS= read -r -d '' f; do files+=(\"$f\"); done\n\
         {{ i=0; while [ $i -lt ${{#files[@]}} ]; do \
         tar -cf - -- \"${{files[@]:i:200}}\"; i=$((i+200)); done; }} | head -c {limit}\n",
        d = quote(dir.as_str()),
        limit = stream_cap + 1
    );
    let req = ExecRequest::script(script)
        .stdin(Stdin::Bytes(list))
        .timeout(COMMAND_TIMEOUT);
    let out = ctx.runtime.output(req, stream_cap + 1).await?;
    match out.status {
        ExitStatus::Exited(0) => {}
        ExitStatus::Exited(7) => return fetch_one_by_one(ctx, dir, names, cap).await,
        ExitStatus::TimedOut => {
            return Err(Error::TimedOut {
                host: ctx.host().to_owned(),
                what: format!("reading the files under {dir} (narrow the path or glob)"),
                secs: COMMAND_TIMEOUT.as_secs_f64(),
            })
        }
        status => {
            return Err(Error::CommandFailed {
                host: ctx.host().to_owned(),
                command: format!("reading files under {dir} with tar"),
                code: status.shell_code(),
                stderr: tail(&out.stderr_lossy(), 1000),
            })
        }
    }
    let mut fetched = Fetched {
        cut: out.stdout.len() > stream_cap,
        files: Vec::new(),
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut total = 0usize;
    for entry in tar::entries(&out.stdout) {
        let (name, data) = match entry {
            Entry::File { name, data } => (name, data.to_vec()),
            Entry::HardLink { name, target } => match index.get(&target) {
                Some(&i) => (name, fetched.files[i].1.clone()),
                None => continue,
            },
        };
        total += data.len();
        if total > cap {
            fetched.cut = true;
            break;
        }
        index.insert(name.clone(), fetched.files.len());
        fetched.files.push((name, data));
    }
    // Order as requested (tar keeps it; hard links and a cut stream may not).
    let order: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    fetched
        .files
        .sort_by_key(|(n, _)| order.get(n.as_str()).copied().unwrap_or(usize::MAX));
    Ok(fetched)
}

/// The fallback without tar: one read per file, eight at a time.
async fn fetch_one_by_one(
    ctx: &ToolContext,
    dir: &RemotePath,
    names: &[String],
    cap: usize,
) -> Result<Fetched> {
    let mut fetched = Fetched::default();
    let mut total = 0usize;
    for chunk in names.chunks(8) {
        let mut tasks = Vec::new();
        for name in chunk {
            let rt = ctx.runtime.clone();
            let path = dir.join(name)?;
            tasks.push(tokio::spawn(async move { rt.read_file(&path).await }));
        }
        for (name, task) in chunk.iter().zip(tasks) {
            let data = match task.await {
                Ok(Ok(data)) => data,
                // Vanished or unreadable since the listing: grep skips it, as grep -s.
                Ok(Err(_)) => continue,
                Err(e) => return Err(Error::backend(ctx.host(), format!("read task: {e}"))),
            };
            total += data.len();
            if total > cap {
                fetched.cut = true;
                return Ok(fetched);
            }
            fetched.files.push((name.clone(), data));
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_records() {
        let out = b"git\0T\0f1700000000.5000000000 ./b.rs\0f12 ./a b.rs\0L13 ./big.log\0\
                    f14 ./forced.log\0f15 ./bad\xff\0i./forced.log\0f16 ./cut";
        let l = parse_listing(out);
        assert!(l.respects_gitignore && l.has_mtimes);
        let files: Vec<(&str, Option<Mtime>)> = l
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.modified))
            .collect();
        assert_eq!(
            files,
            vec![
                ("a b.rs", Some(Mtime { secs: 12, nanos: 0 })),
                (
                    "b.rs",
                    Some(Mtime {
                        secs: 1_700_000_000,
                        nanos: 500_000_000
                    })
                ),
            ],
            "sorted, times parsed, tracked-but-ignored and cut records dropped"
        );
        assert_eq!(l.too_large, vec!["big.log"]);
        assert_eq!(l.non_utf8, 1);
        // POSIX find: plain names, too-large ones tagged.
        let l = parse_listing(b"find\0P\0./x\0L./y\0./new\nline\0");
        assert!(!l.respects_gitignore && !l.has_mtimes);
        let names: Vec<&str> = l.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            (names, l.too_large),
            (vec!["new\nline", "x"], vec!["y".to_owned()])
        );
    }
}
