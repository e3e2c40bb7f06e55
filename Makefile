# ngx_http_leader_election_module: the election core (lib/), its CLI, the
# nginx module built against Debian's nginx-dev tree, and the test suites.
#
#   make test      install what is missing, build everything, run every suite
#   make demo      three nginx replicas on loopback electing a leader
#   make module NGINX_SRC=/path/to/nginx-src   build against another tree

SHELL      := /bin/bash
CC         ?= cc
CFLAGS     ?= -g -O2 -Wall -Wextra -Werror=implicit-function-declaration \
              -fstack-protector-strong -D_FORTIFY_SOURCE=2
LIBS        = -lcurl -ljson-c -lyaml
B           = build

NGINX_SRC  ?= /usr/share/nginx/src
NGX_BUILD   = $(B)/nginx
NGX_CC_OPT  = -g -O2 -fstack-protector-strong -Wformat \
              -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2
NGX_LD_OPT  = -Wl,-z,relro -Wl,-z,now -fPIC
MODULE_SO   = $(B)/modules/ngx_http_leader_election_module.so
STREAM_SO   = $(B)/modules/ngx_stream_leader_election_module.so

LIB_SRCS    = lib/kle_clock.c lib/kle_claim.c lib/kle_record.c lib/kle_lock.c lib/kle_election.c \
              lib/kle_file.c lib/kle_base64.c lib/kle_token.c lib/kle_creds.c \
              lib/kle_kubeconfig.c lib/kle_incluster.c lib/kle_http.c \
              lib/kle_exec.c lib/kle_elector.c lib/kle_events.c lib/kle_args.c
LIB_OBJS    = $(LIB_SRCS:lib/%.c=$(B)/lib/%.o)
LIB_HDRS    = $(wildcard lib/*.h)
UNIT_SRCS   = $(wildcard t/unit/test_*.c)
UNIT_BINS   = $(UNIT_SRCS:t/unit/%.c=$(B)/t/%)
MODULE_SRCS = $(wildcard module/*.c module/*.h)

# Debian packages the build and the suites need (the Perl ones are also
# what CPAN's Test::Nginx needs; libnginx-mod-stream: the stream suites;
# libnginx-mod-http-ndk to lua-resty-core: the Lua suite, t/029_lua.t;
# debhelper to zlib1g-dev: make deb).  kubectl: any in PATH, else Debian's
# kubernetes-client.
DEB_PKGS    = build-essential nginx nginx-dev libcurl4-openssl-dev \
              libjson-c-dev libyaml-dev python3 python3-kubernetes openssl \
              libtest-base-perl libtest-longstring-perl libipc-run-perl \
              liblist-moreutils-perl libtext-diff-perl liburi-perl \
              libwww-perl valgrind curl wrk libnginx-mod-stream \
              libnginx-mod-http-ndk libnginx-mod-http-lua lua-resty-core \
              debhelper dpkg-dev libpcre2-dev zlib1g-dev \
              $(KUBE_PKGS)

.PHONY: all deps lib module unit test test-unit test-valgrind test-nginx \
        test-nginx-cpan test-nginx-valgrind bench demo clean

all: lib module unit

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || echo $$p; done; \
	    command -v kubectl > /dev/null || echo kubernetes-client); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "run as root or install them: apt-get install" $$missing; \
	        exit 1; \
	    fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lib: $(B)/libkle.a $(B)/kle

$(B)/lib/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -Ilib -c -o $@ $<

$(B)/libkle.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(B)/kle: lib/kle.c $(B)/libkle.a
	$(CC) $(CFLAGS) -Ilib -o $@ $< $(B)/libkle.a $(LIBS)

# lib/ with ASan + UBSan, for make asan and make fuzz-replay
ASAN_CC    ?= $(CC)
ASAN_FLAGS  = -g -O1 -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_B      = $(B)/asan
ASAN_OBJS   = $(LIB_SRCS:lib/%.c=$(ASAN_B)/lib/%.o)

$(ASAN_B)/lib/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(ASAN_CC) $(ASAN_FLAGS) -Ilib -c -o $@ $<

$(ASAN_B)/libkle.a: $(ASAN_OBJS)
	$(AR) rcs $@ $^

unit: $(UNIT_BINS) $(B)/t/claim_log_delay.so

# an LD_PRELOAD shim for t/026_claim_log_order.t
$(B)/t/claim_log_delay.so: t/preload/claim_log_delay.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

$(B)/t/%: t/unit/%.c t/unit/kle_test.h t/unit/kle_test_dir.h $(B)/libkle.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ilib -It/unit -o $@ $< $(B)/libkle.a $(LIBS)

# The module, built as Debian builds its own (conf_flags) so that it loads
# into the distribution's nginx binary.  Stream: Debian builds it as a
# dynamic module (libnginx-mod-stream), hence --with-stream=dynamic, and
# only our two .so files are made (nginx-dev has no stream sources).
module: $(MODULE_SO) $(STREAM_SO)

$(NGX_BUILD)/objs/Makefile: config
	rm -rf $(NGX_BUILD) && mkdir -p $(B) && cp -r $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && flags=() && \
	    if [ -f conf_flags ]; then . ./conf_flags; \
	        flags=("$${NGX_CONF_FLAGS[@]}"); fi && \
	    ./configure "$${flags[@]}" --with-cc-opt="$(NGX_CC_OPT)" \
	        --with-ld-opt="$(NGX_LD_OPT)" --with-stream=dynamic \
	        --add-dynamic-module=$(CURDIR) > configure.log \
	    || { tail -20 configure.log; exit 1; }

$(MODULE_SO): $(NGX_BUILD)/objs/Makefile $(MODULE_SRCS) $(LIB_SRCS) $(LIB_HDRS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile \
	    objs/$(notdir $(MODULE_SO)) objs/$(notdir $(STREAM_SO))
	@mkdir -p $(@D)
	# a new inode: overwriting a loaded .so in place crashes its users
	install -m 0755 $(NGX_BUILD)/objs/$(notdir $(MODULE_SO)) $@
	install -m 0755 $(NGX_BUILD)/objs/$(notdir $(STREAM_SO)) $(STREAM_SO)

$(STREAM_SO): $(MODULE_SO)

# Every suite, through one prove run: unit binaries (TAP executables),
# Python suites (executables) and Test::Nginx suites (*.t); then the
# Test::Nginx suites again under CPAN's Test::Nginx when it is there.
TEST_ENV = TEST_NGINX_LOAD_MODULES=$(CURDIR)/$(MODULE_SO) \
           KLE_BIN=$(CURDIR)/$(B)/kle PATH=/usr/sbin:$$PATH

# The prerequisites run in this order, then the one prove run (their rules
# are in the sections below).
test: deps all test-valgrind fuzz-replay test-nginx-valgrind sim sim-plants \
      asan test-deb test-mainline test-chaos test-kube
	$(TEST_ENV) KLE_REQUIRE_KUBECTL=1 prove -j$(PROVE_JOBS) -I t/lib \
	    --source Executable --source Perl \
	    $(UNIT_BINS) $(wildcard t/py/test_*.py) $(NGINX_SUITES)
	$(MAKE) --no-print-directory test-nginx-cpan

test-unit: unit
	prove --source Executable $(UNIT_BINS)

# The C unit tests under valgrind: any leak or error fails.
test-valgrind: unit
	@for t in $(UNIT_BINS); do \
	    valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
	        --error-exitcode=99 $$t > $$t.vg.out \
	        || { cat $$t.vg.out; echo "valgrind: $$t failed"; exit 1; }; \
	done; echo "valgrind: $(words $(UNIT_BINS)) unit suites clean"

# --- Test::Nginx suites (t/*.t) -----------------------------------------
# Each .t file has its own port and server root (t/lib/README.md), so they
# run in parallel.  TEST_NGINX_LIB: another Test::Nginx (CPAN's lib/),
# found before the in-tree one; TEST_NGINX_PORT: the first port (1984).
TEST_NGINX_LIB  ?= t/lib
CPAN_TEST_NGINX ?= ../shared/test-nginx/lib
NGINX_SUITES    ?= $(wildcard t/*.t)
PROVE_JOBS      ?= 2

test-nginx: deps all
	$(TEST_ENV) prove -j$(PROVE_JOBS) -I $(TEST_NGINX_LIB) -I t/lib \
	    $(NGINX_SUITES)

# The same suites under CPAN's Test::Nginx 0.33, when CPAN_TEST_NGINX is
# there (CI has it beside the clone).
test-nginx-cpan: deps all
	@if [ -d $(CPAN_TEST_NGINX)/Test/Nginx ]; then \
	    echo "Test::Nginx suites under $(CPAN_TEST_NGINX)"; \
	    $(TEST_ENV) prove -j$(PROVE_JOBS) -I $(CPAN_TEST_NGINX) -I t/lib \
	        $(NGINX_SUITES); \
	else \
	    echo "no $(CPAN_TEST_NGINX): Test::Nginx suites not run under" \
	         "CPAN's Test::Nginx"; \
	fi

# The module under valgrind: the suites whose blocks each start their own
# nginx and whose timings leave room for valgrind's slowness.
VALGRIND_SUITES = t/001_directives.t t/002_single_leader.t t/011_multi.t \
                  t/012_configmap.t
TEST_NGINX_VALGRIND = --tool=memcheck --leak-check=full \
    --show-possibly-lost=no --errors-for-leak-kinds=definite \
    --num-callers=50 --suppressions=t/valgrind.suppress

# (a client timeout of 15 s, not 3: valgrind's nginx on a loaded machine)
test-nginx-valgrind: deps all
	$(TEST_ENV) TEST_NGINX_USE_VALGRIND="$(TEST_NGINX_VALGRIND)" \
	    TEST_NGINX_TIMEOUT=15 prove -I t/lib $(VALGRIND_SUITES)

demo: deps all
	bash t/demo.sh

# --- Fuzzing (docs/fuzzing.md) -------------------------------------------
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="kubeconfig args"]
#       libFuzzer (clang) with ASan and UBSan, each target for FUZZ_SECONDS,
#       from t/fuzz/corpus/TARGET; new inputs go to build/fuzz/corpus/TARGET,
#       crashes to build/fuzz/artifacts/.
#   make fuzz-merge
#       adds to t/fuzz/corpus/ the inputs those runs found that add coverage.
#   make fuzz-open
#       runs the reproducers of faults still open in others' code.
#   make fuzz-replay
#       every corpus through its target once, built with $(CC) (gcc or clang)
#       and ASan + UBSan, no libFuzzer: the regression suite make test runs.

FUZZ_TARGETS  ?= time annotation classify paths lock watch kubeconfig base64 \
                 token args election execcred
FUZZ_SECONDS  ?= 60
FUZZ_CC       ?= clang
FUZZ_PKGS      = clang libclang-rt-14-dev
FUZZ_SAN       = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS    = -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_LIB_OBJS  = $(LIB_SRCS:lib/%.c=$(B)/fuzz/lib/%.o)
FUZZ_BINS      = $(FUZZ_TARGETS:%=$(B)/fuzz/%)
REPLAY_BINS    = $(FUZZ_TARGETS:%=$(B)/replay/%)

.PHONY: fuzz fuzz-build fuzz-replay fuzz-merge fuzz-open
.SECONDARY: $(FUZZ_LIB_OBJS)

fuzz: fuzz-build
	@: > $(B)/fuzz/last-run.txt; for t in $(FUZZ_TARGETS); do \
	    bash t/fuzz/run.sh $(B)/fuzz $$t $(FUZZ_SECONDS) || exit 1; \
	done; cat $(B)/fuzz/last-run.txt

# Reproducers of faults found in code this suite does not own, until they
# are fixed (t/fuzz/open/TARGET/NAME): each is expected to fail.
fuzz-open: $(REPLAY_BINS)
	@for f in $$(find t/fuzz/open -type f 2>/dev/null | sort); do \
	    t=$$(basename $$(dirname $$f)); \
	    if KLE_FUZZ_HOSTILE=1 $(B)/replay/$$t $$f > /dev/null 2>&1; then \
	        echo "fixed: $$f (move it to t/fuzz/corpus/$$t/)"; \
	    else echo "open:  $$f"; fi; \
	done

# Keeps what the runs found that adds coverage (libFuzzer -merge=1).
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    [ -d $(B)/fuzz/corpus/$$t ] || continue; \
	    $(B)/fuzz/$$t -merge=1 t/fuzz/corpus/$$t $(B)/fuzz/corpus/$$t \
	        2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' \
	        | sed "s/^/$$t: /"; \
	done

fuzz-build:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

$(B)/fuzz/lib/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Ilib -c -o $@ $<

$(B)/fuzz/%: t/fuzz/fuzz_%.c t/fuzz/fuzz.h $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Ilib -It/fuzz -o $@ $< \
	    $(FUZZ_LIB_OBJS) $(LIBS)

$(B)/replay/%: t/fuzz/fuzz_%.c t/fuzz/replay.c t/fuzz/fuzz.h $(ASAN_B)/libkle.a
	@mkdir -p $(@D)
	$(ASAN_CC) $(ASAN_FLAGS) -Ilib -It/fuzz -o $@ $< t/fuzz/replay.c \
	    $(ASAN_B)/libkle.a $(LIBS)

fuzz-replay: $(REPLAY_BINS)
	@for t in $(FUZZ_TARGETS); do \
	    UBSAN_OPTIONS=print_stacktrace=1 $(B)/replay/$$t t/fuzz/corpus/$$t \
	        > /dev/null || { echo "fuzz-replay: $$t failed"; exit 1; }; \
	done; echo "fuzz-replay: $(words $(FUZZ_TARGETS)) targets," \
	    $$(find $(FUZZ_TARGETS:%=t/fuzz/corpus/%) -type f | wc -l) \
	    "inputs, clean"

clean:
	rm -rf $(B) t/servroot*

# ---------------------------------------------------------------------------
# sim: the deterministic simulation of the election (t/sim/, see
# docs/simulation.md), its planted bugs, and the sanitizer builds.
#
#   make sim                  SEEDS seeds (10000) over SIM_JOBS processes
#   make sim SEED=S           replays seed S with its trace
#   make sim-plants           each planted bug must make the simulation fail
#   make asan                 unit suites and simulation, ASan + UBSan

SEEDS      ?= 10000
SIM_JOBS   ?= 2
SIM_CFLAGS  = -g -O2 -Wall -Wextra -Werror=implicit-function-declaration
SIM_SRCS    = $(wildcard t/sim/*.c)
SIM_HDRS    = $(wildcard t/sim/*.h)
# every lib/ object but the transport, which t/sim/sim_http.c replaces;
# the state machine's seed comes from the simulation (--wrap)
SIM_CORE    = $(filter-out lib/kle_http.c,$(LIB_SRCS))
SIM_LIBS    = -Wl,--wrap=kle_election_init -ljson-c -lyaml
SIM_BIN     = $(B)/sim/sim

.PHONY: sim sim-plants asan

$(SIM_BIN): $(SIM_SRCS) $(SIM_HDRS) $(SIM_CORE) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(SIM_CFLAGS) -Ilib -It/sim -o $@ $(SIM_SRCS) $(SIM_CORE) \
	    $(SIM_LIBS)

sim: $(SIM_BIN)
	@if [ -n "$(SEED)" ]; then $(SIM_BIN) --seed $(SEED); \
	else $(SIM_BIN) --seeds $(SEEDS) --jobs $(SIM_JOBS); fi

sim-plants:
	@SEEDS=$(SEEDS) SIM_JOBS=$(SIM_JOBS) CC="$(CC)" \
	    SIM_CFLAGS="$(SIM_CFLAGS)" PLANT="$(PLANT)" SEED="$(SEED)" \
	    SIM_CORE="$(SIM_CORE)" SIM_LIBS="$(SIM_LIBS)" \
	    bash t/sim/plants.sh

# The unit suites and the simulation under AddressSanitizer and
# UndefinedBehaviorSanitizer (the library: above): any finding aborts the run.
# 2,000 seeds: the simulation runs the real elector and its JSON, 42 ms of
# CPU a seed under ASan (every path of the transport is taken in 60 seeds).
ASAN_SEEDS ?= 2000
ASAN_UNITS  = $(UNIT_SRCS:t/unit/%.c=$(ASAN_B)/t/%)

$(ASAN_B)/t/%: t/unit/%.c t/unit/kle_test.h t/unit/kle_test_dir.h $(ASAN_B)/libkle.a
	@mkdir -p $(@D)
	$(ASAN_CC) $(ASAN_FLAGS) -Ilib -It/unit -o $@ $< $(ASAN_B)/libkle.a $(LIBS)

$(ASAN_B)/sim: $(SIM_SRCS) $(SIM_HDRS) $(SIM_CORE) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(ASAN_CC) $(ASAN_FLAGS) -Ilib -It/sim -o $@ $(SIM_SRCS) $(SIM_CORE) \
	    $(SIM_LIBS)

asan: $(ASAN_UNITS) $(ASAN_B)/sim
	@export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1; \
	for t in $(ASAN_UNITS); do \
	    $$t > $$t.out 2>&1 || { cat $$t.out; echo "asan: $$t failed"; \
	                            exit 1; }; \
	done; echo "asan: $(words $(ASAN_UNITS)) unit suites clean"; \
	$(ASAN_B)/sim --seeds $(ASAN_SEEDS) --jobs $(SIM_JOBS) \
	    | sed -n '1p;/violations/,$$p'; \
	exit $${PIPESTATUS[0]}

# ---- Packaging, and nginx versions other than Debian's ----------------------
# docs/packaging.md.  test-deb needs root: it installs the package into this
# machine's nginx and purges it at the end.  The mainline build is skipped,
# with a message, when its source tarball is not there.
#
#   make deb             build/deb/libnginx-mod-{http,stream}-leader-election_V_ARCH.deb,
#                        build/deb/lua-resty-leader-election_V_all.deb
#   make test-deb        dpkg -i, smoke test in /usr/sbin/nginx, dpkg --purge
#   make nginx-mainline  nginx MAINLINE_VERSION + the module, --with-compat
#   make test-mainline   the smoke test and MAINLINE_SUITES in that nginx

DEB_OUT          = $(B)/deb
SMOKE            = python3 t/smoke/smoke.py --dir $(B)/smoke

MAINLINE_VERSION = 1.31.4
MAINLINE_TGZ    ?= $(abspath ../shared/nginx/nginx-$(MAINLINE_VERSION).tar.gz)
MAINLINE_SUITES ?= t/002_single_leader.t t/004_routing.t t/006_reload.t \
                   t/025_route.t t/030_stream.t t/031_stream_udp.t \
                   t/032_stream_config.t
ML               = $(CURDIR)/$(B)/mainline
ML_SRC           = $(ML)/nginx-$(MAINLINE_VERSION)
ML_NGINX         = $(ML)/sbin/nginx
# Minimal: what the suites use, and stream for the stream module (built
# in: no ngx_stream_module.so to load).  No --with-debug, unlike Debian's:
# code that compiles only with it fails here.
ML_CONFIGURE     = --prefix=$(ML) --with-compat --with-stream \
                   --add-dynamic-module=$(CURDIR)
# -j2, unless make already runs with -j (its jobserver then shares the cores)
ML_JOBS          = $(if $(findstring -j,$(MAKEFLAGS)),,-j2)
ML_SKIP          = $(if $(wildcard $(MAINLINE_TGZ)),,mainline-skip)
# Its own ports and server root (the suites run one at a time here), so
# that make -j2 test can run them beside the same suites under valgrind.
ML_PORT          = $${TEST_NGINX_PORT:-1984} + 50

.PHONY: deb test-deb nginx-mainline test-mainline mainline-skip

deb: deps
	packaging/build-deb.sh $(DEB_OUT)

test-deb: deb
	t/smoke/test-deb.sh $(DEB_OUT)/libnginx-mod-*-leader-election_*.deb \
	    $(DEB_OUT)/lua-resty-leader-election_*_all.deb

nginx-mainline: $(or $(ML_SKIP),$(ML_NGINX))

mainline-skip:
	@echo "SKIPPED: no $(MAINLINE_TGZ); the module is not built or" \
	      "tested against nginx $(MAINLINE_VERSION) (set MAINLINE_TGZ)"

$(ML_SRC)/auto/configure: $(MAINLINE_TGZ)
	rm -rf $(ML_SRC) && mkdir -p $(ML) && tar -xzf $< -C $(ML)
	touch $@

$(ML_SRC)/objs/Makefile: $(ML_SRC)/auto/configure config
	cd $(ML_SRC) && auto/configure $(ML_CONFIGURE) > configure.log \
	    || { tail -20 configure.log; exit 1; }

$(ML_NGINX): $(ML_SRC)/objs/Makefile $(MODULE_SRCS) $(LIB_SRCS) $(LIB_HDRS)
	$(MAKE) $(ML_JOBS) -C $(ML_SRC) -f objs/Makefile binary modules \
	    > $(ML)/build.log || { tail -30 $(ML)/build.log; exit 1; }
	mkdir -p $(ML)/sbin $(ML)/modules
	rm -f $(ML)/modules/*.so
	install -m 0755 $(ML_SRC)/objs/*.so $(ML)/modules/
	install -m 0755 $(ML_SRC)/objs/nginx $@
	$@ -V 2>&1 | head -1

test-mainline: $(or $(ML_SKIP),deps lib $(ML_NGINX))
ifneq ($(ML_SKIP),)
	@true
else
	$(SMOKE) --nginx $(ML_NGINX) --port $$(($(ML_PORT) + 48)) --stream \
	    $$(printf -- '--load-module %s ' $(ML)/modules/*.so)
	$(TEST_ENV) PATH=$(ML)/sbin:/usr/sbin:$$PATH \
	    TEST_NGINX_BINARY=$(ML_NGINX) \
	    TEST_NGINX_LOAD_MODULES="$$(echo $(ML)/modules/*.so)" \
	    TEST_NGINX_PORT=$$(($(ML_PORT))) TEST_NGINX_SERVROOT=$(ML)/servroot \
	    prove -I t/lib $(MAINLINE_SUITES)
endif

# ---- stream{}: ngx_stream_leader_election_module ----------------------------
# docs/stream.md.  `make module` builds it beside the http module; its suites
# (t/030..039, in NGINX_SUITES) load Debian's ngx_stream_module.so, from
# libnginx-mod-stream, before it (t/lib/Kle/Stream.pm).  The mainline nginx
# has stream built in; its smoke test checks the stream variables (--stream).

# ---- Benchmarks (bench/README.md) -------------------------------------------
# Not part of make test (about an hour; the duration of the last run is in
# bench/README.md).  make bench measures, side by side: this module, the real
# client-go elector and the official Python client, on the real kube-apiserver
# and on the emulator with latency (bench/election.py); nginx with and without
# the module (bench/resources.py); the variables' instructions (callgrind).
# Raw results go to bench/results/ (committed); bench/report.py writes every
# figure of bench/README.md and its plots from them (make bench-report alone
# redoes that).  make bench-smoke runs the same scripts at a tiny size into
# build/bench-smoke/ (a check of the scripts, about seven minutes).

BENCH_OUT   = bench/results
BENCH_PKGS  = gnuplot-nox
BENCH_PORT ?= 18191
BENCH_ENV   = KLE_KUBE_APISERVER=$(CURDIR)/$(KUBE_APISERVER) \
              KLE_CLIENTGO=$(CURDIR)/$(KLE_CLIENTGO)

.PHONY: bench-deps bench-report bench-smoke

# the steady hour: one lock per system, 15/10/2 s, emulator at 200 ms; it
# runs beside the other parts, on an emulator of its own
BENCH_STEADY = SERVERS=emu200 TIMINGS=default PHASES=election LOCKS=1 \
               KILLS=0 HANDOFFS=0 RESULT=steady.json
# the module alone on the real server after the side-by-side run: its
# milliseconds without the other systems' load (n = 102)
BENCH_QUIET  = SERVERS=real TIMINGS=default PHASES=election SYSTEMS=module \
               LOCKS=3 KILLS=34 HANDOFFS=0 STEADY=10 RESULT=quiet.json
# then the real server's own write path, probe.json: the floor under that

bench: bench-deps all kube-apiserver clientgo
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; start=$$(date +%s); \
	$(BENCH_ENV) $(BENCH_STEADY) STEADY=3600 /usr/bin/python3 \
	    bench/election.py $(BENCH_OUT) > $(B)/bench-steady.log 2>&1 & \
	steady=$$!; \
	REPEAT=2 N2=5200 PORT=$(BENCH_PORT) bash bench/variables_instructions.sh \
	    | tee $(BENCH_OUT)/instructions.txt && \
	/usr/bin/python3 bench/resources.py $(BENCH_OUT) && \
	$(BENCH_ENV) /usr/bin/python3 bench/election.py $(BENCH_OUT) && \
	$(BENCH_ENV) $(BENCH_QUIET) /usr/bin/python3 bench/election.py \
	    $(BENCH_OUT) && \
	$(BENCH_ENV) SERVERS=real PHASES=probe RESULT=probe.json \
	    /usr/bin/python3 bench/election.py $(BENCH_OUT) && \
	wait $$steady && \
	printf '{"make_bench": "%d s"}\n' $$(( $$(date +%s) - start )) \
	    > $(BENCH_OUT)/machine.json
	/usr/bin/python3 bench/report.py $(BENCH_OUT)

bench-report: bench-deps
	/usr/bin/python3 bench/report.py $(BENCH_OUT)

bench-smoke: bench-deps all kube-apiserver clientgo
	rm -rf $(B)/bench-smoke && mkdir -p $(B)/bench-smoke/docs
	set -o pipefail; REPEAT=1 N1=20 N2=120 PORT=$(BENCH_PORT) \
	    bash bench/variables_instructions.sh > $(B)/bench-smoke/instructions.txt
	WINDOW=2 /usr/bin/python3 bench/resources.py $(B)/bench-smoke
	$(BENCH_ENV) SERVERS=real,emu50 TIMINGS=tight LOCKS=1 KILLS=1 HANDOFFS=1 \
	    STEADY=2 CANDIDATES=3 COST_WINDOW=2 \
	    /usr/bin/python3 bench/election.py $(B)/bench-smoke
	$(BENCH_ENV) $(BENCH_STEADY) STEADY=5 \
	    /usr/bin/python3 bench/election.py $(B)/bench-smoke
	cp bench/README.md $(B)/bench-smoke/docs/
	/usr/bin/python3 bench/report.py $(B)/bench-smoke $(B)/bench-smoke/docs
	@grep -q 'this module | 3 |' $(B)/bench-smoke/docs/README.md
	@grep -q 'emulator, 50 ms | client-go' $(B)/bench-smoke/docs/README.md
	@grep -q 'the steady run | 15/10/2 s | 0 in' $(B)/bench-smoke/docs/README.md

bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BENCH_PKGS)"

# ---- Chaos: real nginx replicas under random faults -------------------------
# t/chaos/README.md, docs/chaos.md.  make chaos: CHAOS_REPLICAS replicas of
# the module built here, each behind a proxy of its own, against one
# emulated API server, faults at random until CHAOS_CHANGES leadership
# changes or CHAOS_SECONDS; the checker fails on any overlap of two
# replicas' claims.  make test runs a one-minute one (test-chaos).
# make chaos-plants builds patched copies of the module (t/chaos/plants/,
# applied to a copy of the sources in build/) and shows each is caught.

CHAOS_SECONDS  ?= 3600
CHAOS_CHANGES  ?= 1000
CHAOS_REPLICAS ?= 5
CHAOS_SEED     ?=
CHAOS_ARGS     ?=
CHAOS_DIR      ?= $(B)/chaos/run
CHAOS_PLANTS   ?=
CHAOS_SERVER   ?= emulator

.PHONY: chaos test-chaos chaos-plants

chaos: deps module $(if $(filter real,$(CHAOS_SERVER)),kube-apiserver)
	KLE_KUBE_APISERVER=$(CURDIR)/$(B)/kube/kube-apiserver \
	python3 t/chaos/chaos.py --dir $(CHAOS_DIR) --seconds $(CHAOS_SECONDS) \
	    --changes $(CHAOS_CHANGES) --replicas $(CHAOS_REPLICAS) \
	    --server $(CHAOS_SERVER) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) \
	    --module $(CURDIR)/$(MODULE_SO) $(CHAOS_ARGS)

# Half a minute on the emulator, half on the real server.
test-chaos: kube-apiserver
	prove --source Executable t/chaos/test_proxy.py t/chaos/test_check.py
	$(MAKE) chaos CHAOS_SECONDS=30 CHAOS_CHANGES=0 CHAOS_DIR=$(B)/chaos/short
	$(MAKE) chaos CHAOS_SERVER=real CHAOS_SECONDS=30 CHAOS_CHANGES=0 \
	    CHAOS_DIR=$(B)/chaos/short-real

chaos-plants: deps module
	python3 t/chaos/plants.py --build $(B)/chaos-plants \
	    --nginx-src $(NGINX_SRC) --cc-opt "$(NGX_CC_OPT)" \
	    --ld-opt "$(NGX_LD_OPT)" $(if $(CHAOS_PLANTS),--only $(CHAOS_PLANTS))

# ---- The real Kubernetes API server (t/kube/README.md) ----------------------
# kube-apiserver 1.20.2 built from Debian bookworm's kubernetes source package
# with Debian's Go (about 10 minutes on 2 cores, once per machine: the binary
# and the prepared tree are kept in KLE_KUBE_CACHE, outside the clone), etcd
# from etcd-server, and an elector of our own on client-go's leaderelection
# (t/clientgo).  make test-kube: nginx replicas, the Python client and
# client-go electors on the real server.

KUBE_PKGS      = golang-go etcd-server golang-github-modern-go-reflect2-dev \
                 dpkg-dev python3-yaml
KUBE_APISERVER = $(B)/kube/kube-apiserver
KLE_CLIENTGO   = $(B)/kube/kle-clientgo
KUBE_SUITES   ?= $(wildcard t/kube/test_*.t t/kube/test_*.py)
KUBE_ENV       = $(TEST_ENV) KLE_KUBE_APISERVER=$(CURDIR)/$(KUBE_APISERVER) \
                 KLE_CLIENTGO=$(CURDIR)/$(KLE_CLIENTGO)

.PHONY: kube-apiserver clientgo test-kube

kube-apiserver: deps
	t/kube/build.sh apiserver $(KUBE_APISERVER)

clientgo: deps
	t/kube/build.sh clientgo $(KLE_CLIENTGO)

test-kube: deps all kube-apiserver clientgo
	$(KUBE_ENV) prove -j$(PROVE_JOBS) -I t/lib --source Executable \
	    --source Perl $(KUBE_SUITES)
