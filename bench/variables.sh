#!/usr/bin/env bash
# What reading the election costs a request: one nginx, one worker, two
# locations answered side by side in the same run, rounds interleaved
# (these machines are noisy):
#   /plain   return 200 "1\n";                        (plain nginx)
#   /core    return 200 "$nginx_version\n";           (a core variable)
#   /leader  return 200 "$leader_election_is_leader\n";
#   /all     return 200 "<all five variables>\n";
# wrk drives each for DURATION seconds per round; the script prints the
# requests/s of every round, the medians and the ratios to /plain.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-5}
duration=${DURATION:-5}
port=${PORT:-18190}
command -v wrk > /dev/null || { echo "wrk is not installed" >&2; exit 1; }

. "$top/bench/lib.sh"

cat > "$work/nginx/conf/nginx.conf" <<EOF
load_module $so;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    leader_election bench {
        lock        leases default/bench;
        identity    bench-0;
        address     127.0.0.1:$port;
        api_server  kubeconfig $work/api/kubeconfig;
    }
$(bench_server)
}
EOF
"$nginx" -p "$work/nginx" -c conf/nginx.conf

for _ in $(seq 50); do
    [ "$(curl -s "http://127.0.0.1:$port/leader")" = 1 ] && break
    sleep 0.2
done
[ "$(curl -s "http://127.0.0.1:$port/leader")" = 1 ] \
    || { echo "the instance did not become leader" >&2; exit 1; }
echo "/all answers: $(curl -s "http://127.0.0.1:$port/all")"

declare -A results
for r in $(seq "$rounds"); do
    for loc in plain core leader all; do
        rps=$(wrk -t1 -c32 -d"${duration}s" "http://127.0.0.1:$port/$loc" \
              | awk '/Requests\/sec/ { print $2 }')
        results[$loc]+="$rps "
        printf 'round %d  /%-7s %10.0f req/s\n' "$r" "$loc" "$rps"
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 }
    END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

p=$(echo "${results[plain]}" | median)
echo
c=$(echo "${results[core]}" | median)
printf '%-8s %12s %10s %10s\n' location "median rps" "vs /plain" "vs /core"
for loc in plain core leader all; do
    m=$(echo "${results[$loc]}" | median)
    printf '/%-7s %12.0f %10.3f %10.3f\n' "$loc" "$m" \
        "$(awk -v a="$m" -v b="$p" 'BEGIN { print a / b }')" \
        "$(awk -v a="$m" -v b="$c" 'BEGIN { print a / b }')"
done
