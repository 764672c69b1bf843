//! Which helper build a host gets: the bundled Linux x86_64 build, or a build for the
//! host's OS and architecture from [`crate::SshOptions::helper_dir`]
//! (`cmux-host-<os>-<arch>`, e.g. `cmux-host-linux-aarch64`).

use std::path::Path;

use sha2::{Digest, Sha256};

/// A helper build that can be installed.
#[derive(Clone, Debug)]
pub(crate) struct Artifact {
    /// Its version (the bundle's; a directory build is assumed to match cmux's).
    pub(crate) version: String,
    /// The build id its hello must carry, when known (the bundle's).
    pub(crate) build: Option<String>,
    /// SHA-256 of the executable.
    pub(crate) sha256: String,
    /// Size of the executable.
    pub(crate) size: u64,
    /// The executable, or the bundle's gzip of it.
    payload: Payload,
}

#[derive(Clone, Debug)]
enum Payload {
    Bundled(&'static cmux_host_bundle::Bundle),
    File(std::sync::Arc<Vec<u8>>),
}

impl Artifact {
    /// The directory name it is installed under.
    pub(crate) fn dir_name(&self) -> String {
        super::scripts::build_dir_name(&self.version, &self.sha256)
    }

    /// The bytes to upload: gzipped when possible and the host has gzip.
    pub(crate) fn upload_bytes(&self, host_has_gzip: bool) -> Result<(Vec<u8>, bool), String> {
        match &self.payload {
            Payload::Bundled(b) if host_has_gzip => Ok((b.gz.to_vec(), true)),
            Payload::Bundled(b) => b
                .binary()
                .map(|bin| (bin, false))
                .map_err(|e| e.to_string()),
            Payload::File(bytes) => Ok((bytes.as_ref().clone(), false)),
        }
    }
}

/// `uname -s`/`uname -m` as the names builds use: `linux`/`darwin`, `x86_64`/`aarch64`.
pub(crate) fn normalize(os: &str, arch: &str) -> (String, String) {
    let os = os.trim().to_ascii_lowercase();
    let arch = match arch.trim() {
        "amd64" | "x86_64" => "x86_64".to_owned(),
        "arm64" | "aarch64" => "aarch64".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    (os, arch)
}

/// Every build cmux can install, the bundled one first.
pub(crate) fn all(helper_dir: Option<&Path>) -> Vec<(String, String, Artifact)> {
    let mut out = Vec::new();
    if let Some(b) = cmux_host_bundle::bundled() {
        out.push((
            b.os.to_owned(),
            b.arch.to_owned(),
            Artifact {
                version: b.version.to_owned(),
                build: Some(b.build.to_owned()),
                sha256: b.sha256.to_owned(),
                size: b.size,
                payload: Payload::Bundled(b),
            },
        ));
    }
    let Some(dir) = helper_dir else {
        return out;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "the helper directory cannot be read");
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("cmux-host-") else {
            continue;
        };
        let Some((os, arch)) = rest.split_once('-') else {
            continue;
        };
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let (os, arch) = normalize(os, arch);
        let sha256: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push((
            os,
            arch,
            Artifact {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                build: None,
                sha256,
                size: bytes.len() as u64,
                payload: Payload::File(std::sync::Arc::new(bytes)),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_names_are_normalized() {
        assert_eq!(
            normalize("Linux", "x86_64\n"),
            ("linux".into(), "x86_64".into())
        );
        assert_eq!(
            normalize("Darwin", "arm64"),
            ("darwin".into(), "aarch64".into())
        );
    }
}
