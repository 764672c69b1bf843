//! SFTP writes as other users of the host see them, and the files they refuse
//! (issue 11 #3, #5, #14, #18 and "Also"): the content of a private file never
//! leaks through the temporary file, a full disk says so once, unwritable and
//! other users' files are refused, `/proc/version` is not "no such file".

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use cmux_core::{Error, RemotePath, Runtime};
use cmux_integration_tests::sshd::TestSshd;
use cmux_integration_tests::users;

fn remote(path: &std::path::Path) -> RemotePath {
    RemotePath::new(path.to_string_lossy().into_owned()).expect("path")
}

/// Issue 11 #3: another user polling the directory never reads the new content of a
/// 0600 file while cmux writes it (the issue saw it in 19 of 20 writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_never_reads_a_private_file_being_written() {
    let Some((uid, gid)) = users::other_user() else {
        eprintln!(
            "skipped: no second user (run as root to create {})",
            users::OTHER_USER
        );
        return;
    };
    let sshd = TestSshd::start();
    // The other user may traverse to the directory (as in a shared project tree).
    for dir in [sshd.dir().to_path_buf(), sshd.scratch()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let peek = sshd.dir().join("cmux-peek");
    std::fs::copy(env!("CARGO_BIN_EXE_cmux-peek"), &peek).expect("copy the peeker");
    let target = sshd.scratch().join("secret.env");
    std::fs::write(&target, "old").expect("old");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("0600");

    let needle = format!("SECRET-{}", fastrand::u64(..));
    let mut peeker = users::command_as(uid, gid, &peek.to_string_lossy())
        .arg(sshd.scratch())
        .arg(&needle)
        .stdout(Stdio::piped())
        .spawn()
        .expect("peeker starts");
    let mut lines = BufReader::new(peeker.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().expect("line").expect("read"), "ready");

    let rt = sshd.runtime();
    let content = format!("{needle}\n").repeat(64 << 10);
    for _ in 0..20 {
        rt.write_file(&remote(&target), content.as_bytes())
            .await
            .expect("write");
    }
    std::fs::write(sshd.scratch().join("stop"), "").expect("stop");
    let report: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = peeker.wait();
    assert_eq!(
        report.last().map(String::as_str),
        Some("clean"),
        "another user read the content being written: {report:?}"
    );
    let meta = std::fs::metadata(&target).expect("meta");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "the mode is kept");
    assert_eq!(std::fs::read(&target).expect("read"), content.as_bytes());
}

/// Issue 11 #14: a full disk is "no space left on the host", said once; the target is
/// intact and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_says_no_space_left_once() {
    let sshd = TestSshd::start();
    let mnt = sshd.scratch().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a small tmpfs here (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let target = mnt.join("f");
    std::fs::write(&target, "old").expect("old");
    let rt = sshd.runtime();
    let err = rt
        .write_file(&remote(&target), &vec![b'x'; 1 << 20])
        .await
        .expect_err("1 MiB does not fit in 64 KiB");
    let text = format!("{:#}", anyhow_like(&err));
    assert!(text.contains("no space left on the host"), "{text}");
    assert_eq!(
        text.matches("no space left").count(),
        1,
        "said once: {text}"
    );
    assert!(!text.contains("Failure: Failure"), "{text}");
    assert_eq!(std::fs::read(&target).expect("read"), b"old");
    let left: Vec<_> = std::fs::read_dir(&mnt)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("f")],
        "nothing left behind"
    );
}

/// The error and every source below it, as the CLI prints a chain (`{:#}`).
fn anyhow_like(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Issue 11 "Also" and #18: a read-only file, another user's file and `/proc/version`
/// are refused for what they are, and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_and_other_users_files_are_refused() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let read_only = sshd.scratch().join("read-only");
    std::fs::write(&read_only, "old").expect("old");
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).expect("0444");
    match rt.write_file(&remote(&read_only), b"new").await {
        Err(Error::NotWritable { reason, .. }) => assert!(reason.contains("read-only"), "{reason}"),
        other => panic!("a 0444 file must be refused: {other:?}"),
    }
    assert_eq!(std::fs::read(&read_only).expect("read"), b"old");

    if let Some((uid, gid)) = users::other_user() {
        let theirs = sshd.scratch().join("theirs");
        std::fs::write(&theirs, "old").expect("old");
        std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).expect("chown");
        // Learn our uid on this connection first (the first write creates a file).
        rt.write_file(&remote(&sshd.scratch().join("mine")), b"x")
            .await
            .expect("write");
        match rt.write_file(&remote(&theirs), b"new").await {
            Err(Error::NotWritable { reason, .. }) => {
                assert!(reason.contains("another user"), "{reason}")
            }
            other => panic!("another user's file must be refused: {other:?}"),
        }
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&theirs).expect("meta");
        assert_eq!(
            (meta.uid(), std::fs::read(&theirs).expect("read")),
            (uid, b"old".to_vec())
        );
    }

    let err = rt
        .write_file(&RemotePath::new("/proc/version").expect("path"), b"x")
        .await
        .expect_err("/proc/version is not writable");
    assert!(
        !matches!(err, Error::NotFound { .. }) && !err.to_string().contains("no such file"),
        "{err}"
    );
}
