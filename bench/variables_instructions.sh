#!/usr/bin/env bash
# What reading the election costs a request, in CPU instructions (callgrind
# counts them; the count does not depend on what else the machine does).
# For each variant, nginx (single process, the elector inside it) runs
# under callgrind twice, serving N1 and then N2 requests on one keep-alive
# connection; (total(N2) - total(N1)) / (N2 - N1) is the cost of one
# request, start-up and the election's own work cancelling out.  Every
# variant is served at the same URI by the same one-location server (only
# the returned expression differs: bench_one in lib.sh):
#   plain   a literal;  core  $nginx_version, a core variable, so that the
#   script engine's own cost is not charged to ours;  leader
#   $leader_election_is_leader;  all  five $leader_election_* variables.
# Every run finds the Lease held by its own identity and renews it once (a
# warm-up run creates it; nothing is released; the lease is long enough
# that no further renew happens during a run), and readiness is read from
# the log, not by requests.  REPEAT rounds, the variants interleaved.
# What varies between runs is work added by the run itself, never taken
# away (the TLS handshakes' random numbers, curl's timers, which fire more
# often the longer a run lasts): so the estimate is taken from the smallest
# total of each size, (min total(N2) - min total(N1)) / (N2 - N1), and the
# spread of the rounds' own figures is printed beside it.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
n1=${N1:-200}
n2=${N2:-10200}
repeat=${REPEAT:-3}
port=${PORT:-18191}

. "$top/bench/lib.sh"

conf() {
    cat > "$work/nginx/conf/nginx.conf" <<EOC
load_module $so;
master_process off;
daemon off;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    leader_election bench {
        lock            leases default/bench;
        identity        bench-0;
        lease_duration  120s;
        renew_deadline  100s;
        retry_period    80s;
        release_on_shutdown off;
        api_server      kubeconfig $work/api/kubeconfig;
    }
$(bench_one "$1")
}
EOC
}

# total instructions of one nginx run serving $2 requests of variant $1
run() {
    local out=$work/cg.out pid
    conf "$1"
    rm -f "$out" "$work/nginx/logs/error.log"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$nginx" -p "$work/nginx" -c conf/nginx.conf 2> "$work/vg.log" &
    pid=$!
    for _ in $(seq 300); do
        grep -qs "started leading" "$work/nginx/logs/error.log" && break
        sleep 0.1
    done
    sleep 0.5
    for _ in $(seq "$2"); do
        printf 'url = "http://127.0.0.1:%s/b"\noutput = /dev/null\n' "$port"
    done | curl -s -K -
    kill -QUIT "$pid"
    wait "$pid" || true
    awk '/^summary:/ { print $2 }' "$out"
}

run plain 1 > /dev/null      # creates the Lease

printf '%-5s %-8s %14s %14s %12s\n' round variant "instr@$n1" "instr@$n2" \
    "per request"
declare -A per mina minb
for r in $(seq "$repeat"); do
    for v in plain core leader all; do
        a=$(run "$v" "$n1")
        b=$(run "$v" "$n2")
        x=$(awk -v a="$a" -v b="$b" -v n="$(( n2 - n1 ))" \
                'BEGIN { printf "%.1f", (b - a) / n }')
        per[$v]+="$x "
        [ -z "${mina[$v]:-}" ] || [ "$a" -lt "${mina[$v]}" ] && mina[$v]=$a
        [ -z "${minb[$v]:-}" ] || [ "$b" -lt "${minb[$v]}" ] && minb[$v]=$b
        printf '%-5s %-8s %14d %14d %12s\n' "$r" "$v" "$a" "$b" "$x"
    done
done

echo
printf '%-8s %14s %14s %12s %18s\n' variant "min@$n1" "min@$n2" \
    "per request" "rounds min..max"
declare -A est
for v in plain core leader all; do
    est[$v]=$(awk -v a="${mina[$v]}" -v b="${minb[$v]}" \
                  -v n="$(( n2 - n1 ))" 'BEGIN { printf "%.1f", (b - a) / n }')
    printf '%-8s %14d %14d %12s %18s\n' "$v" "${mina[$v]}" "${minb[$v]}" \
        "${est[$v]}" "$(echo "${per[$v]}" | tr ' ' '\n' | grep . | sort -n \
                        | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../')"
done

echo
for v in leader all; do
    for base in plain core; do
        awk -v v="$v" -v b="$base" -v p="${est[$base]}" -v x="${est[$v]}" \
            'BEGIN { printf "%s: %+.1f instructions per request vs %s, a throughput ratio of %.4f\n", v, x - p, b, p / x }'
    done
done
