//! Temporary files of atomic writes, and the rule that removes the ones a killed
//! writer left behind.
//!
//! [`Runtime::write_file`](crate::Runtime::write_file) writes a temporary file beside
//! the target (or a private directory holding it: the SSH backend), named by
//! [`temp_name`] (`.<name>.cmux-tmp.<16 random hex digits>`), then renames it over the
//! target. A writer killed between the two (SIGKILL, power loss, a dropped connection)
//! leaves the temporary file; the target keeps its complete old content.
//!
//! Names cannot collide in practice (64 random bits, not a pid that wraps around), and
//! a writer whose name is taken anyway draws another, up to [`TEMP_NAME_ATTEMPTS`]
//! times, then fails with [`leftover_error`] ("a leftover temp file exists").
//!
//! **Cleanup rule**: before writing into a directory, a runtime removes the cmux
//! temporary files there (names matching [`is_temp_name`]) that are regular files last
//! modified more than [`STALE_TEMP_AGE`] (10 minutes) ago. A live writer keeps touching
//! its temporary file with every chunk, so a file untouched for 10 minutes belongs to a
//! writer that is gone; in the worst case (a writer stalled for 10 minutes) that writer's
//! rename fails and its write reports an error: nothing is lost or torn. Each runtime
//! sweeps a given directory at most once every [`STALE_TEMP_AGE`] ([`TempSweeper`]),
//! so the cost is one directory listing per directory per 10 minutes, not one per write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Temporary files untouched for longer than this are left-overs of a dead writer.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Marker between the target's name and the random part of a temporary file name.
const MARKER: &str = crate::engine::temp_names::TEMP_MARKER;

/// How many fresh names a writer tries when the one it drew is taken.
pub const TEMP_NAME_ATTEMPTS: usize = 8;

/// Longest part of the target's name kept in a temporary name, so the temporary name
/// stays within the usual 255-byte limit of a file name.
const MAX_NAME_PART: usize = 200;

/// A fresh temporary file name for a write of `name`:
/// `.<name>.cmux-tmp.<16 random hex digits>` (`name` cut to 200 bytes).
pub fn temp_name(name: &str) -> String {
    let mut cut = name.len().min(MAX_NAME_PART);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}{MARKER}{:016x}", &name[..cut], random_u64())
}

/// 64 bits no other writer will draw: SipHash keyed by the OS's random source (std's
/// `RandomState`), over the pid, the time and a counter.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// True for names made by [`temp_name`] (and nothing a user would plausibly name a
/// file): a leading `.`, the marker, then 16 hex digits; or the names of earlier
/// versions (`<pid>.<counter>`), so their left-overs are swept too.
pub fn is_temp_name(entry: &str) -> bool {
    crate::engine::temp_names::is_temp_name(entry)
}

/// The error of a write that found every temporary name it drew taken
/// ([`TEMP_NAME_ATTEMPTS`] of them): `temp` is the last one.
pub fn leftover_error(host: &str, temp: &str) -> crate::Error {
    crate::Error::Backend {
        backend: host.to_owned(),
        message: format!(
            "{temp:?}: a leftover temp file exists where cmux wanted to write its temporary file (a killed \
             writer's, whose name came up again); nothing was written: remove the leftover and retry"
        ),
    }
}

/// True when a temporary file last modified at `modified` (seconds since the Unix epoch)
/// is stale at `now` (same unit).
pub fn is_stale(modified: i64, now: i64) -> bool {
    now.saturating_sub(modified) > STALE_TEMP_AGE.as_secs() as i64
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Remembers which directories a runtime swept recently, so each is swept at most once
/// every [`STALE_TEMP_AGE`]. Bounded: forgets everything past 4096 directories.
#[derive(Debug, Default)]
pub struct TempSweeper {
    swept: Mutex<HashMap<String, Instant>>,
}

impl TempSweeper {
    /// A sweeper that has swept nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `dir` should be swept now (and records that it is).
    pub fn due(&self, dir: &str) -> bool {
        let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match swept.get(dir) {
            Some(at) if now.duration_since(*at) < STALE_TEMP_AGE => false,
            _ => {
                if swept.len() >= 4096 {
                    swept.clear();
                }
                swept.insert(dir.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_near_misses_are_not_temp_files() {
        assert!(is_temp_name(&temp_name("a.txt")));
        assert!(is_temp_name(&temp_name(".hidden")));
        assert!(is_temp_name(&temp_name("x.cmux-tmp.1.2")));
        assert!(
            is_temp_name(".a.txt.cmux-tmp.12.0"),
            "earlier versions' names"
        );
        assert_ne!(temp_name("a"), temp_name("a"), "fresh every time");
        let long = "é".repeat(200);
        assert!(temp_name(&long).len() <= 255, "within NAME_MAX");
        assert!(is_temp_name(&temp_name(&long)));
        for name in [
            "a.txt",
            ".a.cmux-tmp.",
            ".a.cmux-tmp.1",
            ".a.cmux-tmp.1.",
            ".a.cmux-tmp.x.1",
            ".a.cmux-tmp.1.2.3",
            ".a.cmux-tmp.0123456789abcdef0",
            ".a.cmux-tmp.0123456789abcdeg",
            "a.cmux-tmp.1.2",
            "..cmux-tmp.1.2",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }

    #[test]
    fn staleness_and_sweep_memory() {
        assert!(!is_stale(1000, 1000 + 600));
        assert!(is_stale(1000, 1000 + 601));
        let s = TempSweeper::new();
        assert!(s.due("/d"));
        assert!(!s.due("/d"));
        assert!(s.due("/e"));
    }
}
