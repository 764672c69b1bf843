//! Job ids: short, random, easy to type.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Lower-case letters and digits without the look-alikes `0 1 l o`: 32 symbols, 5 bits
/// each.
const ALPHABET: &[u8; 32] = b"23456789abcdefghijkmnpqrstuvwxyz";

/// Characters of a new id: 40 random bits. The host refuses an id already taken (the
/// job directory exists), so a collision costs a retry, never a mix-up.
const ID_LEN: usize = 8;

/// The id of a background job, unique within its workspace: 8 characters of
/// `[a-z2-9]`, e.g. `k3x9mf2a`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// A new random id.
    pub fn random() -> JobId {
        let mut bits = random_u64();
        let id = (0..ID_LEN)
            .map(|_| {
                let c = ALPHABET[(bits & 31) as usize] as char;
                bits >>= 5;
                c
            })
            .collect();
        JobId(id)
    }

    /// Checks an id given by a user or an agent: 1 to 32 lower-case letters and
    /// digits. (Ids cmux makes are 8 of them.)
    pub fn parse(text: &str) -> Result<JobId> {
        let text = text.trim();
        if text.is_empty()
            || text.len() > 32
            || !text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(Error::invalid(format!(
                "{text:?} is not a job id: job ids are short words of lower-case letters and \
                 digits such as k3x9mf2a; list the workspace's jobs to see them"
            )));
        }
        Ok(JobId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = Error;

    fn try_from(text: String) -> Result<JobId> {
        JobId::parse(&text)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

/// 64 bits no other process can predict: std's `RandomState` keys come from the
/// operating system's random source; the clock and a counter make every call differ.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_short_distinct_and_valid() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| JobId::random().0).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 8);
            assert_eq!(JobId::parse(id).expect("valid").as_str(), id);
        }
    }

    #[test]
    fn parse_refuses_what_could_leave_the_jobs_directory() {
        for bad in ["", "../x", "a b", "ABC", "a/b", "x;rm", &"a".repeat(33)] {
            assert!(JobId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(JobId::parse(" ab12 ").expect("trimmed").as_str(), "ab12");
    }
}
