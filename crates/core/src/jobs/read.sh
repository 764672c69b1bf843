# Returns the job's output since the last read. Set before it (with common.sh): id,
# polls (wait up to this many tenths of a second for new output or the end), head and
# tail (byte caps: more than head+tail new bytes returns the first head and the last
# tail; tail 0 returns at most head bytes and leaves the rest for the next read).
LC_ALL=C
umask 077
cd "$base/$id" 2>/dev/null && [ -f command ] || { reply gone; exit 0; }
off=0 cut=0
[ -f read ] && read -r off cut <read
case $off in '' | *[!0-9]*) off=0 ;; esac
case $cut in '' | *[!0-9]*) cut=0 ;; esac
n=0
while :; do
  job_state
  size=$(wc -c <out 2>/dev/null) || size=0
  size=${size//[!0-9]/}
  size=${size:-0}
  [ "$st" != r ] || [ "$size" -gt "$off" ] || [ "$n" -ge "$polls" ] && break
  sleep 0.1
  n=$((n + 1))
done
avail=$((size - off))
[ "$avail" -lt 0 ] && avail=0
if [ "$tail" -eq 0 ]; then
  hl=$avail tl=0
  [ "$hl" -gt "$head" ] && hl=$head
  new=$((off + hl))
elif [ "$avail" -le $((head + tail)) ]; then
  hl=$avail tl=0 new=$size
else
  hl=$head tl=$tail new=$size cut=$((cut + avail - head - tail))
fi
pg=-
[ -f pid ] && read -r pg _ <pid
reply read "$st" "$pg" "$off" "$size" "$hl" "$tl" "$PWD/out"
[ "$hl" -gt 0 ] && tail -c +$((off + 1)) out | head -c "$hl"
[ "$tl" -gt 0 ] && tail -c +$((size - tl + 1)) out | head -c "$tl"
if [ "$new" != "$off" ]; then
  printf '%s %s\n' "$new" "$cut" >read.new && mv -f read.new read
fi
# Ended and read to the end, nothing cut: the next sweep removes it.
case $st in x* | s*) [ "$new" -ge "$size" ] && [ "$cut" = 0 ] && : >done ;; esac
exit 0
