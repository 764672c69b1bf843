//! Pure text helpers shared by the tools (and by cmux-core's other tools).

/// Bytes at the start of a file looked at for a NUL, the mark of a binary file.
pub const BINARY_PREFIX_BYTES: usize = 8192;

/// True when the start of a file looks binary: a NUL byte in its first 8 KiB.
pub fn has_nul_prefix(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_PREFIX_BYTES)]).is_some()
}

/// The text of a file the tools treat as text: no NUL in its first 8 KiB and valid
/// UTF-8 throughout. `None` for a binary file.
pub fn as_text(bytes: &[u8]) -> Option<&str> {
    if has_nul_prefix(bytes) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Shortens a line to `max` characters, saying how much was cut.
pub fn truncate_line(line: &str, max: usize) -> std::borrow::Cow<'_, str> {
    // Fast path: a line of at most `max` bytes has at most `max` characters.
    if line.len() <= max {
        return line.into();
    }
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

/// A line without its trailing CR (CRLF files show like LF files).
pub fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// Lines of `text` split on `\n`, without a trailing empty line after a final newline,
/// and with a trailing `\r` removed.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    // An empty text has no line at all, not one empty line.
    let pieces = if text.is_empty() {
        None
    } else {
        Some(body.split('\n'))
    };
    pieces.into_iter().flatten().map(strip_cr)
}

/// The line ending a text mostly uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
}

impl LineEnding {
    /// CRLF when at least half the line breaks of `text` are CRLF.
    pub fn detect(text: &str) -> LineEnding {
        let lf = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let crlf = text.matches("\r\n").count();
        if crlf > 0 && crlf * 2 >= lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// `text` with its line breaks written in this ending.
    pub fn apply(self, text: &str) -> String {
        match self {
            LineEnding::Lf => text.to_owned(),
            LineEnding::CrLf => text.replace("\r\n", "\n").replace('\n', "\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitting() {
        assert_eq!(lines("").count(), 0);
        assert_eq!(lines("a\nb\n").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(lines("a\nb").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(lines("a\r\nb\r\n").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(lines("\n").collect::<Vec<_>>(), vec![""]);
    }

    #[test]
    fn long_lines_are_truncated_with_a_marker() {
        assert_eq!(truncate_line("abc", 3), "abc");
        assert_eq!(
            truncate_line("abcdé", 3),
            "abc [... line truncated, 2 more characters]"
        );
        // Multi-byte characters count as one.
        assert_eq!(truncate_line("ééé", 3), "ééé");
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
    fn binary_detection() {
        assert!(has_nul_prefix(b"ab\0c"));
        assert!(!has_nul_prefix(b"abc"));
        let mut late = vec![b'a'; 9000];
        late.push(0);
        assert!(!has_nul_prefix(&late));
        assert_eq!(as_text(b"abc"), Some("abc"));
        assert_eq!(as_text(b"a\xffc"), None);
        assert_eq!(as_text(b"a\0c"), None);
    }
}
