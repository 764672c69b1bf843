//! grep over a big generated tree with the engine's `grep_fs`, next to the host's own
//! `grep -rn` on the same tree: both times and match counts.
//!
//! ```text
//! cargo run --release -p cmux-engine --example grep_bench -- DIR [FILES] [MIB]
//! ```
//!
//! DIR is created and filled (FILES files, MIB MiB in total; default 21,000 files and
//! 272 MiB, the size of the repository issue 10 measured) unless it already holds the
//! tree. Each search runs 3 times after one warm-up (page cache warm, as for an agent
//! searching its workspace); the best time is printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cmux_engine::{grep_fs, GrepRequest, OutputMode};

/// Lines holding the needle: one in every this many lines.
const NEEDLE_EVERY: u64 = 250_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().expect("usage: grep_bench DIR [FILES] [MIB]");
    let files: u64 = args.get(1).map_or(21_000, |a| a.parse().expect("FILES"));
    let mib: u64 = args.get(2).map_or(272, |a| a.parse().expect("MIB"));
    // Beside the tree, not in it: every file in the tree is searched.
    let marker = Path::new(&format!("{dir}.generated")).to_path_buf();
    if !marker.exists() {
        generate(Path::new(dir), files, mib << 20);
        fs::write(&marker, b"").expect("marker");
    }
    let (count, bytes) = tree_size(Path::new(dir));
    println!("tree: {dir}: {count} files, {:.1} MB", bytes as f64 / 1e6);
    for (label, pattern, grep_args) in [
        ("literal", "cmuxneedle", vec!["-rn", "cmuxneedle"]),
        (
            "regex",
            r"fn [a-z]+_handler\(",
            vec!["-rnE", r"fn [a-z]+_handler\("],
        ),
    ] {
        let mut req = GrepRequest::new(dir.as_str(), pattern);
        req.max_results = usize::MAX;
        let (engine_time, reply) = best_of(|| grep_fs(&req).expect("grep_fs"));
        let engine_matches = reply.results();
        let mut capped = GrepRequest::new(dir.as_str(), pattern);
        capped.output_mode = OutputMode::Content;
        let (capped_time, capped_reply) = best_of(|| grep_fs(&capped).expect("grep_fs"));
        let (grep_time, grep_matches) = best_of(|| {
            let out = Command::new("grep")
                .args(&grep_args)
                .arg(dir)
                .output()
                .expect("grep");
            out.stdout.iter().filter(|b| **b == b'\n').count()
        });
        println!(
            "{label:8} grep_fs: {:7.1} ms, {engine_matches} matches, {} files searched \
             (default cap: {:7.1} ms, {} shown + {} omitted) | grep -rn: {:7.1} ms, \
             {grep_matches} matches | ratio {:.2}",
            ms(engine_time),
            reply.files_searched,
            ms(capped_time),
            capped_reply.results(),
            capped_reply.omitted,
            ms(grep_time),
            engine_time.as_secs_f64() / grep_time.as_secs_f64(),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The best of 3 timed runs after a warm-up, and the last result.
fn best_of<T>(mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut result = run();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        result = run();
        best = best.min(start.elapsed());
    }
    (best, result)
}

fn tree_size(dir: &Path) -> (u64, u64) {
    let (mut count, mut bytes) = (0, 0);
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            let (c, b) = tree_size(&entry.path());
            count += c;
            bytes += b;
        } else {
            count += 1;
            bytes += meta.len();
        }
    }
    (count, bytes)
}

/// Source-like text: lines of words from a small vocabulary, some of them function
/// definitions, and a needle every [`NEEDLE_EVERY`] lines on average.
fn generate(dir: &Path, files: u64, total: u64) {
    const WORDS: &[&str] = &[
        "let", "self", "value", "return", "match", "config", "buffer", "request", "error",
        "result", "String", "usize", "impl", "struct", "options", "path", "reader", "writer",
        "index", "count", "=", "+", "(", ")", "{", "}", ";", "&mut", "Some",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let per_file = total / files;
    let mut line_no: u64 = 0;
    for i in 0..files {
        let sub = dir.join(format!("d{:02}/s{:02}", i % 50, (i / 50) % 20));
        fs::create_dir_all(&sub).expect("mkdir");
        let mut text = Vec::with_capacity(per_file as usize + 200);
        // Sizes vary between half and one and a half times the mean.
        let size = per_file / 2 + next() % per_file.max(1);
        while (text.len() as u64) < size {
            line_no += 1;
            if next() % NEEDLE_EVERY < 60 {
                text.extend_from_slice(b"    // cmuxneedle: found me\n");
                continue;
            }
            if line_no.is_multiple_of(97) {
                let name = ["read", "write", "parse", "open"][(next() % 4) as usize];
                writeln!(
                    text,
                    "fn {name}_handler(request: &Request) -> Result<()> {{"
                )
                .expect("write");
                continue;
            }
            let words = 4 + next() % 10;
            text.extend_from_slice(b"    ");
            for _ in 0..words {
                text.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize].as_bytes());
                text.push(b' ');
            }
            text.push(b'\n');
        }
        fs::write(sub.join(format!("f{i:05}.rs")), &text).expect("write");
    }
}
