# berth — build, test and install.
#   make                 build build/berth
#   make check           install test dependencies (Debian), then unit and end-to-end tests
#   make install PREFIX=/usr DESTDIR=/tmp/pkg
#   make CC=aarch64-linux-gnu-gcc PKG_CONFIG=aarch64-linux-gnu-pkg-config   (cross build)

VERSION    := 0.1.0
CC         ?= cc
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DESTDIR    ?=
BUILD      ?= build
PYTEST     ?= /usr/bin/python3 -m pytest

# Linked normally: small, and needed by the long-running processes.
PKGS_LINKED := yajl
# Loaded with dlopen on first use (common/lazy.h): only their headers and
# sonames are needed at build time. libseccomp and libcap serve only the
# start of an instance, libm only routes that compute.
PKGS_LAZY   := libcrypto libssl libcurl libarchive libmosquitto zlib libzstd libseccomp libcap
# Optional, loaded on first use when present: ISA-L's igzip inflates gzip
# layers about twice as fast as zlib (x86-64 and arm64).
HAVE_ISAL  := $(shell $(PKG_CONFIG) --exists libisal 2>/dev/null && echo 1)
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS_LINKED) $(PKGS_LAZY) 2>/dev/null) \
	      $(if $(HAVE_ISAL),-DHAVE_ISAL)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS_LINKED) 2>/dev/null)

# Soname of a library as the compiler finds it (works for cross builds too).
OBJDUMP    ?= $(patsubst %gcc,%objdump,$(patsubst %cc,%objdump,$(CC)))
soname = $(or $(shell f=$$($(CC) -print-file-name=$(1).so) && [ -f "$$f" ] && \
	$(OBJDUMP) -p "$$f" 2>/dev/null | sed -n 's/^ *SONAME *//p'),$(2))
SONAMES := -DLAZY_SONAME_CRYPTO='"$(call soname,libcrypto,libcrypto.so.3)"' \
	   -DLAZY_SONAME_SSL='"$(call soname,libssl,libssl.so.3)"' \
	   -DLAZY_SONAME_CURL='"$(call soname,libcurl,libcurl.so.4)"' \
	   -DLAZY_SONAME_ARCHIVE='"$(call soname,libarchive,libarchive.so.13)"' \
	   -DLAZY_SONAME_MOSQUITTO='"$(call soname,libmosquitto,libmosquitto.so.1)"' \
	   -DLAZY_SONAME_Z='"$(call soname,libz,libz.so.1)"' \
	   -DLAZY_SONAME_ZSTD='"$(call soname,libzstd,libzstd.so.1)"' \
	   -DLAZY_SONAME_ISAL='"$(call soname,libisal,libisal.so.2)"' \
	   -DLAZY_SONAME_SECCOMP='"$(call soname,libseccomp,libseccomp.so.2)"' \
	   -DLAZY_SONAME_CAP='"$(call soname,libcap,libcap.so.2)"' \
	   -DLAZY_SONAME_M='"$(call soname,libm,libm.so.6)"'

OPT        ?= -O2
CFLAGS     ?= $(OPT) -g
HARDEN     := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
# Truncating snprintf into fixed buffers is deliberate (bounded messages).
NO_TRUNC   := $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
WARN       := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 $(NO_TRUNC) -Wvla
BERTH_CFLAGS := -std=gnu11 -D_GNU_SOURCE -DBERTH_VERSION='"$(VERSION)"' -I. \
		$(WARN) $(HARDEN) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS    ?=
BERTH_LDFLAGS := -pie -Wl,-z,relro,-z,now $(LDFLAGS)
LIBS       := $(PKG_LIBS) -ldl -lpthread

# SANITIZE=address,undefined builds everything with those sanitizers.
ifneq ($(SANITIZE),)
BERTH_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
BERTH_LDFLAGS += -fsanitize=$(SANITIZE)
endif

DIRS    := common registry oci shim hub agent
SRCS    := $(sort $(wildcard $(addsuffix /*.c,$(DIRS))))
LIBSRCS := $(filter-out common/main.c,$(SRCS))
OBJS    := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIBOBJS := $(LIBSRCS:%.c=$(BUILD)/obj/%.o)
DEPS    := $(OBJS:.o=.d)

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all check layering unit e2e deps install uninstall clean fuzz format bench demo examples
all: $(BUILD)/berth

# V=1 shows the full compiler command lines.
Q := $(if $(V),,@)

$(BUILD)/berth: $(OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(BERTH_CFLAGS) $(BERTH_LDFLAGS) -o $@ $(OBJS) $(LIBS)

$(BUILD)/libberth.a: $(LIBOBJS)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)$(AR) rcs $@ $(LIBOBJS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BERTH_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/common/lazy.o: BERTH_CFLAGS += $(SONAMES)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libberth.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BERTH_CFLAGS) $(BERTH_LDFLAGS) -Itests/unit -o $@ $< $(BUILD)/libberth.a \
		$$($(PKG_CONFIG) --libs cmocka) $(LIBS)

-include $(DEPS)

# Installs the Debian packages needed to build and test (idempotent; needs root).
deps:
	@./tests/install-deps.sh

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: $(BUILD)/berth examples
	BERTH_BIN=$(abspath $(BUILD)/berth) $(PYTEST) -q tests/e2e $(PYTEST_ARGS)

# Includes follow the layers, common < registry < oci < shim < hub < agent,
# and reach other folders' public headers only (tests/layering.sh).
layering:
	@./tests/layering.sh

check: deps
	$(MAKE) layering
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e

# Coverage-guided fuzzing with libFuzzer (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS)
# The library goes through an archive, as for the unit tests, so command
# files (which need main.c) are not linked into the fuzz targets.
fuzz:
	@mkdir -p $(BUILD)/fuzz/obj
	@set -e; objs=; for s in $(LIBSRCS); do \
		o=$(BUILD)/fuzz/obj/$$(echo $$s | tr / _ | sed 's/\.c$$/.o/'); \
		clang $(FUZZ_CFLAGS) -c -o $$o $$s; objs="$$objs $$o"; \
	done; rm -f $(BUILD)/fuzz/libberth.a; ar rcs $(BUILD)/fuzz/libberth.a $$objs
	@set -e; for f in $(FUZZ_SRCS); do \
		n=$$(basename $$f .c); \
		echo "== $$n"; \
		clang $(FUZZ_CFLAGS) -o $(BUILD)/fuzz/$$n $$f $(BUILD)/fuzz/libberth.a $(LIBS); \
		mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
		$(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 \
			$(BUILD)/fuzz/corpus-$$n $$seeds; \
	done

# Demo modules (examples/modules): static programs, so an image needs nothing else.
EXAMPLES     := sensor filter
EXAMPLE_LIB  := examples/modules/edgeclient.c hub/mqtt_codec.c common/strbuf.c common/err.c
$(BUILD)/examples/%: examples/modules/%.c $(EXAMPLE_LIB) examples/modules/edgeclient.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) -static -std=gnu11 -D_GNU_SOURCE -I. -O2 $(WARN) -o $@ $< $(EXAMPLE_LIB) -lm
examples: $(addprefix $(BUILD)/examples/,$(EXAMPLES))

# berth's main job end to end: a local registry, a pull, a run, then the daemon
# deploying two modules that talk through the hub.
demo: deps
	$(MAKE) all examples
	./examples/demo.sh

install: $(BUILD)/berth
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/berth $(DESTDIR)$(BINDIR)/berth

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/berth

format:
	clang-format -i $(SRCS) $(wildcard */*.h) $(UNIT_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf $(BUILD)
