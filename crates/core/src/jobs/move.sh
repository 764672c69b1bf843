# Moves the workspace's jobs to the key of its new directory, after a rename. A job's
# directory keeps its files, and a running job goes on: its supervisor only uses paths
# relative to its directory (which it is in). Set before it (with common.sh): to (the
# new key).
LC_ALL=C
umask 077
n=0
if [ -d "$base" ]; then
  dest=$root/$to
  mkdir -p "$dest" || fail "cannot create the jobs directory $dest: check that $root is yours and writable"
  for d in "$base"/*/; do
    id=${d%/}
    id=${id##*/}
    case $id in '' | *[!a-z0-9]*) continue ;; esac
    # Ids are random: a taken one is left where it is rather than overwritten.
    [ -e "$dest/$id" ] && continue
    mv -- "$base/$id" "$dest/$id" && n=$((n + 1))
  done
  rmdir -- "$base" 2>/dev/null
fi
reply moved "$n"
exit 0
