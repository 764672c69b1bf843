# Starts a job. Set before it (with common.sh): id, command (as the user wrote it),
# script (what runs: cwd, environment, command), supervise (supervise.sh).
um=$(umask)
umask 077
mkdir -p "$base" || fail "cannot create the jobs directory $base: check that $c exists and is yours and writable"
chmod 700 "$c/cmux" "$root" "$base" 2>/dev/null
sweep
dir=$base/$id
if ! mkdir "$dir" 2>/dev/null; then
  [ -e "$dir" ] && { reply taken; exit 0; }
  # A sweep elsewhere may have just removed the workspace's empty directory.
  mkdir -p "$base" && mkdir "$dir" || fail "cannot create the job directory $dir: check that $base is yours and writable"
fi
# From here on, a failure leaves no half-made job behind.
fail() {
  cd / && rm -rf -- "$dir"
  printf 'cmux jobs: %s\n' "$*" >&2
  exit 1
}
cd "$dir" || fail "cannot enter the job directory $dir: check its mode (0700, yours)"
printf '%s' "$command" >command &&
  printf 'umask %s\n%s' "$um" "$script" >run &&
  : >out || fail "cannot write the job's files in $dir: is the disk full?"
# The lock is taken here and handed to the supervisor (same open file), so the job is
# never seen without a live holder between now and the supervisor's end.
# A file system without locks (an NFS home without lockd) gets the way of hosts
# without flock(1): no lock file, the supervisor's PID and start time.
if [ -n "$have_flock" ] && ! { exec 8>>lock && flock -n 8; } 2>/dev/null; then
  exec 8>&-
  rm -f lock
  have_flock=
fi
# The supervisor starts its own session (setsid), else at least its own process group
# (set -m): whatever supervises this call's process group lets it live on.
if command -v setsid >/dev/null 2>&1; then
  IFS= read -r ready < <(exec setsid bash --norc --noprofile -c "$supervise" cmux-job s "$have_flock" </dev/null 2>/dev/null)
else
  IFS= read -r ready < <(set -m; bash --norc --noprofile -c "$supervise" cmux-job m "$have_flock" </dev/null 2>/dev/null &)
fi
case $ready in
  "ready "*) reply started "${ready#ready }" "$dir/out" ;;
  *) fail "the job's supervisor did not start (is bash on PATH?)" ;;
esac
