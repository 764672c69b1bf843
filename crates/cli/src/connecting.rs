//! Connection attempts that take long, said on stderr: "connecting to HOST is taking a
//! while (2 s)…" once an attempt has run for
//! [`SLOW_CONNECT`](cmux_backend_ssh::SLOW_CONNECT), and how it ended. A
//! quick connection prints nothing.
//!
//! Always stderr, never stdout: stdout carries `--json` documents and, under
//! `cmux mcp`, the protocol itself.

use std::sync::OnceLock;
use std::time::Duration;

use cmux_backend_ssh::{ConnectEvent, ConnectObserver};

/// The observer every SSH and Coder runtime of this process gets. One for the whole
/// process: options are compared by their observer's identity, and runtimes of the
/// same host must keep sharing their connections.
pub fn observer() -> ConnectObserver {
    static OBSERVER: OnceLock<ConnectObserver> = OnceLock::new();
    OBSERVER
        .get_or_init(|| {
            ConnectObserver::new(|event| {
                if let Some(line) = line(&event) {
                    err!("{line}");
                }
            })
        })
        .clone()
}

/// The stderr line for `event`.
pub fn line(event: &ConnectEvent) -> Option<String> {
    match event {
        ConnectEvent::Slow { host, waited } => Some(format!(
            "cmux: connecting to {host} is taking a while ({} s)…",
            waited.as_secs_f64().round()
        )),
        ConnectEvent::Done {
            host,
            took,
            connected: true,
        } => Some(format!("cmux: connected to {host} after {}", secs(*took))),
        ConnectEvent::Done {
            host,
            took,
            connected: false,
        } => Some(format!(
            "cmux: connecting to {host} failed after {}",
            secs(*took)
        )),
        // A newer backend's event: nothing to say about it.
        _ => None,
    }
}

/// `5.3 s`.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_each_event() {
        let host = "build-box".to_owned();
        let lines: Vec<String> = [
            ConnectEvent::Slow {
                host: host.clone(),
                waited: Duration::from_millis(2004),
            },
            ConnectEvent::Done {
                host: host.clone(),
                took: Duration::from_millis(5270),
                connected: true,
            },
            ConnectEvent::Done {
                host,
                took: Duration::from_millis(15_020),
                connected: false,
            },
        ]
        .iter()
        .filter_map(line)
        .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }
}
