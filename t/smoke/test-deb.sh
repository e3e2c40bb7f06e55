#!/usr/bin/env bash
# Installs the packages built by `make deb` into this machine's nginx,
# checks what dpkg put where, runs the smoke test (t/smoke/smoke.py) with
# the distribution's /usr/sbin/nginx loading the module through the
# package's modules-enabled snippet, then purges the packages and checks
# that nothing is left.  Needs root; starts no nginx service.  Refuses to
# run when a package is already installed (it would remove it at the end).
#
#   t/smoke/test-deb.sh build/deb/libnginx-mod-http-leader-election_V_A.deb ...
#
# With libnginx-mod-stream-leader-election among them, also its Depends,
# files and snippet (priority 70, after libnginx-mod-stream's and the http
# module's 50), and the smoke test checks the variables in stream{} too.
# With lua-resty-leader-election, also its Depends and file, and that
# Debian's lua module finds it on its default path: nginx -t with an
# init_by_lua that requires it.

set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
pkg=libnginx-mod-http-leader-election
so=/usr/lib/nginx/modules/ngx_http_leader_election_module.so
avail=/usr/share/nginx/modules-available/mod-http-leader-election.conf
enabled=/etc/nginx/modules-enabled/50-mod-http-leader-election.conf
spkg=libnginx-mod-stream-leader-election
sso=/usr/lib/nginx/modules/ngx_stream_leader_election_module.so
savail=/usr/share/nginx/modules-available/mod-stream-leader-election.conf
senabled=/etc/nginx/modules-enabled/70-mod-stream-leader-election.conf
lpkg=lua-resty-leader-election
lua=/usr/share/lua/5.1/resty/leader_election.lua

n=0
ok() {  # ok DESCRIPTION COMMAND...: one TAP line; stops at a failure
    local what=$1
    shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        exit 1
    fi
}

[ "$(id -u)" = 0 ] || { echo "test-deb installs a package: run it as root" >&2; exit 1; }
debs=()
pkgs=()
for f; do
    [ -f "$f" ] || { echo "no package $f: make deb" >&2; exit 1; }
    debs+=("$(readlink -f "$f")")
    pkgs+=("$(dpkg-deb --field "$f" Package)")
done
[[ " ${pkgs[*]} " = *" $pkg "* ]] || { echo "no $pkg among: $*" >&2; exit 1; }

# Engineers sharing a machine: one install/purge cycle at a time.
exec 9> /run/lock/$pkg.test-deb.lock
flock -w 300 9 || { echo "another test-deb holds /run/lock/$pkg.test-deb.lock" >&2; exit 1; }

installed() {
    dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -q 'ok installed'
}
gone() {
    ! dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -qv '^unknown ok not-installed$'
}
for p in "${pkgs[@]}"; do
    if installed "$p"; then
        echo "$p is already installed; test-deb would remove it." >&2
        echo "Remove it first: dpkg --purge ${pkgs[*]}" >&2
        exit 1
    fi
done

# dpkg takes its lock or fails at once: wait while apt or dpkg runs.
dpkg_wait() {
    local i out
    for i in $(seq 120); do
        if out=$(dpkg "$@" 2>&1); then
            return 0
        fi
        if ! grep -q 'lock' <<< "$out"; then
            echo "$out" >&2
            return 1
        fi
        sleep 1
    done
    echo "$out" >&2
    return 1
}

purge() {
    dpkg_wait --purge "${pkgs[@]}" > /dev/null
}
trap 'purge || true' EXIT

for f in "${debs[@]}"; do
    echo "# $(dpkg-deb --field "$f" Package Version | paste -sd ' ')"
done
dpkg_wait -i "${debs[@]}" > /dev/null
for p in "${pkgs[@]}"; do
    ok "dpkg -i installed $p" installed "$p"
done

# The ABI the machine's nginx provides is the one the package depends on.
abi=$(dpkg-query -W -f='${Provides}' nginx | grep -o 'nginx-abi-[^ ,]*')
depends=$(dpkg-query -W -f='${Depends}' $pkg)
echo "# Depends: $depends"
ok "Depends on the installed nginx's ABI ($abi)" \
    grep -qE "(^|, )$abi(,|$)" <<< "$depends"
for lib in libcurl4 libjson-c5 libyaml-0-2 libc6; do
    ok "Depends on $lib" grep -qE "(^|, )$lib( |,|$)" <<< "$depends"
done
ok "the module is $so" test -f $so
ok "the snippet $avail loads it" \
    grep -qx "load_module modules/ngx_http_leader_election_module.so;" $avail
ok "postinst linked it from $enabled" \
    test "$(readlink $enabled)" = $avail
stream=
if [[ " ${pkgs[*]} " = *" $spkg "* ]]; then
    stream=--stream
    version=$(dpkg-query -W -f='${Version}' $pkg)
    sdepends=$(dpkg-query -W -f='${Depends}' $spkg)
    echo "# $spkg Depends: $sdepends"
    ok "$spkg Depends on the nginx ABI ($abi)" \
        grep -qE "(^|, )$abi(,|$)" <<< "$sdepends"
    ok "$spkg Depends on libnginx-mod-stream" \
        grep -qE "(^|, )libnginx-mod-stream( |,|$)" <<< "$sdepends"
    ok "$spkg Depends on $pkg (= $version)" \
        grep -qF "$pkg (= $version)" <<< "$sdepends"
    ok "the stream module is $sso" test -f $sso
    ok "the snippet $savail loads it" \
        grep -qx "load_module modules/ngx_stream_leader_election_module.so;" $savail
    ok "postinst linked it from $senabled" \
        test "$(readlink $senabled)" = $savail
fi
ok "the distribution's nginx -t passes with the module enabled" \
    /usr/sbin/nginx -q -t
if [[ " ${pkgs[*]} " = *" $lpkg "* ]]; then
    version=$(dpkg-query -W -f='${Version}' $pkg)
    ldepends=$(dpkg-query -W -f='${Depends}' $lpkg)
    echo "# $lpkg Depends: $ldepends"
    ok "$lpkg Depends on $pkg (>= $version)" \
        grep -qF "$pkg (>= $version)" <<< "$ldepends"
    ok "$lpkg Depends on libnginx-mod-http-lua" \
        grep -qE "(^|, )libnginx-mod-http-lua( |,|$)" <<< "$ldepends"
    ok "the Lua module is $lua" test -f $lua
    # modules-enabled loads ndk and lua (their packages) and ours; no
    # lua_package_path: Debian's default path must find the file
    luaconf=$(mktemp /tmp/kle-test-deb-lua.XXXXXX.conf)
    cat > "$luaconf" << 'EOC'
include /etc/nginx/modules-enabled/*.conf;
events {}
http {
    init_by_lua_block {
        local le = require "resty.leader_election"
        assert(type(le.state) == "function")
        assert(package.searchpath("resty.leader_election", package.path)
               == "/usr/share/lua/5.1/resty/leader_election.lua")
    }
}
EOC
    ok "nginx -t: Debian's lua module requires resty.leader_election" \
        /usr/sbin/nginx -q -t -c "$luaconf"
    rm -f "$luaconf"
fi

# The package's module, loaded by the snippet, in the distribution's nginx.
smoke() {
    python3 "$here/smoke.py" --nginx /usr/sbin/nginx \
        --include '/etc/nginx/modules-enabled/*.conf' \
        --dir "${SMOKE_DIR:-build/smoke}" $stream 2>&1 | sed 's/^/    /'
}
ok "smoke test: the distribution's nginx, through modules-enabled" smoke

purge
trap - EXIT
for p in "${pkgs[@]}"; do
    ok "dpkg --purge removed $p" gone "$p"
done
absent() {
    local f
    for f; do
        if [ -e "$f" ] || [ -L "$f" ]; then
            echo "# left behind: $f"
            return 1
        fi
    done
}
ok "no module, snippet or link left" absent $so $avail $enabled $enabled.removed
ok "no Lua module left" absent $lua
if [ -n "$stream" ]; then
    ok "no stream module, snippet or link left" \
        absent $sso $savail $senabled $senabled.removed
fi
ok "the distribution's nginx -t still passes" /usr/sbin/nginx -q -t
echo "1..$n"
