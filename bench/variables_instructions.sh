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
#   script engine's own cost is not charged to ours;  then each of the
#   module's variables (leader = $leader_election_is_leader, leader_named
#   = $leader_election_is_leader_bench, ...);  all  the five variables of
#   the status at once;  map  $backend through the top README's map on
#   $leader_election_route.
# Every run creates the Lease (bench_fresh_lock in lib.sh; the lease is
# long enough that no renew happens during a run), and readiness is read from
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
    bench_fresh_lock
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$nginx" -p "$work/nginx" -c conf/nginx.conf 2> "$work/vg.log" &
    pid=$!
    bench_wait_leading
    sleep 0.5
    for _ in $(seq "$2"); do
        printf 'url = "http://127.0.0.1:%s/b"\noutput = /dev/null\n' "$port"
    done | curl -s -K -
    kill -QUIT "$pid"
    wait "$pid" || true
    awk '/^summary:/ { print $2 }' "$out"
}


variants=(plain core leader leader_named holder holder_address identity
          transitions route fencing_token all map)
bench_estimate "${variants[@]}"
for v in "${variants[@]:2}"; do
    awk -v v="$v" -v p="${est[plain]}" -v c="${est[core]}" -v x="${est[$v]}" \
        'BEGIN { printf "%-15s %+8.1f instructions per request vs plain, %+8.1f vs core (throughput ratio vs core %.4f)\n", v, x - p, x - c, c / x }'
done
