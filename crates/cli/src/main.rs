//! `cmux`: workspaces for AI coding agents, on this machine, over SSH, or on Coder.

/// `println!` that ignores a closed stdout (`cmux list | head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr instead of panicking.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
mod backends;
mod commands;
mod connecting;
mod error;
mod home;
mod progress;
mod registry;
mod usage;
mod words;

use clap::Parser;

fn main() {
    init_tracing();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmux: error: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match commands::run(cli.command).await {
            Ok(code) => code,
            Err(err) => {
                tracing::debug!(error = ?err, "command failed");
                err!("cmux: error: {}", error::one_line(&err));
                error::exit_code(&err)
            }
        }
    });
    // Background tasks (a stdin copier blocked on a read) must not keep cmux alive.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// Exits for a command line clap refused: with the fix when cmux knows it (exit 2, as
/// clap), else with clap's own message (and its exit code: 0 for --help).
fn usage_error(e: clap::Error) -> ! {
    if e.kind() == clap::error::ErrorKind::UnknownArgument {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if let Some(fix) = usage::forgotten_dashes(&args) {
            err!("cmux: error: {fix}");
            std::process::exit(2);
        }
    }
    e.exit()
}

/// `RUST_LOG`-style diagnostics on stderr; silent by default. Colours only when stderr
/// is a terminal: escape codes in a log file or a CI log are noise.
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
