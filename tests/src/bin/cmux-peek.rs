//! Test helper: another user of the host trying to read what cmux writes. Run as that
//! user (`setpriv --reuid ...`), it polls a directory as fast as it can, opens every
//! cmux temporary file it sees (and the file inside a temporary directory), keeps the
//! descriptors, and once `<dir>/stop` exists reads them all: a descriptor opened while
//! the temporary file was readable sees the content written later.
//!
//! Usage: `cmux-peek <dir> <needle>`. Prints `opened N` and `leaked` when some content
//! held `needle`, `clean` otherwise.

use std::io::Read;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, needle] = args.as_slice() else {
        eprintln!("usage: cmux-peek <dir> <needle>");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let mut held: Vec<std::fs::File> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    println!("ready");
    while !dir.join("stop").exists() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.contains(".cmux-tmp.") || !seen.insert(name) {
                continue;
            }
            let path = entry.path();
            for candidate in [path.clone(), path.join("content")] {
                if let Ok(f) = std::fs::File::open(&candidate) {
                    if f.metadata().is_ok_and(|m| m.is_file()) {
                        held.push(f);
                    }
                }
            }
        }
    }
    println!("opened {}", held.len());
    let mut leaked = false;
    for mut f in held {
        let mut content = Vec::new();
        let _ = f.read_to_end(&mut content);
        leaked |= content
            .windows(needle.len())
            .any(|w| w == needle.as_bytes());
    }
    println!("{}", if leaked { "leaked" } else { "clean" });
}
