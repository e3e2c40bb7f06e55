#!/usr/bin/env bash
# make demo: the emulated API server and three nginx replicas on loopback.
# Shows who leads, kills the leader (kill -9, as a crashed pod), shows the
# handoff, then stops everything it started.

set -euo pipefail
[ -n "${DEMO_TRACE:-}" ] && set -x

top=$(cd "$(dirname "$0")/.." && pwd)
so=$top/build/modules/ngx_http_leader_election_module.so
nginx=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
work=$(mktemp -d /tmp/kle-demo.XXXXXX)
ports=(18081 18082 18083)
emu_pid=

# kill -9 an instance: its master and the master's workers
crash() {
    local pid
    pid=$(cat "$work/nginx-$1/logs/nginx.pid" 2>/dev/null || true)
    [ -n "$pid" ] || return 0
    # master first, in the same call: a live master respawns its workers
    kill -KILL "$pid" $(pgrep -P "$pid") 2>/dev/null || true
    rm -f "$work/nginx-$1/logs/nginx.pid"
}

cleanup() {
    for i in 1 2 3; do
        pid=$(cat "$work/nginx-$i/logs/nginx.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
    done
    sleep 2
    for i in 1 2 3; do crash "$i"; done
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting the Kubernetes API emulator"
python3 "$top/t/emulator/kube_emulator.py" --dir "$work/api" \
    > "$work/emulator.out" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/api/port" ] && break; sleep 0.1; done
echo "   https://127.0.0.1:$(cat "$work/api/port")  (kubeconfig: $work/api/kubeconfig)"

echo "== starting three nginx replicas (lease 4s, renew deadline 3s, retry 1s)"
for i in 1 2 3; do
    d=$work/nginx-$i
    mkdir -p "$d/conf" "$d/logs"
    cat > "$d/conf/nginx.conf" <<EOF
load_module $so;
worker_processes 2;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    leader_election demo {
        lock            leases default/nginx-demo;
        identity        nginx-$i;
        address         127.0.0.1:${ports[$((i-1))]};
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    1s;
        api_server      kubeconfig $work/api/kubeconfig;
    }
    server {
        listen 127.0.0.1:${ports[$((i-1))]};
        location = /leader { leader_election_status; }
        location / { return 200 "\$leader_election_is_leader\n"; }
    }
}
EOF
    "$nginx" -p "$d" -c conf/nginx.conf
    echo "   nginx-$i on 127.0.0.1:${ports[$((i-1))]}"
done

show() {
    local line="" i body
    for i in 1 2 3; do
        body=$(curl -s --max-time 1 "http://127.0.0.1:${ports[$((i-1))]}/leader" \
               || true)
        if [ -z "$body" ]; then
            line+=$(printf '  nginx-%s: %-9s' "$i" "down")
            continue
        fi
        line+=$(printf '  nginx-%s: %-9s' "$i" "$(python3 -c '
import json, sys
s = json.loads(sys.argv[1])
print("LEADER" if s["is_leader"] else "follower")' "$body")")
    done
    printf '%5.1fs %s   lease: %s\n' \
        "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')" \
        "$line" "$(lease)"
}

lease() {
    python3 - "$work/api/port" <<'EOF'
import json, ssl, sys, urllib.request
port = open(sys.argv[1]).read().strip()
ctx = ssl._create_unverified_context()
url = ('https://127.0.0.1:%s/_emulator/objects/leases/default/nginx-demo'
       % port)
try:
    spec = json.load(urllib.request.urlopen(url, context=ctx))['spec']
    print('holder=%s transitions=%s' % (spec.get('holderIdentity') or '-',
                                        spec.get('leaseTransitions', 0)))
except Exception:
    print('(none yet)')
EOF
}

leader() {
    for i in 1 2 3; do
        if [ "$(curl -s --max-time 1 \
                "http://127.0.0.1:${ports[$((i-1))]}/")" = 1 ]; then
            echo "$i"; return
        fi
    done
}

t0=$(date +%s.%N)
echo "== who leads (each replica's own view, and the Lease on the server)"
for _ in 1 2 3 4 5 6; do show; sleep 1; done

l=$(leader)
if [ -z "$l" ]; then
    echo "no leader elected: see $work/nginx-*/logs/error.log" >&2
    exit 1
fi

echo "== kill -9 the leader, nginx-$l (master and workers), as a crashed pod"
crash "$l"
for _ in $(seq 10); do show; sleep 1; done

n=$(leader)
if [ -z "$n" ] || [ "$n" = "$l" ]; then
    echo "no handoff happened" >&2
    exit 1
fi
echo "== nginx-$n took over after the lease lapsed"

echo "== nginx -s quit on nginx-$n: it releases the Lease, the last one takes over at once"
"$nginx" -p "$work/nginx-$n" -c conf/nginx.conf -s quit 2>/dev/null
for _ in 1 2 3 4; do show; sleep 1; done

echo "== stopping everything"
