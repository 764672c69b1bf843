//! Builds `cmux-host` as a static Linux x86_64 executable with a nested `cargo build`,
//! gzips it and writes `bundle.rs` (its bytes and identity) for `lib.rs` to include.
//!
//! - Static: the glibc target with `crt-static` (only `libc.a`, from libc6-dev, is
//!   needed: no extra rustup target), so the helper runs whatever the host's libc.
//! - The nested build has its own target directory beside the outer one, so it never
//!   waits on the outer build's lock, and shares the outer jobserver.
//! - Its identity (`build`) is a hash of the helper's sources and the lock file; the
//!   helper reports it in its hello, so cmux can tell the binary it carries from any
//!   other at the install path.
//! - `CMUX_HOST_BUNDLE=skip` embeds nothing (hosts then use the shell/SFTP path, or
//!   builds from `CMUX_HOST_HELPER_DIR`); so does a build machine that is not Linux
//!   x86_64, with a warning. `CMUX_HOST_BUNDLE_BIN=<file>` embeds a prebuilt helper.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Source trees compiled into the helper.
const SOURCES: &[&str] = &["crates/host", "crates/protocol", "crates/engine"];

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.clone());
    let out_dir = PathBuf::from(env("OUT_DIR"));
    for src in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(src).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=CMUX_HOST_BUNDLE");
    println!("cargo:rerun-if-env-changed=CMUX_HOST_BUNDLE_BIN");

    let build_id = source_hash(&root);
    let generated = out_dir.join("bundle.rs");
    let skip = std::env::var("CMUX_HOST_BUNDLE").is_ok_and(|v| v == "skip");
    let host = env("HOST");
    let binary = if skip {
        None
    } else if let Ok(prebuilt) = std::env::var("CMUX_HOST_BUNDLE_BIN") {
        Some(
            std::fs::read(&prebuilt)
                .unwrap_or_else(|e| panic!("CMUX_HOST_BUNDLE_BIN={prebuilt}: cannot read it: {e}")),
        )
    } else if host == "x86_64-unknown-linux-gnu" {
        Some(build_helper(&root, &out_dir, &build_id))
    } else {
        println!(
            "cargo:warning=cmux-host is not bundled: this build machine ({host}) cannot build a static Linux x86_64 helper; hosts will use the shell/SFTP path unless CMUX_HOST_HELPER_DIR supplies builds"
        );
        None
    };
    let code = match binary {
        None => "/// No helper is bundled in this build.\npub(crate) const BUNDLE: Option<Bundle> = None;\n".to_owned(),
        Some(bytes) => {
            let sha = hex(&Sha256::digest(&bytes));
            let gz_path = out_dir.join("cmux-host.gz");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut enc, &bytes).expect("gzip in memory");
            let gz = enc.finish().expect("gzip in memory");
            std::fs::write(&gz_path, &gz).expect("writing the gzipped helper into OUT_DIR");
            format!(
                "/// The bundled helper.\npub(crate) const BUNDLE: Option<Bundle> = Some(Bundle {{\n    version: {:?},\n    build: {:?},\n    sha256: {:?},\n    size: {},\n    gz: include_bytes!({:?}),\n    os: \"linux\",\n    arch: \"x86_64\",\n}});\n",
                env("CARGO_PKG_VERSION"),
                build_id,
                sha,
                bytes.len(),
                gz_path.display().to_string()
            )
        }
    };
    std::fs::write(&generated, code).expect("writing bundle.rs into OUT_DIR");
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("cargo did not set {key}"))
}

fn build_helper(root: &Path, out_dir: &Path, build_id: &str) -> Vec<u8> {
    // <target>/<profile>/build/<pkg>/out: the nested build lives beside <profile>.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("cmux-host"))
        .unwrap_or_else(|| out_dir.join("cmux-host-target"));
    let triple = "x86_64-unknown-linux-gnu";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--package",
            "cmux-host",
            "--target",
            triple,
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings must not leak in (clippy's wrapper, flags, target).
    for (key, _) in std::env::vars() {
        let leaks = key.starts_with("CARGO_ENCODED_")
            || key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_TARGET_")
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("__CARGO")
            || matches!(
                key.as_str(),
                "RUSTFLAGS" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTC_WRAPPER" | "RUSTDOCFLAGS"
            );
        if leaks {
            cmd.env_remove(&key);
        }
    }
    cmd.env(
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
        "-C target-feature=+crt-static",
    )
    .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
    .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
    .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
    .env("CMUX_HOST_BUILD_ID", build_id);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build cmux-host: {e}"));
    if !status.success() {
        panic!(
            "building the static cmux-host failed ({status}); it needs glibc's static library (Debian/Ubuntu: `apt-get install libc6-dev`). Set CMUX_HOST_BUNDLE=skip to build cmux without it (hosts then use the shell/SFTP path)"
        );
    }
    let bin = target_dir.join(triple).join("release").join("cmux-host");
    std::fs::read(&bin).unwrap_or_else(|e| panic!("reading {}: {e}", bin.display()))
}

/// A hash of every file of the helper's sources and the lock file, in path order.
fn source_hash(root: &Path) -> String {
    let mut files = Vec::new();
    for src in SOURCES {
        collect(&root.join(src), &mut files);
    }
    files.push(root.join("Cargo.lock"));
    files.sort();
    let mut hasher = Sha256::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap_or(f);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(f).unwrap_or_default());
        hasher.update([0]);
    }
    hex(&hasher.finalize())[..16].to_owned()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
