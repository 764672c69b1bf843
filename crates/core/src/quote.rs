//! Shell quoting: the one place that turns words into POSIX `sh` source.
//!
//! Everything that builds a command line (exec over ssh, git on a host, the CLI's argv
//! mode) goes through here, so there is exactly one routine to get right.

/// Quotes `word` so a POSIX shell reads it back as exactly one word with exactly these
/// bytes. Words made only of safe characters are returned as they are.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b))
        && !word.starts_with('=')
    {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes every word and joins them with spaces: a command line that runs `words` as
/// an argv.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (i, word) in words.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(word.as_ref()));
    }
    out
}

/// True when `name` can be used as a shell variable name (`export NAME=...`).
pub fn is_valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(join(["echo", "a b", "c"]), "echo 'a b' c");
    }

    #[test]
    fn round_trips_through_bash() {
        let words = [
            "plain",
            "",
            "sp ace",
            "q'uo\"te",
            "$(x) `y` ;|&<>*?[]{}~!#",
            "-n",
            "\n\t",
            "é✓",
        ];
        let line = format!("printf '%s\\0' {}", join(words));
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("bash runs");
        let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(got[i], w.as_bytes(), "word {i}");
        }
    }

    #[test]
    fn env_names() {
        assert!(is_valid_env_name("PATH_2"));
        assert!(is_valid_env_name("_x"));
        assert!(!is_valid_env_name("2x"));
        assert!(!is_valid_env_name("A-B"));
        assert!(!is_valid_env_name(""));
    }
}
