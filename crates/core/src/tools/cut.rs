//! Keeping the beginning and the end of long command output, in characters.
//!
//! A build or test log puts its error at the end, so a stream too long to show keeps
//! its first characters (what ran) and its last (how it ended), and says how many
//! bytes were cut between them. Works on what [`Process::output`] kept: either the
//! whole stream, or its first bytes, a count of dropped bytes and its last bytes.
//!
//! [`Process::output`]: crate::Process::output

/// The shown parts of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ends {
    /// The whole stream when nothing was cut, else its first characters.
    pub(crate) head: String,
    /// The last characters when something was cut, else empty.
    pub(crate) tail: String,
    /// Bytes of the stream between `head` and `tail` (0 when nothing was cut).
    pub(crate) cut: u64,
}

/// The first `head_chars` and last `tail_chars` characters (invalid UTF-8 shown as
/// U+FFFD) of a stream kept as `kept`, then `dropped` unseen bytes, then `tail`.
pub(crate) fn keep_ends(
    kept: &[u8],
    dropped: u64,
    tail: &[u8],
    head_chars: usize,
    tail_chars: usize,
) -> Ends {
    let total = kept.len() as u64 + dropped + tail.len() as u64;
    let (head, tail) = if dropped > 0 || !tail.is_empty() {
        // Cut in the middle of the stream: a character split by the cut is not shown.
        (
            without_cut_char_at_end(kept),
            without_cut_char_at_start(tail),
        )
    } else {
        let at = prefix_input_len(kept, head_chars);
        (&kept[..at], &kept[at..])
    };
    let head = &head[..prefix_input_len(head, head_chars)];
    let tail_chars_there = lossy_char_count(tail);
    let tail = &tail[prefix_input_len(tail, tail_chars_there.saturating_sub(tail_chars))..];
    let cut = total - head.len() as u64 - tail.len() as u64;
    if cut == 0 {
        return Ends {
            head: String::from_utf8_lossy(kept).into_owned(),
            tail: String::new(),
            cut: 0,
        };
    }
    Ends {
        head: String::from_utf8_lossy(head).into_owned(),
        tail: String::from_utf8_lossy(tail).into_owned(),
        cut,
    }
}

/// Number of characters `bytes` decodes to lossily (each invalid run is one U+FFFD).
fn lossy_char_count(bytes: &[u8]) -> usize {
    bytes
        .utf8_chunks()
        .map(|chunk| chunk.valid().chars().count() + usize::from(!chunk.invalid().is_empty()))
        .sum()
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

/// `bytes` without a UTF-8 sequence that the cut left incomplete at its end.
fn without_cut_char_at_end(bytes: &[u8]) -> &[u8] {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: its lead byte is further back
        }
        let needed = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 1, // ASCII, or a byte no character starts with: not a cut character
        };
        return if needed > back {
            &bytes[..bytes.len() - back]
        } else {
            bytes
        };
    }
    bytes
}

/// `bytes` without the continuation bytes of a character the cut split at its start.
fn without_cut_char_at_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take(3)
        .take_while(|b| *b & 0xC0 == 0x80)
        .count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(head: &str, tail: &str, cut: u64) -> Ends {
        Ends {
            head: head.into(),
            tail: tail.into(),
            cut,
        }
    }

    #[test]
    fn short_streams_are_kept_whole() {
        assert_eq!(keep_ends(b"hello", 0, b"", 2, 3), ends("hello", "", 0));
        assert_eq!(keep_ends(b"", 0, b"", 2, 3), ends("", "", 0));
        assert_eq!(
            keep_ends("é✓abc".as_bytes(), 0, b"", 2, 3),
            ends("é✓abc", "", 0)
        );
    }

    #[test]
    fn a_long_whole_stream_keeps_both_ends() {
        assert_eq!(keep_ends(b"0123456789", 0, b"", 2, 3), ends("01", "789", 5));
        // Cuts count bytes of the input and respect character boundaries.
        assert_eq!(
            keep_ends("é✓xyzé✓".as_bytes(), 0, b"", 1, 2),
            ends("é", "é✓", 6)
        );
        // An invalid byte is one character.
        assert_eq!(
            keep_ends(b"a\xffbcde", 0, b"", 2, 1),
            ends("a\u{fffd}", "e", 3)
        );
    }

    #[test]
    fn a_stream_cut_by_the_capture_keeps_both_ends() {
        assert_eq!(
            keep_ends(b"0123", 100, b"wxyz", 2, 3),
            ends("01", "xyz", 103)
        );
        // Fewer characters than asked: everything captured is shown.
        assert_eq!(keep_ends(b"01", 7, b"yz", 5, 5), ends("01", "yz", 7));
        // Characters split by the capture's cut are dropped, not shown as U+FFFD.
        let e_acute = "é".as_bytes();
        let check = "✓".as_bytes();
        let head = [b"ab".as_slice(), &check[..2]].concat();
        let tail = [&e_acute[1..], b"cd".as_slice()].concat();
        assert_eq!(keep_ends(&head, 10, &tail, 5, 5), ends("ab", "cd", 13));
    }

    #[test]
    fn partial_characters_are_found() {
        let check = "✓".as_bytes();
        assert_eq!(without_cut_char_at_end(check), check);
        assert_eq!(without_cut_char_at_end(&check[..2]), b"");
        assert_eq!(without_cut_char_at_end(b"ab\xff"), b"ab\xff");
        assert_eq!(without_cut_char_at_start(&check[1..]), b"");
        assert_eq!(without_cut_char_at_start(b"abc"), b"abc");
    }
}
