#!/bin/bash
# run.sh DIR TARGET SECONDS: one libFuzzer run of DIR/TARGET, seeded from
# t/fuzz/corpus/TARGET, new inputs kept in DIR/corpus/TARGET.  One job on
# one core.  Appends "target executions seconds corpus crashes" to
# DIR/stats.tsv (every run) and DIR/last-run.txt (this make fuzz).
set -u
dir=$1 t=$2 secs=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/corpus/$t" "$dir/artifacts" "$here/corpus/$t"
dict=()
[ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
log="$dir/$t.log"

# -max_len: the big seeds (a watch line at its cap) are replayed whole by
# make fuzz-replay; mutating 256 KiB inputs would only slow the search
"$dir/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
    -max_len="${FUZZ_MAX_LEN:-16384}" \
    -rss_limit_mb=2048 "${dict[@]}" -artifact_prefix="$dir/artifacts/$t-" \
    "$dir/corpus/$t" "$here/corpus/$t" > "$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
size=$(ls "$dir/corpus/$t" | wc -l)
crashes=$(grep -c '^==[0-9]*==ERROR\|invariant broken\|^SUMMARY: ' "$log")
line=$(printf '%s\t%s\t%s\t%s\t%s' "$t" "${execs:-0}" "${took:-$secs}" \
       "$size" "$crashes")
echo "$line" >> "$dir/stats.tsv"
echo "$line" >> "$dir/last-run.txt"
printf 'fuzz %-12s %12s execs %6ss corpus %6s crashes %s\n' "$t" \
    "${execs:-0}" "${took:-$secs}" "$size" "$crashes"
if [ $rc -ne 0 ]; then
    echo "fuzz $t: libFuzzer exited $rc; see $log and $dir/artifacts/"
    grep -m5 -A15 '^==[0-9]*==ERROR\|invariant broken' "$log"
    exit 1
fi
