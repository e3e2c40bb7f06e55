#!/usr/bin/env bash
# Builds libnginx-mod-http-leader-election_<version>_<arch>.deb,
# libnginx-mod-stream-leader-election_<version>_<arch>.deb and
# lua-resty-leader-election_<version>_all.deb into OUT
# (default build/deb): stages the sources the module needs with
# packaging/debian/ as debian/, writes debian/changelog for the version
# below, and runs dpkg-buildpackage (binary only, unsigned).
#
# Version: VERSION holds the upstream version of the last release; the
# commit that last changed VERSION is that release.  N commits later the
# upstream version is VERSION+gitN.HASH (what git describe would say with
# a tag on the release commit), with ".dirty" when the working tree has
# uncommitted changes, so snapshots sort after their release and before
# the next one.  The Debian revision is -1.
#
#   packaging/build-deb.sh [OUT]      prints the paths of the .debs last

set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD
out=${1:-build/deb}
case $out in /*) ;; *) out=$top/$out ;; esac

src=libnginx-mod-http-leader-election
upstream=$(tr -d ' \n' < VERSION)
date=$(date -R)

if git rev-parse --git-dir > /dev/null 2>&1; then
    release=$(git log -1 --format=%H -- VERSION)
    n=$(git rev-list --count "${release:-HEAD}..HEAD")
    hash=$(git rev-parse --short=7 HEAD)
    what="commit $hash, the release of $upstream"
    if [ "$n" != 0 ]; then
        what="commit $hash, $n after the release of $upstream"
        upstream="$upstream+git$n.$hash"
    fi
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
        upstream="$upstream.dirty"
        what="$what, with uncommitted changes"
    fi
    date=$(git log -1 --format=%aD HEAD)
else
    what="a source tree without git history"
fi
version=$upstream-1

# Only what the module's build and the package's docs need; packaging/
# and t/ stay out, so a test or packaging change does not alter the
# package's contents.
rm -rf "$out"
stage=$out/$src-$upstream
mkdir -p "$stage"
cp -r config VERSION README.md lib module lua docs "$stage"/
cp -r packaging/debian "$stage"/debian

maint=$(sed -n 's/^Maintainer: //p' packaging/debian/control)
cat > "$stage/debian/changelog" << EOF
$src ($version) unstable; urgency=medium

  * Built from $what.

 -- $maint  $date
EOF

jobs=$(nproc 2> /dev/null || echo 1)
[ "$jobs" -le 2 ] || jobs=2

cd "$stage"
dpkg-buildpackage -b -us -uc -j"$jobs" > "$out/build.log" 2>&1 || {
    tail -40 "$out/build.log"
    echo "dpkg-buildpackage failed: $out/build.log" >&2
    exit 1
}

cd "$out"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
debs=()
for pkg in $(sed -n 's/^Package: //p' "$stage/debian/control"); do
    a=$(sed -n "/^Package: $pkg\$/,/^\$/s/^Architecture: //p" \
            "$stage/debian/control")
    [ "$a" = all ] || a=$arch
    deb=${pkg}_${version}_$a.deb
    [ -f "$deb" ] || { echo "no $deb in $out" >&2; exit 1; }
    debs+=("$deb")
    dpkg-deb --field "$deb" Package Version Architecture Depends
    dpkg-deb --contents "$deb" | awk '$NF !~ /\/$/ { print "  " $NF }'
done
for deb in "${debs[@]}"; do
    echo "$out/$deb"
done
