//! Cases about file operations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt;

use super::util::{diff, is_root, noise, q, read, sh, write};
use super::{Harness, Outcome};
use crate::error::Error;
use crate::runtime::{FileKind, RuntimeExt, SmallFile};

pub(super) async fn files_round_trip(h: Harness) -> Outcome {
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("all-bytes", all_bytes.clone()),
        ("all-bytes-repeated", all_bytes.repeat(300)),
        ("empty", Vec::new()),
        ("ten-mib", noise(10 << 20, 42)),
        ("crlf", b"a\r\nb\r\n\r\n".to_vec()),
    ];
    for (name, data) in &cases {
        let path = h.path(name);
        write(&h, &path, data).await;
        let back = read(&h, &path).await;
        assert!(
            &back == data,
            "file {name} did not round-trip: {}",
            diff(&back, data)
        );
        let meta = h.runtime.stat(&path).await.expect("stat");
        assert_eq!(meta.kind, FileKind::File, "stat kind of {name}");
        assert_eq!(meta.len, data.len() as u64, "stat len of {name}");
    }
    // Rewriting with shorter content truncates.
    let path = h.path("ten-mib");
    write(&h, &path, b"short").await;
    assert_eq!(
        read(&h, &path).await,
        b"short",
        "rewrite with shorter content"
    );
    Outcome::Passed
}

/// Names that break naive quoting.
const ODD_NAMES: &[&str] = &[
    "with space",
    "it's",
    "say \"hi\"",
    "$(touch pwned)",
    "`touch pwned`",
    "new\nline",
    "-leading-dash",
    "--",
    "ünïcødé ✓ 日本",
    "star*?[x]",
    "semi;colon&amp|pipe",
    "back\\slash",
    "tab\there",
    " leading space",
];

pub(super) async fn odd_names(h: Harness) -> Outcome {
    for name in ODD_NAMES {
        let path = h.path(name);
        write(&h, &path, name.as_bytes()).await;
        assert_eq!(
            read(&h, &path).await,
            name.as_bytes(),
            "content of file named {name:?}"
        );
        let meta = h
            .runtime
            .stat(&path)
            .await
            .unwrap_or_else(|e| panic!("stat of {name:?}: {e}"));
        assert_eq!(meta.len, name.len() as u64, "stat len of {name:?}");
    }
    let entries = h.runtime.read_dir(&h.scratch).await.expect("read_dir");
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut expected: Vec<&str> = ODD_NAMES.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        names, expected,
        "read_dir must show the exact names (and nothing else: no `pwned`, no temp files)"
    );
    for name in ODD_NAMES {
        let from = h.path(name);
        let to = h.path(&format!("{name}.renamed"));
        h.runtime
            .rename(&from, &to)
            .await
            .unwrap_or_else(|e| panic!("rename of {name:?}: {e}"));
        assert!(
            !h.runtime.exists(&from).await.expect("exists"),
            "{name:?} still there after rename"
        );
        assert_eq!(read(&h, &to).await, name.as_bytes(), "renamed {name:?}");
        h.runtime
            .remove(&to, false)
            .await
            .unwrap_or_else(|e| panic!("remove of {name:?}: {e}"));
    }
    // Directories with odd names, and a command run inside one.
    let dir = h.path("$(touch pwned) it's\na dir");
    h.runtime
        .create_dir_all(&dir.join("sub").expect("path"))
        .await
        .expect("create_dir_all with an odd name");
    write(&h, &dir.join("sub/f").expect("path"), b"x").await;
    let out = sh(&h, &format!("cd {} && cat sub/f", q(&dir))).await;
    assert_eq!(out, "x", "file in a directory with an odd name");
    h.runtime.remove(&dir, true).await.expect("remove odd dir");
    let left = h.runtime.read_dir(&h.scratch).await.expect("read_dir");
    assert!(
        left.is_empty(),
        "scratch should be empty, found {:?}",
        left.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    Outcome::Passed
}

pub(super) async fn atomic_rewrite(h: Harness) -> Outcome {
    const SIZE: usize = 1 << 20;
    const REWRITES: usize = 50;
    let path = h.path("contended");
    write(&h, &path, &vec![b'A'; SIZE]).await;
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (rt, path, done, reads) =
            (h.runtime.clone(), path.clone(), done.clone(), reads.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                let data = rt.read_file(&path).await.expect("concurrent read_file");
                let first = data.first().copied();
                assert!(
                    data.len() == SIZE
                        && matches!(first, Some(b'A' | b'B'))
                        && data.iter().all(|b| Some(*b) == first),
                    "a reader saw a mix of old and new content (or a partial file): {} bytes, \
                     {} A and {} B",
                    data.len(),
                    data.iter().filter(|b| **b == b'A').count(),
                    data.iter().filter(|b| **b == b'B').count()
                );
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the reader start first, whatever the test runtime's flavour.
    while reads.load(Ordering::Relaxed) == 0 && !reader.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    for i in 0..REWRITES {
        let byte = if i % 2 == 0 { b'B' } else { b'A' };
        write(&h, &path, &vec![byte; SIZE]).await;
    }
    done.store(true, Ordering::Release);
    reader.await.expect("the concurrent reader failed");
    assert!(reads.load(Ordering::Relaxed) > 0, "the reader never ran");
    let entries = h.runtime.read_dir(&h.scratch).await.expect("read_dir");
    assert_eq!(
        entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["contended"],
        "atomic writes must not leave temporary files behind"
    );
    Outcome::Passed
}

pub(super) async fn mode_kept(h: Harness) -> Outcome {
    for mode in [0o755u32, 0o600] {
        let path = h.path(&format!("mode-{mode:o}"));
        write(&h, &path, b"one").await;
        sh(&h, &format!("chmod {mode:o} {}", q(&path))).await;
        write(&h, &path, b"two").await;
        let meta = h.runtime.stat(&path).await.expect("stat");
        assert_eq!(
            meta.mode & 0o777,
            mode,
            "a rewritten file must keep its mode {mode:o}, got {:o}",
            meta.mode & 0o777
        );
        assert_eq!(read(&h, &path).await, b"two");
    }
    Outcome::Passed
}

/// Asserts that writing `path` is refused with [`Error::NotWritable`] naming `names`,
/// and leaves `old` in place.
async fn assert_not_replaced(h: &Harness, path: &crate::RemotePath, names: &str, old: &[u8]) {
    match h.runtime.write_file(path, b"new").await {
        Err(Error::NotWritable {
            path: named,
            reason,
            ..
        }) => {
            assert!(
                named.as_str().ends_with(names),
                "the error names {names}, not {named}"
            );
            assert!(!reason.is_empty());
        }
        other => panic!("writing {path} must be refused with NotWritable, got {other:?}"),
    }
    assert_eq!(read(h, path).await, old, "{path} must be left alone");
}

pub(super) async fn write_refuses_unwritable(h: Harness) -> Outcome {
    let path = h.path("read-only");
    write(&h, &path, b"old").await;
    sh(&h, &format!("chmod 444 {}", q(&path))).await;
    assert_not_replaced(&h, &path, "read-only", b"old").await;
    let meta = h.runtime.stat(&path).await.expect("stat");
    assert_eq!(meta.mode & 0o777, 0o444, "the mode is left alone too");
    // Through a symlink, the target is what counts (and what the error names).
    sh(&h, &format!("cd {} && ln -s read-only link", q(&h.scratch))).await;
    assert_not_replaced(&h, &h.path("link"), "read-only", b"old").await;
    // Removing it first is how a caller replaces it anyway.
    h.runtime.remove(&path, false).await.expect("remove");
    write(&h, &path, b"new").await;
    assert_eq!(read(&h, &path).await, b"new");
    if !is_root(&h).await {
        return Outcome::Passed;
    }
    // Another user's file (only root can make one here): replacing it would make it
    // ours.
    let theirs = h.path("theirs");
    write(&h, &theirs, b"old").await;
    sh(&h, &format!("chown 65534 {}", q(&theirs))).await;
    assert_not_replaced(&h, &theirs, "theirs", b"old").await;
    Outcome::Passed
}

pub(super) async fn write_through_symlink(h: Harness) -> Outcome {
    let target = h.path("target");
    write(&h, &target, b"old").await;
    sh(&h, &format!("cd {} && ln -s target link", q(&h.scratch))).await;
    let link = h.path("link");
    write(&h, &link, b"new").await;
    assert_eq!(
        read(&h, &target).await,
        b"new",
        "writing through a symlink must update its target"
    );
    assert_eq!(read(&h, &link).await, b"new", "read through the link");
    let entries = h.runtime.read_dir(&h.scratch).await.expect("read_dir");
    let kind = |n: &str| entries.iter().find(|e| e.name == n).map(|e| e.kind);
    assert_eq!(
        kind("link"),
        Some(FileKind::Symlink),
        "the link must stay a link"
    );
    assert_eq!(
        kind("target"),
        Some(FileKind::File),
        "the target stays a file"
    );
    assert_eq!(entries.len(), 2, "no temp files left behind");
    assert_eq!(
        h.runtime.stat(&link).await.expect("stat link").kind,
        FileKind::File,
        "stat follows symlinks"
    );
    Outcome::Passed
}

pub(super) async fn write_through_symlinked_dir(h: Harness) -> Outcome {
    // `d -> deep/sub`, and `deep/sub/f -> ../g`: the link's target is relative to the
    // link's real directory, so `d/f` is `deep/g` (not `g` beside `d`).
    h.runtime
        .create_dir_all(&h.path("deep/sub"))
        .await
        .expect("mkdir deep/sub");
    write(&h, &h.path("deep/g"), b"old g").await;
    write(&h, &h.path("g"), b"bystander").await;
    sh(
        &h,
        &format!(
            "cd {} && ln -s deep/sub d && ln -s ../g deep/sub/f",
            q(&h.scratch)
        ),
    )
    .await;
    write(&h, &h.path("d/f"), b"new").await;
    assert_eq!(
        read(&h, &h.path("deep/g")).await,
        b"new",
        "writing d/f must write deep/g (the link ../g is relative to deep/sub)"
    );
    assert_eq!(
        read(&h, &h.path("g")).await,
        b"bystander",
        "g beside d must be left alone"
    );
    let entries = h
        .runtime
        .read_dir(&h.path("deep/sub"))
        .await
        .expect("read_dir");
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind))
            .collect::<Vec<_>>(),
        vec![("f", FileKind::Symlink)],
        "the link stays a link, and no temporary file is left"
    );
    Outcome::Passed
}

pub(super) async fn read_file_up_to_checks_kind_and_size(h: Harness) -> Outcome {
    let rt = &h.runtime;
    write(&h, &h.path("small"), b"0123456789").await;
    h.runtime
        .create_dir_all(&h.path("dir"))
        .await
        .expect("mkdir dir");
    // A fifo nobody writes: opening it for reading would wait forever.
    sh(&h, &format!("cd {} && mkfifo fifo", q(&h.scratch))).await;
    assert_eq!(
        rt.read_file_up_to(&h.path("small"), 10)
            .await
            .expect("read"),
        SmallFile::Read(b"0123456789".to_vec()),
        "a file of exactly the limit is read whole"
    );
    assert_eq!(
        rt.read_file_up_to(&h.path("small"), 9).await.expect("read"),
        SmallFile::TooLarge(10),
        "a file over the limit is refused with its length"
    );
    assert_eq!(
        rt.read_file_up_to(&h.path("dir"), 10).await.expect("read"),
        SmallFile::NotAFile(FileKind::Dir)
    );
    let fifo = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        rt.read_file_up_to(&h.path("fifo"), 10),
    )
    .await
    .expect("a fifo is refused, not waited on");
    assert_eq!(fifo.expect("read"), SmallFile::NotAFile(FileKind::Other));
    expect_not_found(
        "read_file_up_to",
        rt.read_file_up_to(&h.path("missing"), 10).await,
    );
    Outcome::Passed
}

fn expect_not_found<T: std::fmt::Debug>(what: &str, result: crate::Result<T>) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what} of a missing path must give Error::NotFound, got {other:?}"),
    }
}

pub(super) async fn not_found(h: Harness) -> Outcome {
    let rt = &h.runtime;
    let missing = h.path("missing");
    let nested = h.path("missing/child");
    expect_not_found("read_file", rt.read_file(&missing).await);
    expect_not_found("read_file (nested)", rt.read_file(&nested).await);
    expect_not_found("stat", rt.stat(&missing).await);
    expect_not_found("read_dir", rt.read_dir(&missing).await);
    expect_not_found("remove", rt.remove(&missing, false).await);
    expect_not_found("remove (recursive)", rt.remove(&missing, true).await);
    expect_not_found("rename (source)", rt.rename(&missing, &h.path("x")).await);
    expect_not_found(
        "open_read",
        rt.open_read(&missing).await.map(|_| "a stream"),
    );
    expect_not_found(
        "write_file into a missing directory",
        rt.write_file(&nested, b"x").await,
    );
    assert!(!rt.exists(&missing).await.expect("exists"), "exists");
    Outcome::Passed
}

pub(super) async fn permission_denied(h: Harness) -> Outcome {
    if is_root(&h).await {
        let why = "the runtime's user is root, who bypasses permission bits";
        println!("conformance: permission_denied skipped: {why}");
        return Outcome::Skipped(why.into());
    }
    let file = h.path("secret");
    write(&h, &file, b"x").await;
    let dir = h.path("locked");
    h.runtime.create_dir_all(&dir).await.expect("mkdir");
    write(&h, &dir.join("inside").expect("path"), b"y").await;
    sh(&h, &format!("chmod 000 {} {}", q(&file), q(&dir))).await;
    let read = h.runtime.read_file(&file).await;
    let list = h.runtime.read_dir(&dir).await;
    let inner = h
        .runtime
        .read_file(&dir.join("inside").expect("path"))
        .await;
    let write_in = h
        .runtime
        .write_file(&dir.join("new").expect("path"), b"z")
        .await;
    // Restore the modes before asserting, so the scratch dir can be removed.
    sh(&h, &format!("chmod 700 {} {}", q(&file), q(&dir))).await;
    for (what, result) in [
        ("read_file of a mode 000 file", read.map(|_| ())),
        ("read_dir of a mode 000 directory", list.map(|_| ())),
        ("read_file inside a mode 000 directory", inner.map(|_| ())),
        ("write_file inside a mode 000 directory", write_in),
    ] {
        assert!(
            matches!(result, Err(Error::PermissionDenied { .. })),
            "{what} must give Error::PermissionDenied, got {result:?}"
        );
    }
    Outcome::Passed
}

pub(super) async fn read_dir_sorted(h: Harness) -> Outcome {
    write(&h, &h.path("b.txt"), b"abc").await;
    write(&h, &h.path("A"), b"").await;
    write(&h, &h.path(".hidden"), b"1").await;
    h.runtime.create_dir_all(&h.path("a")).await.expect("mkdir");
    sh(&h, &format!("cd {} && ln -s b.txt c", q(&h.scratch))).await;
    let entries = h.runtime.read_dir(&h.scratch).await.expect("read_dir");
    let got: Vec<(&str, FileKind)> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        got,
        vec![
            (".hidden", FileKind::File),
            ("A", FileKind::File),
            ("a", FileKind::Dir),
            ("b.txt", FileKind::File),
            ("c", FileKind::Symlink),
        ],
        "read_dir must be sorted by name (bytewise), without . and .., with the right kinds"
    );
    assert_eq!(entries[3].len, 3, "size of b.txt");
    let empty = h.path("a");
    assert!(
        h.runtime.read_dir(&empty).await.expect("empty").is_empty(),
        "empty directory"
    );
    match h.runtime.read_dir(&h.path("b.txt")).await {
        Err(_) => {}
        Ok(e) => panic!("read_dir of a file must fail, got {e:?}"),
    }
    Outcome::Passed
}

pub(super) async fn create_dir_all_idempotent(h: Harness) -> Outcome {
    let deep = h.path("a/b/c");
    for round in 0..2 {
        h.runtime
            .create_dir_all(&deep)
            .await
            .unwrap_or_else(|e| panic!("create_dir_all round {round}: {e}"));
    }
    assert_eq!(
        h.runtime.stat(&deep).await.expect("stat").kind,
        FileKind::Dir,
        "created directory"
    );
    let file = h.path("file");
    write(&h, &file, b"x").await;
    assert!(
        h.runtime.create_dir_all(&file).await.is_err(),
        "create_dir_all over an existing file must fail"
    );
    Outcome::Passed
}

pub(super) async fn remove_semantics(h: Harness) -> Outcome {
    let rt = &h.runtime;
    let file = h.path("f");
    write(&h, &file, b"x").await;
    rt.remove(&file, false).await.expect("remove a file");
    assert!(!rt.exists(&file).await.expect("exists"), "file removed");
    let empty = h.path("empty");
    rt.create_dir_all(&empty).await.expect("mkdir");
    rt.remove(&empty, false)
        .await
        .expect("remove an empty directory without recursive");
    let full = h.path("full");
    rt.create_dir_all(&full.join("sub").expect("path"))
        .await
        .expect("mkdir");
    write(&h, &full.join("sub/f").expect("path"), b"x").await;
    assert!(
        rt.remove(&full, false).await.is_err(),
        "removing a non-empty directory without recursive must fail"
    );
    assert!(rt.exists(&full).await.expect("exists"), "still there");
    // A link to a directory: removing the link never touches the target's files.
    sh(&h, &format!("cd {} && ln -s full link", q(&h.scratch))).await;
    rt.remove(&h.path("link"), true).await.expect("remove link");
    assert!(
        rt.exists(&full.join("sub/f").expect("path"))
            .await
            .expect("exists"),
        "removing a symlink to a directory must not remove the directory's files"
    );
    rt.remove(&full, true).await.expect("recursive remove");
    assert!(!rt.exists(&full).await.expect("exists"), "tree removed");
    Outcome::Passed
}

pub(super) async fn rename_replaces(h: Harness) -> Outcome {
    let (a, b) = (h.path("a"), h.path("b"));
    write(&h, &a, b"from a").await;
    write(&h, &b, b"from b").await;
    h.runtime.rename(&a, &b).await.expect("rename over a file");
    assert_eq!(
        read(&h, &b).await,
        b"from a",
        "rename must replace the target"
    );
    assert!(!h.runtime.exists(&a).await.expect("exists"), "source gone");
    let dir = h.path("d1");
    h.runtime.create_dir_all(&dir).await.expect("mkdir");
    write(&h, &dir.join("f").expect("path"), b"x").await;
    let moved = h.path("d2");
    h.runtime.rename(&dir, &moved).await.expect("rename a dir");
    assert_eq!(read(&h, &moved.join("f").expect("path")).await, b"x");
    Outcome::Passed
}

pub(super) async fn resolve_path(h: Harness) -> Outcome {
    let rt = &h.runtime;
    let home = rt.resolve_path("~").await.expect("resolve ~");
    assert!(
        home.is_absolute(),
        "~ must resolve to an absolute path, got {home:?}"
    );
    let x = rt.resolve_path("~/x/y").await.expect("resolve ~/x/y");
    assert_eq!(x, home.join("x/y").expect("path"), "~/x/y");
    let rel = rt.resolve_path("x/y").await.expect("resolve x/y");
    assert_eq!(
        rel,
        home.join("x/y").expect("path"),
        "relative paths are under home"
    );
    let abs = rt
        .resolve_path(h.scratch.as_str())
        .await
        .expect("resolve absolute");
    assert_eq!(
        abs.normalize(),
        h.scratch.normalize(),
        "absolute paths stay"
    );
    // The home `~` names is where commands start.
    let started = sh(&h, "pwd -P").await;
    let resolved = sh(&h, &format!("cd {} && pwd -P", q(&home))).await;
    assert_eq!(
        started, resolved,
        "commands must start in the home directory resolve_path(\"~\") names"
    );
    Outcome::Passed
}

pub(super) async fn open_read_streams(h: Harness) -> Outcome {
    let data = noise(3 << 20, 9);
    let path = h.path("stream");
    write(&h, &path, &data).await;
    let mut stream = h.runtime.open_read(&path).await.expect("open_read");
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.expect("read stream");
    assert!(back == data, "open_read bytes: {}", diff(&back, &data));
    assert!(
        h.runtime.open_read(&h.scratch).await.is_err(),
        "open_read of a directory must fail"
    );
    Outcome::Passed
}

pub(super) async fn read_file_on_dir(h: Harness) -> Outcome {
    let dir = h.path("a dir");
    h.runtime.create_dir_all(&dir).await.expect("mkdir");
    match h.runtime.read_file(&dir).await {
        Ok(data) => panic!(
            "read_file of a directory must fail, got {} bytes",
            data.len()
        ),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("a dir"),
                "the error for read_file of a directory must name the path: {message:?}"
            );
        }
    }
    // And the runtime is still usable.
    assert_eq!(sh(&h, "echo ok").await, "ok\n");
    Outcome::Passed
}
