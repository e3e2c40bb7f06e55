#!/bin/bash
# make sim-plants: each planted bug (t/sim/plants/NAME.patch) is applied to a
# copy of the simulated sources in build/plants/NAME, never to the tree, and
# the simulation must fail on some seed the unpatched build passes.
#
#   t/sim/plants.sh [NAME]          every plant, or one
#   PLANT=NAME SEED=S t/sim/plants.sh   replays seed S of plant NAME

set -u

SEEDS=${SEEDS:-10000}
SIM_JOBS=${SIM_JOBS:-2}
CC=${CC:-cc}
SIM_CFLAGS=${SIM_CFLAGS:--g -O2}
SIM_CORE=${SIM_CORE:?the Makefile passes the lib/ sources}
SIM_LIBS=${SIM_LIBS:?the Makefile passes the libraries}
OUT=build/plants

build() {                       # build DIR: sources in DIR/lib, DIR/t/sim
    local f core=
    for f in $SIM_CORE; do core="$core $1/$f"; done
    # shellcheck disable=SC2086
    $CC $SIM_CFLAGS -I"$1/lib" -I"$1/t/sim" -o "$1/sim" "$1"/t/sim/*.c \
        $core $SIM_LIBS
}

tree() {                        # tree NAME: a patched copy, built
    local d=$OUT/$1
    rm -rf "$d" && mkdir -p "$d/lib" "$d/t/sim" || return 1
    cp lib/*.[ch] "$d/lib/" && cp t/sim/*.[ch] "$d/t/sim/" || return 1
    if [ "$1" != baseline ]; then
        patch -s -p1 -d "$d" < "t/sim/plants/$1.patch" \
            || { echo "$1: the patch does not apply"; return 1; }
    fi
    build "$d" || { echo "$1: does not build"; return 1; }
}

if [ -n "${PLANT:-}" ] && [ -n "${SEED:-}" ]; then
    tree "$PLANT" && exec "$OUT/$PLANT/sim" --seed "$SEED"
    exit 1
fi

names=()
if [ $# -gt 0 ]; then
    names=("$@")
else
    for p in t/sim/plants/*.patch; do names+=("$(basename "$p" .patch)"); done
fi

# A plant runs SEEDS seeds, or as many as its patch asks ("Seeds: N" in
# its header: a bug that needs a rare schedule), and stops at the first
# failing seed (--stop).
seeds_of() {
    local n
    n=$(sed -n 's/^Seeds: \([0-9]*\)$/\1/p' "t/sim/plants/$1.patch")
    echo "${n:-$SEEDS}"
}

most=$SEEDS
for name in "${names[@]}"; do
    n=$(seeds_of "$name")
    [ "$n" -gt "$most" ] && most=$n
done

# the seeds the tree itself fails (none, when the code is right) do not
# count for a plant: the baseline runs every seed any plant runs
tree baseline || exit 1
"$OUT/baseline/sim" --seeds "$most" --jobs "$SIM_JOBS" --list \
    | grep '^seed ' | sort > "$OUT/baseline/fails"
base=$(wc -l < "$OUT/baseline/fails")
echo "sim-plants: the unpatched tree fails $base of $most seeds"

rc=0
for name in "${names[@]}"; do
    n=$(seeds_of "$name")
    tree "$name" || { rc=1; continue; }
    "$OUT/$name/sim" --seeds "$n" --jobs "$SIM_JOBS" --list --stop \
        | grep '^seed ' | sort > "$OUT/$name/fails"
    # FILENAME, not NR == FNR: the baseline's list is usually empty
    new=$(awk 'FILENAME == ARGV[1] { bad[$2] = 1; next } !($2 in bad)' \
              "$OUT/baseline/fails" "$OUT/$name/fails" | sort -t' ' -k2,2n)
    if [ -z "$new" ]; then
        echo "  $name: NOT CAUGHT in $n seeds"
        rc=1
        continue
    fi
    first=$(printf '%s\n' "$new" | head -1)
    seed=${first#seed }; seed=${seed%%:*}
    echo "  $name: caught by seed ${first#seed }"
    echo "      replay: make sim-plants PLANT=$name SEED=$seed"
done

exit $rc
