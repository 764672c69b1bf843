# Ends every job of the workspace, for its removal: the running (and lost) ones are
# ended as kill.sh ends one, all at once; then every job's directory is removed, except
# a job still running (a kill that did not take), and the workspace's directory once
# empty. A record per job (its state before and after, whether its directory was
# removed), then its command's first 1000 bytes. Set before it: common.sh.
LC_ALL=C
umask 077
reply ended
[ -d "$base" ] || exit 0
# Indexed arrays only: macOS's bash 3.2 has no associative ones.
ids=() befores=()
for d in "$base"/*/; do
  id=${d%/}
  id=${id##*/}
  case $id in '' | *[!a-z0-9]*) continue ;; esac
  cd "$d" 2>/dev/null && [ -f command ] || continue
  job_state
  ids+=("$id")
  befores+=("$st")
  case $st in r | l) end_job >/dev/null 2>&1 & ;; esac
done
wait
for i in "${!ids[@]}"; do
  id=${ids[$i]}
  cd "$base/$id" 2>/dev/null || continue
  job_state
  cmd=
  IFS= read -r -d '' -n 1000 cmd <command
  removed=0
  if [ "$st" != r ]; then
    cd "$base" && rm -rf -- "$id" && removed=1
  fi
  printf 'job %s %s %s %s %s\n' "$id" "${befores[$i]}" "$st" "$removed" "${#cmd}"
  printf '%s' "$cmd"
done
cd / && rmdir -- "$base" 2>/dev/null
exit 0
