# Starts a job. Set before it (with common.sh): id, command (as the user wrote it),
# script (what runs: cwd, environment, command), supervise (supervise.sh).
um=$(umask)
umask 077
mkdir -p "$base" || fail "cannot create the jobs directory $base"
chmod 700 "$c/cmux" "$root" "$base" 2>/dev/null
sweep
dir=$base/$id
if ! mkdir "$dir" 2>/dev/null; then
  [ -e "$dir" ] && { reply taken; exit 0; }
  # A concurrent sweep may have removed an empty parent.
  mkdir -p "$base" && mkdir "$dir" || fail "cannot create the job directory $dir"
fi
cd "$dir" || fail "cannot enter the job directory $dir"
printf '%s' "$command" >command &&
  printf 'umask %s\n%s' "$um" "$script" >run &&
  : >out || fail "cannot write the job's files in $dir"
# The lock is taken here and handed to the supervisor (same open file), so the job is
# never seen without a live holder between now and the supervisor's end.
if [ -n "$have_flock" ]; then
  exec 8>>lock && flock -n 8 || fail "cannot lock $dir/lock"
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
  *) cd / && rm -rf -- "$dir"; fail "the job's supervisor did not start (is bash on PATH?)" ;;
esac
