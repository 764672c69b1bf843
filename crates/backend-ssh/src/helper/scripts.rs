//! The two shell scripts of helper deployment, run by the user's login shell on the
//! host (POSIX sh: bash, dash, zsh, ksh, busybox).

use cmux_core::{quote, RemotePath};

/// Exit code of the start script when the helper is not installed.
pub(crate) const MISSING: i32 = 97;

/// The marker the start script prints on stderr when the helper is missing, followed
/// by `uname -s`, `uname -m` and whether gzip exists (`gzip` or `raw`).
pub(crate) const MISSING_MARKER: &str = "cmux-helper: missing ";

/// Where helpers are installed: the configured directory, or the user's cache
/// directory on the host.
pub(crate) fn base_dir_expr(install_dir: Option<&RemotePath>) -> String {
    match install_dir {
        Some(dir) => cmux_core::exec::quote_path(dir),
        None => r#""${XDG_CACHE_HOME:-$HOME/.cache}/cmux/host""#.to_owned(),
    }
}

/// The directory name of one build: `<version>-<first 16 hex of its SHA-256>`.
pub(crate) fn build_dir_name(version: &str, sha256: &str) -> String {
    format!("{version}-{}", &sha256[..sha256.len().min(16)])
}

/// Starts the installed helper (`exec`, so the channel is the helper's stdio), or
/// reports what is needed to install it. `dirs` are the build directories cmux can
/// use (one per OS and architecture it has a build for); the first installed one
/// runs. The file and its directory must be owned by the user: a build is only ever
/// renamed there after its size and checksum were verified.
pub(crate) fn start_script(base: &str, dirs: &[String], sync: &str) -> String {
    let dirs: Vec<String> = dirs.iter().map(|d| quote::quote(d)).collect();
    format!(
        r#"b={base}
for d in {dirs}; do
  d="$b/$d"; h="$d/cmux-host"
  if [ -x "$h" ] && [ -O "$d" ] && [ -O "$h" ]; then exec "$h" serve --sync {sync}; fi
done
if command -v gzip >/dev/null 2>&1; then z=gzip; else z=raw; fi
printf '{MISSING_MARKER}%s %s %s\n' "$(uname -s)" "$(uname -m)" "$z" >&2
exit {MISSING}
"#,
        dirs = dirs.join(" "),
        sync = quote::quote(sync),
    )
}

/// Reports the host's system and gzip like the start script does when the helper is
/// missing, without running anything installed (used before replacing a build that
/// failed to start).
pub(crate) fn probe_script() -> String {
    format!(
        r#"if command -v gzip >/dev/null 2>&1; then z=gzip; else z=raw; fi
printf '{MISSING_MARKER}%s %s %s\n' "$(uname -s)" "$(uname -m)" "$z" >&2
exit {MISSING}
"#
    )
}

/// Installs the helper from stdin (gzipped when `gzipped`): into a temporary file in
/// a 0700 directory, checked for its size and (where `sha256sum` exists) its SHA-256,
/// then renamed into place. Other builds in the base directory (names
/// `<digits>...-<16 chars>`) installed more than an hour ago are removed: a newer cmux
/// replaces an older one's helper, while two versions used side by side for a while
/// (an upgrade during a session) do not delete each other's in a loop. A cut or
/// corrupt upload leaves nothing that the start script would run.
pub(crate) fn install_script(
    base: &str,
    dir_name: &str,
    size: u64,
    sha256: &str,
    gzipped: bool,
) -> String {
    let decode = if gzipped { "gzip -dc" } else { "cat" };
    format!(
        r#"umask 077
b={base}
d="$b"/{dir}
h="$d/cmux-host"
mkdir -p "$d" || exit 90
chmod 700 "$b" "$d" || exit 90
if [ ! -O "$d" ]; then echo "cmux-helper: $d is not owned by you" >&2; exit 90; fi
t="$d/.upload.$$"
rm -f "$t"
if ! {decode} > "$t"; then rm -f "$t"; echo "cmux-helper: the upload was cut short or corrupt" >&2; exit 91; fi
n=$(wc -c < "$t")
if [ "$n" -ne {size} ]; then rm -f "$t"; echo "cmux-helper: the upload was cut short ($n of {size} bytes)" >&2; exit 92; fi
if command -v sha256sum >/dev/null 2>&1; then
  if ! printf '%s  %s\n' {sha} "$t" | sha256sum -c - >/dev/null 2>&1; then rm -f "$t"; echo "cmux-helper: checksum mismatch" >&2; exit 93; fi
fi
chmod 700 "$t" && mv -f "$t" "$h" || {{ rm -f "$t"; exit 94; }}
find "$b" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*.*-????????????????' ! -name {dir} -mmin +60 -exec rm -rf {{}} + 2>/dev/null
echo installed
"#,
        dir = quote::quote(dir_name),
        sha = quote::quote(sha256),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_what_they_embed() {
        let s = start_script("'/x y'", &["0.1.0-abc".to_owned()], "n0nce");
        assert!(s.contains(r#"b='/x y'"#), "{s}");
        assert!(s.contains("exec \"$h\" serve --sync n0nce"), "{s}");
        let i = install_script(&base_dir_expr(None), "0.1.0-abc", 10, "ff", true);
        assert!(i.contains("gzip -dc > \"$t\""), "{i}");
        assert!(
            i.contains(r#"b="${XDG_CACHE_HOME:-$HOME/.cache}/cmux/host""#),
            "{i}"
        );
        assert_eq!(
            build_dir_name("0.1.0", "0123456789abcdef0123"),
            "0.1.0-0123456789abcdef"
        );
    }
}
