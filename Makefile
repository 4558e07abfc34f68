# berth — build, test and install.
#   make                 build build/berth
#   make check           install test dependencies (Debian), then unit and end-to-end tests
#   make install PREFIX=/usr DESTDIR=/tmp/pkg
#   make cross ARCH=arm64|armhf   build/<arch>/berth; make unit ARCH=... under qemu
#   make deb             a Debian package; docs/PACKAGING.md for Yocto and Buildroot

VERSION    := 0.1.0
CC         ?= cc
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DESTDIR    ?=
BUILD      ?= build
PYTEST     ?= /usr/bin/python3 -m pytest

# Cross builds with Debian's cross compilers and multiarch -dev packages
# (docs/PACKAGING.md): `make cross ARCH=arm64` builds build/arm64/berth,
# `make unit ARCH=arm64` runs the unit tests under qemu-aarch64-static.
# Only an ARCH given on the command line counts: build systems export their own.
CROSS_TRIPLET_arm64 := aarch64-linux-gnu
CROSS_TRIPLET_armhf := arm-linux-gnueabihf
CROSS_QEMU_arm64    := qemu-aarch64-static
CROSS_QEMU_armhf    := qemu-arm-static
ifeq ($(origin ARCH),command line)
CROSS_TRIPLET := $(or $(CROSS_TRIPLET_$(ARCH)),$(error ARCH=$(ARCH): cross builds know arm64 and armhf))
CROSS_QEMU    := $(CROSS_QEMU_$(ARCH))
CC            := $(CROSS_TRIPLET)-gcc
PKG_CONFIG    := env PKG_CONFIG_LIBDIR=/usr/lib/$(CROSS_TRIPLET)/pkgconfig:/usr/share/pkgconfig pkg-config
BUILD         := build/$(ARCH)
endif

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

# The sonames above, one a line (`make -s lazy-sonames`): packages' run-time
# dependencies, which neither ldd nor a shlibs scan sees.
LAZY_SONAMES = $(foreach s,$(SONAMES),$(shell echo $(s) | sed -n 's/^[^=]*="\(.*\)"$$/\1/p'))

OPT        ?= -O2
CFLAGS     ?= $(OPT) -g
# A build system's own _FORTIFY_SOURCE level (Buildroot, Yocto, dpkg) wins.
HARDEN     := $(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS) $(CFLAGS)),,-D_FORTIFY_SOURCE=2) \
	      -fstack-protector-strong -fPIE
# Truncating snprintf into fixed buffers is deliberate (bounded messages).
NO_TRUNC   := $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
WARN       := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 $(NO_TRUNC) -Wvla
# 64-bit file offsets on 32-bit targets too, as the libraries are built.
BERTH_CFLAGS := -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DBERTH_VERSION='"$(VERSION)"' \
		-I. $(WARN) $(HARDEN) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
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

.PHONY: lazy-sonames
lazy-sonames:
	@printf '%s\n' $(LAZY_SONAMES)

# The source revision `berth version` prints: git's in a checkout (-dirty with
# local changes), else the one `git archive` wrote into packaging/revision,
# else unknown; make BERTH_REVISION=... sets it (a recipe's SRCREV).
ifeq ($(origin BERTH_REVISION),undefined)
BERTH_REVISION := $(or $(if $(wildcard .git),$(shell r=$$(git rev-parse --short=12 HEAD 2>/dev/null) && \
	{ git diff --quiet HEAD -- 2>/dev/null || r=$$r-dirty; } && echo $$r)), \
	$(shell sed -n 's/^\([0-9a-f]\{7,40\}\)$$/\1/p' packaging/revision 2>/dev/null),unknown)
endif
$(BUILD)/obj/common/version.o: BERTH_CFLAGS += -DBERTH_REVISION='"$(BERTH_REVISION)"'
$(BUILD)/obj/common/version.o: $(BUILD)/revision
# Rewritten only when the revision changes, so version.o is rebuilt then.
$(BUILD)/revision: FORCE
	@mkdir -p $(dir $@)
	@echo '$(BERTH_REVISION)' | cmp -s - $@ || echo '$(BERTH_REVISION)' > $@
FORCE:

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libberth.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BERTH_CFLAGS) $(BERTH_LDFLAGS) -Itests/unit -o $@ $< $(BUILD)/libberth.a \
		$$($(PKG_CONFIG) --libs cmocka) $(LIBS)

-include $(DEPS)

# Installs the Debian packages needed to build and test (idempotent; needs root).
deps:
	@./tests/install-deps.sh

ifeq ($(CROSS_TRIPLET),)
unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
else
unit: cross-deps
	@$(MAKE) --no-print-directory ARCH=$(ARCH) unit-qemu
endif

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

# A device image's layout (docs/PACKAGING.md): the binary, an example config
# and deployment (a device's own are never overwritten), the systemd unit and
# tmpfiles.d entry, the SysV/BusyBox init script, the manual page. Build
# systems take the parts they want (Buildroot: install-bin install-config).
SYSCONFDIR     ?= /etc
MANDIR         ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR    ?= $(PREFIX)/lib/tmpfiles.d
INITDIR        ?= $(SYSCONFDIR)/init.d
INIT_NAME      ?= berth
# The paths the unit and the init script name, as installed.
INSTALL_PATHS  := sed -e 's,/usr/bin/berth,$(BINDIR)/berth,g' -e 's,/etc/berth/,$(SYSCONFDIR)/berth/,g'

.PHONY: install-bin install-config install-systemd install-sysv install-man
install: install-bin install-config install-systemd install-sysv install-man

install-bin: $(BUILD)/berth
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/berth $(DESTDIR)$(BINDIR)/berth

install-config:
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/berth
	@set -e; for f in config.json deployment.json; do \
		t=$(DESTDIR)$(SYSCONFDIR)/berth/$$f; \
		if [ -e $$t ]; then echo "  KEEP    $$t"; \
		else install -m 0600 packaging/$$f $$t; fi; \
	done

install-systemd:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(TMPFILESDIR)
	$(INSTALL_PATHS) packaging/berth.service > $(DESTDIR)$(SYSTEMDUNITDIR)/berth.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/berth.service
	install -m 0644 packaging/berth.tmpfiles $(DESTDIR)$(TMPFILESDIR)/berth.conf

install-sysv:
	install -d $(DESTDIR)$(INITDIR)
	$(INSTALL_PATHS) packaging/berth.init > $(DESTDIR)$(INITDIR)/$(INIT_NAME)
	chmod 0755 $(DESTDIR)$(INITDIR)/$(INIT_NAME)

install-man:
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 packaging/berth.1 $(DESTDIR)$(MANDIR)/man1/berth.1

# The config and deployment are the device's: they stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/berth $(DESTDIR)$(SYSTEMDUNITDIR)/berth.service \
		$(DESTDIR)$(TMPFILESDIR)/berth.conf $(DESTDIR)$(INITDIR)/$(INIT_NAME) \
		$(DESTDIR)$(MANDIR)/man1/berth.1

# Cross builds (see ARCH above); the toolchain, qemu and the target's -dev
# packages are installed when missing.
.PHONY: cross cross-deps unit-qemu deb check-cross
cross-deps:
	$(if $(CROSS_TRIPLET),,$(error make $(MAKECMDGOALS) needs ARCH=arm64 or ARCH=armhf))
	@./tests/install-deps.sh --cross $(ARCH)

# A sub-make reads the Makefile again, with the target's packages present.
cross: cross-deps
	@$(MAKE) --no-print-directory ARCH=$(ARCH) $(BUILD)/berth

# Test programs qemu-user cannot run: it passes no seccomp filter to the host
# kernel (test_seccomp*), has no bpf() (test_cgroup_real: cgroup v2 device
# programs) and no fanotify (test_export).
UNIT_QEMU_SKIP := test_seccomp test_seccomp_oci test_cgroup_real test_export
unit-qemu: $(UNIT_BINS)
	@set -e; for t in $(filter-out $(UNIT_QEMU_SKIP:%=$(BUILD)/tests/%),$(UNIT_BINS)); do \
		echo "== $$t ($(CROSS_QEMU))"; $(CROSS_QEMU) $$t; done
	@echo "== not run under $(CROSS_QEMU): $(UNIT_QEMU_SKIP)"

# make cross and make unit for each ARCH, and the Yocto recipe's and the
# Buildroot package's build and install commands run with the cross
# toolchains (tests/cross; a few minutes on 2 cores, so not in make check).
CROSS_ARCHS := arm64 armhf
check-cross: deps
	@set -e; for a in $(CROSS_ARCHS); do ./tests/install-deps.sh --cross $$a; done
	$(PYTEST) -q tests/cross $(PYTEST_ARGS)

# A Debian package (packaging/debian) built with dpkg-buildpackage in a copy
# of the tree under $(BUILD)/deb, then checked with lintian.
DEB_DIR := $(BUILD)/deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/berth-$(VERSION)
	tar -c --exclude-vcs --exclude=./build --exclude=./$(BUILD) --exclude=__pycache__ --exclude=node_modules \
		--exclude=.pytest_cache . | tar -x -C $(DEB_DIR)/berth-$(VERSION)
	cp -r packaging/debian $(DEB_DIR)/berth-$(VERSION)/debian
	@# The package is built as from a fresh tree: none of this make's variables.
	cd $(DEB_DIR)/berth-$(VERSION) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD \
		BERTH_REVISION=$(BERTH_REVISION) dpkg-buildpackage -b -us -uc -j2
	lintian --fail-on error,warning \
		$(DEB_DIR)/berth_*.changes
	@ls $(DEB_DIR)/*.deb

format:
	clang-format -i $(SRCS) $(wildcard */*.h) $(UNIT_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf $(BUILD)
