//! The command line, exactly as scripts and other tools call it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 failure; 2 usage error; `exec` exits with the command's own
code, 124 when it timed out, 128+N when killed by signal N (also when cmux itself gets
SIGINT, SIGTERM, SIGHUP or SIGQUIT: it kills the command's process group first), 141
when the reader of its output went away (`| head`: the command is killed, as SIGPIPE
would), 255 when the connection to the workspace's host failed (as ssh does).

State lives in $CMUX_HOME (default ~/.cmux), private to you (0700 directories, 0600
files): one JSON file per workspace in workspaces/, local worktrees in
src/<project-id>/<name>, ssh control sockets in ssh/, per-project locks in locks/.
Set RUST_LOG=debug for diagnostics on stderr.

SSH hosts are reached with the system ssh and ~/.ssh/config. CMUX_SSH_CONFIG=FILE
makes cmux use FILE instead (as `ssh -F FILE`): `cmux new --ssh` records it in the
workspace, so later commands on that workspace use the same file.
CMUX_SSH_TRANSPORT=russh connects with cmux's built-in SSH client instead (no ssh
binary needed; `auto`, the default, uses it only when no ssh client is installed).";

/// Workspaces for AI coding agents: run commands and edit files in a checkout of your
/// project on its own branch, on this machine, over SSH, or on Coder.
#[derive(Debug, Parser)]
#[command(name = "cmux", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a workspace: a git worktree of the project on a new branch, then run
    /// the project's `.cmux/init` in it.
    ///
    /// The branch is named after the workspace (or --branch) and starts from --from
    /// (default: the project's current branch). If the project has an executable
    /// `.cmux/init`, it runs in the new workspace with CMUX_PROJECT_PATH,
    /// CMUX_WORKSPACE_NAME, CMUX_WORKSPACE_PATH and CMUX_RUNTIME set; its output goes to
    /// stderr as it comes. A failing hook is reported with its exit code as a warning:
    /// the workspace stays usable and `cmux new` still exits 0.
    New(NewArgs),
    /// List workspaces: name, project, backend, branch and path.
    ///
    /// Names are global (one name, one workspace, whatever its project); --here shows
    /// only the workspaces of the project of the current directory (or of a local
    /// workspace of it).
    List(ListArgs),
    /// Run a command in a workspace, streaming its output; exit with its code.
    ///
    /// One word after `--` is a shell script run by `bash -c`; several words are a
    /// program and its arguments, passed exactly (each word quoted). The command runs in
    /// the workspace directory (or --cwd, relative to it). When cmux's standard input
    /// is not a terminal it is piped to the command; from a terminal the command gets
    /// /dev/null (agents' commands must never wait for input).
    ///
    /// --background starts it as a background job instead and prints the job's id at
    /// once: the command keeps running on the workspace's host after cmux exits (its
    /// stdin is /dev/null, its output kept on the host); follow it with `cmux
    /// job-output`, stop it with `cmux job-kill`, list jobs with `cmux jobs`.
    Exec(ExecArgs),
    /// List a workspace's background jobs: id, state, age, output, command.
    ///
    /// Every job cmux started in the workspace is listed, whoever started it (`cmux
    /// exec --background`, an agent over `cmux mcp`). A job is removed once it has ended
    /// and its output was read, or 24 hours after it ended.
    Jobs(JobsArgs),
    /// Print a background job's output written since the last read (by anyone).
    ///
    /// Stdout and stderr of the job come interleaved, in full, on standard output; a
    /// line on stderr tells whether the job still runs or how it ended. Exits 0 while
    /// the job runs, else with its exit code (128+N when killed by signal N, 1 when it
    /// is lost: its supervisor died without recording its end).
    JobOutput(JobOutputArgs),
    /// Stop a background job and everything it started.
    ///
    /// SIGTERM goes to the job's process group, SIGKILL 3 s later if it still runs;
    /// cmux returns once the job's end is recorded. A job that already ended is left
    /// as it is; its unread output stays readable with `cmux job-output`.
    JobKill(JobKillArgs),
    /// Print a file of a workspace (streamed; paths are relative to the workspace).
    Cat(PathArgs),
    /// Replace a file of a workspace with standard input, atomically.
    ///
    /// A file you may not write (read-only, such as 0444) or that another user owns is
    /// refused: replacing it would quietly defeat its mode, or take it from its owner.
    /// --force replaces it anyway: the file is removed, then written as a new file of
    /// yours (mode 0644 less the umask; its old mode and owner are not kept).
    Write(WriteArgs),
    /// Replace an exact string in a file of a workspace.
    ///
    /// Read-only files and other users' files are refused, as for `cmux write`;
    /// --force replaces them with a new file of yours holding the edited text.
    Edit(EditArgs),
    /// List a directory of a workspace (default: its top).
    Ls(LsArgs),
    /// Open an interactive login shell in a workspace, with a terminal.
    ///
    /// Local: your $SHELL (bash when unset) with -l, in the workspace directory. SSH
    /// and Coder: `ssh -t` through the workspace's shared connection (a stopped Coder
    /// workspace is started), running the host user's login shell in the workspace
    /// directory. Exits with the shell's exit code.
    Shell(ShellArgs),
    /// Bring a workspace's commits home, as the project's branch of the same name
    /// (fast-forward only).
    ///
    /// The workspace's branch is fetched into the project as `cmux/<name>`
    /// (`refs/remotes/cmux/<name>`, over the workspace's SSH connection), then the
    /// project's branch of that name (or --into) is created or fast-forwarded to it.
    /// A branch checked out in the project moves with its working tree (`git merge
    /// --ff-only`), refused when your local changes are in the way. When the two have
    /// diverged nothing changes, and cmux says how to merge. Afterwards `cmux rm` sees
    /// the commits as home. A local workspace's branch is already the project's: nothing
    /// to do.
    Pull(PullArgs),
    /// Send the project's branch the workspace started from (e.g. main) to the
    /// workspace's host, under its own name.
    ///
    /// Afterwards `git log main`, `git diff main` and `git rebase main` in the workspace
    /// see the project's main as it is now. Only the objects the host lacks travel. A
    /// branch that a worktree on the host has checked out, or that has commits made on
    /// the host, is not moved (exit 1, saying so). A local workspace shares the
    /// project's branches: nothing to do.
    Push(PushArgs),
    /// Remove a workspace (refused when it has uncommitted changes, unless --force).
    ///
    /// Local: the worktree is removed; its branch stays in the project, so commits are
    /// kept. SSH and Coder: the worktree and its branch in the host's shared repository
    /// are removed; refused while the branch has commits the project does not have
    /// (bring them home with `cmux pull <name>`), unless --force. An in-place
    /// workspace's directory (the project itself) is never deleted. Removing a
    /// workspace that is already gone succeeds. Its background jobs end with it: the
    /// running ones are killed (each is named on stderr) and every job's output is
    /// removed.
    Rm(RmArgs),
    /// Rename a workspace (its directory, its branch when named after it, its jobs).
    ///
    /// Its background jobs are listed under the new name; running ones go on.
    Rename(RenameArgs),
    /// Create a workspace from another workspace's HEAD, on a new branch.
    Fork(ForkArgs),
    /// Check cmux's prerequisites, or a workspace.
    Doctor(DoctorArgs),
    /// Serve a workspace's tools to an agent over MCP on stdin/stdout.
    ///
    /// Tools: bash, read_file, write_file, edit_file, list_dir, glob, grep, job_output,
    /// job_kill, jobs, all running in the workspace. Meant to be started by an MCP
    /// client, e.g. `claude mcp add NAME -- cmux mcp NAME` (docs/MCP.md covers Codex
    /// and others). Serves until the client closes stdin; commands still running, and
    /// the background jobs this session started, are then killed.
    Mcp(McpArgs),
    /// Show the host helper this cmux carries, or write it to a file.
    ///
    /// cmux installs its helper (`cmux-host`, a static Linux x86_64 program) on SSH
    /// and Coder hosts by itself. For `--pipe` workspaces (a container, another user)
    /// the helper must already be at the other end of the pipe: write it with --output
    /// and copy it there (e.g. `docker cp cmux-host box:/usr/local/bin/`).
    HostHelper(HostHelperArgs),
    /// Internal, hidden: local git's ssh under the russh transport (`GIT_SSH_COMMAND`
    /// set by cmux itself); see `cmux_backend_ssh::source::relay`.
    #[command(name = "__git-relay", hide = true)]
    GitRelay(GitRelayArgs),
}

/// `cmux __git-relay SOCKET HOST COMMAND` (run by git, never by hand).
#[derive(Debug, Args)]
pub struct GitRelayArgs {
    /// The relay socket of the cmux process running git.
    pub socket: PathBuf,
    /// The host git names (ignored: the socket's process knows its host).
    pub host: String,
    /// The remote command git asks for (`git-receive-pack '/path'`).
    pub command: String,
}

/// `cmux host-helper`.
#[derive(Debug, Args)]
pub struct HostHelperArgs {
    /// Write the helper to FILE (mode 0755; FILE must not exist).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print what is known of the helper as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cmux new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Workspace name: letters, digits, '-', '_', '.' (not first), at most 64.
    pub name: String,
    /// The project: a git repository (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// On this machine (the default).
    #[arg(long, conflicts_with_all = ["ssh", "coder", "pipe"])]
    pub local: bool,
    /// On an SSH host (hostname, user@host or ~/.ssh/config alias; CMUX_SSH_CONFIG
    /// names another config file). The project's commits are pushed there;
    /// uncommitted local changes are not carried.
    #[arg(long, value_name = "HOST", conflicts_with = "coder")]
    pub ssh: Option<String>,
    /// On a Coder workspace (`name` or `name.agent`).
    #[arg(long, value_name = "WORKSPACE", conflicts_with = "pipe")]
    pub coder: Option<String>,
    /// Through a command whose stdin/stdout reach `cmux-host` (`docker exec -i box
    /// cmux-host`, `sudo -u sandbox cmux-host`); the workspace is the existing
    /// directory --dir there, used in place (no git sync through a pipe).
    #[arg(long, value_name = "COMMAND", requires = "dir", conflicts_with = "ssh")]
    pub pipe: Option<String>,
    /// The workspace directory at the other end of --pipe (absolute).
    #[arg(long, value_name = "DIR", requires = "pipe")]
    pub dir: Option<String>,
    /// Branch to create (default: the workspace name).
    #[arg(long, value_name = "B")]
    pub branch: Option<String>,
    /// Start from this branch, tag or commit (default: the project's current branch).
    #[arg(long, value_name = "REF")]
    pub from: Option<String>,
    /// Use the project directory itself: no worktree, no new branch (--pipe
    /// workspaces are always in place, in --dir).
    #[arg(long, conflicts_with_all = ["branch", "from", "ssh", "coder"])]
    pub in_place: bool,
    /// Where workspaces live on the host (--ssh/--coder; default ~/cmux).
    #[arg(long, value_name = "DIR")]
    pub src_base: Option<String>,
    /// Accept and remember the host's key if it is not in known_hosts yet (--ssh).
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Print the new workspace as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cmux list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the workspaces of the project of the current directory.
    #[arg(long)]
    pub here: bool,
    /// Print JSON (an array of workspace records).
    #[arg(long)]
    pub json: bool,
}

/// `cmux shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Workspace name.
    pub name: String,
}

/// `cmux mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Workspace name.
    pub name: String,
}

/// `cmux exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Workspace name.
    pub name: String,
    /// Kill the command (and everything it started) after SECS seconds; exit 124.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Working directory, relative to the workspace (default: the workspace).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Set a variable for the command (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Start the command as a background job and print its id; it runs on after cmux
    /// exits (see `cmux job-output`, `cmux job-kill`, `cmux jobs`).
    #[arg(long, conflicts_with = "timeout")]
    pub background: bool,
    /// The command: one word is a bash script, several an argv.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `cmux jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Workspace name.
    pub name: String,
    /// Print JSON (an array of job records).
    #[arg(long)]
    pub json: bool,
}

/// `cmux job-output`.
#[derive(Debug, Args)]
pub struct JobOutputArgs {
    /// Workspace name.
    pub name: String,
    /// Job id (from `cmux exec --background` or `cmux jobs`).
    pub id: String,
    /// When there is no new output yet, wait up to SECS seconds (at most 600) for some
    /// or for the job's end.
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Print JSON: the job's state and its new output as text.
    #[arg(long)]
    pub json: bool,
}

/// `cmux job-kill`.
#[derive(Debug, Args)]
pub struct JobKillArgs {
    /// Workspace name.
    pub name: String,
    /// Job id (from `cmux exec --background` or `cmux jobs`).
    pub id: String,
    /// Print JSON: the job's state before and after.
    #[arg(long)]
    pub json: bool,
}

/// `cmux cat`.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Workspace name.
    pub name: String,
    /// File path, relative to the workspace.
    pub path: String,
}

/// `cmux write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Workspace name.
    pub name: String,
    /// File path, relative to the workspace.
    pub path: String,
    /// Replace the file even if it is read-only or another user's (it becomes a new
    /// file of yours).
    #[arg(long)]
    pub force: bool,
}

/// `cmux edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Workspace name.
    pub name: String,
    /// File path, relative to the workspace.
    pub path: String,
    /// The exact text to replace (must occur once, unless --all).
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub old: String,
    /// The replacement.
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub new: String,
    /// Replace every occurrence.
    #[arg(long)]
    pub all: bool,
    /// Edit the file even if it is read-only or another user's (it becomes a new file
    /// of yours).
    #[arg(long)]
    pub force: bool,
}

/// `cmux ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Workspace name.
    pub name: String,
    /// Directory, relative to the workspace (default: the workspace).
    pub path: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cmux pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Workspace name.
    pub name: String,
    /// The project's branch to create or fast-forward (default: the workspace's branch
    /// name).
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
}

/// `cmux push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Workspace name.
    pub name: String,
    /// The project's branch to send (default: the one the workspace started from).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
}

/// `cmux rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Workspace name.
    pub name: String,
    /// Remove even with uncommitted changes or commits the project does not have.
    #[arg(long)]
    pub force: bool,
}

/// `cmux rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Current name.
    pub old: String,
    /// New name.
    pub new: String,
}

/// `cmux fork`.
#[derive(Debug, Args)]
pub struct ForkArgs {
    /// The workspace to fork.
    pub source: String,
    /// Name of the new workspace.
    pub new: String,
}

/// `cmux doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A workspace to check (default: cmux's own prerequisites).
    pub name: Option<String>,
    /// Check an SSH host instead: what ssh resolved, the connection, bash, git and
    /// SFTP on the host (CMUX_SSH_CONFIG applies, as for `cmux new --ssh`).
    #[arg(long, value_name = "HOST", conflicts_with = "name")]
    pub ssh: Option<String>,
    /// Check a Coder workspace instead (`ws` or `ws.agent`): the coder CLI, login,
    /// the ssh config block, the workspace status and ssh.
    #[arg(long, value_name = "WORKSPACE", conflicts_with_all = ["name", "ssh"])]
    pub coder: Option<String>,
    /// Check a pipe command instead: that it reaches a cmux-host, its version and the
    /// login environment its commands get.
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["name", "ssh", "coder"])]
    pub pipe: Option<String>,
    /// Accept and remember the host's key if it is not in known_hosts yet (--ssh).
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}
