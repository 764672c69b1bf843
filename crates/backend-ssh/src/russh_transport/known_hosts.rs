//! OpenSSH-compatible host key verification against `known_hosts` files.
//!
//! The policy mirrors OpenSSH (`hostfile.c`, `match.c`, `sshconnect.c`):
//!
//! - Each line is `[marker] hostpatterns keytype base64 [comment]`, fields
//!   separated by runs of spaces or tabs. Blank lines and lines whose first
//!   non-blank character is `#` are comments. Malformed lines (bad marker,
//!   missing fields, undecodable key, key type that disagrees with the key
//!   blob) are skipped, as are lines longer than [`MAX_LINE`] bytes.
//! - Host patterns are a comma-separated list of patterns with `*` and `?`
//!   wildcards and `!` negation, matched case-insensitively; a negated match
//!   means the line does not apply to that name even if another pattern
//!   matches. `[host]:port` forms are literal text matched the same way.
//! - A host field starting with `|` is a single hashed name,
//!   `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`; as in OpenSSH it is not
//!   a comma-separated list.
//! - `@cert-authority` lines are ignored: cmux does not accept host
//!   certificates, and OpenSSH itself only consults these lines for
//!   certificate host keys, so for the plain keys we verify this is exactly
//!   OpenSSH's behaviour.
//! - `@revoked` lines reject their key whatever their host patterns say (a
//!   little stricter than OpenSSH, which only honours the revocation when the
//!   patterns also match the host; the customary pattern is `*` anyway).
//! - A host that is on record only with keys that are not the presented one
//!   is [`Verdict::Changed`], **including when the recorded keys are of
//!   another type** (e.g. an RSA key on record, an Ed25519 key presented).
//!   That is OpenSSH's `HOST_CHANGED` ("Offending RSA key in
//!   ~/.ssh/known_hosts:3"), which fails under any `StrictHostKeyChecking`
//!   other than `no`. Callers avoid that situation in the common case by
//!   preferring the algorithms of [`known_algorithms`] during key exchange,
//!   as OpenSSH orders `HostKeyAlgorithms`.
//!
//! Unreadable, missing or non-regular files (directories, FIFOs, devices)
//! are skipped when reading, so `UserKnownHostsFile /dev/null` reads as
//! empty.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// Lines longer than this many bytes are skipped rather than buffered, so a
/// binary or hostile file cannot make us allocate without bound. The longest
/// legitimate key line (a 16384-bit RSA key) is under 3 KiB.
const MAX_LINE: usize = 1 << 20;

/// Length of an HMAC-SHA1 output, and of the salt of hashed host names.
const SHA1_LEN: usize = 20;

/// What the known_hosts files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line naming this host holds this exact key.
    Known,
    /// No line names this host, with this key type or any other.
    Unknown,
    /// Lines name this host, but none with this key: either another key of
    /// the same type or (as OpenSSH, which reports "Offending <TYPE> key")
    /// only keys of other types. `file` and `line` (1-based) locate the last
    /// such line in file order, as OpenSSH reports it.
    Changed {
        /// The known_hosts file holding the offending line.
        file: PathBuf,
        /// The 1-based line number of the offending line.
        line: usize,
        /// The `SHA256:...` fingerprint of the key on that line.
        recorded_fingerprint: String,
    },
    /// An `@revoked` line, in any file and whatever its host patterns,
    /// holds this key. Takes precedence over every other verdict.
    Revoked {
        /// The known_hosts file holding the first such line.
        file: PathBuf,
        /// The 1-based line number of that line.
        line: usize,
    },
}

/// Checks `key` for a host known as any of `host_names` (usually the single
/// name of [`host_name_for`]) against the known_hosts `files`, in order.
pub(crate) fn check(files: &[PathBuf], host_names: &[String], key: &PublicKey) -> Verdict {
    let names = lowercase_names(host_names);
    let mut revoked: Option<(PathBuf, usize)> = None;
    let mut known = false;
    let mut changed: Option<(PathBuf, usize, String)> = None;
    for file in files {
        for_each_entry(file, |line, entry| match entry.marker {
            Marker::Revoked => {
                if revoked.is_none() && entry.key().is_some_and(|k| same_key(&k, key)) {
                    revoked = Some((file.clone(), line));
                }
            }
            Marker::CertAuthority => {}
            Marker::None => {
                if known || !host_matches(entry.hosts, &names) {
                    return;
                }
                let Some(recorded) = entry.key() else { return };
                if same_key(&recorded, key) {
                    known = true;
                } else {
                    changed = Some((file.clone(), line, fingerprint(&recorded)));
                }
            }
        });
    }
    if let Some((file, line)) = revoked {
        Verdict::Revoked { file, line }
    } else if known {
        Verdict::Known
    } else if let Some((file, line, recorded_fingerprint)) = changed {
        Verdict::Changed {
            file,
            line,
            recorded_fingerprint,
        }
    } else {
        Verdict::Unknown
    }
}

/// The key algorithms on record for the host in `files` (plain host key
/// lines only), deduplicated in order of first appearance, so the caller can
/// prefer them when negotiating host key algorithms as OpenSSH does.
///
/// The result is a list of host key *algorithms* to negotiate, not key
/// types: an RSA key on record yields `rsa-sha2-512` then `rsa-sha2-256`
/// (OpenSSH's order), never the SHA-1 `ssh-rsa`, which OpenSSH no longer
/// offers by default and which must not be promoted to the front.
pub(crate) fn known_algorithms(files: &[PathBuf], host_names: &[String]) -> Vec<Algorithm> {
    let names = lowercase_names(host_names);
    let mut algorithms = Vec::new();
    for file in files {
        for_each_entry(file, |_, entry| {
            if entry.marker != Marker::None || !host_matches(entry.hosts, &names) {
                return;
            }
            let Some(key) = entry.key() else { return };
            let negotiable = match key.algorithm() {
                Algorithm::Rsa { .. } => vec![
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha512),
                    },
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha256),
                    },
                ],
                other => vec![other],
            };
            for algorithm in negotiable {
                if !algorithms.contains(&algorithm) {
                    algorithms.push(algorithm);
                }
            }
        });
    }
    algorithms
}

/// The name a host is recorded under, as OpenSSH computes it: the
/// `HostKeyAlias` as is when set; otherwise the (lowercased, as `ssh` does)
/// host name for port 22 and `[hostname]:port` for any other port.
pub(crate) fn host_name_for(host_key_alias: Option<&str>, hostname: &str, port: u16) -> String {
    if let Some(alias) = host_key_alias {
        return alias.to_owned();
    }
    let hostname = hostname.to_ascii_lowercase();
    if port == 22 {
        hostname
    } else {
        format!("[{hostname}]:{port}")
    }
}

/// Appends `host_name keytype base64` (or, when `hashed`,
/// `|1|salt|hash keytype base64`) to `file` as OpenSSH does: the name is
/// lowercased; a missing file is created with mode 0600 (and missing
/// directories with 0700), an existing file keeps its mode; a newline is
/// written first when the file does not end with one; the line goes out in
/// one `O_APPEND` write so concurrent writers do not tear lines. Symbolic
/// links are followed, as OpenSSH's `fopen(path, "a")` does (dotfile managers
/// commonly link `~/.ssh/known_hosts`).
///
/// Names that are empty or contain whitespace or control characters are
/// refused (they could inject lines), and so, when not hashing, are names
/// that would read back as patterns or markers (`,` `*` `?`, or a leading
/// `!` `|` `#` `@`).
pub(crate) fn learn(file: &Path, host_name: &str, key: &PublicKey, hashed: bool) -> io::Result<()> {
    let name = host_name.to_ascii_lowercase();
    validate_name(&name, hashed)?;
    let host_field = if hashed { hash_name(&name)? } else { name };
    let key_field = PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .map_err(io::Error::other)?;

    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut out = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;

    let mut line = String::with_capacity(host_field.len() + key_field.len() + 3);
    if !ends_with_newline(&out)? {
        line.push('\n');
    }
    line.push_str(&host_field);
    line.push(' ');
    line.push_str(&key_field);
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// The `SHA256:...` fingerprint of `key`, as `ssh` and `ssh-keygen -l` show it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The marker at the start of a known_hosts line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// A plain host key line.
    None,
    /// `@cert-authority`: a CA for host certificates (ignored here).
    CertAuthority,
    /// `@revoked`: the key must never be accepted.
    Revoked,
}

/// One syntactically complete known_hosts line, key not yet decoded.
struct Entry<'a> {
    /// The line's marker.
    marker: Marker,
    /// The host patterns field.
    hosts: &'a [u8],
    /// The key type field.
    keytype: &'a [u8],
    /// The base64 key blob field.
    blob: &'a [u8],
}

impl Entry<'_> {
    /// Decodes the key; `None` when the blob is invalid or its type is not
    /// the one the line names (OpenSSH rejects such lines too).
    fn key(&self) -> Option<PublicKey> {
        let blob = std::str::from_utf8(self.blob).ok()?;
        let key = russh::keys::parse_public_key_base64(blob).ok()?;
        (key.algorithm().as_str().as_bytes() == self.keytype).then_some(key)
    }
}

/// Whether two keys are the same public key (comments do not count).
fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// The names to look up, lowercased as OpenSSH's are.
fn lowercase_names(host_names: &[String]) -> Vec<Vec<u8>> {
    host_names
        .iter()
        .map(|n| n.to_ascii_lowercase().into_bytes())
        .collect()
}

/// Whether the host field of a line matches any of `names`.
fn host_matches(hosts: &[u8], names: &[Vec<u8>]) -> bool {
    names.iter().any(|name| {
        if hosts.first() == Some(&b'|') {
            hashed_matches(name, hosts)
        } else {
            pattern_list_matches(name, hosts) == ListMatch::Positive
        }
    })
}

/// Whether `field` (`|1|salt|hash`) is the hash of `name`. Anything not in
/// that exact shape, with 20-byte salt and hash, never matches.
fn hashed_matches(name: &[u8], field: &[u8]) -> bool {
    let Some(rest) = field.strip_prefix(b"|1|") else {
        return false;
    };
    let mut parts = rest.splitn(2, |&b| b == b'|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt), BASE64.decode(hash)) else {
        return false;
    };
    if salt.len() != SHA1_LEN || hash.len() != SHA1_LEN {
        return false;
    }
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name).verify_slice(&hash).is_ok()
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` with a fresh random salt.
fn hash_name(name: &str) -> io::Result<String> {
    let salt = random_salt()?;
    let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt)
        .map_err(|_| io::Error::other("HMAC-SHA1 rejected the salt"))?
        .chain_update(name.as_bytes())
        .finalize()
        .into_bytes();
    Ok(format!(
        "|1|{}|{}",
        BASE64.encode(&salt),
        BASE64.encode(&mac)
    ))
}

/// 20 bytes from the operating system's CSPRNG.
fn random_salt() -> io::Result<[u8; SHA1_LEN]> {
    use russh::keys::ssh_key::rand_core::Rng as _;
    let mut salt = [0u8; SHA1_LEN];
    russh::keys::key::safe_rng().fill_bytes(&mut salt);
    Ok(salt)
}

/// Refuses names that could corrupt the file or read back as something else.
fn validate_name(name: &str, hashed: bool) -> io::Result<()> {
    let bad = name.is_empty()
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
        || (!hashed && (name.contains([',', '*', '?']) || name.starts_with(['!', '|', '#', '@'])));
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to record host name {name:?} in known_hosts"),
        ));
    }
    Ok(())
}

/// Whether a regular file is empty or ends with `\n` (other files, such as
/// `/dev/null`, count as ending with one).
fn ends_with_newline(file: &File) -> io::Result<bool> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(true);
    }
    let Some(last) = meta.len().checked_sub(1) else {
        return Ok(true);
    };
    let mut byte = [0u8; 1];
    match file.read_at(&mut byte, last)? {
        1 => Ok(byte == [b'\n']),
        _ => Ok(true),
    }
}

/// Outcome of matching a name against a comma-separated pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMatch {
    /// No pattern matched.
    None,
    /// A positive pattern matched and no negated one did.
    Positive,
    /// A negated pattern matched: the list does not apply.
    Negated,
}

/// OpenSSH's `match_pattern_list`, case-insensitive.
fn pattern_list_matches(name: &[u8], list: &[u8]) -> ListMatch {
    let mut positive = false;
    for pattern in list.split(|&b| b == b',') {
        let (negated, pattern) = match pattern.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if glob_matches(name, pattern) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::None
    }
}

/// `*`/`?` wildcard matching, ASCII case-insensitive, in O(len(text) *
/// len(pattern)) worst case (no exponential backtracking on hostile
/// patterns such as `*a*a*a*a*b`).
fn glob_matches(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0usize, 0usize);
    // Position after the last `*` seen, and the text position it resumes at.
    let mut resume: Option<(usize, usize)> = None;
    while let Some(&tc) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            Some(&pc) if pc == b'?' || pc.eq_ignore_ascii_case(&tc) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((rp, rt)) => {
                p = rp;
                t = rt + 1;
                resume = Some((rp, rt + 1));
            }
            None => return false,
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Splits off the next field: skips leading spaces and tabs, then returns
/// the run up to the next space or tab and the remainder.
fn next_field(s: &[u8]) -> (&[u8], &[u8]) {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let s = s.get(start..).unwrap_or_default();
    let end = s
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(s.len());
    (
        s.get(..end).unwrap_or_default(),
        s.get(end..).unwrap_or_default(),
    )
}

/// Parses one line (without its `\n`); `None` for comments, blank and
/// malformed lines.
fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let (first, mut rest) = next_field(line);
    if first.is_empty() || first.first() == Some(&b'#') {
        return None;
    }
    let mut marker = Marker::None;
    let mut hosts = first;
    if first.first() == Some(&b'@') {
        marker = match first {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return None,
        };
        (hosts, rest) = next_field(rest);
    }
    let (keytype, rest) = next_field(rest);
    // The blob ends at any whitespace, so CRLF line endings work as in
    // OpenSSH (whose base64 decoder skips the `\r`).
    let rest = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| rest.get(i..))
        .unwrap_or_default();
    let end = rest
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let blob = rest.get(..end).unwrap_or_default();
    if hosts.is_empty() || keytype.is_empty() || blob.is_empty() || keytype.first() == Some(&b'#') {
        return None;
    }
    Some(Entry {
        marker,
        hosts,
        keytype,
        blob,
    })
}

/// Calls `f(line_number, entry)` for each well-formed line of `path`.
/// Missing, unreadable and non-regular files are skipped; a read error stops
/// the file where it happened.
fn for_each_entry(path: &Path, mut f: impl FnMut(usize, Entry<'_>)) {
    for_each_line(path, |number, line| {
        if let Some(entry) = parse_line(line) {
            f(number, entry);
        }
    });
}

/// Calls `f(line_number, line)` for each line of `path` (1-based numbers,
/// `\n` stripped), skipping lines over [`MAX_LINE`] bytes without buffering
/// them.
fn for_each_line(path: &Path, mut f: impl FnMut(usize, &[u8])) {
    let Ok(file) = File::open(path) else { return };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return;
    }
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut overlong = false;
    let mut pending = false;
    let mut number = 0usize;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if buf.is_empty() {
            if pending && !overlong {
                f(number.saturating_add(1), &line);
            }
            break;
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = match newline {
            Some(i) => buf.get(..i).unwrap_or_default(),
            None => buf,
        };
        if !overlong {
            if line.len().saturating_add(chunk.len()) > MAX_LINE {
                overlong = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = newline.map_or(buf.len(), |i| i + 1);
        reader.consume(consumed);
        pending = true;
        if newline.is_some() {
            number = number.saturating_add(1);
            if !overlong {
                f(number, &line);
            }
            line.clear();
            overlong = false;
            pending = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, unique scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cmux-known-hosts-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Generates a key pair with ssh-keygen and returns its public key and
    /// its `keytype base64` text.
    fn keygen(dir: &Path, name: &str, kind: &str) -> (PublicKey, String) {
        let path = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", "", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        let key = PublicKey::from_openssh(text.trim()).unwrap();
        let mut fields = text.split_whitespace();
        let line = format!("{} {}", fields.next().unwrap(), fields.next().unwrap());
        (key, line)
    }

    fn write(path: &Path, contents: &str) {
        std::fs::write(path, contents).unwrap();
    }

    fn names(name: &str) -> Vec<String> {
        vec![name.to_owned()]
    }

    #[test]
    fn plain_match_is_known_case_insensitively() {
        let dir = scratch("plain");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        write(&kh, &format!("other.example,Example.COM {text} comment\n"));
        let files = [kh];
        assert_eq!(check(&files, &names("example.com"), &key), Verdict::Known);
        assert_eq!(check(&files, &names("EXAMPLE.com"), &key), Verdict::Known);
        assert_eq!(check(&files, &names("example.org"), &key), Verdict::Unknown);
        assert_eq!(check(&files, &names("example.co"), &key), Verdict::Unknown);
    }

    #[test]
    fn bracketed_port_form_matches_literally() {
        let dir = scratch("port");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        write(&kh, &format!("[host.example]:2222 {text}\n"));
        let files = [kh];
        let with_port = host_name_for(None, "Host.Example", 2222);
        assert_eq!(with_port, "[host.example]:2222");
        assert_eq!(check(&files, &[with_port], &key), Verdict::Known);
        let default_port = host_name_for(None, "host.example", 22);
        assert_eq!(check(&files, &[default_port], &key), Verdict::Unknown);
        let other_port = host_name_for(None, "host.example", 2223);
        assert_eq!(check(&files, &[other_port], &key), Verdict::Unknown);
    }

    #[test]
    fn host_name_for_follows_openssh() {
        assert_eq!(host_name_for(Some("MyAlias"), "h", 2222), "MyAlias");
        assert_eq!(host_name_for(None, "H.example", 22), "h.example");
        assert_eq!(host_name_for(None, "::1", 2200), "[::1]:2200");
    }

    #[test]
    fn hashed_entry_from_ssh_keygen_matches() {
        let dir = scratch("hashed");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        write(
            &kh,
            &format!("# header\nhashme.example {text}\n[hashme.example]:2022 {text}\n"),
        );
        let output = Command::new("ssh-keygen")
            .args(["-q", "-H", "-f"])
            .arg(&kh)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let hashed = std::fs::read_to_string(&kh).unwrap();
        assert!(hashed.contains("|1|"), "{hashed}");
        assert!(!hashed.contains("hashme"), "{hashed}");
        let files = [kh];
        assert_eq!(
            check(&files, &names("hashme.example"), &key),
            Verdict::Known
        );
        assert_eq!(
            check(&files, &names("HashMe.Example"), &key),
            Verdict::Known
        );
        let port = host_name_for(None, "hashme.example", 2022);
        assert_eq!(check(&files, &[port], &key), Verdict::Known);
        assert_eq!(
            check(&files, &names("other.example"), &key),
            Verdict::Unknown
        );
    }

    #[test]
    fn learn_hashed_is_accepted_by_ssh_keygen() {
        let dir = scratch("learn-hashed");
        let (key, _) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        let name = host_name_for(None, "learned.example", 2200);
        learn(&kh, &name, &key, true).unwrap();
        let contents = std::fs::read_to_string(&kh).unwrap();
        assert!(contents.starts_with("|1|"), "{contents}");
        assert!(!contents.contains("learned"), "{contents}");
        let output = Command::new("ssh-keygen")
            .arg("-F")
            .arg(&name)
            .arg("-f")
            .arg(&kh)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let miss = Command::new("ssh-keygen")
            .args(["-F", "unlearned.example", "-f"])
            .arg(&kh)
            .output()
            .unwrap();
        assert!(!miss.status.success());
        assert_eq!(check(&[kh], &[name], &key), Verdict::Known);
    }

    #[test]
    fn wildcards_and_negation() {
        let dir = scratch("wild");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        write(
            &kh,
            &format!("*.corp.example,!bad.corp.example,web?? {text}\n"),
        );
        let files = [kh];
        let verdict = |name: &str| check(&files, &names(name), &key);
        assert_eq!(verdict("a.corp.example"), Verdict::Known);
        assert_eq!(verdict("x.y.corp.example"), Verdict::Known);
        assert_eq!(verdict("web01"), Verdict::Known);
        assert_eq!(verdict("web1"), Verdict::Unknown);
        assert_eq!(verdict("corp.example"), Verdict::Unknown);
        assert_eq!(verdict("bad.corp.example"), Verdict::Unknown);
        // A negated name still matches through another looked-up name.
        let both = vec!["bad.corp.example".to_owned(), "web02".to_owned()];
        assert_eq!(check(&files, &both, &key), Verdict::Known);
    }

    #[test]
    fn glob_is_linear_on_hostile_patterns() {
        assert!(glob_matches(b"abc", b"a*c"));
        assert!(glob_matches(b"abc", b"*"));
        assert!(glob_matches(b"", b"**"));
        assert!(!glob_matches(b"", b"?"));
        assert!(glob_matches(b"ABC", b"a?c"));
        assert!(!glob_matches(b"abcd", b"a*c"));
        let text = vec![b'a'; 4000];
        let mut pattern = b"*a".repeat(40);
        pattern.push(b'b');
        let started = std::time::Instant::now();
        assert!(!glob_matches(&text, &pattern));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn changed_key_reports_line_and_recorded_fingerprint() {
        let dir = scratch("changed");
        let (key, _) = keygen(&dir, "new", "ed25519");
        let (old, old_text) = keygen(&dir, "old", "ed25519");
        let (_, unrelated) = keygen(&dir, "unrelated", "ed25519");
        let user = dir.join("known_hosts");
        let system = dir.join("ssh_known_hosts");
        write(&user, &format!("# comment\nelsewhere {unrelated}\n"));
        write(&system, &format!("\nhost.example {old_text}\n"));
        let files = [user, system.clone()];
        assert_eq!(
            check(&files, &names("host.example"), &key),
            Verdict::Changed {
                file: system,
                line: 2,
                recorded_fingerprint: fingerprint(&old),
            }
        );
        assert!(fingerprint(&old).starts_with("SHA256:"));
        // The presented key on any matching line wins over a mismatch.
        assert_eq!(check(&files, &names("host.example"), &old), Verdict::Known);
    }

    #[test]
    fn other_key_type_only_is_changed() {
        let dir = scratch("other-type");
        let (key, _) = keygen(&dir, "ed", "ed25519");
        let (ecdsa, ecdsa_text) = keygen(&dir, "ec", "ecdsa");
        let kh = dir.join("known_hosts");
        write(&kh, &format!("host.example {ecdsa_text}\n"));
        let files = [kh.clone()];
        assert_eq!(
            check(&files, &names("host.example"), &key),
            Verdict::Changed {
                file: kh,
                line: 1,
                recorded_fingerprint: fingerprint(&ecdsa),
            }
        );
        assert_eq!(
            known_algorithms(&files, &names("host.example")),
            vec![ecdsa.algorithm()]
        );
    }

    #[test]
    fn known_algorithms_in_order_of_appearance() {
        let dir = scratch("algorithms");
        let (_, ed) = keygen(&dir, "ed", "ed25519");
        let (_, ec) = keygen(&dir, "ec", "ecdsa");
        let (_, other) = keygen(&dir, "other", "ed25519");
        let (rsa_key, rsa) = keygen(&dir, "rsa", "rsa");
        let kh = dir.join("known_hosts");
        write(
            &kh,
            &format!(
                "@revoked host.example {other}\n@cert-authority host.example {other}\n\
                 host.example {ec}\nelsewhere {other}\nhost.example {ed}\nhost.example {ec}\n\
                 host.example {rsa}\n"
            ),
        );
        let files = [dir.join("missing"), kh];
        let algorithms = known_algorithms(&files, &names("host.example"));
        assert_eq!(algorithms.len(), 4, "{algorithms:?}");
        assert!(matches!(algorithms.first(), Some(Algorithm::Ecdsa { .. })));
        let listed: Vec<&str> = algorithms.iter().map(Algorithm::as_str).collect();
        assert_eq!(
            listed.get(1..),
            Some(&["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"][..])
        );
        assert!(known_algorithms(&files, &names("nobody")).is_empty());
        assert_eq!(
            check(&files, &names("host.example"), &rsa_key),
            Verdict::Known
        );
    }

    #[test]
    fn revoked_key_wins_regardless_of_host() {
        let dir = scratch("revoked");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let user = dir.join("known_hosts");
        let system = dir.join("ssh_known_hosts");
        write(&user, &format!("host.example {text}\n"));
        write(
            &system,
            &format!("# revocations\n@revoked unrelated.example {text}\n"),
        );
        let files = [user, system.clone()];
        assert_eq!(
            check(&files, &names("host.example"), &key),
            Verdict::Revoked {
                file: system.clone(),
                line: 2,
            }
        );
        assert_eq!(
            check(&files, &names("never.seen"), &key),
            Verdict::Revoked {
                file: system,
                line: 2
            }
        );
    }

    #[test]
    fn cert_authority_lines_are_ignored() {
        let dir = scratch("ca");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let (_, other) = keygen(&dir, "other", "ed25519");
        let kh = dir.join("known_hosts");
        write(
            &kh,
            &format!("@cert-authority *.example {text}\n@cert-authority *.example {other}\n"),
        );
        assert_eq!(check(&[kh], &names("host.example"), &key), Verdict::Unknown);
    }

    #[test]
    fn comments_garbage_binary_and_long_lines_are_skipped() {
        let dir = scratch("garbage");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let (_, other) = keygen(&dir, "other", "ed25519");
        let base64_of_other = other.split(' ').nth(1).unwrap();
        let kh = dir.join("known_hosts");
        let mut contents = Vec::new();
        contents.extend_from_slice(b"# host.example ssh-ed25519 AAAA\n");
        contents.extend_from_slice(b"   \t  \n");
        contents.extend_from_slice(b"\xff\xfe\x00binary\x00\n");
        contents.extend_from_slice(b"@bogus host.example ");
        contents.extend_from_slice(other.as_bytes());
        contents.extend_from_slice(b"\nhost.example\n");
        contents.extend_from_slice(b"host.example ssh-ed25519\n");
        contents.extend_from_slice(b"host.example ssh-ed25519 !!!notbase64!!!\n");
        contents.extend_from_slice(b"host.example ssh-ed25519 #comment\n");
        // Right blob, wrong type name: OpenSSH rejects the line.
        contents.extend_from_slice(b"host.example ssh-rsa ");
        contents.extend_from_slice(base64_of_other.as_bytes());
        contents.push(b'\n');
        contents.extend_from_slice(b"|1|bad|hash ");
        contents.extend_from_slice(other.as_bytes());
        contents.push(b'\n');
        contents.extend_from_slice(b"host.example ");
        contents.extend(std::iter::repeat_n(b'A', MAX_LINE + 10));
        contents.push(b'\n');
        // CRLF line endings work, and line numbers count every line above.
        contents.extend_from_slice(format!("host.example {text}\r\n").as_bytes());
        std::fs::write(&kh, &contents).unwrap();
        let files = [kh.clone()];
        assert_eq!(check(&files, &names("host.example"), &key), Verdict::Known);
        let (fresh, _) = keygen(&dir, "fresh", "ed25519");
        assert_eq!(
            check(&files, &names("host.example"), &fresh),
            Verdict::Changed {
                file: kh,
                line: 12,
                recorded_fingerprint: fingerprint(&key),
            }
        );

        // A purely binary file, a final line without newline, a directory.
        let binary = dir.join("binary");
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&binary, noise).unwrap();
        assert_eq!(
            check(&[binary, dir.to_path_buf()], &names("host.example"), &key),
            Verdict::Unknown
        );
        let unterminated = dir.join("unterminated");
        write(&unterminated, &format!("\nhost.example {text}"));
        assert_eq!(
            check(&[unterminated], &names("host.example"), &key),
            Verdict::Known
        );
    }

    #[test]
    fn missing_files_are_skipped() {
        let dir = scratch("missing");
        let (key, text) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        write(&kh, &format!("host.example {text}\n"));
        let files = [dir.join("nope"), PathBuf::from("/dev/null"), kh];
        assert_eq!(check(&files, &names("host.example"), &key), Verdict::Known);
        assert_eq!(check(&[], &names("host.example"), &key), Verdict::Unknown);
    }

    #[test]
    fn learn_creates_private_file_and_directory() {
        let dir = scratch("learn-create");
        let (key, _) = keygen(&dir, "k", "ed25519");
        let ssh_dir = dir.join("home").join(".ssh");
        let kh = ssh_dir.join("known_hosts");
        learn(&kh, "Host.Example", &key, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&kh), 0o600);
        assert_eq!(mode(&ssh_dir), 0o700);
        let contents = std::fs::read_to_string(&kh).unwrap();
        let expected = format!("host.example {}\n", key.to_openssh().unwrap());
        assert_eq!(contents, expected);
    }

    #[test]
    fn learn_appends_newline_and_keeps_mode() {
        let dir = scratch("learn-append");
        let (key, _) = keygen(&dir, "k", "ed25519");
        let (other, other_text) = keygen(&dir, "other", "ed25519");
        let kh = dir.join("known_hosts");
        write(&kh, &format!("elsewhere {other_text}"));
        std::fs::set_permissions(&kh, std::fs::Permissions::from_mode(0o644)).unwrap();
        learn(&kh, "host.example", &key, false).unwrap();
        learn(&kh, "third.example", &key, true).unwrap();
        let contents = std::fs::read_to_string(&kh).unwrap();
        let lines: Vec<&str> = contents.lines().collect();
        assert_eq!(lines.len(), 3, "{contents}");
        assert!(contents.ends_with('\n'));
        assert_eq!(
            std::fs::metadata(&kh).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let files = [kh];
        assert_eq!(check(&files, &names("elsewhere"), &other), Verdict::Known);
        assert_eq!(check(&files, &names("host.example"), &key), Verdict::Known);
        assert_eq!(check(&files, &names("third.example"), &key), Verdict::Known);
        // Writing to /dev/null (UserKnownHostsFile /dev/null) succeeds.
        learn(Path::new("/dev/null"), "host.example", &key, false).unwrap();
    }

    #[test]
    fn learn_then_check_is_known() {
        let dir = scratch("learn-check");
        let (key, _) = keygen(&dir, "k", "ecdsa");
        let kh = dir.join("known_hosts");
        let files = [kh.clone()];
        let name = host_name_for(None, "round.trip", 2222);
        let alias = host_name_for(Some("my-alias"), "round.trip", 2222);
        let (by_name, by_alias) = ([name.clone()], [alias.clone()]);
        assert_eq!(check(&files, &by_name, &key), Verdict::Unknown);
        learn(&kh, &name, &key, false).unwrap();
        assert_eq!(check(&files, &by_name, &key), Verdict::Known);
        assert_eq!(check(&files, &by_alias, &key), Verdict::Unknown);
        learn(&kh, &alias, &key, true).unwrap();
        assert_eq!(check(&files, &by_alias, &key), Verdict::Known);
        assert_eq!(known_algorithms(&files, &by_alias), vec![key.algorithm()]);
    }

    #[test]
    fn learn_refuses_injection() {
        let dir = scratch("learn-refuse");
        let (key, _) = keygen(&dir, "k", "ed25519");
        let kh = dir.join("known_hosts");
        for name in [
            "", "a b", "a\nb", "*", "a,b", "!a", "@revoked", "#a", "|1|x|y",
        ] {
            let err = learn(&kh, name, &key, false).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert!(learn(&kh, "a\nb", &key, true).is_err());
        learn(&kh, "*", &key, true).unwrap();
        assert!(!std::fs::read_to_string(&kh).unwrap().contains('*'));
    }
}
