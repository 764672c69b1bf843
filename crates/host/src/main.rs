//! `cmux-host`: the helper cmux runs on a host, as the user, to serve a workspace's
//! operations over the cmux protocol (`docs/PROTOCOL.md`) on its stdin and stdout.
//!
//! It opens no socket and listens on nothing: whoever can write its stdin is already
//! the user on this host (an SSH channel, `docker exec -i`, `sudo -u`). When its stdin
//! closes (the client was killed, the connection dropped) it ends every process group
//! it started (SIGTERM, then SIGKILL after half a second) and exits.
//!
//! ```text
//! cmux-host [serve]        speak the protocol on stdin/stdout (the default)
//! cmux-host serve --sync X write X before the first frame, so a client can skip what
//!                          a shell's startup files printed before the helper ran
//! cmux-host --version      print the version and build id
//! ```
//!
//! Built statically (see crates/host-bundle) so one binary runs on any Linux x86_64
//! host whatever its libc. It therefore calls no NSS function (`getpwuid`...): the home
//! directory comes from `$HOME`, or `/etc/passwd` read directly.

mod env;
mod env_cache;
mod errors;
mod exec;
mod files;
mod outbox;
mod serve;
mod sys;
mod tools;
mod window;
mod write;

/// The exact build, set by the bundle's build script (a hash of the helper's sources);
/// `dev` for a plain `cargo build`.
pub(crate) const BUILD: &str = match option_env!("CMUX_HOST_BUILD_ID") {
    Some(id) => id,
    None => "dev",
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None => serve::serve(None),
        Some("serve") => match args.get(1).map(String::as_str) {
            None => serve::serve(None),
            Some("--sync") => serve::serve(args.get(2).map(String::as_str)),
            Some(other) => {
                eprintln!("cmux-host serve: unknown argument {other:?}");
                2
            }
        },
        Some("--version") | Some("-V") => {
            println!("cmux-host {} ({BUILD})", env!("CARGO_PKG_VERSION"));
            0
        }
        Some(env::DUMP_ENV_ARG) => env::dump_env(args.get(1).map(String::as_str)),
        Some(other) => {
            eprintln!(
                "cmux-host: unknown argument {other:?}: cmux-host serves the cmux protocol on stdin/stdout and is started by cmux"
            );
            2
        }
    };
    std::process::exit(code);
}
