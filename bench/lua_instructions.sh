#!/usr/bin/env bash
# What asking the election from Lua costs a request, in CPU instructions
# (callgrind), the method of variables_instructions.sh: nginx (single
# process, the elector inside it, leader) serves N1 and then N2 requests on
# one keep-alive connection under callgrind; (min total(N2) - min
# total(N1)) / (N2 - N1) is the cost of one request.  Every variant is a
# content_by_lua_block of the same location /b that says one string;
# only the expression said differs:
#   lua     "1", a literal: lua-nginx-module's own cost
#   var     ngx.var.leader_election_is_leader (the variable, through
#           lua-resty-core's ngx.var)
#   ffi     le.is_leader() (resty.leader_election: one FFI call)
#   token   le.fencing_token() (said as "1": tostring() of a number
#           would add the cost of formatting it)
#   state   le.state().route (one snapshot, a table of seven fields)
# resty.leader_election is required once, in init_by_lua, for every
# variant alike.  Needs Debian's libnginx-mod-http-lua and lua-resty-core
# (make deps).  Not part of make test; bench/README.md has the figures.
#
#   bash bench/lua_instructions.sh        [N1=200 N2=5200 REPEAT=2 PORT=]

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
n1=${N1:-200}
n2=${N2:-5200}
repeat=${REPEAT:-2}
port=${PORT:-18192}
mods=${LUA_MODULES_DIR:-/usr/lib/nginx/modules}
variants=(lua var ffi token state)

. "$top/bench/lib.sh"

declare -A say=(
    [lua]='"1"'
    [var]='ngx.var.leader_election_is_leader'
    [ffi]='LE.is_leader() and "1" or "0"'
    [token]='LE.fencing_token() and "1" or "0"'
    [state]='LE.state().route'
)

conf() {
    cat > "$work/nginx/conf/nginx.conf" <<EOC
load_module $so;
load_module $mods/ndk_http_module.so;
load_module $mods/ngx_http_lua_module.so;
master_process off;
daemon off;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    lua_package_path "$top/lua/?.lua;;";
    init_by_lua_block { LE = require "resty.leader_election" }
    leader_election bench {
        lock            leases default/bench;
        identity        bench-0;
        lease_duration  120s;
        renew_deadline  100s;
        retry_period    80s;
        release_on_shutdown off;
        api_server      kubeconfig $work/api/kubeconfig;
    }
    server {
        listen 127.0.0.1:$port;
        location = /b { content_by_lua_block { ngx.say(${say[$1]}) } }
    }
}
EOC
}

# total instructions of one nginx run serving $2 requests of variant $1;
# checks the answer of the last one
run() {
    local out=$work/cg.out pid body
    conf "$1"
    rm -f "$out" "$work/nginx/logs/error.log"
    bench_fresh_lock
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$nginx" -p "$work/nginx" -c conf/nginx.conf 2> "$work/vg.log" &
    pid=$!
    bench_wait_leading
    sleep 0.5
    for _ in $(seq "$(( $2 - 1 ))"); do
        printf 'url = "http://127.0.0.1:%s/b"\noutput = /dev/null\n' "$port"
    done | curl -s -K -
    body=$(curl -s "http://127.0.0.1:$port/b")
    kill -QUIT "$pid"
    wait "$pid" || true
    case "$1:$body" in
        lua:1|var:1|ffi:1|token:1|state:self) ;;
        *) echo "variant $1 answered \"$body\": not leading?" >&2
           cat "$work/nginx/logs/error.log" >&2; exit 1 ;;
    esac
    awk '/^summary:/ { print $2 }' "$out"
}


bench_estimate "${variants[@]}"
for v in var ffi token state; do
    awk -v v="$v" -v p="${est[lua]}" -v x="${est[$v]}" \
        'BEGIN { printf "%s: %+.1f instructions per request vs lua\n", v, x - p }'
done
