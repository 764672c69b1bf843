//! Why an operation in helper mode takes more than one round trip, or misses its
//! target: what its code path does, for the summary. Written from reading the code
//! paths and the measurements; the summary shows a reason only for a row measured
//! above [`crate::summary`]'s threshold.

/// The reason for the row `op` (a row label of the tables).
pub fn above_one_rt(op: &str) -> &'static str {
    match op {
        "MCP bash `true`" | "exec `true`" => {
            "One request. The rest is the host starting the command: the helper forks and \
             execs `bash -c` (a few ms), which no transport removes."
        }
        "MCP read_file 4 KiB" => {
            "One request (`Runtime::read_file_up_to`: the helper checks the kind and size \
             on the open file, then sends it); what is left is the host's file system calls \
             and the encryption."
        }
        "MCP write_file 4 KiB" | "write 4 KiB" | "MCP edit_file" => {
            "One request. The rest is the host's atomic write: a temporary file fsynced \
             before its rename (a few ms on this disk)."
        }
        "MCP glob (small workspace)" | "MCP grep (small workspace)" => {
            "One request. The rest is the walk and search on the host."
        }
        "read 1 MiB" => {
            "One request. The rest is 1 MiB crossing the link (through the proxy and ssh's \
             encryption) after the first bytes."
        }
        "list 100 entries" | "MCP list_dir 100 entries" | "stat" | "read 4 KiB" => {
            "One request; what is left is the host's file system call and the encryption."
        }
        "workspace create, warm (50 MiB)" | "workspace create, warm (5 MiB)" => {
            "Two requests in turn (the warm sync, which finds the host has the commit, then \
             one script with every host step) and git's work on the host: `git worktree \
             add` checks out the project's files, 50 MiB here."
        }
        "`cmux exec ws -- true`" | "`cmux cat ws` 4 KiB" | "`cmux ls ws` 100 entries" => {
            "Each cmux process starts its own helper on the shared master: the channel open \
             (1 RT: the mux client waits for the host's confirmation), the start script \
             exec'ing the helper, whose hello comes back (1 RT), then the request (1 RT), \
             plus the login shell's and the helper's start on the host. The shell path's \
             exec is 2 RT (channel open, then the command). Sending the first request right \
             behind the start script, without waiting for the hello, would make it 2 RT \
             (`crates/backend-ssh/src/helper`)."
        }
        "`cmux write ws` 4 KiB" => {
            "As for the other CLI rows: 3 RT to start the helper and make one request (the \
             write goes first; missing parents are created only on `not_found`), plus the \
             host's fsync before the rename."
        }
        _ => "",
    }
}

/// Why the local CPU of an operation is not 10× below the process-per-operation
/// baseline.
pub fn cpu_ratio(op: &str) -> &'static str {
    match op {
        "read 1 MiB" => {
            "The 1 MiB payload dominates: ssh encrypts and decrypts the same bytes for cmux \
             and for (a); only the per-operation overhead (an ssh process) is saved."
        }
        _ => "",
    }
}

/// Why distant has no rows.
pub const DISTANT: &str = "not measured in this run";
