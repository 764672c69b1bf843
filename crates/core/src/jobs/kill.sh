# Ends a job: SIGTERM to its process group, SIGKILL after 3 s, then waits (10 s at
# most) for the supervisor to record how it ended. Set before it (with common.sh): id.
LC_ALL=C
cd "$base/$id" 2>/dev/null && [ -f command ] || { reply gone; exit 0; }
job_state
was=$st pg= sid=
[ -f pid ] && read -r pg sid _ <pid
case $pg in '' | *[!0-9]*) pg= ;; esac
ended() { [ -f status ]; }
if [ "$st" = r ] && [ -n "$pg" ]; then
  kill -TERM -- "-$pg" 2>/dev/null
  n=0
  while ! ended && [ "$n" -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
  if ! ended; then
    kill -KILL -- "-$pg" 2>/dev/null
    n=0
    while ! ended && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  fi
  job_state
elif [ "$st" = l ] && [ -n "$pg" ] && [ "$sid" != - ]; then
  # No supervisor: kill the group only while its processes are still this job's
  # (same session), never a group that reused the number.
  if ps -A -o pgid= -o sid= 2>/dev/null |
    awk -v p="$pg" -v s="$sid" '$1 == p && $2 == s { f = 1 } END { exit !f }'; then
    kill -KILL -- "-$pg" 2>/dev/null
  fi
fi
reply killed "$was" "$st"
