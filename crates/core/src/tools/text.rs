//! Pure text helpers shared by the tools (unit-tested here, no I/O).

/// True when the start of a file looks binary: a NUL byte in the first 8 KiB.
pub(crate) fn has_nul_prefix(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

/// The line ending a text mostly uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineEnding {
    Lf,
    CrLf,
}

impl LineEnding {
    /// CRLF when at least half the line breaks of `text` are CRLF.
    pub(crate) fn detect(text: &str) -> LineEnding {
        let lf = text.matches('\n').count();
        let crlf = text.matches("\r\n").count();
        if crlf > 0 && crlf * 2 >= lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// `text` with its line breaks written in this ending.
    pub(crate) fn apply(self, text: &str) -> String {
        match self {
            LineEnding::Lf => text.to_owned(),
            LineEnding::CrLf => text.replace("\r\n", "\n").replace('\n', "\r\n"),
        }
    }
}

/// Shortens a line to `max` characters, saying how much was cut.
pub(crate) fn truncate_line(line: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(max) {
        None => line.into(),
        Some((at, _)) => {
            let rest = line[at..].chars().count();
            format!(
                "{} [... line truncated, {rest} more characters]",
                &line[..at]
            )
            .into()
        }
    }
}

/// Lines of `text` split on `\n`, without a trailing empty line after a final newline,
/// and with a trailing `\r` removed (CRLF files show like LF files).
pub(crate) fn lines(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// One numbered line as `cat -n` prints it: the number right-aligned in 6 columns,
/// a tab, the text.
pub(crate) fn numbered(number: usize, line: &str) -> String {
    format!("{number:>6}\t{line}")
}

/// A name made safe for one line of tool output: names holding control characters
/// (newlines, escapes) are shown quoted and escaped.
pub(crate) fn display_name(name: &str) -> String {
    if name.chars().any(char::is_control) {
        format!("{name:?}")
    } else {
        name.to_owned()
    }
}

/// "1 match" / "2 matches".
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitting_and_numbering() {
        assert_eq!(lines(""), Vec::<&str>::new());
        assert_eq!(lines("a\nb\n"), vec!["a", "b"]);
        assert_eq!(lines("a\nb"), vec!["a", "b"]);
        assert_eq!(lines("a\r\nb\r\n"), vec!["a", "b"]);
        assert_eq!(lines("\n"), vec![""]);
        assert_eq!(numbered(7, "x"), "     7\tx");
        assert_eq!(numbered(1234567, "x"), "1234567\tx");
    }

    #[test]
    fn long_lines_are_truncated_with_a_marker() {
        assert_eq!(truncate_line("abc", 3), "abc");
        assert_eq!(
            truncate_line("abcdé", 3),
            "abc [... line truncated, 2 more characters]"
        );
    }

    #[test]
    fn crlf_detection_and_conversion() {
        assert_eq!(LineEnding::detect("a\nb\n"), LineEnding::Lf);
        assert_eq!(LineEnding::detect("a\r\nb\r\n"), LineEnding::CrLf);
        assert_eq!(LineEnding::detect("a\r\nb\nc\n"), LineEnding::Lf);
        assert_eq!(LineEnding::detect("no newline"), LineEnding::Lf);
        assert_eq!(LineEnding::CrLf.apply("a\nb\r\nc"), "a\r\nb\r\nc");
        assert_eq!(LineEnding::Lf.apply("a\nb"), "a\nb");
    }

    #[test]
    fn binary_and_names() {
        assert!(has_nul_prefix(b"ab\0c"));
        assert!(!has_nul_prefix(b"abc"));
        let mut late = vec![b'a'; 9000];
        late.push(0);
        assert!(!has_nul_prefix(&late));
        assert_eq!(display_name("a b"), "a b");
        assert_eq!(display_name("a\nb"), "\"a\\nb\"");
        assert_eq!(plural(1, "match", "matches"), "1 match");
        assert_eq!(plural(2, "match", "matches"), "2 matches");
    }
}
