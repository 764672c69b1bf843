//! # cmux-host-bundle
//!
//! The host helper (`cmux-host`) carried inside cmux: built statically for Linux
//! x86_64 by this crate's build script and embedded gzipped, so cmux can install it on
//! any such host on first use. See the build script for how it is built and identified.

#![deny(missing_docs)]

use std::io::Read;
use std::path::Path;

/// One build of the helper.
#[derive(Clone, Copy, Debug)]
pub struct Bundle {
    /// The helper's package version.
    pub version: &'static str,
    /// The build id the helper reports in its hello (a hash of its sources).
    pub build: &'static str,
    /// SHA-256 of the uncompressed executable, lower-case hex.
    pub sha256: &'static str,
    /// Bytes of the uncompressed executable.
    pub size: u64,
    /// The executable, gzipped.
    pub gz: &'static [u8],
    /// The OS it runs on (`uname -s`, lower case).
    pub os: &'static str,
    /// The architecture it runs on (`uname -m`).
    pub arch: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// Errors of unpacking the bundled helper.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The embedded bytes do not inflate to the recorded size (a broken build).
    #[error("the bundled cmux-host is corrupt: {0}")]
    Corrupt(String),
    /// Writing the helper to a file failed.
    #[error("cannot write the helper to {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The helper built into this cmux, if any.
pub fn bundled() -> Option<&'static Bundle> {
    const B: Option<Bundle> = BUNDLE;
    static ONE: Option<Bundle> = B;
    ONE.as_ref()
}

impl Bundle {
    /// The uncompressed executable.
    pub fn binary(&self) -> Result<Vec<u8>, BundleError> {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        flate2::read::GzDecoder::new(self.gz)
            .read_to_end(&mut out)
            .map_err(|e| BundleError::Corrupt(e.to_string()))?;
        if out.len() as u64 != self.size {
            return Err(BundleError::Corrupt(format!(
                "{} bytes instead of {}",
                out.len(),
                self.size
            )));
        }
        Ok(out)
    }

    /// Writes the executable to `path` (mode 0755, replacing nothing: the file must
    /// not exist), e.g. to copy it into a container.
    pub fn write_to(&self, path: &Path) -> Result<(), BundleError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let bytes = self.binary()?;
        let fail = |source| BundleError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(path)
            .map_err(fail)?;
        file.write_all(&bytes).map_err(fail)?;
        file.sync_all().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundle_inflates_to_its_recorded_size() {
        if let Some(b) = super::bundled() {
            let bin = b.binary().expect("inflates");
            assert_eq!(bin.len() as u64, b.size);
            assert_eq!(&bin[..4], b"\x7fELF");
        }
    }
}
