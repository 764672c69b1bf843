//! Assembling a [`GrepReply`] from per-file outcomes, in any order: files sorted by
//! path, the result cap applied, skipped files counted. [`grep_fs`](crate::grep_fs)
//! and cmux-core's generic path both build their replies here, so they agree.

use crate::grep::{GrepFile, GrepReply, GrepRequest, OutputMode, SkipList, Target};
use crate::search::{FileMatches, FileSearch};

/// Gathers per-file outcomes of one search.
#[derive(Debug)]
pub struct GrepCollector {
    mode: OutputMode,
    max_results: usize,
    max_file_bytes: u64,
    after: usize,
    matched: Vec<(String, FileMatches)>,
    files_seen: usize,
    files_searched: usize,
    binary: Vec<String>,
    too_large: Vec<String>,
    unreadable: Vec<String>,
    non_utf8_names: usize,
}

impl GrepCollector {
    /// An empty collection for `req`.
    pub fn new(req: &GrepRequest) -> GrepCollector {
        GrepCollector {
            mode: req.output_mode,
            max_results: req.max_results,
            max_file_bytes: req.max_file_bytes,
            after: req.after_context(),
            matched: Vec::new(),
            files_seen: 0,
            files_searched: 0,
            binary: Vec::new(),
            too_large: Vec::new(),
            unreadable: Vec::new(),
            non_utf8_names: 0,
        }
    }

    /// Counts a file met by the walk or the listing (before any filter), for the rule
    /// that an ignored directory searched on purpose is searched whole.
    pub fn saw_file(&mut self) {
        self.files_seen += 1;
    }

    /// Files met so far.
    pub fn files_seen(&self) -> usize {
        self.files_seen
    }

    /// Records the search of the file at `path` (relative).
    pub fn searched(&mut self, path: &str, outcome: FileSearch) {
        self.files_searched += 1;
        match outcome {
            FileSearch::Binary => self.binary.push(path.to_owned()),
            FileSearch::Text(m) if m.count > 0 => self.matched.push((path.to_owned(), m)),
            FileSearch::Text(_) => {}
        }
    }

    /// Records a file not searched for its size.
    pub fn too_large(&mut self, path: &str) {
        self.too_large.push(path.to_owned());
    }

    /// Records a file or directory that could not be read.
    pub fn unreadable(&mut self, path: &str) {
        self.unreadable.push(path.to_owned());
    }

    /// Records a file skipped for its non-UTF-8 name.
    pub fn non_utf8_name(&mut self) {
        self.non_utf8_names += 1;
    }

    /// The reply: files by path, at most `max_results` results.
    pub fn finish(mut self, target: Target, respects_gitignore: bool) -> GrepReply {
        self.matched.sort_by(|a, b| a.0.cmp(&b.0));
        let mut files = Vec::new();
        let mut omitted = 0;
        let mut room = self.max_results;
        for (path, m) in self.matched {
            if room == 0 {
                omitted += match self.mode {
                    OutputMode::Content => m.count,
                    OutputMode::FilesWithMatches | OutputMode::Count => 1,
                };
                continue;
            }
            let mut file = GrepFile {
                path,
                count: m.count,
                lines: m.lines,
            };
            match self.mode {
                OutputMode::Content => {
                    let kept = cut_lines(&mut file, room, self.after);
                    omitted += file.count - kept;
                    room -= kept;
                }
                OutputMode::FilesWithMatches | OutputMode::Count => room -= 1,
            }
            files.push(file);
        }
        GrepReply {
            target,
            output_mode: self.mode,
            files,
            omitted,
            files_searched: self.files_searched,
            binary: SkipList::from_names(self.binary),
            too_large: SkipList::from_names(self.too_large),
            unreadable: SkipList::from_names(self.unreadable),
            non_utf8_names: self.non_utf8_names,
            respects_gitignore,
            max_file_bytes: self.max_file_bytes,
            extra_notes: Vec::new(),
        }
    }
}

/// Keeps at most `room` matching lines of `file` and the context after the last one
/// (at most `after` lines); returns how many matching lines were kept.
fn cut_lines(file: &mut GrepFile, room: usize, after: usize) -> usize {
    let mut kept = 0;
    let mut last_kept = 0;
    let mut end = file.lines.len();
    for (i, line) in file.lines.iter().enumerate() {
        if line.context {
            if kept == room && line.number > last_kept + after {
                end = i;
                break;
            }
            continue;
        }
        if kept == room {
            end = i;
            break;
        }
        kept += 1;
        last_kept = line.number;
    }
    file.lines.truncate(end);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grep::GrepLine;

    fn line(number: usize, context: bool) -> GrepLine {
        GrepLine {
            number,
            text: number.to_string(),
            context,
        }
    }

    #[test]
    fn the_cap_counts_matching_lines_across_files_in_path_order() {
        let mut req = GrepRequest::new("/", "x");
        req.max_results = 3;
        req.context = Some(1);
        let mut c = GrepCollector::new(&req);
        let m = |lines: Vec<GrepLine>| {
            FileSearch::Text(FileMatches {
                count: lines.iter().filter(|l| !l.context).count(),
                lines,
            })
        };
        c.searched("b", m(vec![line(1, false), line(2, true), line(3, false)]));
        c.searched("a", m(vec![line(4, true), line(5, false), line(6, true)]));
        c.searched("c", m(vec![line(9, false)]));
        c.searched("d", FileSearch::Binary);
        c.searched("e", m(vec![]));
        let reply = c.finish(Target::Dir, false);
        let shown: Vec<(&str, Vec<usize>)> = reply
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.lines.iter().map(|l| l.number).collect()))
            .collect();
        assert_eq!(shown, vec![("a", vec![4, 5, 6]), ("b", vec![1, 2, 3])]);
        assert_eq!((reply.omitted, reply.files_searched), (1, 5));
        assert_eq!(reply.binary.examples, vec!["d"]);
        assert_eq!(reply.results(), 3);

        // Cut inside a file: context after the last kept match stays, up to `after`.
        let mut file = GrepFile {
            path: "f".into(),
            count: 3,
            lines: vec![
                line(1, false),
                line(2, true),
                line(3, true),
                line(4, false),
                line(5, false),
            ],
        };
        assert_eq!(cut_lines(&mut file, 1, 1), 1);
        assert_eq!(file.lines.len(), 2);
    }

    #[test]
    fn files_mode_caps_files() {
        let mut req = GrepRequest::new("/", "x");
        req.max_results = 1;
        req.output_mode = OutputMode::Count;
        let mut c = GrepCollector::new(&req);
        for name in ["b", "a"] {
            c.searched(
                name,
                FileSearch::Text(FileMatches {
                    count: 2,
                    lines: vec![],
                }),
            );
        }
        let reply = c.finish(Target::Dir, false);
        assert_eq!(reply.files.len(), 1);
        assert_eq!((reply.files[0].path.as_str(), reply.omitted), ("a", 1));
    }
}
