//! grep over the local filesystem: the walk and the per-file matcher together, in
//! parallel, with no cap on the total size searched.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use crate::collect::GrepCollector;
use crate::error::{Error, Result};
use crate::filter::FileFilter;
use crate::grep::{GrepReply, GrepRequest, Target, GREP_MAX_SINGLE_FILE_BYTES};
use crate::search::Searcher;
use crate::walk::{applies_gitignore, walk, Visit};

/// Runs a grep request over the local filesystem: every file under `req.path` (or
/// that one file), ripgrep's walking rules (see [`crate::walk`](crate)), the
/// per-file matcher of [`Searcher`].
pub fn grep_fs(req: &GrepRequest) -> Result<GrepReply> {
    if !req.path.starts_with('/') {
        return Err(Error::RelativePath {
            path: req.path.clone(),
        });
    }
    let searcher = Searcher::new(req)?;
    let filter = FileFilter::new(req.glob.as_deref(), req.file_type.as_deref())?;
    let meta = fs::metadata(&req.path).map_err(|e| Error::from_io(&req.path, "reading", &e))?;
    if meta.is_file() {
        return grep_one_file(req, &searcher, meta.len());
    }
    if !meta.is_dir() {
        return Err(Error::NotFileOrDir {
            path: req.path.clone(),
        });
    }
    let root = fs::canonicalize(&req.path).map_err(|e| Error::from_io(&req.path, "reading", &e))?;
    let gitignore = applies_gitignore(&root);
    let mut collector = search_tree(req, &root, &searcher, &filter, gitignore);
    let mut respects_gitignore = gitignore;
    // An ignored directory searched on purpose: search it whole.
    if gitignore && collector.files_seen() == 0 {
        collector = search_tree(req, &root, &searcher, &filter, false);
        respects_gitignore = false;
    }
    Ok(collector.finish(Target::Dir, respects_gitignore))
}

/// One file given as the path: searched whatever the filters say (as grep does).
fn grep_one_file(req: &GrepRequest, searcher: &Searcher, len: u64) -> Result<GrepReply> {
    if len > GREP_MAX_SINGLE_FILE_BYTES {
        return Err(Error::FileTooLarge {
            path: req.path.clone(),
            len,
            limit: GREP_MAX_SINGLE_FILE_BYTES,
        });
    }
    let content = fs::read(&req.path).map_err(|e| Error::from_io(&req.path, "reading", &e))?;
    let name = req.path.rsplit('/').next().unwrap_or(&req.path);
    let mut collector = GrepCollector::new(req);
    collector.saw_file();
    collector.searched(name, searcher.search(&content));
    Ok(collector.finish(Target::File, false))
}

/// Searches every file under `root` passing `filter`.
fn search_tree(
    req: &GrepRequest,
    root: &Path,
    searcher: &Searcher,
    filter: &FileFilter,
    gitignore: bool,
) -> GrepCollector {
    let shared = Mutex::new(GrepCollector::new(req));
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    walk(root, gitignore, || {
        // One read buffer per walking thread, reused for every file.
        let mut buffer = Vec::new();
        move |visit: Visit<'_>| match visit {
            Visit::File { rel, entry } => {
                lock().saw_file();
                if !filter.matches(rel) {
                    return;
                }
                match read_limited(entry.path(), req.max_file_bytes, &mut buffer) {
                    Ok(true) => {
                        let outcome = searcher.search(&buffer);
                        lock().searched(rel, outcome);
                    }
                    Ok(false) => lock().too_large(rel),
                    // Gone since the walk listed it: nothing to search, as `grep -s`.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => lock().unreadable(rel),
                }
            }
            Visit::NonUtf8Name => lock().non_utf8_name(),
            Visit::Unreadable { rel } => lock().unreadable(&rel),
        }
    });
    shared.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Reads the file at `path` into `buffer` unless it has `limit` bytes or more
/// (returns false then).
fn read_limited(path: &Path, limit: u64, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len >= limit {
        return Ok(false);
    }
    buffer.clear();
    buffer.reserve(usize::try_from(len).unwrap_or(0).saturating_add(1));
    // At most `limit` bytes even if the file grows while it is read.
    file.take(limit).read_to_end(buffer)?;
    if buffer.len() as u64 >= limit {
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::grep::OutputMode;
    use crate::test_tree::{git_init, root, tree, write};

    /// `path:line:text` (`-` for context lines) of every line of a reply.
    fn shown(reply: &GrepReply) -> Vec<String> {
        let mut out = Vec::new();
        for f in &reply.files {
            if f.lines.is_empty() {
                out.push(format!("{}:{}", f.path, f.count));
            }
            for l in &f.lines {
                let sep = if l.context { '-' } else { ':' };
                out.push(format!("{}{sep}{}{sep}{}", f.path, l.number, l.text));
            }
        }
        out
    }

    #[test]
    fn walks_like_ripgrep_and_reports_what_it_skipped() {
        let dir = tree(&[
            ("src/a.rs", b"fn main() {\n    hello();\n}\n"),
            ("src/b.txt", b"hello world\nbye\n"),
            (".hidden/h.txt", b"hello hidden"),
            ("pkg/.git/config", b"hello"),
            ("sub/.git", b"gitdir: elsewhere"),
            ("bin.dat", b"hello\0binary"),
            ("latin1.txt", b"hello caf\xe9"),
            ("crlf.txt", b"x\r\nhello\r\n"),
        ]);
        let big = vec![b'h'; 100];
        write(dir.path(), "big.log", &big);
        std::os::unix::fs::symlink("src/b.txt", dir.path().join("link.txt")).expect("symlink");
        let odd = std::ffi::OsStr::from_bytes(b"bad\xffname.txt");
        std::fs::write(dir.path().join(odd), b"hello").expect("odd name");

        let mut req = GrepRequest::new(root(&dir), "hello");
        req.max_file_bytes = 100;
        let reply = grep_fs(&req).expect("grep");
        assert_eq!(
            shown(&reply),
            vec![
                ".hidden/h.txt:1:hello hidden",
                "crlf.txt:2:hello",
                "src/a.rs:2:    hello();",
                "src/b.txt:1:hello world",
            ]
        );
        assert_eq!(reply.target, Target::Dir);
        assert_eq!(reply.binary.examples, vec!["bin.dat", "latin1.txt"]);
        assert_eq!(reply.too_large.examples, vec!["big.log"]);
        assert_eq!(reply.non_utf8_names, 1);
        assert_eq!(reply.files_searched, 6);
        assert!(!reply.respects_gitignore);
        let notes = reply.notes("");
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("100 bytes or more") && notes[0].contains("big.log"));

        // One file given as the path.
        let mut req = GrepRequest::new(format!("{}/src/b.txt", root(&dir)), "bye");
        req.glob = Some("*.rs".into());
        let reply = grep_fs(&req).expect("one file");
        assert_eq!(shown(&reply), vec!["b.txt:2:bye"]);
        assert_eq!(reply.target, Target::File);
    }

    #[test]
    fn options_filters_and_modes() {
        let dir = tree(&[
            ("a.py", b"import os\nHELLO = 1\n"),
            ("b.rs", b"// hello\nfn x() {}\n// hello again\n"),
            ("c.rs", b"nothing\n"),
        ]);
        let mut req = GrepRequest::new(root(&dir), "hello");
        req.case_insensitive = true;
        req.file_type = Some("py".into());
        assert_eq!(
            shown(&grep_fs(&req).expect("grep")),
            vec!["a.py:2:HELLO = 1"]
        );
        let mut req = GrepRequest::new(root(&dir), "hello");
        req.output_mode = OutputMode::Count;
        assert_eq!(shown(&grep_fs(&req).expect("count")), vec!["b.rs:2"]);
        req.output_mode = OutputMode::FilesWithMatches;
        req.case_insensitive = true;
        assert_eq!(
            shown(&grep_fs(&req).expect("files")),
            vec!["a.py:1", "b.rs:1"]
        );
        let mut req = GrepRequest::new(root(&dir), "fn x() {}");
        req.fixed_strings = true;
        req.context = Some(1);
        assert_eq!(
            shown(&grep_fs(&req).expect("fixed")),
            vec![
                "b.rs-1-// hello",
                "b.rs:2:fn x() {}",
                "b.rs-3-// hello again"
            ]
        );
        let mut req = GrepRequest::new(root(&dir), "x");
        req.file_type = Some("nope".into());
        assert!(matches!(grep_fs(&req), Err(Error::UnknownFileType { .. })));
        let req = GrepRequest::new(format!("{}/missing", root(&dir)), "x");
        assert!(matches!(grep_fs(&req), Err(Error::NotFound { .. })));
        let req = GrepRequest::new("relative", "x");
        assert!(matches!(grep_fs(&req), Err(Error::RelativePath { .. })));
    }

    #[test]
    fn gitignore_rules_inside_a_work_tree() {
        let dir = tree(&[
            ("repo/.gitignore", b"ignored/\n*.log\n"),
            ("repo/ignored/x.txt", b"needle"),
            ("repo/kept.txt", b"needle"),
            ("repo/app.log", b"needle"),
            ("repo/sub/.gitignore", b"local.txt\n"),
            ("repo/sub/local.txt", b"needle"),
            ("repo/sub/other.txt", b"needle"),
            ("repo/excluded.txt", b"needle"),
        ]);
        let repo = dir.path().join("repo");
        if !git_init(&repo) {
            eprintln!("git missing: gitignore test skipped");
            return;
        }
        write(&repo, ".git/info/exclude", b"excluded.txt\n");
        let req = GrepRequest::new(repo.to_str().expect("utf-8"), "needle");
        let reply = grep_fs(&req).expect("grep");
        assert_eq!(
            shown(&reply),
            vec!["kept.txt:1:needle", "sub/other.txt:1:needle"]
        );
        assert!(reply.respects_gitignore);
        // Searched from a subdirectory: the parents' rules still apply.
        let req = GrepRequest::new(repo.join("sub").to_str().expect("utf-8"), "needle");
        assert_eq!(
            shown(&grep_fs(&req).expect("grep sub")),
            vec!["other.txt:1:needle"]
        );
        // An ignored directory searched on purpose is searched whole, and so is a
        // directory under it.
        write(&repo, "ignored/deeper/y.log", b"needle");
        let req = GrepRequest::new(repo.join("ignored").to_str().expect("utf-8"), "needle");
        let reply = grep_fs(&req).expect("grep ignored");
        assert_eq!(
            shown(&reply),
            vec!["deeper/y.log:1:needle", "x.txt:1:needle"]
        );
        assert!(!reply.respects_gitignore);
        let deeper = repo.join("ignored/deeper");
        let req = GrepRequest::new(deeper.to_str().expect("utf-8"), "needle");
        assert_eq!(shown(&grep_fs(&req).expect("grep")), vec!["y.log:1:needle"]);
        // A directory whose every file is ignored is searched whole.
        let req = GrepRequest::new(repo.join("sub").to_str().expect("utf-8"), "needle");
        let mut req = req;
        req.glob = Some("local.txt".into());
        let reply = grep_fs(&req).expect("grep sub");
        assert!(reply.respects_gitignore, "sub has a file git keeps");
        assert!(shown(&reply).is_empty());
        write(&repo, "logs/a.log", b"needle");
        let req = GrepRequest::new(repo.join("logs").to_str().expect("utf-8"), "needle");
        let reply = grep_fs(&req).expect("grep logs");
        assert_eq!(shown(&reply), vec!["a.log:1:needle"]);
        assert!(!reply.respects_gitignore);
        // Nothing found in a work tree: the note says ignored files were skipped.
        let req = GrepRequest::new(repo.to_str().expect("utf-8"), "absent");
        let reply = grep_fs(&req).expect("grep");
        assert_eq!(reply.notes(""), vec![crate::IGNORED_NOTE]);
    }
}
