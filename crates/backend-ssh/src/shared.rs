//! Everything one host (with one set of options) has in this process, shared by every
//! [`crate::SshRuntime`] of it: its masters, its host helper, its shell/SFTP state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cmux_core::Result;

use crate::fallback::Fallback;
use crate::helper::HelperSlot;
use crate::options::SshOptions;
use crate::pool::HostState;

/// One host's state in this process.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Its masters, their channel gates and the connection budget.
    pub(crate) pool: Arc<HostState>,
    /// The host helper's connection (or why it is not used).
    pub(crate) helper: HelperSlot,
    /// The shell/SFTP path.
    pub(crate) fallback: Arc<Fallback>,
}

type Registry = Mutex<HashMap<(String, SshOptions), Weak<Shared>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl Shared {
    /// The state shared by every runtime of `host` with `opts` in this process.
    pub(crate) fn get(host: String, opts: SshOptions) -> Result<Arc<Shared>> {
        let key = (host.clone(), opts.clone());
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = reg.get(&key).and_then(Weak::upgrade) {
            return Ok(shared);
        }
        let pool = Arc::new(HostState::new(host, opts)?);
        let shared = Arc::new(Shared {
            helper: HelperSlot::default(),
            fallback: Arc::new(Fallback::new(pool.clone())),
            pool,
        });
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(key, Arc::downgrade(&shared));
        Ok(shared)
    }
}
