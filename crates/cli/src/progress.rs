//! Progress of workspace operations, printed to stderr (stdout stays for results).

use std::io::Write;

use cmux_core::workspace::{Progress, ProgressEvent};

/// Prints steps and warnings as `cmux: ...` lines and the init hook's output as it
/// is, all on stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrProgress;

impl Progress for StderrProgress {
    fn event(&self, event: ProgressEvent<'_>) {
        let mut err = std::io::stderr().lock();
        // stderr gone (closed pipe): progress is not worth failing for.
        let _ = match event {
            ProgressEvent::Step(msg) => writeln!(err, "cmux: {msg}"),
            ProgressEvent::Warning(msg) => writeln!(err, "cmux: warning: {msg}"),
            ProgressEvent::HookLine { line, .. } => writeln!(err, "{line}"),
            _ => Ok(()),
        };
    }
}
