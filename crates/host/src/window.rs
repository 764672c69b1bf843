//! Credit windows: how many bytes the helper may still send on one stream before the
//! client says it has room. A reader that stops reading stops its own command's output,
//! never the connection.

use std::sync::{Condvar, Mutex};

/// A stream's send window.
#[derive(Debug)]
pub(crate) struct Window {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl Window {
    /// A window of `bytes` (`u64::MAX`: unlimited).
    pub(crate) fn new(bytes: u64) -> Window {
        Window {
            state: Mutex::new((bytes, false)),
            changed: Condvar::new(),
        }
    }

    /// Waits for room, then takes up to `want` bytes of it. `None` once closed.
    pub(crate) fn take(&self, want: u64) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.1 {
                return None;
            }
            if state.0 > 0 {
                let n = state.0.min(want);
                state.0 -= n;
                return Some(n);
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Gives back `bytes` of room.
    pub(crate) fn grant(&self, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_add(bytes);
        self.changed.notify_all();
    }

    /// Wakes and stops every sender (the request was released).
    pub(crate) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = true;
        self.changed.notify_all();
    }
}
