//! The per-file matcher: the lines of one file's content that match a pattern, with
//! their context. Used by [`grep_fs`](crate::grep_fs) on the local filesystem and by
//! cmux-core's generic path on content fetched from a host, so both give the same
//! answer.
//!
//! Semantics (kept from cmux's first grep): files with a NUL byte in their first 8 KiB
//! or that are not valid UTF-8 are binary and not searched. Lines are matched without
//! their line break and without a CR before it, so `^` and `$` anchor at line
//! boundaries. In multiline mode the pattern runs over the whole text, `.` matches
//! line breaks too, and every line a match touches is a matching line.
//!
//! Speed: instead of running the regex on each line, the pattern compiled for the
//! whole text (`^`/`$` at line breaks) finds the next candidate, and only the line it
//! starts in is checked with the per-line regex. A line that matches on its own always
//! has a whole-text match starting in it (or earlier), so no line is missed, and a
//! file without a match costs one scan of the regex's literal prefilter (memchr).
//! Patterns for which that does not hold (`\A`, `\z`, inline flags turned off such as
//! `(?-m)`) and texts with a lone CR go line by line.

use memchr::{memchr, memchr_iter, memrchr};
use regex::{Regex, RegexBuilder};

use crate::error::{Error, Result};
use crate::grep::{GrepLine, GrepRequest, OutputMode};
use crate::text::{as_text, strip_cr, truncate_line};

/// Characters shown of a matching or context line.
pub const MAX_LINE_CHARS: usize = 500;

/// What searching one file's content gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSearch {
    /// The content is binary (a NUL in its first 8 KiB, or not UTF-8): not searched.
    Binary,
    /// The content was searched.
    Text(FileMatches),
}

/// The matches in one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMatches {
    /// Matching lines in the file (in `files_with_matches` mode, 1 when it matched:
    /// the search stops at the first).
    pub count: usize,
    /// In `content` mode: the first matching lines (at most the searcher's limit) and
    /// their context lines, in line order. Empty in the other modes.
    pub lines: Vec<GrepLine>,
}

/// A compiled search: pattern, options and output mode.
#[derive(Clone, Debug)]
pub struct Searcher {
    /// The pattern as matched against one line.
    line: Regex,
    /// The pattern over a whole text with `^`/`$` at line breaks, to find candidates;
    /// `None` when candidates cannot be trusted for this pattern.
    whole: Option<Regex>,
    /// Multiline mode: the pattern over the whole text, `.` matching line breaks.
    multiline: Option<Regex>,
    before: usize,
    after: usize,
    mode: OutputMode,
    max_lines: usize,
}

/// A matching line: its 1-based number and byte range (without the line break).
#[derive(Clone, Copy, Debug)]
struct Hit {
    number: usize,
    start: usize,
    end: usize,
}

impl Searcher {
    /// Compiles the pattern and options of `req`. Keeps at most `req.max_results`
    /// matching lines per file.
    pub fn new(req: &GrepRequest) -> Result<Searcher> {
        let pattern = if req.fixed_strings {
            regex::escape(&req.pattern)
        } else {
            req.pattern.clone()
        };
        let build = |configure: &dyn Fn(&mut RegexBuilder) -> &mut RegexBuilder| {
            let mut builder = RegexBuilder::new(&pattern);
            builder.case_insensitive(req.case_insensitive);
            configure(&mut builder)
                .build()
                .map_err(|e| Error::InvalidRegex {
                    pattern: req.pattern.clone(),
                    message: e.to_string(),
                })
        };
        let line = build(&|b| b)?;
        let multiline = if req.multiline {
            Some(build(&|b| {
                b.multi_line(true).dot_matches_new_line(true).crlf(true)
            })?)
        } else {
            None
        };
        let whole = if !req.multiline && candidates_are_sound(&pattern) {
            Some(build(&|b| b.multi_line(true).crlf(true))?)
        } else {
            None
        };
        Ok(Searcher {
            line,
            whole,
            multiline,
            before: req.before_context(),
            after: req.after_context(),
            mode: req.output_mode,
            max_lines: req.max_results,
        })
    }

    /// Searches one file's content.
    pub fn search(&self, content: &[u8]) -> FileSearch {
        let Some(text) = as_text(content) else {
            return FileSearch::Binary;
        };
        let keep = match self.mode {
            OutputMode::Content => self.max_lines,
            OutputMode::FilesWithMatches | OutputMode::Count => 0,
        };
        let stop_at_first = self.mode == OutputMode::FilesWithMatches;
        let mut hits: Vec<Hit> = Vec::new();
        let mut count = 0;
        let mut on_hit = |hit: Hit| {
            count += 1;
            if hits.len() < keep {
                hits.push(hit);
            }
            !stop_at_first
        };
        if let Some(re) = &self.multiline {
            multiline_hits(re, text, &mut on_hit);
        } else {
            match &self.whole {
                Some(whole) if !has_lone_cr(text.as_bytes()) => {
                    candidate_hits(whole, &self.line, text, &mut on_hit)
                }
                _ => line_by_line_hits(&self.line, text, &mut on_hit),
            }
        }
        let lines = if hits.is_empty() {
            Vec::new()
        } else {
            with_context(text, &hits, self.before, self.after)
        };
        FileSearch::Text(FileMatches { count, lines })
    }
}

/// True when a whole-text match is found for every line that matches on its own (see
/// the module docs): not for `\A`/`\z` (they anchor at the text's ends, not the
/// line's) nor for inline flags switched off (`(?-m)` would undo the multi-line mode).
fn candidates_are_sound(pattern: &str) -> bool {
    if pattern.contains("\\A") || pattern.contains("\\z") {
        return false;
    }
    let mut rest = pattern;
    while let Some(at) = rest.find("(?") {
        rest = &rest[at + 2..];
        let flags = rest.split([':', ')']).next().unwrap_or_default();
        if flags.contains('-') {
            return false;
        }
    }
    true
}

/// True when `text` has a CR not followed by LF (where `.` in CRLF mode would differ).
fn has_lone_cr(text: &[u8]) -> bool {
    memchr_iter(b'\r', text).any(|i| text.get(i + 1) != Some(&b'\n'))
}

/// The end (exclusive, the position of its `\n` or the text's end) of the line that
/// starts at `start`.
fn line_end(text: &str, start: usize) -> usize {
    memchr(b'\n', &text.as_bytes()[start..]).map_or(text.len(), |i| start + i)
}

/// Tracks line numbers while moving forward through a text.
struct LineCursor {
    /// Start of the current line.
    start: usize,
    /// Its 1-based number.
    number: usize,
}

impl LineCursor {
    fn new() -> LineCursor {
        LineCursor {
            start: 0,
            number: 1,
        }
    }

    /// Moves to the line holding byte `at` (at or after the current line's start).
    fn seek(&mut self, text: &str, at: usize) {
        let gap = &text.as_bytes()[self.start..at];
        if let Some(last) = memrchr(b'\n', gap) {
            self.number += memchr_iter(b'\n', &gap[..last]).count() + 1;
            self.start += last + 1;
        }
    }

    /// True when the current line exists: it does not start at the end of a text
    /// that ends with a line break (or is empty).
    fn exists(&self, text: &str) -> bool {
        self.start < text.len()
    }
}

/// Per-line matching of every line: the reference semantics.
fn line_by_line_hits(re: &Regex, text: &str, on_hit: &mut dyn FnMut(Hit) -> bool) {
    let mut start = 0;
    let mut number = 1;
    while start < text.len() {
        let end = line_end(text, start);
        if re.is_match(strip_cr(&text[start..end])) && !on_hit(Hit { number, start, end }) {
            return;
        }
        start = end + 1;
        number += 1;
    }
}

/// Whole-text candidates confirmed per line (see the module docs).
fn candidate_hits(whole: &Regex, line: &Regex, text: &str, on_hit: &mut dyn FnMut(Hit) -> bool) {
    let mut cursor = LineCursor::new();
    while cursor.start < text.len() {
        let Some(found) = whole.find_at(text, cursor.start) else {
            return;
        };
        cursor.seek(text, found.start());
        if !cursor.exists(text) {
            return;
        }
        let end = line_end(text, cursor.start);
        if line.is_match(strip_cr(&text[cursor.start..end]))
            && !on_hit(Hit {
                number: cursor.number,
                start: cursor.start,
                end,
            })
        {
            return;
        }
        cursor.start = end + 1;
        cursor.number += 1;
    }
}

/// Every line touched by a match of the pattern over the whole text.
fn multiline_hits(re: &Regex, text: &str, on_hit: &mut dyn FnMut(Hit) -> bool) {
    let mut cursor = LineCursor::new();
    // Lines before this number were reported already.
    let mut next_unreported = 1;
    for found in re.find_iter(text) {
        // The last byte the match covers (its start for an empty match).
        let last = found.end().saturating_sub(1).max(found.start());
        cursor.seek(text, found.start());
        while cursor.exists(text) && cursor.start <= last {
            let end = line_end(text, cursor.start);
            if cursor.number >= next_unreported {
                next_unreported = cursor.number + 1;
                let hit = Hit {
                    number: cursor.number,
                    start: cursor.start,
                    end,
                };
                if !on_hit(hit) {
                    return;
                }
            }
            if end >= last || end == text.len() {
                break;
            }
            cursor.start = end + 1;
            cursor.number += 1;
        }
    }
}

/// One output line.
fn grep_line(text: &str, number: usize, start: usize, end: usize, context: bool) -> GrepLine {
    GrepLine {
        number,
        text: truncate_line(strip_cr(&text[start..end]), MAX_LINE_CHARS).into_owned(),
        context,
    }
}

/// The matching lines with up to `before` lines before and `after` lines after each,
/// every line once, in order.
fn with_context(text: &str, hits: &[Hit], before: usize, after: usize) -> Vec<GrepLine> {
    let mut out = Vec::with_capacity(hits.len() * (1 + before + after));
    // The first line not shown yet: its number and start.
    let mut free_number = 1;
    let mut free_start = 0;
    // After-context lines still owed to the previous match.
    let mut budget = 0;
    for hit in hits {
        // After-context of the previous match, up to this match.
        while budget > 0 && free_number < hit.number {
            let end = line_end(text, free_start);
            out.push(grep_line(text, free_number, free_start, end, true));
            free_number += 1;
            free_start = end + 1;
            budget -= 1;
        }
        // Before-context, not reaching back over lines already shown.
        let first = hit.number.saturating_sub(before).max(free_number);
        if first < hit.number {
            let mut start = hit.start;
            for _ in first..hit.number {
                // `start - 1` is the line break that ends the previous line.
                start = memrchr(b'\n', &text.as_bytes()[..start - 1]).map_or(0, |i| i + 1);
            }
            for number in first..hit.number {
                let end = line_end(text, start);
                out.push(grep_line(text, number, start, end, true));
                start = end + 1;
            }
        }
        out.push(grep_line(text, hit.number, hit.start, hit.end, false));
        free_number = hit.number + 1;
        free_start = hit.end + 1;
        budget = after;
    }
    for _ in 0..budget {
        if free_start >= text.len() {
            break;
        }
        let end = line_end(text, free_start);
        out.push(grep_line(text, free_number, free_start, end, true));
        free_number += 1;
        free_start = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pattern: &str) -> GrepRequest {
        GrepRequest::new("/", pattern)
    }

    fn shown(s: &Searcher, text: &[u8]) -> Vec<String> {
        match s.search(text) {
            FileSearch::Binary => vec!["binary".into()],
            FileSearch::Text(m) => m
                .lines
                .iter()
                .map(|l| {
                    format!(
                        "{}{}{}",
                        l.number,
                        if l.context { '-' } else { ':' },
                        l.text
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn matches_lines_and_skips_binary() {
        let s = Searcher::new(&req("fo+$")).expect("regex");
        assert_eq!(shown(&s, b"foo\nbar\r\nxfoo\r\n"), vec!["1:foo", "3:xfoo"]);
        assert_eq!(shown(&s, b"foo\0"), vec!["binary"]);
        assert_eq!(shown(&s, b"foo\xff"), vec!["binary"]);
        let s = Searcher::new(&req("^bar")).expect("regex");
        assert_eq!(shown(&s, b"foo\nbar\n"), vec!["2:bar"]);
        // A match across lines in the whole text is no line match.
        let s = Searcher::new(&req(r"o\sb")).expect("regex");
        assert_eq!(shown(&s, b"foo\nbar\n"), Vec::<String>::new());
        // \A anchors at each line (line-by-line path).
        let s = Searcher::new(&req(r"\Ab")).expect("regex");
        assert_eq!(shown(&s, b"foo\nbar\n"), vec!["2:bar"]);
        // A lone CR: `.` matches it in a line.
        let s = Searcher::new(&req("a.b")).expect("regex");
        assert_eq!(shown(&s, b"x\na\rb\n"), vec!["2:a\rb"]);
        let s = Searcher::new(&req("(?-m)^b")).expect("regex");
        assert_eq!(shown(&s, b"a\nb\n"), vec!["2:b"]);
    }

    #[test]
    fn options() {
        let mut r = req("HELLO");
        r.case_insensitive = true;
        let s = Searcher::new(&r).expect("regex");
        assert_eq!(shown(&s, b"x\nhello\n"), vec!["2:hello"]);
        let mut r = req("a.(b");
        r.fixed_strings = true;
        let s = Searcher::new(&r).expect("fixed");
        assert_eq!(shown(&s, b"a.(b\naxb\n"), vec!["1:a.(b"]);
        assert!(Searcher::new(&req("a(")).is_err());
        let mut r = req("start.*end");
        r.multiline = true;
        let s = Searcher::new(&r).expect("multiline");
        assert_eq!(
            shown(&s, b"0\nstart\n1\nend\n2\n"),
            vec!["2:start", "3:1", "4:end"]
        );
        let mut r = req("x");
        r.output_mode = OutputMode::Count;
        let s = Searcher::new(&r).expect("count");
        assert_eq!(
            s.search(b"x\ny\nxx\n"),
            FileSearch::Text(FileMatches {
                count: 2,
                lines: vec![]
            })
        );
        r.output_mode = OutputMode::FilesWithMatches;
        let s = Searcher::new(&r).expect("files");
        assert_eq!(
            s.search(b"x\ny\nxx\n"),
            FileSearch::Text(FileMatches {
                count: 1,
                lines: vec![]
            })
        );
    }

    #[test]
    fn context_lines_merge_without_repeats() {
        let text = b"1\n2\nm3\n4\n5\n6\nm7\nm8\n9\n10\n11\n";
        let mut r = req("^m");
        r.context = Some(1);
        let s = Searcher::new(&r).expect("regex");
        assert_eq!(
            shown(&s, text),
            vec!["2-2", "3:m3", "4-4", "6-6", "7:m7", "8:m8", "9-9"]
        );
        let mut r = req("^m");
        r.before = Some(3);
        let s = Searcher::new(&r).expect("regex");
        assert_eq!(
            shown(&s, text),
            vec!["1-1", "2-2", "3:m3", "4-4", "5-5", "6-6", "7:m7", "8:m8"]
        );
        let mut r = req("^m");
        r.after = Some(5);
        let s = Searcher::new(&r).expect("regex");
        assert_eq!(
            shown(&s, text),
            vec!["3:m3", "4-4", "5-5", "6-6", "7:m7", "8:m8", "9-9", "10-10", "11-11"]
        );
        // Context at the very start and end, CRLF stripped.
        let mut r = req("x");
        r.context = Some(2);
        let s = Searcher::new(&r).expect("regex");
        assert_eq!(shown(&s, b"x\r\ny\r\n"), vec!["1:x", "2-y"]);
        assert_eq!(shown(&s, b"a\nx"), vec!["1-a", "2:x"]);
    }

    #[test]
    fn the_per_file_limit_keeps_counting() {
        let mut r = req("x");
        r.max_results = 2;
        let s = Searcher::new(&r).expect("regex");
        match s.search(b"x\nx\nx\n") {
            FileSearch::Text(m) => assert_eq!((m.count, m.lines.len()), (3, 2)),
            FileSearch::Binary => panic!("not binary"),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The whole-text candidates find exactly the lines the per-line reference
        /// finds, on texts made of the characters line handling cares about.
        #[test]
        fn candidates_agree_with_line_by_line(
            text in "[ab \r\n]{0,40}",
            pattern in proptest::sample::select(vec![
                "a", "^a", "a$", "^$", r"\s", r"\s$", "b+", r"a\b", r"\Bb", "^", "$",
                r"[^a]", r"a\s*$", "", r"(?s)a.b", r"^\s*$", "a|^b", r"b\r", "(?m)^b",
            ]),
        ) {
            let line = Regex::new(pattern).expect("regex");
            let whole = RegexBuilder::new(pattern).multi_line(true).crlf(true).build().expect("regex");
            let mut reference = Vec::new();
            line_by_line_hits(&line, &text, &mut |h| { reference.push(h.number); true });
            if !has_lone_cr(text.as_bytes()) {
                let mut fast = Vec::new();
                candidate_hits(&whole, &line, &text, &mut |h| { fast.push(h.number); true });
                proptest::prop_assert_eq!(fast, reference);
            }
        }
    }
}
