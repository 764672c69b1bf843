//! Cases about the agent tools: identical results on every backend.

use tokio_util::sync::CancellationToken;

use super::util::{q, read, sh, wait_gone, write};
use super::PNG_1X1;
use super::{Harness, Outcome};
use crate::error::Error;
use crate::exec::ExitStatus;
use crate::runtime::FileKind;
use crate::tools::{self, *};

fn err_text<T: std::fmt::Debug>(what: &str, result: crate::Result<T>) -> (Error, String) {
    match result {
        Ok(v) => panic!("{what} must fail, got {v:?}"),
        Err(e) => {
            let text = e.to_string();
            (e, text)
        }
    }
}

fn bash_input(command: &str) -> BashInput {
    BashInput {
        command: command.into(),
        timeout_secs: None,
        cwd: None,
        run_in_background: false,
    }
}

pub(super) async fn tool_bash(h: Harness) -> Outcome {
    let ctx = h.tools();
    let out = tools::bash(&ctx, bash_input("echo hello; pwd"))
        .await
        .expect("bash");
    assert_eq!(out.status, ExitStatus::Exited(0));
    assert!(
        out.stdout.starts_with("hello\n"),
        "stdout: {:?}",
        out.stdout
    );
    let pwd = out.stdout.lines().nth(1).unwrap_or_default().to_owned();
    let scratch_name = h.scratch.file_name().expect("scratch name");
    assert!(
        pwd.ends_with(scratch_name),
        "bash must run in the workspace root, ran in {pwd:?}"
    );
    let out = tools::bash(&ctx, bash_input("echo out; echo err >&2; exit 3"))
        .await
        .expect("a failing command is a result, not an error");
    assert_eq!(out.status, ExitStatus::Exited(3));
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(out.to_text(), "out\n[stderr]\nerr\n[exit code 3]");
    h.runtime
        .create_dir_all(&h.path("sub dir"))
        .await
        .expect("mkdir");
    let mut input = bash_input("basename \"$PWD\"");
    input.cwd = Some("sub dir".into());
    let out = tools::bash(&ctx, input).await.expect("bash in cwd");
    assert_eq!(out.stdout, "sub dir\n", "cwd relative to the workspace");
    let mut input = bash_input("true");
    input.cwd = Some("missing".into());
    let (_, text) = err_text("bash with a missing cwd", tools::bash(&ctx, input).await);
    assert!(text.contains("missing"), "error names the cwd: {text}");
    // Output cap: 100,000 characters → the first 10,000 and the last 20,000 shown,
    // with a note of the 70,000 bytes cut between them.
    let out = tools::bash(
        &ctx,
        bash_input("{ printf B; yes x | tr -d '\\n' | head -c 99998; printf E; }"),
    )
    .await
    .expect("bash");
    assert_eq!(out.stdout.chars().count(), 10_000, "head of stdout");
    assert_eq!(out.stdout_tail.chars().count(), 20_000, "tail of stdout");
    assert!(out.stdout.starts_with('B') && out.stdout_tail.ends_with('E'));
    assert_eq!(out.stdout_cut_bytes, 70_000, "bytes cut");
    assert!(
        out.to_text()
            .contains("[... 70000 bytes of stdout cut here;"),
        "cut note missing"
    );
    // A build log: thousands of lines, then the error at the end, on both streams and
    // past what the capture keeps in memory. The end (the error) and the start stay.
    let log = "for i in $(seq 1 3000); do echo \"   Compiling crate-$i v0.1.0 (/src/crate-$i)\"; \
               done; echo 'error[E0425]: cannot find value `x` in this scope'";
    let out = tools::bash(
        &ctx,
        bash_input(&format!("{{ {log}; }}; {{ {log}; }} >&2; exit 101")),
    )
    .await
    .expect("bash with a long build log");
    assert_eq!(out.status, ExitStatus::Exited(101));
    for (name, head, tail, cut) in [
        (
            "stdout",
            &out.stdout,
            &out.stdout_tail,
            out.stdout_cut_bytes,
        ),
        (
            "stderr",
            &out.stderr,
            &out.stderr_tail,
            out.stderr_cut_bytes,
        ),
    ] {
        assert!(
            head.starts_with("   Compiling crate-1 v0.1.0"),
            "{name} keeps its start"
        );
        assert!(
            tail.ends_with("error[E0425]: cannot find value `x` in this scope\n"),
            "{name} keeps its end: {:?}",
            &tail[tail.len().saturating_sub(200)..]
        );
        assert!(cut > 0, "{name} was cut in the middle");
    }
    let text = out.to_text();
    assert!(
        text.contains("bytes of stdout cut here")
            && text.contains("bytes of stderr cut here")
            && text.ends_with("in this scope\n[exit code 101]"),
        "the rendered text keeps both ends: {}",
        &text[text.len().saturating_sub(300)..]
    );
    // Shorter than the cut: shown whole, however many lines.
    let out = tools::bash(&ctx, bash_input("seq 1 5000"))
        .await
        .expect("bash seq");
    assert_eq!(out.stdout.lines().count(), 5000, "kept whole");
    assert!(out.stdout_tail.is_empty() && out.stdout_cut_bytes == 0);
    // A plain `&` is killed when the call ends, even with its output redirected (it
    // then holds none of the call's pipes).
    let pid_file = h.path("amp.pid");
    let out = tools::bash(
        &ctx,
        bash_input(&format!(
            "sleep 1000 >/dev/null 2>&1 & echo $! > {}; echo started",
            q(&pid_file)
        )),
    )
    .await
    .expect("bash with a background child");
    assert_eq!(out.stdout, "started\n");
    wait_gone(&h, &pid_file, std::time::Duration::from_secs(10)).await;
    // Timeout: reported as a status, with the deadline.
    let mut input = bash_input("echo started; sleep 30");
    input.timeout_secs = Some(1.0);
    let out = tools::bash(&ctx, input).await.expect("bash with timeout");
    assert_eq!(out.status, ExitStatus::TimedOut);
    assert!(
        out.to_text().contains("timed out after 1 s"),
        "{}",
        out.to_text()
    );
    assert_eq!(out.exit_code(), 124);
    // Cancellation.
    let token = CancellationToken::new();
    let cancel = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            token.cancel();
        })
    };
    let out = tools::bash_cancellable(&ctx, bash_input("sleep 30"), token)
        .await
        .expect("cancelled bash");
    cancel.await.expect("canceller");
    assert_eq!(out.status, ExitStatus::Cancelled);
    let mut input = bash_input("true");
    input.timeout_secs = Some(-1.0);
    err_text("a negative timeout", tools::bash(&ctx, input).await);
    Outcome::Passed
}

/// The text `read_file` read (panics on an image).
fn text_of(out: &ReadFileOutput) -> &ReadText {
    out.as_text()
        .unwrap_or_else(|| panic!("read_file returned an image, not text: {out:?}"))
}

fn read_input(path: &str) -> ReadFileInput {
    ReadFileInput {
        path: path.into(),
        offset: None,
        limit: None,
    }
}

pub(super) async fn tool_read_file(h: Harness) -> Outcome {
    let ctx = h.tools();
    write(&h, &h.path("five.txt"), b"one\ntwo\nthree\nfour\nfive\n").await;
    let out = tools::read_file(&ctx, read_input("five.txt"))
        .await
        .expect("read_file");
    assert_eq!(
        out.to_text(),
        "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour\n     5\tfive"
    );
    assert_eq!(text_of(&out).total_lines, 5);
    let mut input = read_input("five.txt");
    input.offset = Some(2);
    input.limit = Some(2);
    let out = tools::read_file(&ctx, input).await.expect("read window");
    assert_eq!(
        out.to_text(),
        "     2\ttwo\n     3\tthree\n[... showing lines 2-3 of 5; pass offset=4 to read more]"
    );
    let mut input = read_input("five.txt");
    input.offset = Some(9);
    let (_, text) = err_text(
        "an offset past the end",
        tools::read_file(&ctx, input).await,
    );
    assert!(text.contains("5 lines"), "{text}");
    // Absolute paths work too.
    let abs = h.path("five.txt");
    let out = tools::read_file(&ctx, read_input(abs.as_str()))
        .await
        .expect("read absolute");
    assert_eq!(text_of(&out).last_line, 5);
    // CRLF shows like LF; no trailing newline is fine.
    write(&h, &h.path("crlf.txt"), b"a\r\nb").await;
    let out = tools::read_file(&ctx, read_input("crlf.txt"))
        .await
        .expect("read crlf");
    assert_eq!(out.to_text(), "     1\ta\n     2\tb");
    // Empty file.
    write(&h, &h.path("empty"), b"").await;
    let out = tools::read_file(&ctx, read_input("empty"))
        .await
        .expect("read empty");
    assert!(out.to_text().contains("is empty"), "{}", out.to_text());
    // Long lines are cut with a marker.
    let long = "x".repeat(2500);
    write(&h, &h.path("long"), long.as_bytes()).await;
    let out = tools::read_file(&ctx, read_input("long"))
        .await
        .expect("read long");
    assert!(
        text_of(&out).content.ends_with(&format!(
            "{} [... line truncated, 500 more characters]",
            "x".repeat(10)
        )),
        "long line marker"
    );
    assert_eq!(text_of(&out).truncated_lines, 1);
    // Binary files are refused.
    for (name, data) in [
        ("nul.bin", &b"abc\0def"[..]),
        ("latin1.txt", &b"caf\xe9\n"[..]),
    ] {
        write(&h, &h.path(name), data).await;
        let (e, text) = err_text(
            &format!("read_file of binary {name}"),
            tools::read_file(&ctx, read_input(name)).await,
        );
        assert!(
            matches!(e, Error::InvalidInput { .. })
                && text.contains("binary")
                && text.contains(name),
            "binary refusal must say so and name the file: {text}"
        );
    }
    // Files over 10 MiB are refused before reading, with a way to read a range.
    write(&h, &h.path("big"), &vec![b'a'; (10 << 20) + 1]).await;
    let (_, text) = err_text(
        "read_file of an 11 MiB file",
        tools::read_file(&ctx, read_input("big")).await,
    );
    assert!(
        text.contains("10485761") && text.contains("sed -n"),
        "big-file refusal must give the size and how to read a range: {text}"
    );
    // Directories point to list_dir.
    h.runtime
        .create_dir_all(&h.path("dir"))
        .await
        .expect("mkdir");
    let (_, text) = err_text(
        "read_file of a directory",
        tools::read_file(&ctx, read_input("dir")).await,
    );
    assert!(text.contains("list_dir"), "{text}");
    let (e, _) = err_text(
        "read_file of a missing file",
        tools::read_file(&ctx, read_input("nope")).await,
    );
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    Outcome::Passed
}

pub(super) async fn tool_read_image(h: Harness) -> Outcome {
    let ctx = h.tools();
    // Told by content: a PNG with no extension, and every other format.
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xd9";
    let webp = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0";
    for (name, data, mime) in [
        ("screenshot", PNG_1X1, "image/png"),
        ("a.gif", &gif[..], "image/gif"),
        ("photo.JPG", &jpeg[..], "image/jpeg"),
        ("x.webp", &webp[..], "image/webp"),
    ] {
        write(&h, &h.path(name), data).await;
        let out = tools::read_file(&ctx, read_input(name))
            .await
            .unwrap_or_else(|e| panic!("read_file of image {name}: {e}"));
        let image = out
            .as_image()
            .unwrap_or_else(|| panic!("{name} must be read as an image: {out:?}"));
        assert_eq!(image.mime_type, mime, "{name}");
        assert_eq!(image.data, data, "{name}: the image's exact bytes");
        let content = ToolResult::content(&out);
        assert!(
            matches!(&content[0], Content::Image { mime_type, data: d } if *mime_type == mime && d == data),
            "{name}: an image content block first: {content:?}"
        );
        assert!(out.to_text().contains(mime), "{}", out.to_text());
    }
    // A text file named like an image is text.
    write(&h, &h.path("notes.png"), b"not an image\n").await;
    let out = tools::read_file(&ctx, read_input("notes.png"))
        .await
        .expect("read_file of text named .png");
    assert_eq!(out.to_text(), "     1\tnot an image");
    // JSON carries the image as base64.
    let out = tools::call(&ctx, "read_file", serde_json::json!({"path": "screenshot"}))
        .await
        .expect("read_file of an image from JSON");
    let json = serde_json::to_value(&out).expect("serialize");
    assert_eq!(json["output"]["kind"], "image", "{json}");
    assert_eq!(json["output"]["mime_type"], "image/png", "{json}");
    assert_eq!(json["output"]["data"], Content::base64(PNG_1X1), "{json}");
    // Over the image cap: refused with the size, the limit and what to do.
    let mut big = PNG_1X1.to_vec();
    big.resize(READ_MAX_IMAGE_BYTES as usize + 1, 0);
    write(&h, &h.path("big.png"), &big).await;
    let (e, text) = err_text(
        "read_file of an image over the cap",
        tools::read_file(&ctx, read_input("big.png")).await,
    );
    assert!(
        matches!(e, Error::InvalidInput { .. })
            && text.contains("big.png")
            && text.contains(&(READ_MAX_IMAGE_BYTES + 1).to_string())
            && text.contains("image limit")
            && text.contains("resize"),
        "an oversized image names its size, the limit and a way out: {text}"
    );
    Outcome::Passed
}

pub(super) async fn tool_write_file(h: Harness) -> Outcome {
    let ctx = h.tools();
    let out = tools::write_file(
        &ctx,
        WriteFileInput {
            path: "a/b c/new.txt".into(),
            content: "héllo\n".into(),
        },
    )
    .await
    .expect("write_file creating parents");
    assert_eq!(out.bytes_written, 7);
    assert!(out.to_text().contains("7 bytes"), "{}", out.to_text());
    assert_eq!(
        read(&h, &h.path("a/b c/new.txt")).await,
        "héllo\n".as_bytes()
    );
    tools::write_file(
        &ctx,
        WriteFileInput {
            path: "a/b c/new.txt".into(),
            content: String::new(),
        },
    )
    .await
    .expect("overwrite with empty");
    assert!(read(&h, &h.path("a/b c/new.txt")).await.is_empty());
    h.runtime.create_dir_all(&h.path("d")).await.expect("mkdir");
    err_text(
        "write_file over a directory",
        tools::write_file(
            &ctx,
            WriteFileInput {
                path: "d".into(),
                content: "x".into(),
            },
        )
        .await,
    );
    Outcome::Passed
}

fn edit(path: &str, old: &str, new: &str, all: bool) -> EditFileInput {
    EditFileInput {
        path: path.into(),
        old_string: old.into(),
        new_string: new.into(),
        replace_all: all,
    }
}

pub(super) async fn tool_edit_file(h: Harness) -> Outcome {
    let ctx = h.tools();
    let path = h.path("code.rs");
    let original = "fn a() {\n    one();\n}\nfn b() {\n    two();\n    two();\n}\n";
    write(&h, &path, original.as_bytes()).await;
    let out = tools::edit_file(&ctx, edit("code.rs", "one()", "uno()", false))
        .await
        .expect("unique edit");
    assert_eq!((out.replacements, out.first_line), (1, 2));
    let edited = original.replace("one()", "uno()");
    assert_eq!(read(&h, &path).await, edited.as_bytes());
    // Failures write nothing.
    let (_, text) = err_text(
        "an absent old_string",
        tools::edit_file(&ctx, edit("code.rs", "three()", "x", false)).await,
    );
    assert!(
        text.contains("not found") && text.contains("whitespace"),
        "absent: {text}"
    );
    let (_, text) = err_text(
        "a non-unique old_string",
        tools::edit_file(&ctx, edit("code.rs", "two();", "deux();", false)).await,
    );
    assert!(
        text.contains("2 times") && text.contains("replace_all"),
        "not unique: {text}"
    );
    err_text(
        "identical strings",
        tools::edit_file(&ctx, edit("code.rs", "uno", "uno", false)).await,
    );
    err_text(
        "an empty old_string",
        tools::edit_file(&ctx, edit("code.rs", "", "x", false)).await,
    );
    err_text(
        "a missing file",
        tools::edit_file(&ctx, edit("nope.rs", "a", "b", false)).await,
    );
    assert_eq!(
        read(&h, &path).await,
        edited.as_bytes(),
        "a failed edit must not change the file"
    );
    let out = tools::edit_file(&ctx, edit("code.rs", "two();", "deux();", true))
        .await
        .expect("replace_all");
    assert_eq!(out.replacements, 2);
    assert_eq!(
        read(&h, &path).await,
        edited.replace("two();", "deux();").as_bytes()
    );
    // CRLF files keep CRLF when the model sends LF.
    write(&h, &h.path("win.txt"), b"one\r\ntwo\r\nthree\r\n").await;
    tools::edit_file(&ctx, edit("win.txt", "one\ntwo\n", "1\n2\nextra\n", false))
        .await
        .expect("CRLF edit");
    assert_eq!(
        read(&h, &h.path("win.txt")).await,
        b"1\r\n2\r\nextra\r\nthree\r\n",
        "CRLF line endings must be kept"
    );
    // Invalid UTF-8 is refused, untouched.
    write(&h, &h.path("bin"), b"a\xffb").await;
    err_text(
        "edit of a non-UTF-8 file",
        tools::edit_file(&ctx, edit("bin", "a", "b", false)).await,
    );
    assert_eq!(read(&h, &h.path("bin")).await, b"a\xffb");
    // The mode survives an edit.
    sh(&h, &format!("chmod 755 {}", q(&path))).await;
    tools::edit_file(&ctx, edit("code.rs", "uno", "eins", false))
        .await
        .expect("edit");
    assert_eq!(
        h.runtime.stat(&path).await.expect("stat").mode & 0o777,
        0o755
    );
    Outcome::Passed
}

pub(super) async fn tool_list_dir(h: Harness) -> Outcome {
    let ctx = h.tools();
    write(&h, &h.path("b.txt"), b"12345").await;
    h.runtime.create_dir_all(&h.path("a")).await.expect("mkdir");
    sh(&h, &format!("cd {} && ln -s b.txt c", q(&h.scratch))).await;
    let out = tools::list_dir(&ctx, ListDirInput::default())
        .await
        .expect("list_dir of the workspace");
    let got: Vec<(&str, FileKind)> = out
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", FileKind::Dir),
            ("b.txt", FileKind::File),
            ("c", FileKind::Symlink)
        ]
    );
    assert_eq!(out.entries[1].size, 5);
    let text = out.to_text();
    assert!(text.contains("a/") && text.contains("5  b.txt"), "{text}");
    let out = tools::list_dir(
        &ctx,
        ListDirInput {
            path: Some("a".into()),
        },
    )
    .await
    .expect("list empty dir");
    assert!(out.to_text().contains("empty"), "{}", out.to_text());
    let (_, text) = err_text(
        "list_dir of a file",
        tools::list_dir(
            &ctx,
            ListDirInput {
                path: Some("b.txt".into()),
            },
        )
        .await,
    );
    assert!(text.contains("read_file"), "{text}");
    let (e, _) = err_text(
        "list_dir of a missing dir",
        tools::list_dir(
            &ctx,
            ListDirInput {
                path: Some("nope".into()),
            },
        )
        .await,
    );
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    Outcome::Passed
}

/// Sets every file of the scratch directory to one modification time.
async fn same_mtime(h: &Harness) {
    sh(
        h,
        &format!(
            "find {} -type f -exec touch -t 202001010000.00 {{}} +",
            q(&h.scratch)
        ),
    )
    .await;
}

fn glob_input(pattern: &str, path: Option<&str>) -> GlobInput {
    GlobInput {
        pattern: pattern.into(),
        path: path.map(Into::into),
    }
}

pub(super) async fn tool_glob(h: Harness) -> Outcome {
    let ctx = h.tools();
    for name in [
        "a.rs",
        "src/b.rs",
        "src/x/c.rs",
        "src/d.txt",
        ".git/e.rs",
        "sub/.git/f.rs",
        "sp ace.rs",
        "new\nline.rs",
    ] {
        h.runtime
            .create_dir_all(&h.path(name).parent().expect("parent"))
            .await
            .expect("mkdir");
        write(&h, &h.path(name), b"x").await;
    }
    // A symlink is not followed nor listed.
    sh(&h, &format!("cd {} && ln -s src link", q(&h.scratch))).await;
    // One modification time for all: ties are sorted by path.
    same_mtime(&h).await;
    let out = tools::glob(&ctx, glob_input("**/*.rs", None))
        .await
        .expect("glob");
    assert_eq!(
        out.files,
        vec![
            "a.rs",
            "new\nline.rs",
            "sp ace.rs",
            "src/b.rs",
            "src/x/c.rs"
        ],
        "**/*.rs: sorted, relative, .git skipped"
    );
    let out = tools::glob(&ctx, glob_input("*.rs", None))
        .await
        .expect("glob");
    assert_eq!(
        out.files,
        vec!["a.rs", "new\nline.rs", "sp ace.rs"],
        "* stays in one directory"
    );
    let out = tools::glob(&ctx, glob_input("*.rs", Some("src")))
        .await
        .expect("glob in src");
    assert_eq!(
        out.files,
        vec!["src/b.rs"],
        "paths stay relative to the workspace"
    );
    let out = tools::glob(&ctx, glob_input("*.nothing", None))
        .await
        .expect("glob");
    assert!(out.files.is_empty() && out.to_text().contains("No files"));
    let (e, _) = err_text(
        "glob in a missing dir",
        tools::glob(&ctx, glob_input("*", Some("nope"))).await,
    );
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    err_text(
        "a bad pattern",
        tools::glob(&ctx, glob_input("[", None)).await,
    );
    // The cap: 1000 results and a note.
    sh(
        &h,
        &format!(
            "mkdir {d} && cd {d} && for ((i=0;i<1005;i++)); do : > f$i.txt; done",
            d = q(&h.path("many"))
        ),
    )
    .await;
    same_mtime(&h).await;
    let out = tools::glob(&ctx, glob_input("many/*.txt", None))
        .await
        .expect("glob many");
    assert_eq!((out.files.len(), out.omitted), (1000, 5));
    assert!(out.to_text().contains("5 more matches"), "cap note");
    Outcome::Passed
}

fn grep_input(pattern: &str, path: Option<&str>, glob: Option<&str>) -> GrepInput {
    GrepInput {
        pattern: pattern.into(),
        path: path.map(Into::into),
        glob: glob.map(Into::into),
        ..GrepInput::default()
    }
}

fn lines(out: &GrepOutput) -> Vec<String> {
    out.matches
        .iter()
        .map(|m| format!("{}:{}:{}", m.path, m.line, m.text))
        .collect()
}

pub(super) async fn tool_grep(h: Harness) -> Outcome {
    let ctx = h.tools();
    let deep = format!("{}f.txt", "deep/".repeat(25));
    let files: Vec<(&str, &[u8])> = vec![
        ("src/a.rs", b"fn main() {\n    println!(\"hello\");\n}\n"),
        ("src/b.txt", b"hello world\nbye\n"),
        ("bin.dat", b"hello\0binary"),
        (".git/config", b"hello"),
        ("crlf.txt", b"x\r\nhello\r\n"),
        ("odd name\n.txt", b"say hello"),
        (deep.as_str(), b"deep hello"),
    ];
    for (name, data) in &files {
        h.runtime
            .create_dir_all(&h.path(name).parent().expect("parent"))
            .await
            .expect("mkdir");
        write(&h, &h.path(name), data).await;
    }
    sh(
        &h,
        &format!("cd {} && ln src/b.txt hard.txt", q(&h.scratch)),
    )
    .await;
    let out = tools::grep(&ctx, grep_input("hello", None, None))
        .await
        .expect("grep");
    assert_eq!(
        lines(&out),
        vec![
            "crlf.txt:2:hello".to_owned(),
            format!("{deep}:1:deep hello"),
            "hard.txt:1:hello world".to_owned(),
            "odd name\n.txt:1:say hello".to_owned(),
            "src/a.rs:2:    println!(\"hello\");".to_owned(),
            "src/b.txt:1:hello world".to_owned(),
        ],
        "grep hello: sorted by path, binary and .git skipped, long names, hard links"
    );
    assert_eq!(out.binary_skipped, 1, "bin.dat skipped as binary");
    assert!(
        out.to_text().contains("src/b.txt:1:hello world"),
        "{}",
        out.to_text()
    );
    let out = tools::grep(&ctx, grep_input("^hello$", None, None))
        .await
        .expect("grep anchors");
    assert_eq!(
        lines(&out),
        vec!["crlf.txt:2:hello"],
        "anchors match per line, CR ignored"
    );
    let out = tools::grep(&ctx, grep_input(r"hel+o\b", None, Some("*.rs")))
        .await
        .expect("grep with glob");
    assert_eq!(
        lines(&out),
        vec!["src/a.rs:2:    println!(\"hello\");"],
        "glob filter"
    );
    let out = tools::grep(&ctx, grep_input("bye", Some("src/b.txt"), None))
        .await
        .expect("grep one file");
    assert_eq!(lines(&out), vec!["src/b.txt:2:bye"], "one file as path");
    let out = tools::grep(&ctx, grep_input("hello", Some("src"), None))
        .await
        .expect("grep in src");
    assert_eq!(out.matches.len(), 2, "grep under src");
    let out = tools::grep(&ctx, grep_input("nothing-matches-this", None, None))
        .await
        .expect("grep no match");
    assert!(out.to_text().starts_with("No matches"), "{}", out.to_text());
    err_text(
        "an invalid regex",
        tools::grep(&ctx, grep_input("(", None, None)).await,
    );
    let (e, _) = err_text(
        "grep in a missing dir",
        tools::grep(&ctx, grep_input("x", Some("nope"), None)).await,
    );
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    // The cap.
    write(&h, &h.path("many.txt"), "hit\n".repeat(600).as_bytes()).await;
    let out = tools::grep(&ctx, grep_input("hit", None, Some("many.txt")))
        .await
        .expect("grep many");
    assert_eq!((out.matches.len(), out.omitted), (500, 100));
    assert!(out.to_text().contains("100 more matches"), "cap note");
    Outcome::Passed
}

/// Writes `scratch/name`, creating its parent directories.
async fn write_in(h: &Harness, name: &str, data: &[u8]) {
    let path = h.path(name);
    let parent = path.parent().expect("parent");
    h.runtime
        .create_dir_all(&parent)
        .await
        .unwrap_or_else(|e| panic!("create_dir_all {parent:?} failed: {e}"));
    write(h, &path, data).await;
}

/// The full text of a grep with JSON `input` (as an MCP client sends it).
async fn grep_text(ctx: &tools::ToolContext, input: serde_json::Value) -> String {
    let what = input.to_string();
    tools::call(ctx, "grep", input)
        .await
        .unwrap_or_else(|e| panic!("grep {what} failed: {e}"))
        .to_text()
}

pub(super) async fn tool_grep_context(h: Harness) -> Outcome {
    use serde_json::json;
    let ctx = h.tools();
    write(
        &h,
        &h.path("a.txt"),
        b"alpha\nbeta\nMATCH one\ngamma\ndelta\nepsilon\nMATCH two\nMATCH three\nzeta\neta\n",
    )
    .await;
    write(&h, &h.path("b.txt"), b"MATCH first\r\nsecond\r\n").await;
    let text = grep_text(&ctx, json!({"pattern": "MATCH", "context": 1})).await;
    assert_eq!(
        text,
        "a.txt-2-beta\na.txt:3:MATCH one\na.txt-4-gamma\n--\na.txt-6-epsilon\n\
         a.txt:7:MATCH two\na.txt:8:MATCH three\na.txt-9-zeta\n--\nb.txt:1:MATCH first\n\
         b.txt-2-second",
        "context around matches: merged groups, `--` between groups and files, CR stripped"
    );
    let text = grep_text(
        &ctx,
        json!({"pattern": "MATCH t", "path": "a.txt", "before_context": 2}),
    )
    .await;
    assert_eq!(
        text, "a.txt-5-delta\na.txt-6-epsilon\na.txt:7:MATCH two\na.txt:8:MATCH three",
        "before_context"
    );
    let text = grep_text(&ctx, json!({"pattern": "one", "-A": 2, "glob": "a.*"})).await;
    assert_eq!(
        text, "a.txt:3:MATCH one\na.txt-4-gamma\na.txt-5-delta",
        "-A (after_context)"
    );
    let text = grep_text(&ctx, json!({"pattern": "^zeta", "-B": 1, "-C": 5})).await;
    assert_eq!(
        text, "a.txt-8-MATCH three\na.txt:9:zeta\na.txt-10-eta",
        "-B overrides -C for the lines before; -C still gives the lines after"
    );
    // Typed output: context lines are marked.
    let mut input = grep_input("gamma", None, None);
    input.context = Some(1);
    let out = tools::grep(&ctx, input).await.expect("grep");
    let marks: Vec<(usize, bool)> = out.matches.iter().map(|m| (m.line, m.context)).collect();
    assert_eq!(marks, vec![(3, true), (4, false), (5, true)]);
    Outcome::Passed
}

pub(super) async fn tool_grep_modes(h: Harness) -> Outcome {
    use serde_json::json;
    let ctx = h.tools();
    write(&h, &h.path("a.rs"), b"todo\nx\ntodo again\n").await;
    write_in(&h, "b/c.rs", b"one todo\n").await;
    write(&h, &h.path("d.rs"), b"nothing\n").await;
    let text = grep_text(
        &ctx,
        json!({"pattern": "todo", "output_mode": "files_with_matches"}),
    )
    .await;
    assert_eq!(text, "a.rs\nb/c.rs", "files_with_matches: paths by path");
    let text = grep_text(&ctx, json!({"pattern": "todo", "output_mode": "count"})).await;
    assert_eq!(text, "a.rs:2\nb/c.rs:1", "count: matching lines per file");
    let text = grep_text(&ctx, json!({"pattern": "absent", "output_mode": "count"})).await;
    assert!(text.starts_with("No matches (3 files searched)"), "{text}");
    let mut input = grep_input("todo", None, None);
    input.output_mode = OutputMode::Count;
    let out = tools::grep(&ctx, input).await.expect("count");
    assert_eq!(out.counts.len(), 2);
    assert_eq!(
        (out.counts[0].path.as_str(), out.counts[0].count),
        ("a.rs", 2)
    );
    assert!(out.matches.is_empty() && out.files.is_empty());
    // The cap counts files in these modes.
    sh(
        &h,
        &format!(
            "mkdir {d} && cd {d} && for ((i=0;i<503;i++)); do echo todo > f$i.txt; done",
            d = q(&h.path("many"))
        ),
    )
    .await;
    let mut input = grep_input("todo", Some("many"), None);
    input.output_mode = OutputMode::FilesWithMatches;
    let out = tools::grep(&ctx, input).await.expect("files cap");
    assert_eq!((out.files.len(), out.omitted), (500, 3));
    assert!(
        out.to_text().contains("[... 3 more files not shown"),
        "files cap note"
    );
    Outcome::Passed
}

pub(super) async fn tool_grep_options(h: Harness) -> Outcome {
    use serde_json::json;
    let ctx = h.tools();
    write_in(&h, "src/main.rs", b"fn main() {\n    Hello(1);\n}\n").await;
    write(&h, &h.path("tool.py"), b"def hello():\n    return a.(b)\n").await;
    write_in(&h, ".hidden/notes.md", b"HELLO from a hidden dir\n").await;
    let text = grep_text(&ctx, json!({"pattern": "hello", "case_insensitive": true})).await;
    assert_eq!(
        text,
        ".hidden/notes.md:1:HELLO from a hidden dir\nsrc/main.rs:2:    Hello(1);\n\
         tool.py:1:def hello():",
        "case_insensitive (hidden files are searched)"
    );
    let text = grep_text(
        &ctx,
        json!({"pattern": "HELLO", "-i": true, "type": "rust"}),
    )
    .await;
    assert_eq!(text, "src/main.rs:2:    Hello(1);", "-i with the rust type");
    let text = grep_text(&ctx, json!({"pattern": "hello", "-i": true, "type": "py"})).await;
    assert_eq!(text, "tool.py:1:def hello():", "py type");
    let text = grep_text(&ctx, json!({"pattern": "a.(b)", "fixed_strings": true})).await;
    assert_eq!(
        text, "tool.py:2:    return a.(b)",
        "fixed strings: no regex"
    );
    let text = grep_text(
        &ctx,
        json!({"pattern": r"fn main\(\) \{.*\}", "multiline": true}),
    )
    .await;
    assert_eq!(
        text, "src/main.rs:1:fn main() {\nsrc/main.rs:2:    Hello(1);\nsrc/main.rs:3:}",
        "multiline: a match across lines shows every line it touches"
    );
    let text = grep_text(&ctx, json!({"pattern": r"fn main\(\) \{.*\}"})).await;
    assert!(text.starts_with("No matches"), "not multiline: {text}");
    let (_, text) = err_text(
        "an unknown file type",
        tools::call(&ctx, "grep", json!({"pattern": "x", "type": "rustacean"})).await,
    );
    assert!(text.contains("rust, py"), "lists known types: {text}");
    let (_, text) = err_text(
        "an invalid regex",
        tools::call(&ctx, "grep", json!({"pattern": "a.(b"})).await,
    );
    assert!(text.contains("fixed"), "suggests fixed strings: {text}");
    Outcome::Passed
}

pub(super) async fn tool_grep_skipped(h: Harness) -> Outcome {
    let ctx = h.tools();
    write(&h, &h.path("small.txt"), b"hit\n").await;
    // 5 MiB full of matches: over the 4 MiB limit, skipped but said.
    write(&h, &h.path("big.log"), "hit\n".repeat(5 << 18).as_bytes()).await;
    write(&h, &h.path("image.png"), b"\x89PNG\r\n\x1a\n\0\0hit").await;
    write(&h, &h.path("latin1.txt"), b"hit caf\xe9\n").await;
    sh(
        &h,
        &format!(
            "cd {} && printf 'hit\\n' > \"$(printf 'bad\\377name.txt')\"",
            q(&h.scratch)
        ),
    )
    .await;
    let out = tools::grep(&ctx, grep_input("hit", None, None))
        .await
        .expect("grep");
    assert_eq!(lines(&out), vec!["small.txt:1:hit"]);
    assert_eq!((out.binary_skipped, out.too_large_skipped), (2, 1));
    let note = out.note.clone().unwrap_or_default();
    for expected in [
        "1 file of 4 MiB or more was not searched: big.log",
        "grep -n",
        "2 files skipped as binary (a NUL byte or not UTF-8): image.png, latin1.txt",
        "1 file with names that are not UTF-8 was skipped",
    ] {
        assert!(note.contains(expected), "note lacks {expected:?}: {note}");
    }
    // Names are shown relative to the workspace, and only for files the filter kept.
    let out = tools::grep(&ctx, grep_input("hit", Some("."), Some("*.log")))
        .await
        .expect("grep *.log");
    let note = out.note.clone().unwrap_or_default();
    assert!(
        note.contains("big.log") && !note.contains("binary"),
        "{note}"
    );
    Outcome::Passed
}

pub(super) async fn tool_glob_newest_first(h: Harness) -> Outcome {
    let ctx = h.tools();
    for name in [
        "old.rs",
        "src/new.rs",
        "src/mid_b.rs",
        "src/mid_a.rs",
        "doc.md",
    ] {
        h.runtime
            .create_dir_all(&h.path(name).parent().expect("parent"))
            .await
            .expect("mkdir");
        write(&h, &h.path(name), b"x").await;
    }
    sh(
        &h,
        &format!(
            "cd {} && touch -t 202001010000.00 old.rs && touch -t 202301010000.00 src/new.rs \
             && touch -t 202201010000.00 src/mid_b.rs src/mid_a.rs doc.md",
            q(&h.scratch)
        ),
    )
    .await;
    let out = tools::glob(&ctx, glob_input("**/*.rs", None))
        .await
        .expect("glob");
    assert_eq!(
        out.files,
        vec!["src/new.rs", "src/mid_a.rs", "src/mid_b.rs", "old.rs"],
        "newest first, ties by path"
    );
    assert_eq!(
        out.to_text(),
        "src/new.rs\nsrc/mid_a.rs\nsrc/mid_b.rs\nold.rs"
    );
    // The cap keeps the newest.
    sh(
        &h,
        &format!(
            "mkdir {d} && cd {d} && for ((i=0;i<1003;i++)); do : > f$i.txt; done \
             && touch -t 202001010000.00 f*.txt && touch -t 202401010000.00 f500.txt",
            d = q(&h.path("many"))
        ),
    )
    .await;
    let out = tools::glob(&ctx, glob_input("many/*.txt", None))
        .await
        .expect("glob many");
    assert_eq!((out.files.len(), out.omitted), (1000, 3));
    assert_eq!(out.files[0], "many/f500.txt", "the newest file comes first");
    Outcome::Passed
}

pub(super) async fn tool_gitignore(h: Harness) -> Outcome {
    let has_git = super::util::run(&h, crate::exec::ExecRequest::script("git --version"))
        .await
        .status
        .success();
    if !has_git {
        let why = "git is not installed in the runtime";
        println!("conformance: tool_gitignore skipped: {why}");
        return Outcome::Skipped(why.into());
    }
    let ctx = h.tools();
    sh(
        &h,
        &format!(
            "cd {} && git init -q repo && cd repo && printf 'ignored/\\n*.log\\n' > .gitignore \
             && mkdir ignored && echo needle > ignored/x.txt && echo needle > kept.txt \
             && echo needle > app.log && echo needle > gone.txt && echo needle > forced.log \
             && mkdir sub && echo local.txt > sub/.gitignore && echo needle > sub/local.txt \
             && echo needle > sub/other.txt && echo needle > excluded.txt \
             && echo excluded.txt >> .git/info/exclude \
             && git add .gitignore kept.txt gone.txt && git add -f forced.log && rm gone.txt \
             && echo needle > new.txt",
            q(&h.scratch)
        ),
    )
    .await;
    same_mtime(&h).await;
    let out = tools::grep(&ctx, grep_input("needle", Some("repo"), None))
        .await
        .expect("grep in a git work tree");
    assert_eq!(
        lines(&out),
        vec![
            "repo/kept.txt:1:needle",
            "repo/new.txt:1:needle",
            "repo/sub/other.txt:1:needle"
        ],
        "grep in a git work tree: tracked and untracked files, not ignored (by .gitignore, \
         a nested .gitignore, info/exclude, even when tracked) or deleted ones"
    );
    let out = tools::glob(&ctx, glob_input("**/*", Some("repo")))
        .await
        .expect("glob in a git work tree");
    assert_eq!(
        out.files,
        vec![
            "repo/.gitignore",
            "repo/kept.txt",
            "repo/new.txt",
            "repo/sub/.gitignore",
            "repo/sub/other.txt"
        ],
        "glob in a git work tree"
    );
    // A directory whose files are all ignored, searched on purpose, is searched.
    sh(
        &h,
        &format!(
            "cd {} && mkdir logs && echo needle > logs/a.log",
            q(&h.path("repo"))
        ),
    )
    .await;
    let out = tools::grep(&ctx, grep_input("needle", Some("repo/logs"), None))
        .await
        .expect("grep in an ignored dir");
    assert_eq!(lines(&out), vec!["repo/logs/a.log:1:needle"]);
    // An ignored directory searched on purpose is searched.
    let out = tools::grep(&ctx, grep_input("needle", Some("repo/ignored"), None))
        .await
        .expect("grep in an ignored dir");
    assert_eq!(lines(&out), vec!["repo/ignored/x.txt:1:needle"]);
    let out = tools::glob(&ctx, glob_input("*.nothing", Some("repo")))
        .await
        .expect("glob");
    assert!(
        out.to_text().contains("ignored by git"),
        "an empty result in a git work tree says ignored files were not searched: {}",
        out.to_text()
    );
    Outcome::Passed
}

pub(super) async fn tool_call_json(h: Harness) -> Outcome {
    use serde_json::json;
    let ctx = h.tools();
    let call = |name: &'static str, input: serde_json::Value| {
        let ctx = ctx.clone();
        async move { tools::call(&ctx, name, input).await }
    };
    let out = call("write_file", json!({"path": "j.txt", "content": "alpha\n"}))
        .await
        .expect("write_file from JSON");
    assert!(out.to_text().contains("6 bytes"), "{}", out.to_text());
    let out = call(
        "read_file",
        json!({"file_path": "j.txt", "offset": 1, "limit": 10}),
    )
    .await
    .expect("read_file from JSON (file_path alias)");
    assert_eq!(out.to_text(), "     1\talpha");
    call(
        "edit_file",
        json!({"path": "j.txt", "old_string": "alpha", "new_string": "beta"}),
    )
    .await
    .expect("edit_file from JSON (replace_all defaults to false)");
    let out = call("bash", json!({"command": "cat j.txt", "timeout_secs": 30}))
        .await
        .expect("bash from JSON");
    assert_eq!(out.to_text(), "beta\n[exit code 0]");
    let out = call("list_dir", json!({}))
        .await
        .expect("list_dir from JSON");
    assert!(out.to_text().contains("j.txt"), "{}", out.to_text());
    let out = call("glob", json!({"pattern": "*.txt"}))
        .await
        .expect("glob from JSON");
    assert_eq!(out.to_text(), "j.txt");
    let out = call("grep", json!({"pattern": "be+ta", "glob": "*.txt"}))
        .await
        .expect("grep from JSON");
    assert_eq!(out.to_text(), "j.txt:1:beta");
    let json_out = serde_json::to_value(&out).expect("serialize");
    assert_eq!(json_out["tool"], "grep", "{json_out}");
    assert_eq!(json_out["output"]["matches"][0]["line"], 1, "{json_out}");
    let (_, text) = err_text("an unknown tool", call("nope", json!({})).await);
    assert!(text.contains("read_file"), "lists the tools: {text}");
    let (_, text) = err_text("a missing field", call("read_file", json!({})).await);
    assert!(text.contains("path"), "names the field: {text}");
    let (_, text) = err_text("an unknown field", call("bash", json!({"cmd": "ls"})).await);
    assert!(text.contains("cmd"), "names the unknown field: {text}");
    let typed = ToolCall::of::<BashTool>(&bash_input("echo typed")).expect("typed call");
    assert_eq!(typed.tool, "bash");
    let out = typed.run(&ctx).await.expect("typed ToolCall::run");
    assert_eq!(out.to_text(), "typed\n[exit code 0]");
    assert!(
        matches!(
            out.downcast_ref::<BashResult>(),
            Some(BashResult::Finished(_))
        ),
        "the typed result"
    );
    let typed: ToolCall =
        serde_json::from_value(json!({"tool": "bash", "input": {"command": "echo hi"}}))
            .expect("ToolCall from JSON");
    let out = typed.run(&ctx).await.expect("ToolCall::run");
    assert_eq!(out.to_text(), "hi\n[exit code 0]");
    Outcome::Passed
}
