# PGXS build of s3scan_jobs: the C++ module, the install script and the test suites.
# `make`, `make install`, `make installcheck` (pg_regress, isolation tester, TAP).

EXTENSION = s3scan_jobs
MODULE_big = s3scan_jobs

# The C++ sources and the SQL scripts: one list for this Makefile and CMakeLists.txt.
include sources.mk
OBJS = $(S3SCAN_SOURCES:.cpp=.o)
DATA = $(S3SCAN_DATA)

# Tests: one topic per file; the lists follow the files on disk.
REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-instance=tmp_check_regress --temp-config=test/regress.conf
ISOLATION = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --temp-instance=tmp_check_iso --temp-config=test/regress.conf
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))
EXTRA_CLEAN = tmp_check_regress tmp_check_iso output_iso results regression.diffs regression.out

PG_CONFIG ?= pg_config

# No C++ exceptions and no RTTI: PostgreSQL errors (longjmp) pass through every frame, and the
# compiler refuses a throw or a try (see src/pg.hpp and CONTRIBUTING.md).
PG_CXXFLAGS += -std=c++17 -fno-exceptions -fno-rtti -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-register -fno-omit-frame-pointer -I$(srcdir)/src
PG_CFLAGS += -Werror
SHLIB_LINK += -lstdc++

# No LLVM bitcode: nothing here is worth inlining into JIT-compiled queries.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies (Debian's server was built without --enable-depend): every
# object depends on every header, so that a changed struct (the workers' shared memory, say) is
# never left compiled into some objects with its old layout.
$(OBJS): $(wildcard $(srcdir)/src/*.hpp)

# PGXS compiles C++ with CXXFLAGS; PG_CXXFLAGS is added by PGXS on PostgreSQL 15.
format:
	clang-format -i src/*.cpp src/*.hpp

# The flags PGXS compiles and links with, for CMakeLists.txt: one set of flags for both builds.
print-build-flags:
	@echo 'CXXFLAGS=$(CPPFLAGS) $(CXXFLAGS)'
	@echo 'LDFLAGS=$(LDFLAGS_SL) $(SHLIB_LINK)'

.PHONY: format print-build-flags
