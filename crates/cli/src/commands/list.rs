//! `cmux list`.

use anyhow::Result;

use super::Ctx;
use crate::args::ListArgs;
use crate::registry::State;

/// Lists readable entries; unreadable ones are a warning each on stderr (exit 0).
pub fn run(ctx: &Ctx, args: &ListArgs) -> Result<i32> {
    let (records, bad) = ctx.registry.list()?;
    for entry in &bad {
        err!("cmux: warning: {}", entry.error);
    }
    if args.json {
        out!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(0);
    }
    if records.is_empty() {
        err!("cmux: no workspaces (create one with `cmux new <name>`)");
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = records
        .iter()
        .map(|r| {
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
                r.backend.label(),
                branch,
                r.path.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "BACKEND", "BRANCH", "PATH"].map(String::from);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        out!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(0)
}
