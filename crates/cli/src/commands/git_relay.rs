//! `cmux __git-relay SOCKET HOST COMMAND`: the ssh stand-in local git runs under the
//! russh transport. It carries git's stdin/stdout to the cmux process that runs git
//! (through `SOCKET`), which runs `COMMAND` on the host over its own connection. The
//! protocol and its security checks are in `cmux_backend_ssh::source::relay`.

use cmux_backend_ssh::source::relay::{run_relay_client, RELAY_FAILURE};

use crate::args::GitRelayArgs;

/// Relays, then returns the remote command's exit code ([`RELAY_FAILURE`], 255 as
/// ssh's, when the cmux process that runs git cannot be reached).
pub fn run(args: &GitRelayArgs) -> i32 {
    match run_relay_client(
        &args.socket,
        &args.command,
        std::io::stdin(),
        std::io::stdout().lock(),
        std::io::stderr(),
    ) {
        Ok(code) => code,
        Err(e) => {
            err!(
                "cmux: git relay to {} through {}: {e} (the cmux process running git has \
                 gone; run the cmux command again)",
                args.host,
                args.socket.display()
            );
            RELAY_FAILURE
        }
    }
}
