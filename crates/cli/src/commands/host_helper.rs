//! `cmux host-helper`: the helper this cmux carries, for copying where a pipe reaches.

use anyhow::Result;
use serde::Serialize;

use crate::args::HostHelperArgs;
use crate::error::CliError;

#[derive(Serialize)]
struct HelperInfo<'a> {
    version: &'a str,
    build: &'a str,
    os: &'a str,
    arch: &'a str,
    size: u64,
    sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    written_to: Option<String>,
}

/// Prints the bundled helper's identity and writes it with `--output`.
pub fn run(args: &HostHelperArgs) -> Result<i32> {
    let Some(bundle) = cmux_host_bundle::bundled() else {
        return Err(CliError::failure(
            "this cmux was built without the host helper (CMUX_HOST_BUNDLE=skip, or a build machine that is not Linux x86_64): build cmux on Linux x86_64 to get it",
        ));
    };
    if let Some(path) = &args.output {
        bundle.write_to(path).map_err(|e| {
            CliError::failure(format!(
                "{e}; give a path that does not exist yet, e.g. --output ./cmux-host"
            ))
        })?;
    }
    let info = HelperInfo {
        version: bundle.version,
        build: bundle.build,
        os: bundle.os,
        arch: bundle.arch,
        size: bundle.size,
        sha256: bundle.sha256,
        written_to: args.output.as_ref().map(|p| p.display().to_string()),
    };
    if args.json {
        out!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(0);
    }
    out!(
        "cmux-host {} (build {}) for {} {}: {} bytes, sha256 {}",
        info.version,
        info.build,
        info.os,
        info.arch,
        info.size,
        info.sha256
    );
    if let Some(path) = &info.written_to {
        out!("written to {path}: copy it where your --pipe command runs it, e.g. `docker cp {path} box:/usr/local/bin/cmux-host`");
    }
    Ok(0)
}
