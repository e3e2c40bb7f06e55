# Shared by the benchmarks: the emulator, the locations measured, cleanup.
# Sourced once $top and $port are set; leaves $work/nginx/{conf,logs} ready.

so=$top/build/modules/ngx_http_leader_election_module.so
nginx=${NGINX:-/usr/sbin/nginx}
work=$(mktemp -d /tmp/kle-bench.XXXXXX)
emu_pid=

bench_cleanup() {
    [ -s "$work/nginx/logs/nginx.pid" ] \
        && kill -QUIT "$(cat "$work/nginx/logs/nginx.pid")" 2>/dev/null || true
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
    sleep 1
    rm -rf "$work"
}
trap bench_cleanup EXIT

python3 "$top/t/emulator/kube_emulator.py" --dir "$work/api" > /dev/null 2>&1 &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/api/port" ] && break; sleep 0.1; done
mkdir -p "$work/nginx/conf" "$work/nginx/logs"

# Each nginx run is a new instance of identity bench-0: the module waits out
# a record another instance of its identity wrote (docs/design.md), so the
# Lease is deleted before each run, which then creates it (one POST, the
# same in every run).
bench_fresh_lock() {
    curl -sk -o /dev/null -X DELETE \
        "https://127.0.0.1:$(cat "$work/api/port")/_emulator/objects/leases/default/bench"
}

# Waits for the run's nginx to lead (its log); fails the benchmark if not.
bench_wait_leading() {
    for _ in $(seq 300); do
        grep -qs "started leading" "$work/nginx/logs/error.log" && return 0
        sleep 0.1
    done
    echo "nginx did not lead in 30 s:" >&2
    cat "$work/nginx/logs/error.log" >&2
    exit 1
}

# What each measured location returns: a literal, a core variable (so
# that the script engine's own cost is not charged to ours), each of the
# module's variables, the five of the status at once, and the routing map
# of the top README (its $backend, through the map).
declare -A bench_expr=(
    [plain]='1'
    [core]='$nginx_version'
    [leader]='$leader_election_is_leader'
    [leader_named]='$leader_election_is_leader_bench'
    [holder]='$leader_election_holder'
    [holder_address]='$leader_election_holder_address'
    [identity]='$leader_election_identity'
    [transitions]='$leader_election_transitions'
    [route]='$leader_election_route'
    [fencing_token]='$leader_election_fencing_token'
    [all]='$leader_election_is_leader $leader_election_holder $leader_election_holder_address $leader_election_identity $leader_election_transitions'
    [map]='$backend'
)

# A server with one location, /b, answering what location $1 answers:
# every variant is then served at the same URI by the same location tree,
# so that only the returned expression differs.  The map (the README's) is
# in every variant's http{}, used by "map" only.
bench_one() {
    printf '%s\n' \
        '    map $leader_election_route $backend {' \
        '        self     127.0.0.1:9000;' \
        '        ""       "";' \
        '        default  $leader_election_route;' \
        '    }' \
        "    server {" \
        "        listen 127.0.0.1:$port;" \
        "        location = /b { return 200 \"${bench_expr[$1]}\\n\"; }" \
        "    }"
}

# Instructions per request of each variant given, by callgrind: the caller
# defines run VARIANT REQUESTS (prints the total instructions of one nginx
# run serving that many requests).  REPEAT rounds of N1 and N2 requests,
# the variants interleaved; the estimate is (min total(N2) - min
# total(N1)) / (N2 - N1): what varies between runs is work a run adds
# (TLS handshakes' random numbers, curl's timers), never takes away.
# Prints every run and the estimates; leaves them in est[VARIANT].
declare -A est
bench_estimate() {
    local r v a b x
    local -A per mina minb
    printf '%-5s %-15s %14s %14s %12s\n' round variant "instr@$n1" \
        "instr@$n2" "per request"
    for r in $(seq "$repeat"); do
        for v in "$@"; do
            a=$(run "$v" "$n1")
            b=$(run "$v" "$n2")
            x=$(awk -v a="$a" -v b="$b" -v n="$(( n2 - n1 ))" \
                    'BEGIN { printf "%.1f", (b - a) / n }')
            per[$v]+="$x "
            [ -z "${mina[$v]:-}" ] || [ "$a" -lt "${mina[$v]}" ] && mina[$v]=$a
            [ -z "${minb[$v]:-}" ] || [ "$b" -lt "${minb[$v]}" ] && minb[$v]=$b
            printf '%-5s %-15s %14d %14d %12s\n' "$r" "$v" "$a" "$b" "$x"
        done
    done
    echo
    printf '%-15s %14s %14s %12s %18s\n' variant "min@$n1" "min@$n2" \
        "per request" "rounds min..max"
    for v in "$@"; do
        est[$v]=$(awk -v a="${mina[$v]}" -v b="${minb[$v]}" \
                      -v n="$(( n2 - n1 ))" \
                      'BEGIN { printf "%.1f", (b - a) / n }')
        printf '%-15s %14d %14d %12s %18s\n' "$v" "${mina[$v]}" \
            "${minb[$v]}" "${est[$v]}" \
            "$(echo "${per[$v]}" | tr ' ' '\n' | grep . | sort -n \
               | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../')"
    done
    echo
}

# The server block: the same four locations in every benchmark.
bench_server() {
    printf '%s\n' \
        "    server {" \
        "        listen 127.0.0.1:$port;" \
        '        location = /plain  { return 200 "1\n"; }' \
        '        location = /core   { return 200 "$nginx_version\n"; }' \
        '        location = /leader { return 200 "$leader_election_is_leader\n"; }' \
        '        location = /all    {' \
        '            return 200 "$leader_election_is_leader $leader_election_holder $leader_election_holder_address $leader_election_identity $leader_election_transitions\n";' \
        '        }' \
        "    }"
}
