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

# What each measured location returns.
declare -A bench_expr=(
    [plain]='1'
    [core]='$nginx_version'
    [leader]='$leader_election_is_leader'
    [all]='$leader_election_is_leader $leader_election_holder $leader_election_holder_address $leader_election_identity $leader_election_transitions'
)

# A server with one location, /b, answering what location $1 answers:
# every variant is then served at the same URI by the same location tree,
# so that only the returned expression differs.
bench_one() {
    printf '%s\n' \
        "    server {" \
        "        listen 127.0.0.1:$port;" \
        "        location = /b { return 200 \"${bench_expr[$1]}\\n\"; }" \
        "    }"
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
