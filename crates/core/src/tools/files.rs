//! Listing and fetching many files in one round trip each, for `glob` and `grep`.
//!
//! Listing: one `find . -name .git -prune -o -type f -print0` run in the directory
//! (POSIX find options only, so GNU, BSD and busybox find agree); filtering by glob
//! happens here, locally, with `globset`.
//!
//! Fetching: one `bash` script that reads the NUL-separated list of names on its stdin
//! and streams them as a tar archive (`tar -cf -`, in batches of 200 names), cut at a
//! total size by `head -c`. Tar gives an exact, binary-safe framing (names with
//! newlines, any content) with one process per batch rather than per file, and is on
//! every host cmux targets. Where `tar` is missing, files are read one by one through
//! [`Runtime::read_file`](crate::Runtime::read_file), a few at a time.

use std::collections::HashMap;
use std::time::Duration;

use super::tar::{self, Entry};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::exec::{ExecRequest, ExitStatus, Stdin};
use crate::path::RemotePath;
use crate::quote::quote;
use crate::runtime::{tail, RuntimeExt};

/// Deadline of one listing or fetch command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of listing kept (about 600,000 names).
const LIST_CAP: usize = 32 << 20;

/// Files under a directory.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Paths relative to the directory, sorted, without `./`.
    pub(crate) files: Vec<String>,
    /// True when the listing was cut at [`LIST_CAP`].
    pub(crate) cut: bool,
    /// Names skipped because they are not valid UTF-8.
    pub(crate) non_utf8: usize,
    /// What find complained about (unreadable directories...), shortened.
    pub(crate) warnings: Option<String>,
    /// True when the listing came from git and left out ignored files.
    pub(crate) respects_gitignore: bool,
}

/// What the listing found at `dir`.
#[derive(Debug)]
pub(crate) enum ListResult {
    /// `dir` is a directory: its files.
    Dir(Listing),
    /// `dir` is a file (or a link to one).
    File,
}

/// Lists the regular files under `dir` (recursively, `.git` directories skipped).
/// Inside a git work tree, files ignored by git (`.gitignore`, `info/exclude`) are
/// left out, as ripgrep does; when that leaves nothing (an ignored directory was
/// searched on purpose), every file is listed. `max_size`: leave out files of this
/// many bytes or more.
pub(crate) async fn list_files(
    ctx: &ToolContext,
    dir: &RemotePath,
    max_size: Option<u64>,
) -> Result<ListResult> {
    match list_with(ctx, dir, max_size, true).await? {
        ListResult::Dir(l) if l.respects_gitignore && l.files.is_empty() && !l.cut => {
            list_with(ctx, dir, max_size, false).await
        }
        other => Ok(other),
    }
}

async fn list_with(
    ctx: &ToolContext,
    dir: &RemotePath,
    max_size: Option<u64>,
    use_git: bool,
) -> Result<ListResult> {
    let size = max_size
        .map(|n| format!(" -size -{n}c"))
        .unwrap_or_default();
    // Git mode: `git ls-files` names tracked and untracked-but-not-ignored files; a
    // `find` over those names (as `./name` operands, `-prune` so directories are not
    // entered) keeps existing regular files under the size limit, exactly as the
    // plain `find` would. The first NUL-terminated word says which listing ran.
    let git = if use_git {
        format!(
            "if command -v git >/dev/null 2>&1 && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then\n\
             printf 'git\\0'\n\
             git ls-files -z --cached --others --exclude-standard 2>/dev/null \\\n\
             | while IFS= read -r -d '' f; do printf './%s\\0' \"$f\"; done \\\n\
             | xargs -0 sh -c '[ $# -gt 0 ] || exit 0; exec find \"$@\" -prune -type f{size} -print0' sh 2>/dev/null\n\
             exit 0\n\
             fi\n"
        )
    } else {
        String::new()
    };
    let script = format!(
        "d={d}\n[ -e \"$d\" ] || exit 3\n[ -d \"$d\" ] || exit 4\ncd -- \"$d\" || exit 5\n\
         {git}printf 'find\\0'\nexec find . -name .git -prune -o -type f{size} -print0\n",
        d = quote(dir.as_str())
    );
    let out = ctx
        .runtime
        .output(
            ExecRequest::script(script).timeout(COMMAND_TIMEOUT),
            LIST_CAP,
        )
        .await?;
    let stderr = out.stderr_lossy();
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
    let cut = out.stdout_dropped > 0;
    let mut listing = Listing {
        cut,
        warnings: (!stderr.trim().is_empty()).then(|| tail(&stderr, 500)),
        ..Listing::default()
    };
    let mut names: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
    // The piece after the last NUL is empty, or a name cut by the cap.
    names.pop();
    if !names.is_empty() {
        listing.respects_gitignore = names.remove(0) == b"git";
    }
    for name in names {
        let name = name.strip_prefix(b"./").unwrap_or(name);
        match std::str::from_utf8(name) {
            Ok(n) if !n.is_empty() => listing.files.push(n.to_owned()),
            Ok(_) => {}
            Err(_) => listing.non_utf8 += 1,
        }
    }
    listing.files.sort();
    Ok(ListResult::Dir(listing))
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
