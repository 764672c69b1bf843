//! `--pipe` workspaces end to end: the helper this cmux carries, written out with
//! `cmux host-helper --output` and reached through a command's stdio, as another local
//! user (`runuser`, as `sudo -u sandbox cmux-host` or `docker exec -i` would be).

use cmux_integration_tests::users::{ensure_user, ids, is_root, PIPE_USER};

use super::Env;

#[test]
fn host_helper_writes_the_bundled_helper() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cmux-host");
    let out = env.ok(&["host-helper", "--output", path.to_str().expect("utf-8")]);
    assert!(out.contains("written to"), "{out}");
    let version = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .expect("the written helper runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cmux-host "));
    // Never over an existing file.
    let again = env.run(&["host-helper", "--output", path.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1));
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["host-helper", "--json"])).expect("json");
    assert_eq!(json["os"], "linux");
    assert_eq!(json["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn a_pipe_workspace_as_another_user() {
    if !is_root() {
        eprintln!("skipped: becoming another user needs root");
        return;
    }
    ensure_user(PIPE_USER);
    let (uid, gid) = ids(PIPE_USER);
    let env = Env::new();
    let bin = tempfile::tempdir().expect("bin dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let helper = bin.path().join("cmux-host");
    env.ok(&["host-helper", "--output", helper.to_str().expect("utf-8")]);
    let work = tempfile::tempdir().expect("work dir");
    std::os::unix::fs::chown(work.path(), Some(uid), Some(gid)).expect("chown");
    let work_dir = work.path().to_str().expect("utf-8");
    let command = format!("runuser -u {PIPE_USER} -- {}", helper.display());

    let created = env.ok(&["new", "box", "--pipe", &command, "--dir", work_dir]);
    assert!(created.contains("created workspace box"), "{created}");
    assert_eq!(
        env.ok(&["exec", "box", "--", "id -un; pwd"]),
        format!("{PIPE_USER}\n{work_dir}\n")
    );
    let written = env.run_stdin(&["write", "box", "notes.txt"], b"from cmux\n");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    assert_eq!(env.ok(&["cat", "box", "notes.txt"]), "from cmux\n");
    let meta = std::fs::metadata(work.path().join("notes.txt")).expect("written there");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), uid, "written by the other user");
    let doctor = env.ok(&["doctor", "--pipe", &command]);
    assert!(doctor.contains("cmux-host"), "{doctor}");
    // In place: rm never deletes the directory.
    env.ok(&["rm", "box"]);
    assert!(work.path().join("notes.txt").exists());

    let no_dir = env.run(&["new", "box2", "--pipe", &command]);
    assert_eq!(
        no_dir.status.code(),
        Some(2),
        "--dir is required with --pipe"
    );
}
