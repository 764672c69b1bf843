//! A big generated source tree for the grep rows (moved here from cmux-engine's
//! former `grep_bench` example): source-like lines from a small vocabulary, a
//! function definition every 97 lines, and a needle line now and then.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The literal every few hundred thousand lines.
pub const NEEDLE: &str = "cmuxneedle";
/// A regular expression matching the function definitions.
pub const HANDLER_RE: &str = r"fn [a-z]+_handler\(";

/// Lines holding the needle: one in every this many lines.
const NEEDLE_EVERY: u64 = 250_000;

/// A generated tree: where, how many files, how many bytes.
#[derive(Clone, Debug)]
pub struct Tree {
    pub dir: PathBuf,
    pub files: u64,
    pub bytes: u64,
}

/// The tree in `dir`, generated with `files` files and `mib` MiB in all unless a
/// marker beside it says it was already (so a kept tree is reused across runs).
pub fn ensure(dir: &Path, files: u64, mib: u64) -> anyhow::Result<Tree> {
    // Beside the tree, not in it: every file in the tree is searched.
    let marker = PathBuf::from(format!("{}.generated-{files}-{mib}", dir.display()));
    if !marker.exists() {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        generate(dir, files, mib << 20)
            .with_context(|| format!("generating the grep tree in {}", dir.display()))?;
        fs::write(&marker, b"")?;
    }
    let (files, bytes) = size(dir)?;
    Ok(Tree {
        dir: dir.to_path_buf(),
        files,
        bytes,
    })
}

/// Files and bytes under `dir`.
fn size(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut count, mut bytes) = (0, 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (c, b) = size(&entry.path())?;
            count += c;
            bytes += b;
        } else {
            count += 1;
            bytes += meta.len();
        }
    }
    Ok((count, bytes))
}

/// Writes `files` files of `total` bytes in all (sizes vary between half and one and
/// a half times the mean) in 1,000 directories.
fn generate(dir: &Path, files: u64, total: u64) -> anyhow::Result<()> {
    const WORDS: &[&str] = &[
        "let", "self", "value", "return", "match", "config", "buffer", "request", "error",
        "result", "String", "usize", "impl", "struct", "options", "path", "reader", "writer",
        "index", "count", "=", "+", "(", ")", "{", "}", ";", "&mut", "Some",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64: fast and reproducible.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let per_file = (total / files.max(1)).max(1);
    let mut line_no: u64 = 0;
    for i in 0..files {
        let sub = dir.join(format!("d{:02}/s{:02}", i % 50, (i / 50) % 20));
        fs::create_dir_all(&sub)?;
        let mut text = Vec::with_capacity(per_file as usize + 200);
        let size = per_file / 2 + next() % per_file;
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
                )?;
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
        fs::write(sub.join(format!("f{i:05}.rs")), &text)?;
    }
    Ok(())
}
