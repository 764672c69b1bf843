//! The generic path of `grep` and `glob`, for runtimes without native ones (the SSH
//! shell/SFTP fallback, third-party backends): list the files with one command, fetch
//! what grep needs in one `tar` stream, and run the engine's per-file matcher here.
//! The replies are the engine's own types, assembled by the engine, so they read the
//! same as a native search's; only the 64 MiB transfer cap is particular to this path
//! and is said in a note.

use super::files::{fetch_files, list_files, ListResult, COMMAND_TIMEOUT};
use super::ToolContext;
use crate::engine::{
    FileFilter, GlobFile, GlobReply, GlobRequest, GrepCollector, GrepReply, GrepRequest, Mtime,
    Searcher, Target, GREP_MAX_SINGLE_FILE_BYTES,
};
use crate::error::{Error, Result};
use crate::exec::{ExecRequest, ExitStatus, Stdin};
use crate::path::RemotePath;
use crate::quote::quote;
use crate::runtime::{tail, FileKind, RuntimeExt};

/// Total bytes of file content fetched per grep call.
const MAX_TOTAL_BYTES: usize = 64 << 20;

/// grep over `dir` (a directory or a file) through list + fetch.
pub(crate) async fn grep(
    ctx: &ToolContext,
    dir: &RemotePath,
    req: &GrepRequest,
    searcher: &Searcher,
    filter: &FileFilter,
) -> Result<GrepReply> {
    let listing = match list_files(ctx, dir, Some(req.max_file_bytes), false).await? {
        ListResult::File => return grep_one_file(ctx, dir, req, searcher).await,
        ListResult::Dir(listing) => listing,
    };
    let mut collector = GrepCollector::new(req);
    for _ in 0..listing.non_utf8 {
        collector.non_utf8_name();
    }
    let names: Vec<String> = listing
        .files
        .into_iter()
        .map(|f| f.name)
        .filter(|name| filter.matches(name))
        .collect();
    for name in listing.too_large.iter().filter(|n| filter.matches(n)) {
        collector.too_large(name);
    }
    let fetched = fetch_files(ctx, dir, &names, MAX_TOTAL_BYTES).await?;
    let searched = fetched.files.len();
    let cut = fetched.cut;
    if !cut {
        // Listed but not in the archive: tar could not read them.
        let got: std::collections::HashSet<&str> =
            fetched.files.iter().map(|(n, _)| n.as_str()).collect();
        for name in names.iter().filter(|n| !got.contains(n.as_str())) {
            collector.unreadable(name);
        }
    }
    // Up to 64 MiB of matching: off the async threads, which serve other calls.
    let searcher = searcher.clone();
    let collector = tokio::task::spawn_blocking(move || {
        for (name, content) in &fetched.files {
            collector.searched(name, searcher.search(content));
        }
        collector
    })
    .await
    .map_err(|e| Error::backend(ctx.host(), format!("grep task failed: {e}")))?;
    let mut reply = collector.finish(Target::Dir, listing.respects_gitignore);
    if cut || listing.cut {
        reply.extra_notes.push(format!(
            "only {searched} of {} files were searched (the total size limit of 64 MiB was \
             reached); narrow path or glob",
            names.len()
        ));
    }
    if let Some(w) = listing.warnings {
        reply.extra_notes.push(format!("find reported: {w}"));
    }
    Ok(reply)
}

/// One file given as the path: searched whatever the filters say, as grep does.
async fn grep_one_file(
    ctx: &ToolContext,
    path: &RemotePath,
    req: &GrepRequest,
    searcher: &Searcher,
) -> Result<GrepReply> {
    let meta = ctx.runtime.stat(path).await?;
    if meta.kind != FileKind::File {
        return Err(Error::WrongKind {
            host: ctx.host().to_owned(),
            path: path.clone(),
            message: "is not a regular file or directory".into(),
        });
    }
    if meta.len > GREP_MAX_SINGLE_FILE_BYTES {
        return Err(Error::from_engine(
            ctx.host(),
            crate::engine::Error::FileTooLarge {
                path: path.as_str().to_owned(),
                len: meta.len,
                limit: GREP_MAX_SINGLE_FILE_BYTES,
            },
        ));
    }
    let content = ctx.runtime.read_file(path).await?;
    let mut collector = GrepCollector::new(req);
    collector.saw_file();
    let name = path.file_name().unwrap_or(path.as_str());
    collector.searched(name, searcher.search(&content));
    Ok(collector.finish(Target::File, false))
}

/// glob over `dir` through one listing (and, where the host's find cannot print
/// times, one more command for the times of the matches).
pub(crate) async fn glob(
    ctx: &ToolContext,
    dir: &RemotePath,
    req: &GlobRequest,
) -> Result<GlobReply> {
    let matcher =
        crate::engine::compile_glob(&req.pattern).map_err(|e| Error::from_engine(ctx.host(), e))?;
    let listing = match list_files(ctx, dir, None, true).await? {
        ListResult::Dir(l) => l,
        ListResult::File => {
            return Err(Error::from_engine(
                ctx.host(),
                crate::engine::Error::NotADirectory {
                    path: dir.as_str().to_owned(),
                },
            ))
        }
    };
    let mut matches: Vec<GlobFile> = listing
        .files
        .into_iter()
        .filter(|f| matcher.is_match(f.name.as_str()))
        .map(|f| GlobFile {
            path: f.name,
            modified: f.modified,
        })
        .collect();
    if !listing.has_mtimes && !matches.is_empty() {
        let names: Vec<&str> = matches.iter().map(|f| f.path.as_str()).collect();
        let times = fetch_mtimes(ctx, dir, &names).await?;
        for (file, time) in matches.iter_mut().zip(times) {
            file.modified = time;
        }
    }
    let mut reply = GlobReply::from_matches(matches, req.max_results);
    reply.non_utf8_names = listing.non_utf8;
    reply.respects_gitignore = listing.respects_gitignore;
    if listing.cut {
        reply
            .extra_notes
            .push("the directory holds too many files; only part of it was searched".into());
    }
    if let Some(w) = listing.warnings {
        reply.extra_notes.push(format!("find reported: {w}"));
    }
    Ok(reply)
}

/// The modification times of `names` (relative to `dir`) where find has no `-printf`
/// (BSD, busybox): one `stat` per name, GNU/busybox (`-c %Y`) or BSD (`-f %m`)
/// syntax, whole seconds.
async fn fetch_mtimes(
    ctx: &ToolContext,
    dir: &RemotePath,
    names: &[&str],
) -> Result<Vec<Option<Mtime>>> {
    let mut list = Vec::new();
    for name in names {
        list.extend_from_slice(name.as_bytes());
        list.push(0);
    }
    let script = format!(
        "cd -- {d} || exit 5\n\
         if stat -c %Y . >/dev/null 2>&1; then m() {{ stat -c %Y -- \"$1\"; }}; \
         else m() {{ stat -f %m -- \"$1\"; }}; fi\n\
         while IFS= read -r -d '' f; do t=$(m \"$f\" 2>/dev/null) || t=-; \
         printf '%s\\n' \"${{t:--}}\"; done\n",
        d = quote(dir.as_str())
    );
    let req = ExecRequest::script(script)
        .stdin(Stdin::Bytes(list))
        .timeout(COMMAND_TIMEOUT);
    let out = ctx.runtime.output(req, 64 << 20).await?;
    if out.status != ExitStatus::Exited(0) {
        return Err(Error::CommandFailed {
            host: ctx.host().to_owned(),
            command: format!("stat of the files matched under {dir}"),
            code: out.status.shell_code(),
            stderr: tail(&out.stderr_lossy(), 1000),
        });
    }
    let text = out.stdout_lossy();
    let mut times: Vec<Option<Mtime>> = text.lines().map(Mtime::parse).collect();
    times.resize(names.len(), None);
    Ok(times)
}
