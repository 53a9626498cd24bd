# secretsmgr — PGXS build.  `make test` runs every suite (see test/run).
MODULE_big = secretsmgr
EXTENSION = secretsmgr
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" secretsmgr.control)

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:.c=.o)

DATA = $(wildcard sql/secretsmgr--*.sql)
PGFILEDESC = "secretsmgr - AWS Secrets Manager credentials and rotation"

# pg_regress inputs are sql/<test>.sql (the install scripts sql/secretsmgr--*.sql are not tests)
# setup.sql runs first (shared test helpers), the rest in name order.
REGRESS = setup $(sort $(filter-out setup secretsmgr--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --load-extension=secretsmgr

PG_CPPFLAGS = -I$(srcdir)/src -DSECRETSMGR_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcurl -lssl -lcrypto -ljansson

EXTRA_CLEAN = results test/unit/test_sigv4 tmp_check regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on every header of the module (PGXS tracks none)
$(OBJS): $(wildcard src/*.h)

.PHONY: test demo unit bench
test:
	test/run
demo:
	test/demo
unit: test/unit/test_sigv4
	test/unit/test_sigv4
test/unit/test_sigv4: test/unit/test_sigv4.c src/sigv4.c src/sigv4.h
	$(CC) -Wall -Wextra -Werror -O1 -g -Isrc -o $@ test/unit/test_sigv4.c src/sigv4.c -lcrypto
bench:
	test/bench/run
