//! The host side of [`Lifecycle::create`](crate::workspace::Lifecycle::create) as one
//! command: one round trip instead of one per git step (exists check, rev-parse,
//! mkdir, branch check, worktree add, hook check).
//!
//! The script's only output on stdout is its own last line (`cmux-create: ...`): every
//! git command's stdout, and so any hook git runs, goes to stderr, so nothing in the
//! repository can write that line.

use crate::error::{Error, Result};
use crate::exec::{ExecRequest, ExitStatus};
use crate::path::RemotePath;
use crate::runtime::{Runtime, RuntimeExt};

/// `$1` repo, `$2` workspace dir, `$3` base dir, `$4` revision, `$5` branch,
/// `$6` 1 when the revision was given explicitly.
const SCRIPT: &str = r#"set -u
repo=$1 ws=$2 base=$3 rev=$4 branch=$5 from_given=$6
if [ -e "$ws" ] || [ -L "$ws" ]; then echo "cmux-create: taken"; exit 0; fi
if ! commit=$(git -C "$repo" rev-parse -q --verify "$rev^{commit}" 2>&2); then
  echo "cmux-create: no-rev"; exit 0
fi
mkdir -p -- "$base" >&2 || exit 1
if git -C "$repo" rev-parse -q --verify "refs/heads/$branch" >/dev/null; then
  if [ "$from_given" = 1 ]; then echo "cmux-create: branch-exists"; exit 0; fi
  git -C "$repo" worktree add "$ws" "$branch" >&2 || exit 1
  made=existing
else
  git -C "$repo" worktree add -b "$branch" "$ws" "$commit" >&2 || exit 1
  made=new
fi
hook=none
if [ -e "$ws/.cmux/init" ]; then
  if [ -f "$ws/.cmux/init" ] && [ -x "$ws/.cmux/init" ]; then hook=exec; else hook=noexec; fi
fi
echo "cmux-create: ok $made $hook $commit"
"#;

/// What the script did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Created {
    /// The workspace directory already exists.
    Taken,
    /// The revision is not a commit of the repository.
    NoRevision,
    /// The branch exists and a starting revision was given.
    BranchExists,
    /// The worktree was made.
    Made {
        /// True on a new branch, false on an existing one.
        new_branch: bool,
        /// The init hook: `None` absent, `Some(true)` executable, `Some(false)` not.
        hook: Option<bool>,
        /// The commit the workspace starts at.
        commit: String,
    },
}

/// Runs the create script in `runtime`.
pub(crate) async fn run(
    runtime: &dyn Runtime,
    repo: &RemotePath,
    ws: &RemotePath,
    base: &RemotePath,
    rev: &str,
    branch: &str,
    from_given: bool,
) -> Result<Created> {
    let req = ExecRequest::argv([
        "bash",
        "-c",
        SCRIPT,
        "cmux-create",
        repo.as_str(),
        ws.as_str(),
        base.as_str(),
        rev,
        branch,
        if from_given { "1" } else { "0" },
    ]);
    let out = runtime.output(req, 1 << 20).await?;
    if out.status != ExitStatus::Exited(0) {
        return Err(Error::CommandFailed {
            host: runtime.host().to_owned(),
            command: "git worktree add".into(),
            code: out.status.shell_code(),
            stderr: crate::runtime::tail(&out.stderr_lossy(), 2000),
        });
    }
    let stdout = out.stdout_lossy();
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("cmux-create: "))
        .unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["taken"] => Created::Taken,
        ["no-rev"] => Created::NoRevision,
        ["branch-exists"] => Created::BranchExists,
        ["ok", made, hook, commit] => Created::Made {
            new_branch: *made == "new",
            hook: match *hook {
                "exec" => Some(true),
                "noexec" => Some(false),
                _ => None,
            },
            commit: (*commit).to_owned(),
        },
        _ => {
            return Err(Error::CommandFailed {
                host: runtime.host().to_owned(),
                command: "creating the worktree".into(),
                code: 0,
                stderr: format!(
                    "unexpected output {:?}; {}",
                    crate::runtime::tail(&stdout, 200),
                    crate::runtime::tail(&out.stderr_lossy(), 1000)
                ),
            })
        }
    })
}
