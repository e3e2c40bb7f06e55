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

LIB_SRCS    = lib/kle_clock.c lib/kle_record.c lib/kle_lock.c lib/kle_election.c \
              lib/kle_kubeconfig.c lib/kle_http.c lib/kle_elector.c
LIB_OBJS    = $(LIB_SRCS:lib/%.c=$(B)/lib/%.o)
LIB_HDRS    = $(wildcard lib/*.h)
UNIT_SRCS   = $(wildcard t/unit/test_*.c)
UNIT_BINS   = $(UNIT_SRCS:t/unit/%.c=$(B)/t/%)
MODULE_SRCS = $(wildcard module/*.c module/*.h)

# Debian packages the build and the suites need.
DEB_PKGS    = build-essential nginx nginx-dev libcurl4-openssl-dev \
              libjson-c-dev libyaml-dev python3 python3-kubernetes openssl \
              libtest-base-perl libwww-perl valgrind curl wrk

.PHONY: all deps lib module unit test test-unit test-valgrind test-nginx \
        test-nginx-valgrind bench demo clean

all: lib module unit

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || echo $$p; done); \
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

unit: $(UNIT_BINS)

$(B)/t/%: t/unit/%.c t/unit/kle_test.h $(B)/libkle.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ilib -It/unit -o $@ $< $(B)/libkle.a $(LIBS)

# The module, built as Debian builds its own (conf_flags) so that it loads
# into the distribution's nginx binary.
module: $(MODULE_SO)

$(NGX_BUILD)/Makefile: config
	rm -rf $(NGX_BUILD) && mkdir -p $(B) && cp -r $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && flags=() && \
	    if [ -f conf_flags ]; then . ./conf_flags; \
	        flags=("$${NGX_CONF_FLAGS[@]}"); fi && \
	    ./configure "$${flags[@]}" --with-cc-opt="$(NGX_CC_OPT)" \
	        --with-ld-opt="$(NGX_LD_OPT)" \
	        --add-dynamic-module=$(CURDIR) > configure.log \
	    || { tail -20 configure.log; exit 1; }

$(MODULE_SO): $(NGX_BUILD)/Makefile $(MODULE_SRCS) $(LIB_SRCS) $(LIB_HDRS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	@mkdir -p $(@D)
	# a new inode: overwriting a loaded .so in place crashes its users
	install -m 0755 $(NGX_BUILD)/objs/ngx_http_leader_election_module.so $@

# Every suite, through one prove run: unit binaries (TAP executables),
# Python suites (executables) and Test::Nginx suites (*.t).
TEST_ENV = TEST_NGINX_LOAD_MODULES=$(CURDIR)/$(MODULE_SO) \
           KLE_BIN=$(CURDIR)/$(B)/kle PATH=/usr/sbin:$$PATH

test: deps all test-valgrind test-nginx-valgrind
	$(TEST_ENV) prove -I t/lib --source Executable --source Perl \
	    $(UNIT_BINS) $(wildcard t/py/test_*.py) $(wildcard t/*.t)

test-unit: unit
	prove --source Executable $(UNIT_BINS)

# The C unit tests under valgrind: any leak or error fails.
test-valgrind: unit
	@for t in $(UNIT_BINS); do \
	    valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
	        --error-exitcode=99 $$t > /dev/null \
	        || { echo "valgrind: $$t failed"; exit 1; }; \
	done; echo "valgrind: $(words $(UNIT_BINS)) unit suites clean"

test-nginx: deps all
	$(TEST_ENV) prove -I t/lib $(wildcard t/*.t)

# The module under valgrind: the suites whose blocks each start their own
# nginx and whose timings leave room for valgrind's slowness.
VALGRIND_SUITES = t/001_directives.t t/002_single_leader.t t/011_multi.t \
                  t/012_configmap.t
TEST_NGINX_VALGRIND = --tool=memcheck --leak-check=full \
    --show-possibly-lost=no --errors-for-leak-kinds=definite \
    --num-callers=50 --suppressions=t/valgrind.suppress

test-nginx-valgrind: deps all
	$(TEST_ENV) TEST_NGINX_USE_VALGRIND="$(TEST_NGINX_VALGRIND)" \
	    prove -I t/lib $(VALGRIND_SUITES)

demo: deps all
	bash t/demo.sh

clean:
	rm -rf $(B) t/servroot*

# ---- Packaging, and nginx versions other than Debian's ----------------------
# docs/packaging.md.  test-deb needs root: it installs the package into this
# machine's nginx and purges it at the end.  The mainline build is skipped,
# with a message, when its source tarball is not there.
#
#   make deb             build/deb/libnginx-mod-http-leader-election_V_ARCH.deb
#   make test-deb        dpkg -i, smoke test in /usr/sbin/nginx, dpkg --purge
#   make nginx-mainline  nginx MAINLINE_VERSION + the module, --with-compat
#   make test-mainline   the smoke test and MAINLINE_SUITES in that nginx

DEB_PKGS        += debhelper dpkg-dev libpcre2-dev zlib1g-dev
DEB_OUT          = $(B)/deb
SMOKE            = python3 t/smoke/smoke.py --dir $(B)/smoke

MAINLINE_VERSION = 1.31.4
MAINLINE_TGZ    ?= $(abspath ../shared/nginx/nginx-$(MAINLINE_VERSION).tar.gz)
MAINLINE_SUITES ?= t/002_single_leader.t t/004_routing.t t/006_reload.t
ML               = $(CURDIR)/$(B)/mainline
ML_SRC           = $(ML)/nginx-$(MAINLINE_VERSION)
ML_NGINX         = $(ML)/sbin/nginx
# Minimal: what the suites use; stream once the config builds a stream
# module.  No --with-debug, unlike Debian's: code that compiles only with
# it fails here.
ML_CONFIGURE     = --prefix=$(ML) --with-compat \
                   $(if $(shell grep -l ngx_stream config),--with-stream) \
                   --add-dynamic-module=$(CURDIR)
# -j2, unless make already runs with -j (its jobserver then shares the cores)
ML_JOBS          = $(if $(findstring -j,$(MAKEFLAGS)),,-j2)
ML_SKIP          = $(if $(wildcard $(MAINLINE_TGZ)),,mainline-skip)
# Its own ports and server root (the suites run one at a time here), so
# that make -j2 test can run them beside the same suites under valgrind.
ML_PORT          = $${TEST_NGINX_PORT:-1984} + 50

.PHONY: deb test-deb nginx-mainline test-mainline mainline-skip

test: test-deb test-mainline

deb: deps
	packaging/build-deb.sh $(DEB_OUT)

test-deb: deb
	t/smoke/test-deb.sh $(DEB_OUT)/libnginx-mod-*-leader-election_*.deb

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
	$(SMOKE) --nginx $(ML_NGINX) --port $$(($(ML_PORT) + 48)) \
	    $$(printf -- '--load-module %s ' $(ML)/modules/*.so)
	$(TEST_ENV) PATH=$(ML)/sbin:/usr/sbin:$$PATH \
	    TEST_NGINX_BINARY=$(ML_NGINX) \
	    TEST_NGINX_LOAD_MODULES="$$(echo $(ML)/modules/*.so)" \
	    TEST_NGINX_PORT=$$(($(ML_PORT))) TEST_NGINX_SERVROOT=$(ML)/servroot \
	    prove -I t/lib $(MAINLINE_SUITES)
endif

# ---- Benchmarks (bench/README.md) -------------------------------------------
# Not part of make test: about 20 minutes of callgrind, wrk and elections
# (this module, the official Python client's elector, a model of client-go)
# on one API emulator.  The scripts' output goes to build/bench/; report.py
# draws bench/*.png (gnuplot, installed for this target only) and writes
# the figures into bench/README.md.

BENCH_OUT   = $(B)/bench
BENCH_PKGS  = gnuplot-nox

.PHONY: bench-deps

bench: bench-deps all
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; bash bench/variables_instructions.sh \
	    | tee $(BENCH_OUT)/instructions.txt
	set -o pipefail; bash bench/variables.sh | tee $(BENCH_OUT)/wrk.txt
	/usr/bin/python3 bench/election.py $(BENCH_OUT)
	/usr/bin/python3 bench/report.py $(BENCH_OUT)

bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BENCH_PKGS)"
