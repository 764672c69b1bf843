# The supervisor: runs in the job directory, in its own session ($1 = s) or process
# group ($1 = m); $2 is 1 when it holds the lock on fd 8. Starts the job in a process
# group of its own, tells the launcher "ready <pgid>" on stdout, then waits for it and
# records how it ended.
mode=$1 locked=$2
set -m
# Bash reports a job killed by a signal with a notice on stderr and an exit code with
# none: a private pipe catches the notices, which is how `exit 143` is told from
# SIGTERM.
exec 5<> <(:) 2>&5
# --norc: bash under sshd reads ~/.bashrc even when not interactive; a foreground
# command's bash does not, nor does a job's.
bash --norc --noprofile -c '. ./run' bash </dev/null >>out 2>&1 5>&- 8>&- &
c=$!
sid=$$
if [ "$mode" != s ]; then
  sid=$(ps -o sid= -p $$ 2>/dev/null) && sid=${sid//[!0-9]/}
  sid=${sid:--}
fi
printf '%s %s %s %s\n' "$c" "$sid" "$(date +%s)" $$ >pid.new && mv -f pid.new pid
# Without the lock, readers tell this supervisor from a process that reused its PID by
# its start time.
if [ -z "$locked" ] && ident=$(ps -o lstart= -p $$ 2>/dev/null); then
  set -- $ident
  printf '%s\n' "$*" >ident
fi
echo "ready $c"
exec >/dev/null
LC_ALL=C
wait "$c"
s=$?
# What the job left running in its group ends with it.
kill -KILL -- -"$c" 2>/dev/null
n=
while read -t 0 -u 5 && IFS= read -r -t 1 -u 5 l; do n="$n $l"; done
k=x v=$s
if [ "$s" -gt 128 ] && [ -n "$n" ]; then
  case $n in *' Exit '*) ;; *) k=s v=$((s - 128)) ;; esac
fi
printf '%s%d\n' "$k" "$v" >status.new && mv -f status.new status
