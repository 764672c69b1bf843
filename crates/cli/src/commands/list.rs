//! `cmux list`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Ctx;
use crate::args::ListArgs;
use crate::error::CliError;
use crate::registry::{Record, State};

/// Lists readable entries; unreadable ones are a warning each on stderr (exit 0).
/// `--here`: only the workspaces of the project of the current directory.
pub fn run(ctx: &Ctx, args: &ListArgs) -> Result<i32> {
    let (mut records, bad) = ctx.registry.list()?;
    for entry in &bad {
        err!("cmux: warning: {}", entry.error);
    }
    if args.here {
        let here = current_project()?;
        records.retain(|r| here.contains(&canonical(&r.project)));
    }
    if args.json {
        out!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(0);
    }
    if records.is_empty() {
        if args.here {
            err!("cmux: no workspaces of this project (create one with `cmux new <name>`; `cmux list` shows all)");
        } else {
            err!("cmux: no workspaces (create one with `cmux new <name>`)");
        }
        return Ok(0);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let rows: Vec<[String; 5]> = records.iter().map(|r| row(r, home.as_deref())).collect();
    let header = ["NAME", "PROJECT", "BACKEND", "BRANCH", "PATH"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        out!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    Ok(0)
}

fn row(r: &Record, home: Option<&Path>) -> [String; 5] {
    let mut branch = match (&r.branch, r.in_place) {
        (_, true) => "(in place)".to_owned(),
        (Some(b), _) => b.clone(),
        (None, _) => "-".to_owned(),
    };
    if r.state == State::Creating {
        branch.push_str(" (creating)");
    }
    [
        r.name.clone(),
        shown_project(&r.project, home),
        r.backend.label(),
        branch,
        r.path.to_string(),
    ]
}

/// The project's directory, `~/...` when under the home directory (shorter, and the
/// same for everyone reading over your shoulder).
fn shown_project(project: &Path, home: Option<&Path>) -> String {
    let shown = match home.and_then(|h| project.strip_prefix(h).ok()) {
        Some(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Some(rest) => format!("~/{}", rest.display()),
        None => project.display().to_string(),
    };
    // Paths are the user's, but a directory name may hold anything.
    cmux_core::error::escape_controls(&shown).into_owned()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The project of the current directory, as workspaces record it: its top directory,
/// and the main work tree of its repository (the same when not in a git worktree; a
/// local workspace's worktree belongs to its project).
fn current_project() -> Result<Vec<PathBuf>> {
    let git = |args: &[&str]| -> Option<PathBuf> {
        let out = std::process::Command::new("git")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let text = text.trim_end_matches('\n');
        (out.status.success() && !text.is_empty()).then(|| PathBuf::from(text))
    };
    let Some(top) = git(&["rev-parse", "--show-toplevel"]) else {
        return Err(CliError::failure(
            "--here lists the workspaces of the project of the current directory, and this is not a git repository: cd into the project, or leave out --here",
        ));
    };
    let mut here = vec![canonical(&top)];
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        if let Some(main) = common.parent().filter(|_| common.ends_with(".git")) {
            here.push(canonical(main));
        }
    }
    Ok(here)
}

#[cfg(test)]
mod tests {
    use super::shown_project;
    use std::path::Path;

    #[test]
    fn projects_under_home_are_shown_with_a_tilde() {
        let home = Some(Path::new("/home/u"));
        assert_eq!(shown_project(Path::new("/home/u/src/p"), home), "~/src/p");
        assert_eq!(shown_project(Path::new("/srv/p"), home), "/srv/p");
        assert_eq!(shown_project(Path::new("/home/u"), home), "~");
        assert_eq!(shown_project(Path::new("/home/uu/p"), home), "/home/uu/p");
    }
}
