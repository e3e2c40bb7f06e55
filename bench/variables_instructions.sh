#!/usr/bin/env bash
# What reading the election costs a request, in CPU instructions (callgrind
# counts them; the count does not depend on what else the machine does).
# For each location, nginx (single process, the elector inside it) runs
# under callgrind twice, serving N1 and then N2 requests on one keep-alive
# connection (/plain: a literal; /core: $nginx_version, a core variable,
# so that the script engine's own cost is not charged to ours);
# (total(N2) - total(N1)) / (N2 - N1) is the cost of one
# request, start-up and the election's own work cancelling out: every run
# finds the Lease held by its own identity and renews it once (a warm-up
# run creates it; nothing is released; the lease is long enough that no
# further renew happens during a run), and readiness is read from the log,
# not by requests.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
n1=${N1:-200}
n2=${N2:-1200}
port=${PORT:-18191}

. "$top/bench/lib.sh"

cat > "$work/nginx/conf/nginx.conf" <<EOF
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
$(bench_server)
}
EOF

# total instructions of one nginx run serving $2 requests to /$1
run() {
    local out=$work/cg.out pid urls
    rm -f "$out" "$work/nginx/logs/error.log"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$nginx" -p "$work/nginx" -c conf/nginx.conf 2> "$work/vg.log" &
    pid=$!
    for _ in $(seq 300); do
        grep -qs "started leading" "$work/nginx/logs/error.log" && break
        sleep 0.1
    done
    sleep 0.5
    urls=$(for _ in $(seq "$2"); do
               printf 'url = "http://127.0.0.1:%s/%s"\noutput = /dev/null\n' \
                   "$port" "$1"
           done)
    echo "$urls" | curl -s -K -
    kill -QUIT "$pid"
    wait "$pid" || true
    awk '/^summary:/ { print $2 }' "$out"
}

run plain 1 > /dev/null      # creates the Lease

printf '%-8s %14s %14s %12s\n' location "instr@$n1" "instr@$n2" "per request"
declare -A per
for loc in plain core leader all; do
    a=$(run "$loc" "$n1")
    b=$(run "$loc" "$n2")
    per[$loc]=$(( (b - a) / (n2 - n1) ))
    printf '/%-7s %14d %14d %12d\n' "$loc" "$a" "$b" "${per[$loc]}"
done

echo
for loc in leader all; do
    for base in plain core; do
        printf '/%s: %+d instructions per request vs /%s, a throughput ratio of %.4f\n' \
            "$loc" $(( per[$loc] - per[$base] )) "$base" \
            "$(awk -v p="${per[$base]}" -v x="${per[$loc]}" \
                'BEGIN { print p / x }')"
    done
done
