//! Test helper: replaces one file with cmux writes in a loop until it is killed, for
//! the crash tests (`tests/it/reliability_crash_write.rs`) that SIGKILL it at random
//! points.
//!
//! Usage: `cmux-writer local <file> <bytes>` or
//! `cmux-writer ssh <file> <bytes> <alias> <ssh config> <control dir>`.
//! It writes alternately `bytes` bytes of `A` and of `B`, prints `ready` on stdout
//! once the first write is done, and never exits on its own.

use std::io::Write;
use std::sync::Arc;

use cmux_core::{RemotePath, Runtime};

fn fail(message: String) -> ! {
    eprintln!("cmux-writer: {message}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, file, size) = match args.as_slice() {
        [kind, file, size, ..] => (kind.as_str(), file.clone(), size.clone()),
        _ => fail("usage: cmux-writer local|ssh <file> <bytes> [alias config ctl-dir]".into()),
    };
    let size: usize = size
        .parse()
        .unwrap_or_else(|e| fail(format!("bad size {size:?}: {e}")));
    let runtime: Arc<dyn Runtime> = match (kind, &args[3..]) {
        ("local", []) => Arc::new(
            cmux_backend_local::LocalRuntime::new().unwrap_or_else(|e| fail(e.to_string())),
        ),
        ("ssh", [alias, config, ctl]) => Arc::new(
            cmux_backend_ssh::SshRuntime::new(
                alias.clone(),
                cmux_backend_ssh::SshOptions::default()
                    .config_file(config)
                    .control_dir(ctl),
            )
            .unwrap_or_else(|e| fail(e.to_string())),
        ),
        _ => fail(format!("unknown backend or arguments: {args:?}")),
    };
    let path = RemotePath::new(file).unwrap_or_else(|e| fail(e.to_string()));
    let contents = [vec![b'A'; size], vec![b'B'; size]];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e.to_string()));
    rt.block_on(async {
        runtime
            .ensure_ready()
            .await
            .unwrap_or_else(|e| fail(e.to_string()));
        // `CMUX_WRITER_EXIT_AFTER=n`: exit after n writes without closing anything, as
        // the CLI does (for the tests of what a process exit leaves on the master).
        let exit_after: Option<usize> = std::env::var("CMUX_WRITER_EXIT_AFTER")
            .ok()
            .and_then(|n| n.parse().ok());
        for i in 0usize.. {
            if exit_after == Some(i) {
                std::process::exit(0);
            }
            if let Err(e) = runtime.write_file(&path, &contents[i % 2]).await {
                fail(format!("write {i}: {e}"));
            }
            if i == 0 {
                // Connected and its file channel open: from now on a kill lands in a
                // write (or between two).
                println!("ready");
                let _ = std::io::stdout().flush();
            }
        }
    });
}
