//! Errors the CLI reports itself, with the exit code they deserve, and the mapping
//! of every error to one line and an exit code.

use std::fmt;

/// An error with its own exit code (2 for usage problems such as an unsupported
/// backend, 1 for the rest).
#[derive(Debug)]
pub struct CliError {
    /// Exit code of `cmux`.
    pub code: i32,
    /// One line: what is wrong and how to fix it.
    pub message: String,
}

impl CliError {
    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            code: 1,
            message: message.into(),
        })
    }

    /// A usage problem (exit 2, as clap's own usage errors).
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            code: 2,
            message: message.into(),
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The exit code for `err`: a [`CliError`]'s own, a core error's
/// ([`cmux_core::Error::exit_code`]: 255 connection, 124 timeout...), else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<cmux_core::Error>() {
            return e.exit_code();
        }
    }
    1
}

/// The error as one line (multi-line tool output such as git's is joined with `; `).
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
