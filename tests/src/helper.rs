//! The bundled host helper as a file, for tests that run it directly (the pipe
//! backend) or through another user.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The bundled `cmux-host`, written once per build to
/// `/tmp/cmux-test-helper-<build>/cmux-host` (mode 0755 in a 0755 directory, so other
/// local users can run it too). Written to a temporary name and renamed, so parallel
/// test processes never run a half-written file.
pub fn helper_path() -> PathBuf {
    let bundle = cmux_host_bundle::bundled()
        .expect("this build carries no cmux-host (CMUX_HOST_BUNDLE=skip?)");
    let dir = std::env::temp_dir().join(format!("cmux-test-helper-{}", bundle.build));
    let path = dir.join("cmux-host");
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("helper dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let temp = dir.join(format!(".cmux-host.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    bundle.write_to(&temp).expect("write helper");
    std::fs::rename(&temp, &path).expect("install helper");
    path
}

/// A pipe command running the bundled helper as the current user. The helper captures
/// the user's login environment; on the test machines root's `~/.bashrc` runs `pyenv
/// init`, whose rehash waits up to 60 s for a lock a killed test shell may have left:
/// bounded to 1 s here, as the test sshd does with `SetEnv`.
pub fn helper_command() -> String {
    format!("PYENV_REHASH_TIMEOUT=1 exec {}", helper_path().display())
}
