//! File operations over SFTP: round trips, atomic writes keeping mode, symlinks, errors.

use cmux_core::{Error, FileKind, RemotePath, Runtime};
use cmux_integration_tests::sshd::TestSshd;
use std::os::unix::fs::PermissionsExt;

fn p(s: &str) -> RemotePath {
    RemotePath::new(s).expect("path")
}

#[tokio::test]
async fn file_operations_round_trip() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let base = sshd.scratch_path();
    let f = base.join("a/b/c.txt").expect("join");

    rt.create_dir_all(&base.join("a/b").expect("j"))
        .await
        .expect("mkdir -p");
    rt.create_dir_all(&base.join("a/b").expect("j"))
        .await
        .expect("mkdir -p again");
    rt.write_file(&f, b"hello").await.expect("write");
    assert_eq!(rt.read_file(&f).await.expect("read"), b"hello");
    let meta = rt.stat(&f).await.expect("stat");
    assert_eq!(meta.kind, FileKind::File);
    assert_eq!(meta.len, 5);

    // Mode kept on overwrite.
    let local = sshd.scratch().join("a/b/c.txt");
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o751)).expect("chmod");
    rt.write_file(&f, b"again").await.expect("overwrite");
    assert_eq!(std::fs::read(&local).expect("local read"), b"again");
    assert_eq!(rt.stat(&f).await.expect("stat").mode, 0o751);

    // Through a symlink: the target changes, the link stays.
    std::os::unix::fs::symlink("b/c.txt", sshd.scratch().join("a/link")).expect("symlink");
    rt.write_file(&base.join("a/link").expect("j"), b"via link")
        .await
        .expect("write link");
    assert!(std::fs::symlink_metadata(sshd.scratch().join("a/link"))
        .expect("lstat")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&local).expect("read"), b"via link");

    let entries = rt.read_dir(&base.join("a").expect("j")).await.expect("ls");
    let names: Vec<(&str, FileKind)> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        names,
        vec![("b", FileKind::Dir), ("link", FileKind::Symlink)]
    );
    // No temp file left behind.
    let inner = rt
        .read_dir(&base.join("a/b").expect("j"))
        .await
        .expect("ls");
    assert_eq!(inner.len(), 1, "{inner:?}");

    let g = base.join("a/d.txt").expect("j");
    rt.rename(&f, &g).await.expect("rename");
    assert!(matches!(rt.stat(&f).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        rt.read_file(&f).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        rt.read_file(&base.join("a").expect("j")).await,
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        rt.remove(&base.join("a").expect("j"), false).await,
        Err(Error::WrongKind { .. })
    ));
    rt.remove(&g, false).await.expect("rm file");
    rt.remove(&base.join("a").expect("j"), true)
        .await
        .expect("rm -r");
    assert!(!sshd.scratch().join("a").exists());
    assert!(matches!(
        rt.remove(&base.join("a").expect("j"), true).await,
        Err(Error::NotFound { .. })
    ));

    // `~` and relative paths resolve on the host.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    assert_eq!(rt.resolve_path("~").await.expect("~").as_str(), home);
    assert_eq!(
        rt.resolve_path("~/x/../y").await.expect("~").as_str(),
        format!("{home}/y")
    );
    assert_eq!(
        rt.resolve_path("rel").await.expect("rel").as_str(),
        format!("{home}/rel")
    );
    assert!(rt.resolve_path("~other/x").await.is_err());
    let _ = p("/");
}
