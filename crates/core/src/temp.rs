//! Temporary files of atomic writes, and the rule that removes the ones a killed
//! writer left behind.
//!
//! [`Runtime::write_file`](crate::Runtime::write_file) writes a temporary file beside
//! the target, named by [`temp_name`] (`.<name>.cmux-tmp.<pid>.<counter>`), then renames
//! it over the target. A writer killed between the two (SIGKILL, power loss, a dropped
//! connection) leaves the temporary file; the target keeps its complete old content.
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

/// Marker between the target's name and the writer's pid in a temporary file name.
const MARKER: &str = ".cmux-tmp.";

/// The temporary file name for a write of `name` by process `pid` (its `counter`-th):
/// `.<name>.cmux-tmp.<pid>.<counter>`.
pub fn temp_name(name: &str, pid: u32, counter: u64) -> String {
    format!(".{name}{MARKER}{pid}.{counter}")
}

/// True for names made by [`temp_name`] (and nothing a user would plausibly name a
/// file): a leading `.`, the marker, then two decimal numbers.
pub fn is_temp_name(entry: &str) -> bool {
    let Some(rest) = entry.strip_prefix('.') else {
        return false;
    };
    let Some((target, tail)) = rest.rsplit_once(MARKER) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    !target.is_empty() && matches!(tail.split_once('.'), Some((pid, n)) if digits(pid) && digits(n))
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
        assert!(is_temp_name(&temp_name("a.txt", 12, 0)));
        assert!(is_temp_name(&temp_name(".hidden", 1, 99)));
        assert!(is_temp_name(&temp_name("x.cmux-tmp.1.2", 3, 4)));
        for name in [
            "a.txt",
            ".a.cmux-tmp.",
            ".a.cmux-tmp.1",
            ".a.cmux-tmp.1.",
            ".a.cmux-tmp.x.1",
            ".a.cmux-tmp.1.2.3",
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
