//! Pure text helpers shared by the tools (unit-tested here, no I/O).

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
