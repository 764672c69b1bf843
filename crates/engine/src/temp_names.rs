//! The names of atomic writes' temporary files, shared by cmux-core (local and SFTP
//! writes) and the host helper, so every writer's left-overs are recognised — and
//! nothing else is — by every sweeper (the rule itself is `cmux_core::temp`'s).

/// Marker between the target's name and the random part of a temporary file name.
pub const TEMP_MARKER: &str = ".cmux-tmp.";

/// True for names of cmux temporary files: `.<name>.cmux-tmp.<16 hex digits>`, or the
/// older `.<name>.cmux-tmp.<pid>.<counter>`; nothing a user would plausibly name a file.
pub fn is_temp_name(entry: &str) -> bool {
    let Some(rest) = entry.strip_prefix('.') else {
        return false;
    };
    let Some((target, tail)) = rest.rsplit_once(TEMP_MARKER) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let random = tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit());
    let old = matches!(tail.split_once('.'), Some((pid, n)) if digits(pid) && digits(n));
    !target.is_empty() && (random || old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cmux_names_match() {
        assert!(is_temp_name(".f.txt.cmux-tmp.0123456789abcdef"));
        assert!(is_temp_name(".f.cmux-tmp.123.4"));
        assert!(!is_temp_name(".target.cmux-tmp.notapid.1"));
        assert!(!is_temp_name(".cmux-tmp.0123456789abcdef"));
        assert!(!is_temp_name("f.cmux-tmp.0123456789abcdef"));
        assert!(!is_temp_name(".f.cmux-tmp.0123456789abcde"));
    }
}
