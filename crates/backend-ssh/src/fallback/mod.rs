//! The shell/SFTP path: commands through a bash wrapper on per-operation channels,
//! files over SFTP. Hosts where the host helper cannot run (another system, a noexec
//! home) and `HelperMode::Off` use it; it passes the same conformance suite.

pub(crate) mod exec;
pub(crate) mod exec_write;
pub(crate) mod files;
mod pipeline;
mod sftp;
pub(crate) mod wrapper;

use std::sync::Arc;
use std::time::Duration;

use crate::pool::HostState;

/// The shell/SFTP path's state for one host, beside the host's masters (which it
/// reaches through `Deref`).
#[derive(Debug)]
pub(crate) struct Fallback {
    pool: Arc<HostState>,
    /// Directories whose stale temporary files were swept recently.
    pub(crate) sweeper: cmux_core::temp::TempSweeper,
    /// The shortest SFTP round trip seen, in microseconds (`u64::MAX`: none yet).
    min_rtt_us: std::sync::atomic::AtomicU64,
    /// Modes of files seen recently (for writes through a command).
    pub(crate) modes: exec_write::ModeCache,
}

impl Fallback {
    /// The shell/SFTP path over `pool`'s masters.
    pub(crate) fn new(pool: Arc<HostState>) -> Fallback {
        Fallback {
            pool,
            sweeper: cmux_core::temp::TempSweeper::new(),
            min_rtt_us: std::sync::atomic::AtomicU64::new(u64::MAX),
            modes: Default::default(),
        }
    }

    /// Records how long one SFTP round trip took (a single request, or requests sent
    /// together and answered at once).
    pub(crate) fn note_rtt(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.min_rtt_us
            .fetch_min(us, std::sync::atomic::Ordering::Relaxed);
    }

    /// The shortest round trip seen to this host, if any.
    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        match self.min_rtt_us.load(std::sync::atomic::Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

impl std::ops::Deref for Fallback {
    type Target = HostState;

    fn deref(&self) -> &HostState {
        &self.pool
    }
}
