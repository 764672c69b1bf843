//! The tools' two paths give the same results: `LocalRuntime`'s native grep, glob and
//! edit (cmux's engine over the filesystem) and the generic path every other backend
//! without native methods takes (one `find`, one `tar` stream, the engine's matcher
//! here), on the same trees. Plus the whole conformance suite on the generic path.

use std::sync::Arc;

use cmux_backend_local::LocalRuntime;
use cmux_core::testkit::{self, Harness};
use cmux_core::tools::{self, ToolContext};
use cmux_core::{RemotePath, SharedRuntime};
use cmux_integration_tests::generic::GenericOnly;
use serde_json::{json, Value};

fn local() -> SharedRuntime {
    Arc::new(LocalRuntime::new().expect("local runtime"))
}

/// The conformance suite with the native methods hidden: the generic path passes it
/// too (the local per-case tests cover the native path).
#[tokio::test(flavor = "multi_thread")]
async fn whole_suite_on_the_generic_path() {
    let report = testkit::conformance(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let scratch = RemotePath::new(dir.path().to_str().expect("utf-8")).expect("path");
        let runtime: SharedRuntime = Arc::new(GenericOnly(local()));
        Harness::new(runtime, scratch).keep_alive(dir)
    })
    .await;
    report.assert_passed();
}

/// Runs a shell script that must succeed.
fn sh(script: &str) {
    let status = std::process::Command::new("bash")
        .args(["-c", script])
        .status()
        .expect("bash");
    assert!(status.success(), "script failed: {script}");
}

/// A tree with what the walking rules and the matcher care about: a git work tree
/// with ignore rules of every kind, nested and hidden directories, symlinks, odd and
/// non-UTF-8 names, binary, Latin-1, CRLF, lone-CR and too-large files, and a plain
/// directory outside git.
fn build_tree(root: &str) {
    sh(&format!(
        r#"set -e
cd '{root}'
mkdir -p repo plain
cd repo
git init -q .
printf 'build/\n*.log\n' > .gitignore
mkdir -p src/util build .hidden sub docs deep/a/b/c
printf 'fn main() {{\n    hello();\n    let x = a.(b);\n}}\n' > src/main.rs
printf '// hello util\nfn helper() {{}}\n\nfn other() {{\n    start();\n    end();\n}}\n' > src/util/mod.rs
printf 'def hello():\n    return "HELLO"\n' > tool.py
printf '# Hello\n\nSome text with hello in it.\n' > docs/README.md
printf '{{"hello": 1}}\n' > data.json
printf 'hello from build\n' > build/out.txt
printf 'hello log\n' > app.log
printf 'hello log forced\n' > forced.log
printf 'hello hidden\n' > .hidden/secret.txt
printf 'local.txt\n' > sub/.gitignore
printf 'hello local\n' > sub/local.txt
printf 'hello other\nsecond\nthird\n' > sub/other.txt
printf 'hello excluded\n' > excluded.txt
printf 'excluded.txt\n' >> .git/info/exclude
printf 'one\r\nhello crlf\r\nthree\r\n' > crlf.txt
printf 'a\rhello lone cr\nnext\n' > lonecr.txt
printf 'hello\0binary' > bin.dat
printf 'hello caf\351\n' > latin1.txt
printf 'deep hello\n' > deep/a/b/c/d.txt
printf 'hello spaced\n' > 'sp ace.txt'
printf 'hello newline\n' > "$(printf 'new\nline.txt')"
printf 'hello bad name\n' > "$(printf 'bad\377.txt')"
printf 'no newline at the end hello' > nonl.txt
: > empty.txt
for i in $(seq 1 120); do echo "hit $i hello" >> many.txt; done
head -c 5000000 /dev/zero | tr '\0' 'h' > big.txt
ln -s src/main.rs link.rs
ln -s src linkdir
git add .gitignore src tool.py && git add -f forced.log
cd ../plain
printf 'hello plain\nx\n' > p.txt
printf 'ignored/\n' > .gitignore
mkdir ignored && printf 'hello not a repo\n' > ignored/i.txt
cd ..
find . -path ./repo/.git -prune -o -exec touch -h -t 202201010000.00 {{}} +
touch -t 202301010000.00 repo/src/util/mod.rs repo/tool.py
"#
    ));
}

/// Runs `tool` with `input` on both contexts and checks the results are the same:
/// the text a model sees, the JSON `--json` prints, or the error message.
async fn same(native: &ToolContext, generic: &ToolContext, tool: &str, input: Value) {
    let a = tools::call(native, tool, input.clone()).await;
    let b = tools::call(generic, tool, input.clone()).await;
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                a.to_text(),
                b.to_text(),
                "{tool} {input}: native vs generic text"
            );
            assert_eq!(
                serde_json::to_value(&a).expect("json"),
                serde_json::to_value(&b).expect("json"),
                "{tool} {input}: native vs generic JSON"
            );
        }
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "{tool} {input}: native vs generic error"
        ),
        (a, b) => panic!("{tool} {input}: native gave {a:?}, generic gave {b:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn native_and_generic_paths_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_str().expect("utf-8").to_owned();
    build_tree(&root);
    let rt = local();
    let at = RemotePath::new(root.as_str()).expect("path");
    let native = ToolContext::new(rt.clone(), at.clone());
    let generic = ToolContext::new(Arc::new(GenericOnly(rt)), at);
    let greps = [
        json!({"pattern": "hello"}),
        json!({"pattern": "hello", "path": "repo"}),
        json!({"pattern": "^hello$|hello$"}),
        json!({"pattern": "HELLO", "case_insensitive": true, "path": "repo"}),
        json!({"pattern": "hello", "context": 1, "path": "repo"}),
        json!({"pattern": "hit 1[0-9]", "before_context": 2, "after_context": 1, "path": "repo"}),
        json!({"pattern": "hello", "output_mode": "files_with_matches"}),
        json!({"pattern": "hello", "output_mode": "count", "path": "repo"}),
        json!({"pattern": "hello", "type": "rust", "path": "repo"}),
        json!({"pattern": "hello", "type": "md", "-i": true}),
        json!({"pattern": "hello", "glob": "src/**/*.rs", "path": "repo"}),
        json!({"pattern": "hello", "glob": "*.txt"}),
        json!({"pattern": "a.(b", "fixed_strings": true}),
        json!({"pattern": r"start\(\);\s+end", "multiline": true, "context": 1}),
        json!({"pattern": r"\Ahello"}),
        json!({"pattern": "lone.cr"}),
        json!({"pattern": "nothing-matches-this", "path": "repo"}),
        json!({"pattern": "nothing-matches-this", "path": "plain"}),
        json!({"pattern": "hello", "path": "repo/build"}),
        json!({"pattern": "hello", "path": "plain/ignored"}),
        json!({"pattern": "second", "path": "repo/sub/other.txt", "context": 1}),
        json!({"pattern": "hello", "path": "repo/bin.dat"}),
        json!({"pattern": "hello", "path": "missing"}),
        json!({"pattern": "(", "path": "repo"}),
        json!({"pattern": "x", "type": "nonsense"}),
        json!({"pattern": "x", "glob": "["}),
    ];
    for input in greps {
        same(&native, &generic, "grep", input).await;
    }
    let globs = [
        json!({"pattern": "**/*"}),
        json!({"pattern": "**/*.rs"}),
        json!({"pattern": "*", "path": "repo"}),
        json!({"pattern": "**/*.log", "path": "repo"}),
        json!({"pattern": "**", "path": "repo/build"}),
        json!({"pattern": "*.nothing", "path": "repo"}),
        json!({"pattern": "*", "path": "missing"}),
        json!({"pattern": "*", "path": "repo/tool.py"}),
        json!({"pattern": format!("{root}/repo/src/**/*.rs")}),
    ];
    for input in globs {
        same(&native, &generic, "glob", input).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn native_and_generic_edits_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_str().expect("utf-8").to_owned();
    let content = "one\r\ntwo\r\ntwo\r\n";
    for side in ["native", "generic"] {
        std::fs::create_dir(dir.path().join(side)).expect("mkdir");
        std::fs::write(dir.path().join(side).join("f.txt"), content).expect("write");
        std::fs::write(dir.path().join(side).join("bin"), b"a\xffb").expect("write");
    }
    let rt = local();
    let native = ToolContext::new(
        rt.clone(),
        RemotePath::new(format!("{root}/native")).expect("p"),
    );
    let generic = ToolContext::new(
        Arc::new(GenericOnly(rt)),
        RemotePath::new(format!("{root}/generic")).expect("p"),
    );
    for (path, old, new, all) in [
        ("f.txt", "two\n", "2\n", false),
        ("f.txt", "absent", "x", false),
        ("f.txt", "one\ntwo", "1\n2", false),
        ("f.txt", "two", "deux", true),
        ("bin", "a", "b", false),
        ("missing", "a", "b", false),
        ("f.txt", "", "b", false),
    ] {
        let input = json!({"path": path, "old_string": old, "new_string": new, "replace_all": all});
        let a = tools::call(&native, "edit_file", input.clone()).await;
        let b = tools::call(&generic, "edit_file", input.clone()).await;
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(
                a.to_text().replace("/native/", "/"),
                b.to_text().replace("/generic/", "/"),
                "{input}"
            ),
            (Err(a), Err(b)) => assert_eq!(
                a.to_string().replace("/native/", "/"),
                b.to_string().replace("/generic/", "/"),
                "{input}"
            ),
            (a, b) => panic!("{input}: native gave {a:?}, generic gave {b:?}"),
        }
        assert_eq!(
            std::fs::read(dir.path().join("native/f.txt")).expect("read"),
            std::fs::read(dir.path().join("generic/f.txt")).expect("read"),
            "{input}: same file content after the edit"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("native/f.txt")).expect("read"),
        "1\r\n2\r\ndeux\r\n"
    );
}
