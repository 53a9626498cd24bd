# secretsmgr — PGXS build.  `make test` runs every suite (see test/run).
MODULE_big = secretsmgr
EXTENSION = secretsmgr
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" secretsmgr.control)

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:.c=.o)

DATA = $(wildcard sql/secretsmgr--*.sql)
PGFILEDESC = "secretsmgr - AWS Secrets Manager credentials and rotation"

# pg_regress: inputs test/sql/<test>.sql, outputs test/expected/<test>.out
# (alternatives <test>_1.out ...); setup.sql runs first (shared test
# helpers), the rest in name order.
REGRESS = setup $(sort $(filter-out setup,$(patsubst test/sql/%.sql,%,$(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test --load-extension=secretsmgr

# TAP suites test/t/*.pl (PostgreSQL::Test::Cluster, test/perl/SmTest.pm):
# `make installcheck` runs them after pg_regress through PGXS's
# prove_installcheck (PROVE_TESTS="test/t/010_cancel.pl ..." limits them;
# REGRESS= skips pg_regress, TAP_TESTS= the TAP suites).  Each starts its own
# clusters and emulator; test/run starts them as the postgres user.
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

XML2_CFLAGS := $(shell xml2-config --cflags)
XML2_LIBS := $(shell xml2-config --libs)
PG_CPPFLAGS = -I$(srcdir)/src -DSECRETSMGR_VERSION=\"$(EXTVERSION)\" $(XML2_CFLAGS)
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcurl -lssl -lcrypto -ljansson $(XML2_LIBS)

EXTRA_CLEAN = results test/unit/test_sigv4 tmp_check regression.diffs regression.out tmp_matrix

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on every header of the module (PGXS tracks none)
$(OBJS): $(wildcard src/*.h)

# prove runs in the source directory; SmTest.pm is found there, and the
# suites find the emulator through SM_TEST_ROOT (test/run sets its own)
PG_PROVE_FLAGS += -I test/perl
installcheck: export SM_TEST_ROOT ?= $(abspath $(srcdir)/test)

# test/run: does this server's PGXS run TAP suites (configured with
# --enable-tap-tests)?
.PHONY: print-enable-tap-tests
print-enable-tap-tests:
	@echo '$(enable_tap_tests)'

.PHONY: test demo unit bench test-matrix docs-figures
test:
	test/run
# the generated figures of docs/reliability.md and docs/benchmarks.md: the
# only step that writes docs/ (test/docs/write-figures); tests only compare
docs-figures:
	test/docs/write-figures
# unit, pg_regress and TAP on each major built from Debian's source package
# (test/pg/matrix; the server of PG_CONFIG is the old side of pg_upgrade)
PG_MATRIX ?= postgresql-18
test-matrix:
	PG_CONFIG="$(PG_CONFIG)" test/pg/matrix $(PG_MATRIX)
demo:
	test/demo
unit: test/unit/test_sigv4
	test/unit/test_sigv4
test/unit/test_sigv4: test/unit/test_sigv4.c src/sigv4.c src/sigv4.h
	$(CC) -Wall -Wextra -Werror -O1 -g -Isrc -o $@ test/unit/test_sigv4.c src/sigv4.c -lcrypto
bench:
	test/bench/run

# --- hostile input: libFuzzer targets (test/fuzz/, clang) ---------------------
# `make fuzz` builds them and runs each for FUZZ_SECONDS; docs/reliability.md.
FUZZ_CC ?= $(firstword $(shell command -v clang-14 clang 2>/dev/null) clang)
FUZZ_SECONDS ?= 10
FUZZ_TARGETS = fuzz_error_body fuzz_secret_value fuzz_describe_secret fuzz_versions_page fuzz_login \
	fuzz_credentials_json fuzz_credentials_file fuzz_sigv4 fuzz_sts
FUZZ_FLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Wall -Wextra -Werror -I$(srcdir)/src
EXTRA_CLEAN += test/fuzz/bin

test/fuzz/bin/fuzz_sigv4: test/fuzz/fuzz_sigv4.c src/sigv4.c src/sigv4.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ test/fuzz/fuzz_sigv4.c src/sigv4.c -lcrypto
test/fuzz/bin/fuzz_sts: test/fuzz/fuzz_sts.c src/parse_sts.c src/parse_sts.h src/parse.c src/parse.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(XML2_CFLAGS) -o $@ test/fuzz/fuzz_sts.c src/parse_sts.c src/parse.c $(XML2_LIBS) -ljansson
test/fuzz/bin/%: test/fuzz/%.c src/parse.c src/parse.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< src/parse.c -ljansson

.PHONY: fuzz fuzz-build
fuzz-build: $(addprefix test/fuzz/bin/,$(FUZZ_TARGETS))
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) test/fuzz/run $(FUZZ_TARGETS)

# --- sanitizers and memory (test/sanitize/; docs/reliability.md) -------------
# `make SANITIZE=1` builds the module with AddressSanitizer and
# UndefinedBehaviorSanitizer; it loads only into a server started with the
# ASan runtime preloaded, which test/sanitize/run arranges in a private copy
# of the server tree.  `make sanitize` runs the regress (and TAP) suites that
# way, `make memcheck` a subset under valgrind and the memory flatness run.
ifdef SANITIZE
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
SHLIB_LINK += -fsanitize=address,undefined
endif

.PHONY: sanitize memcheck
sanitize:
	test/sanitize/run
memcheck:
	test/sanitize/valgrind
	test/sanitize/memflat
