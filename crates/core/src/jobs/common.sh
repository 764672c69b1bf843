# Shared by every job script. Set before it: key (the workspace's directory name under
# the jobs root) and nonce (this call's reply marker).
c=${XDG_CACHE_HOME:-}
case $c in /*) ;; *) c=$HOME/.cache ;; esac
root=$c/cmux/jobs
base=$root/$key
have_flock=
command -v flock >/dev/null 2>&1 && have_flock=1

# The first line of the reply, marked with this call's nonce: nothing printed before
# it (a login shell's rc file) can pass for it, and after it everything is ours.
reply() { printf '\0cmux-job:%s %s\n' "$nonce" "$*"; }

fail() { printf 'cmux jobs: %s\n' "$*" >&2; exit 1; }

# True while the job's supervisor (in the current job directory) is alive. With
# flock(1) the supervisor holds a lock for its whole life, which the kernel releases
# however it dies (even SIGKILL, or a reboot): exact, no PID to be reused. Without it,
# the supervisor's PID and its start time as ps shows it.
supervisor_alive() {
  if [ -n "$have_flock" ] && [ -f lock ]; then
    flock -n -E 75 lock true 2>/dev/null
    case $? in 75) return 0 ;; 0) return 1 ;; esac
  fi
  local pg sid started spid seen ident
  [ -f pid ] && read -r pg sid started spid <pid || return 1
  case $spid in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$spid" 2>/dev/null || return 1
  # A zombie is dead; a start time other than the supervisor's is another process.
  if ! seen=$(ps -o stat= -o lstart= -p "$spid" 2>/dev/null); then
    command -v ps >/dev/null 2>&1 && return 1
    return 0
  fi
  set -- $seen
  case $1 in Z*) return 1 ;; esac
  shift
  [ -f ident ] || return 0
  read -r ident <ident
  [ "$*" = "$ident" ]
}

# Sets st to the state of the job in the current directory: x<code> (exited),
# s<signal> (killed by a signal), r (running) or l (lost: its supervisor is gone and
# recorded no status, e.g. it was killed or the host rebooted).
job_state() {
  st=
  [ -f status ] && read -r st <status
  case $st in x[0-9]*|s[0-9]*) return ;; esac
  if supervisor_alive; then st=r; return; fi
  # The supervisor writes the status just before it exits: look again.
  st=
  [ -f status ] && read -r st <status
  case $st in x[0-9]*|s[0-9]*) ;; *) st=l ;; esac
}

# Removes this workspace's jobs whose output was read to the end after they ended,
# and the jobs of every workspace (removed ones too) that ended (or, lost, started)
# more than 24 hours ago, with the directories of workspaces left empty as long.
# Running jobs are never removed.
sweep() {
  [ -d "$root" ] || return 0
  local d
  for d in "$base"/*/done; do
    [ -e "$d" ] && rm -rf -- "${d%/done}"
  done
  # One find: ended (status) and started (command) 24 h ago, and workspaces' empty
  # directories untouched as long.
  find "$root" -mindepth 1 -maxdepth 3 \( -name status -o -name command -o -type d -empty \) \
    -mmin +1440 2>/dev/null | while IFS= read -r d; do
    case ${d#"$root"/} in
      */*/status) rm -rf -- "${d%/status}" ;;
      */*/command) (cd "${d%/command}" 2>/dev/null && job_state && [ "$st" = l ]) &&
        rm -rf -- "${d%/command}" ;;
      */*) ;;
      *) rmdir -- "$d" 2>/dev/null ;;
    esac
  done
}

# Ends the job in the current directory: SIGTERM to its process group, SIGKILL after
# 3 s, then waits (10 s at most) for the supervisor to record how it ended. A lost
# job's group is killed only while its processes are still in the job's session, never
# a group that reused the number. Sets was (the state before) and st (after).
end_job() {
  local pg= sid= n
  job_state
  was=$st
  [ -f pid ] && read -r pg sid _ <pid
  case $pg in '' | *[!0-9]*) pg= ;; esac
  if [ "$st" = r ] && [ -n "$pg" ]; then
    kill -TERM -- "-$pg" 2>/dev/null
    n=0
    while [ ! -f status ] && [ "$n" -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
    if [ ! -f status ]; then
      kill -KILL -- "-$pg" 2>/dev/null
      n=0
      while [ ! -f status ] && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    fi
    job_state
  elif [ "$st" = l ] && [ -n "$pg" ] && [ "$sid" != - ]; then
    if ps -A -o pgid= -o sid= 2>/dev/null |
      awk -v p="$pg" -v s="$sid" '$1 == p && $2 == s { f = 1 } END { exit !f }'; then
      kill -KILL -- "-$pg" 2>/dev/null
    fi
  fi
}
