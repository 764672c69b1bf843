# Lists the workspace's jobs (after a sweep): a record per job, then its command's
# first 1000 bytes. Set before it: common.sh.
LC_ALL=C
umask 077
sweep
reply list "$(date +%s)"
for d in "$base"/*/; do
  id=${d%/}
  id=${id##*/}
  case $id in '' | *[!a-z0-9]*) continue ;; esac
  cd "$d" 2>/dev/null && [ -f command ] || continue
  job_state
  pg=- started=- off=0 cmd=
  [ -f pid ] && read -r pg _ started _ <pid
  [ -f read ] && read -r off _ <read
  size=$(wc -c <out 2>/dev/null) || size=0
  size=${size//[!0-9]/}
  IFS= read -r -d '' -n 1000 cmd <command
  printf 'job %s %s %s %s %s %s %s\n' "$id" "$st" "$pg" "$started" "${size:-0}" "$off" "${#cmd}"
  printf '%s' "$cmd"
done
exit 0
