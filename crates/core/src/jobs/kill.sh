# Ends a job (see end_job in common.sh). Set before it (with common.sh): id.
LC_ALL=C
cd "$base/$id" 2>/dev/null && [ -f command ] || { reply gone; exit 0; }
end_job
reply killed "$was" "$st"
