#!/bin/bash
# Builds kube-apiserver (and prepares the source tree client-go builds from)
# from Debian bookworm's kubernetes source package with Debian's Go, once per
# machine: everything goes to a cache outside the clone, keyed by the source
# version.  t/kube/README.md says why each step is there.
#
#   t/kube/build.sh apiserver OUT   link the cached binary at OUT
#   t/kube/build.sh clientgo  OUT   build t/clientgo (cached) and link at OUT
#   t/kube/build.sh tree            print the prepared GOPATH
#
# KLE_KUBE_CACHE: the cache root (/var/cache/kle-kube).
set -euo pipefail

VERSION=1.20.2
CACHE=${KLE_KUBE_CACHE:-/var/cache/kle-kube}/$VERSION
GOPATH_DIR=$CACHE/gopath
TREE=$GOPATH_DIR/src/k8s.io/kubernetes
SRC_LIST=/etc/apt/sources.list.d/kle-kube-src.sources
HERE=$(cd "$(dirname "$0")/../.." && pwd)

log() { echo "kube build: $*" >&2; }

# A deb-src stanza for the same archive as the machine's deb one.
ensure_deb_src() {
    if apt-cache showsrc kubernetes 2>/dev/null \
           | grep -q "^Version: .*$VERSION"; then
        return
    fi
    [ "$(id -u)" = 0 ] || { log "run as root: needs a deb-src entry"; exit 1; }
    uris=$(awk '/^URIs:/ { print $2; exit }' \
               /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    cat > "$SRC_LIST" <<EOT
# added by t/kube/build.sh: apt-get source kubernetes (the test bed's
# kube-apiserver)
Types: deb-src
URIs: ${uris:-http://deb.debian.org/debian}
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
    apt-get update -qq
}

# The source tree, under a GOPATH as k8s.io/kubernetes, with Debian's
# reflect2 1.0.2 in place of the vendored 1.0.1 and the openapi generated.
prepare_tree() {
    [ -f "$CACHE/tree.done" ] && return
    ensure_deb_src
    rm -rf "$CACHE/src" "$GOPATH_DIR"
    mkdir -p "$CACHE/src" "$GOPATH_DIR/src/k8s.io"
    log "apt-get source kubernetes=$VERSION"
    # (Debian's version: 1.20.5+really1.20.2-...)
    deb_version=$(apt-cache showsrc kubernetes \
                  | awk -v v="$VERSION" '$1 == "Version:" && $2 ~ v \
                                         { print $2; exit }')
    (cd "$CACHE/src" && apt-get source -qq --download-only \
         "kubernetes=$deb_version" > /dev/null \
     && dpkg-source -x *.dsc tree > /dev/null)
    echo "$deb_version" > "$CACHE/debian-version"
    ln -s "$CACHE/src/tree" "$TREE"
    rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 \
        "$TREE/vendor/github.com/modern-go/reflect2"
    log "openapi-gen"
    (cd "$TREE" && gobuild -o "$CACHE/openapi-gen" \
         ./vendor/k8s.io/kube-openapi/cmd/openapi-gen)
    # The input packages as Makefile.generated_files finds them: every Go
    # directory outside vendor/ (staging/src named as vendor/) with an
    # openapi-gen tag, but code-generator's and sample-apiserver's.
    pkgs=$(cd "$TREE" && find -H . -not \( \( -path './_*' -o -path './.*' \
               -o -path ./vendor -o -path ./debian \) -prune \) \
               -type f -name '*.go' -print0 \
           | xargs -0 grep -l '^// *+k8s:openapi-gen=' \
           | sed -e 's|/[^/]*$||' -e 's|^\./||' -e 's|^staging/src|vendor|' \
           | grep -v -e '^vendor/k8s.io/code-generator/' \
                     -e '^vendor/k8s.io/sample-apiserver/' \
           | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
    (cd "$TREE" && gorun "$CACHE/openapi-gen" -i "$pkgs" \
         -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
         -o "$GOPATH_DIR/src" -r "$CACHE/openapi-violations.report" \
         -h hack/boilerplate/boilerplate.generatego.txt)
    test -s "$TREE/pkg/generated/openapi/zz_generated.openapi.go"
    touch "$CACHE/tree.done"
}

gorun() {
    GOPATH=$GOPATH_DIR GO111MODULE=off GOFLAGS= GOCACHE=$CACHE/gocache \
        nice -n 10 "$@"
}
gobuild() { gorun go build "$@"; }

ldflags() {
    local x d f=""
    d=$(date -u -d @"$(stat -c %Y "$TREE/go.mod")" +%Y-%m-%dT%H:%M:%SZ)
    for x in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
             k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
        f="$f -X $x.gitVersion=v$VERSION -X $x.gitMajor=${VERSION%%.*}"
        f="$f -X $x.gitMinor=$(echo "$VERSION" | cut -d. -f2)"
        f="$f -X $x.gitTreeState=archive -X $x.buildDate=$d"
    done
    echo "-s -w$f"
}

build_apiserver() {
    [ -x "$CACHE/kube-apiserver" ] && return
    prepare_tree
    log "go build kube-apiserver (about 10 minutes on 2 cores)"
    (cd "$TREE" && gobuild -ldflags "$(ldflags)" \
         -o "$CACHE/kube-apiserver.new" ./cmd/kube-apiserver)
    mv "$CACHE/kube-apiserver.new" "$CACHE/kube-apiserver"
}

# t/clientgo, keyed by its source's hash beside the tree it builds on.
build_clientgo() {
    prepare_tree
    local h dir
    h=$(cat "$HERE"/t/clientgo/*.go | sha256sum | cut -c1-16)
    dir=$TREE/kle-clientgo
    if [ ! -x "$CACHE/clientgo-$h" ]; then
        log "go build t/clientgo"
        rm -rf "$dir" && mkdir -p "$dir" && cp "$HERE"/t/clientgo/*.go "$dir/"
        (cd "$dir" && gobuild -o "$CACHE/clientgo-$h.new" .)
        mv "$CACHE/clientgo-$h.new" "$CACHE/clientgo-$h"
    fi
    echo "$CACHE/clientgo-$h"
}

link() {
    mkdir -p "$(dirname "$2")"
    ln -sfn "$1" "$2"
}

mkdir -p "$CACHE"
case "${1:-}" in
    apiserver) build_apiserver; link "$CACHE/kube-apiserver" "$2"
               "$2" --version ;;
    clientgo)  bin=$(build_clientgo); link "$bin" "$2" ;;
    tree)      prepare_tree; echo "$GOPATH_DIR" ;;
    *)         echo "usage: $0 apiserver|clientgo OUT | tree" >&2; exit 2 ;;
esac
