//! Pure text helpers shared by the tools (unit-tested here, no I/O).

/// Cuts `bytes` (decoded lossily) to at most `max_chars` characters. Returns the kept
/// text and how many bytes of the input were cut.
pub(crate) fn cut_to_chars(bytes: &[u8], max_chars: usize) -> (String, u64) {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(max_chars) {
        None => (text.into_owned(), 0),
        Some((at, _)) => {
            // Count the cut in bytes of the original stream: the kept prefix re-encoded
            // may differ from the input only where the input was invalid UTF-8.
            let kept = text[..at].to_owned();
            let kept_input_bytes = prefix_input_len(bytes, kept.chars().count());
            (kept, (bytes.len() - kept_input_bytes) as u64)
        }
    }
}

/// Number of input bytes that decode (lossily) to the first `chars` characters.
fn prefix_input_len(bytes: &[u8], chars: usize) -> usize {
    let mut count = 0;
    let mut pos = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if count == chars {
                return pos;
            }
            count += 1;
            pos += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            if count == chars {
                return pos;
            }
            count += 1;
            pos += chunk.invalid().len();
        }
    }
    pos
}

pub(crate) use cmux_engine::text::{has_nul_prefix, truncate_line};

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
    fn cut_counts_bytes_and_respects_char_boundaries() {
        assert_eq!(cut_to_chars(b"hello", 10), ("hello".into(), 0));
        assert_eq!(cut_to_chars(b"hello", 3), ("hel".into(), 2));
        let s = "é✓abc";
        assert_eq!(cut_to_chars(s.as_bytes(), 2), ("é✓".into(), 3));
        assert_eq!(cut_to_chars(s.as_bytes(), 1), ("é".into(), 6));
        // Invalid bytes count as one replacement character each run.
        let (kept, cut) = cut_to_chars(b"a\xffbc", 2);
        assert_eq!(kept, "a\u{fffd}");
        assert_eq!(cut, 2);
    }

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
    fn names_and_plurals() {
        assert_eq!(display_name("a b"), "a b");
        assert_eq!(display_name("a\nb"), "\"a\\nb\"");
        assert_eq!(plural(1, "match", "matches"), "1 match");
        assert_eq!(plural(2, "match", "matches"), "2 matches");
    }
}
