//! The MCP tool rows: each agent tool called by name with JSON input through
//! `cmux_core::tools::call`, exactly as the MCP server runs an MCP client's call, in
//! helper mode and on the shell/SFTP path, next to what a harness without cmux would
//! run over ssh.

use anyhow::{bail, Context};
use cmux_core::tools::{self, GlobOutput, GrepOutput, ListDirOutput, ToolContext};
use serde_json::{json, Value};

use crate::baseline::Baseline;
use crate::measure::{measure, Iterations};
use crate::ops::Scopes;
use crate::report::Row;
use crate::setup::{BenchEnv, SMALL_NEEDLE};
use crate::Args;

#[derive(Clone, Copy, Debug)]
enum Case {
    BashTrue,
    Read4k,
    Write4k,
    Edit,
    List100,
    Glob,
    Grep,
}

impl Case {
    const ALL: [Case; 7] = [
        Case::BashTrue,
        Case::Read4k,
        Case::Write4k,
        Case::Edit,
        Case::List100,
        Case::Glob,
        Case::Grep,
    ];

    fn label(self) -> &'static str {
        match self {
            Case::BashTrue => "MCP bash `true`",
            Case::Read4k => "MCP read_file 4 KiB",
            Case::Write4k => "MCP write_file 4 KiB",
            Case::Edit => "MCP edit_file",
            Case::List100 => "MCP list_dir 100 entries",
            Case::Glob => "MCP glob (small workspace)",
            Case::Grep => "MCP grep (small workspace)",
        }
    }

    /// The tool and its arguments for call `i` (edits alternate so each finds one
    /// match; `file` is the edited file of this side).
    fn call(self, i: usize, file: &str) -> (&'static str, Value) {
        match self {
            Case::BashTrue => ("bash", json!({"command": "true"})),
            Case::Read4k => ("read_file", json!({"path": "f4k.txt"})),
            Case::Write4k => (
                "write_file",
                json!({"path": format!("{file}.w4k"), "content": "w".repeat(4096)}),
            ),
            Case::Edit => {
                let (old, new) = edit_strings(i);
                (
                    "edit_file",
                    json!({"path": file, "old_string": old, "new_string": new}),
                )
            }
            Case::List100 => ("list_dir", json!({"path": "dir100"})),
            Case::Glob => ("glob", json!({"pattern": "**/*.rs", "path": "small"})),
            Case::Grep => ("grep", json!({"pattern": SMALL_NEEDLE, "path": "small"})),
        }
    }
}

fn edit_strings(i: usize) -> (&'static str, &'static str) {
    if i.is_multiple_of(2) {
        ("ALPHA", "BETA")
    } else {
        ("BETA", "ALPHA")
    }
}

async fn tool_op(ctx: &ToolContext, case: Case, i: usize, file: &str) -> anyhow::Result<()> {
    let (name, input) = case.call(i, file);
    let out = tools::call(ctx, name, input)
        .await
        .with_context(|| format!("{} failed", case.label()))?;
    if out.is_error() {
        bail!("{} reported an error: {}", case.label(), out.to_text());
    }
    let found = match case {
        Case::List100 => out.downcast_ref::<ListDirOutput>().map(|o| o.entries.len()),
        Case::Glob => out.downcast_ref::<GlobOutput>().map(|o| o.files.len()),
        Case::Grep => out.downcast_ref::<GrepOutput>().map(|o| o.matches.len()),
        _ => None,
    };
    let expected = match case {
        Case::List100 => Some(100),
        Case::Glob => Some(40),
        _ => None,
    };
    match (found, expected) {
        (Some(f), Some(e)) if f != e => bail!("{}: {f} results, expected {e}", case.label()),
        (Some(0), None) => bail!("{}: nothing found", case.label()),
        _ => Ok(()),
    }
}

async fn baseline_op(env: &BenchEnv, base: &Baseline, case: Case, i: usize) -> anyhow::Result<()> {
    let q = |name: &str| cmux_core::quote::quote(&env.path(name));
    match case {
        Case::BashTrue => {
            base.run("true", None).await?;
        }
        Case::Read4k => {
            base.run(&format!("cat {}", q("f4k.txt")), None).await?;
        }
        Case::Write4k => {
            let cmd = format!(
                "cat > {t} && mv {t} {f}",
                t = q("w4k-tool.b.tmp"),
                f = q("w4k-tool.b")
            );
            base.run(&cmd, Some(&[b'w'; 4096])).await?;
        }
        Case::Edit => {
            // What a harness without cmux does: read, replace locally, write back.
            let (old, new) = edit_strings(i);
            let text = base.run(&format!("cat {}", q("edit-b.txt")), None).await?;
            let text = String::from_utf8(text)?.replacen(old, new, 1);
            let cmd = format!(
                "cat > {t} && mv {t} {f}",
                t = q("edit-b.tmp"),
                f = q("edit-b.txt")
            );
            base.run(&cmd, Some(text.as_bytes())).await?;
        }
        Case::List100 => {
            base.run(&format!("ls -la {}", q("dir100")), None).await?;
        }
        Case::Glob => {
            base.run(&format!("find {} -name '*.rs'", q("small")), None)
                .await?;
        }
        Case::Grep => {
            base.run(&format!("grep -rn {SMALL_NEEDLE} {}", q("small")), None)
                .await?;
        }
    }
    Ok(())
}

/// The MCP tool rows.
pub async fn measure_tools(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<Row>> {
    let n = Iterations::new(args.quick, env.rtt);
    let original = std::fs::read(env.scratch.join("edit.txt"))?;
    let with_master = Baseline::with_master(&env.config, &env.dir.path().join("tools-a.sock"));
    let fresh = Baseline::fresh(&env.config);
    with_master.run("true", None).await?;
    let scopes = Scopes::new(env, &with_master);
    let mut rows = Vec::new();
    for case in Case::ALL {
        eprintln!("  {}", case.label());
        // Every row starts from the same text, so the alternating edits always match.
        // (Writing into existing files keeps their owner, the bench account.)
        for name in ["edit-helper.txt", "edit-shell.txt", "edit-b.txt"] {
            write_keeping_owner(&env.scratch.join(name), &original)?;
        }
        let helper = measure(n.cmux, scopes.helper, |i| {
            tool_op(&env.helper.tools, case, i, "edit-helper.txt")
        })
        .await?;
        let shell = measure(n.cmux, scopes.shell, |i| {
            tool_op(&env.shell.tools, case, i, "edit-shell.txt")
        })
        .await?;
        let a = measure(n.a, scopes.a, |i| baseline_op(env, &with_master, case, i)).await?;
        let b = if n.b > 0 {
            Some(measure(n.b, scopes.b, |i| baseline_op(env, &fresh, case, i)).await?)
        } else {
            None
        };
        rows.push(Row {
            op: case.label().into(),
            helper,
            shell: Some(shell),
            a: Some(a),
            b,
        });
    }
    with_master.close();
    Ok(rows)
}

/// Writes `data` into `path`; a new file gets the owner of its directory (the bench
/// account's files must stay its own, or its writes would be refused).
fn write_keeping_owner(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let existed = path.exists();
    std::fs::write(path, data)?;
    if !existed {
        if let Some(parent) = path.parent() {
            let meta = std::fs::metadata(parent)?;
            std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()))?;
        }
    }
    Ok(())
}
