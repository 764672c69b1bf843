//! Reading what a job script printed: a header line marked with the call's nonce, then
//! records and bytes whose lengths the header gave.
//!
//! The header is the script's own: it follows `\0cmux-job:<nonce> `, which nothing
//! printed before the script ran (a login shell's rc file) can know, and the job's
//! output only ever comes after it, as exactly as many bytes as announced. So no
//! output can change what cmux believes about a job.

use crate::error::{Error, Result};

/// What follows the marker: the header's words and the bytes after its line.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    /// The header line's text after the marker.
    line: &'a str,
    /// Everything after the header line.
    pub(crate) rest: &'a [u8],
}

impl<'a> Reply<'a> {
    /// Finds the header marked with `nonce` in `stdout`; `None` when there is none.
    pub(crate) fn find(stdout: &'a [u8], nonce: &str) -> Option<Reply<'a>> {
        let marker = format!("\0cmux-job:{nonce} ");
        let start = find(stdout, marker.as_bytes())? + marker.len();
        let end = start + stdout[start..].iter().position(|&b| b == b'\n')?;
        let line = std::str::from_utf8(&stdout[start..end]).ok()?;
        Some(Reply {
            line,
            rest: &stdout[end + 1..],
        })
    }

    /// The header's first `n - 1` words and the rest of the line as the last one (a
    /// path, which may hold spaces).
    pub(crate) fn words(&self, n: usize) -> Vec<&'a str> {
        self.line.splitn(n, ' ').collect()
    }

    /// Takes the next record line (`job ...`) and then `len` bytes that its last word
    /// announces.
    pub(crate) fn next_record(&mut self) -> Result<Option<(Vec<&'a str>, &'a [u8])>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| malformed("a record without its end of line"))?;
        let line = std::str::from_utf8(&self.rest[..end])
            .map_err(|_| malformed("a record that is not text"))?;
        let words: Vec<&str> = line.split(' ').collect();
        let len: usize = words
            .last()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| malformed("a record without its length"))?;
        let after = &self.rest[end + 1..];
        if after.len() < len {
            return Err(malformed("a record shorter than announced"));
        }
        self.rest = &after[len..];
        Ok(Some((words, &after[..len])))
    }
}

/// A reply that does not follow the format: a bug or a host that changed the files.
pub(crate) fn malformed(what: &str) -> Error {
    Error::backend(
        "cmux jobs",
        format!("the host's reply has {what}; the job files may have been changed by hand"),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses a decimal number word of a reply.
pub(crate) fn number(word: Option<&&str>, what: &str) -> Result<u64> {
    word.and_then(|w| w.parse().ok())
        .ok_or_else(|| malformed(&format!("no valid {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marked_header_counts() {
        let out = b"rc noise\n\0cmux-job:other read x0\n\0cmux-job:n1 read r 12 /a b/out\nBYTES";
        let reply = Reply::find(out, "n1").expect("found");
        assert_eq!(reply.words(4), ["read", "r", "12", "/a b/out"]);
        assert_eq!(reply.rest, b"BYTES");
        assert!(Reply::find(b"\0cmux-job:n1 no newline", "n1").is_none());
        assert!(Reply::find(b"nothing", "n1").is_none());
    }

    #[test]
    fn records_take_exactly_their_bytes() {
        let out = b"\0cmux-job:n list 5\njob a r 3\nx\nyjob b x0 0\n";
        let mut reply = Reply::find(out, "n").expect("found");
        let (words, bytes) = reply.next_record().expect("ok").expect("first");
        assert_eq!((words, bytes), (vec!["job", "a", "r", "3"], &b"x\ny"[..]));
        let (words, bytes) = reply.next_record().expect("ok").expect("second");
        assert_eq!((words, bytes), (vec!["job", "b", "x0", "0"], &b""[..]));
        assert!(reply.next_record().expect("ok").is_none());
        let mut short = Reply::find(b"\0cmux-job:n list\njob a 9\nab", "n").expect("found");
        assert!(short.next_record().is_err());
    }
}
