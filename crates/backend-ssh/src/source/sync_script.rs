//! The host side of [`SshSource::sync`](super::SshSource) as one command: one round
//! trip when the host already has the commit (a second workspace of a project), where
//! a `git push` costs several.
//!
//! The script creates the bare repository if missing (0700, with its parents), gives
//! it the project's git identity, looks at the base branch, and, when the commit is
//! there and reachable, moves the sync ref and the base branch itself. Otherwise it
//! says so and the caller pushes. Its only output on stdout is its own last line
//! (`cmux-sync: ...`): every git command's stdout goes to stderr, so nothing in the
//! repository (a hook, say) can write that line.

use cmux_core::workspace::GitIdentity;
use cmux_core::{Error, ExecRequest, ExitStatus, RemotePath, Result, Runtime, RuntimeExt};

/// `$1` repo, `$2` commit, `$3` sync ref, `$4` base branch (empty: none),
/// `$5` user.name and `$6` user.email (empty: leave as is).
const SCRIPT: &str = r#"set -u
repo=$1 commit=$2 sync_ref=$3 base=$4 name=$5 email=$6
made=existing
if [ ! -e "$repo/HEAD" ]; then
  (umask 077 && git init --bare -q "$repo") >&2 || exit 1
  made=new
fi
if [ -n "$name" ]; then git -C "$repo" config user.name "$name" >&2 || exit 1; fi
if [ -n "$email" ]; then git -C "$repo" config user.email "$email" >&2 || exit 1; fi
state=none
if [ -n "$base" ]; then
  if git -C "$repo" worktree list --porcelain 2>/dev/null | grep -qxF "branch refs/heads/$base"; then
    state=checked-out
  elif own=$(git -C "$repo" rev-list -n1 "refs/heads/$base" --not --glob='refs/cmux/sync/*' -- 2>/dev/null) && [ -n "$own" ]; then
    state=own-commits
  else
    state=movable
  fi
fi
if git -C "$repo" cat-file -e "$commit^{commit}" >&2 2>/dev/null &&
   unreachable=$(git -C "$repo" rev-list -n1 "$commit" --not --all -- 2>/dev/null) &&
   [ -z "$unreachable" ]; then
  git -C "$repo" update-ref "$sync_ref" "$commit" >&2 || exit 1
  if [ "$state" = movable ]; then
    git -C "$repo" update-ref "refs/heads/$base" "$commit" >&2 || exit 1
    state=updated
  fi
  echo "cmux-sync: present $made $state"
else
  echo "cmux-sync: missing $made $state"
fi
"#;

/// The base branch as the script found (or left) it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BaseState {
    /// No base branch was asked for.
    None,
    /// Free to move; the caller's push may move it.
    Movable,
    /// Moved to the commit by the script.
    Updated,
    /// A worktree has it checked out: leave it.
    CheckedOut,
    /// It has commits no sync ref has (made on the host): leave it.
    OwnCommits,
}

/// What the script found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// The commit is in the repository, reachable from a ref: nothing to push, and
    /// the refs were moved.
    pub(crate) present: bool,
    /// The repository was created just now.
    pub(crate) created: bool,
    /// The base branch.
    pub(crate) base: BaseState,
}

/// Runs the sync script in `runtime`.
pub(crate) async fn run(
    runtime: &dyn Runtime,
    repo: &RemotePath,
    commit: &str,
    sync_ref: &str,
    base: Option<&str>,
    identity: &GitIdentity,
) -> Result<Found> {
    let req = ExecRequest::argv([
        "bash",
        "-c",
        SCRIPT,
        "cmux-sync",
        repo.as_str(),
        commit,
        sync_ref,
        base.unwrap_or(""),
        identity.name.as_deref().unwrap_or(""),
        identity.email.as_deref().unwrap_or(""),
    ]);
    let out = runtime.output(req, 1 << 20).await?;
    if out.status != ExitStatus::Exited(0) {
        return Err(Error::CommandFailed {
            host: runtime.host().to_owned(),
            command: format!("preparing the shared repository {repo}"),
            code: out.status.shell_code(),
            stderr: cmux_core::runtime::tail(&out.stderr_lossy(), 2000),
        });
    }
    let stdout = out.stdout_lossy();
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("cmux-sync: "))
        .unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    let parsed = match words.as_slice() {
        [presence @ ("present" | "missing"), made @ ("new" | "existing"), state] => {
            let base = match *state {
                "none" => Some(BaseState::None),
                "movable" => Some(BaseState::Movable),
                "updated" => Some(BaseState::Updated),
                "checked-out" => Some(BaseState::CheckedOut),
                "own-commits" => Some(BaseState::OwnCommits),
                _ => None,
            };
            base.map(|base| Found {
                present: *presence == "present",
                created: *made == "new",
                base,
            })
        }
        _ => None,
    };
    parsed.ok_or_else(|| Error::CommandFailed {
        host: runtime.host().to_owned(),
        command: format!("preparing the shared repository {repo}"),
        code: 0,
        stderr: format!(
            "unexpected output {:?}; {}",
            cmux_core::runtime::tail(&stdout, 200),
            cmux_core::runtime::tail(&out.stderr_lossy(), 1000)
        ),
    })
}
