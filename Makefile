# memshare — `make` builds every tool into bin/, `make check` runs every test,
# `make install PREFIX=...` installs, `make check SANITIZE=1` adds ASan+UBSan.
PREFIX ?= /usr/local
DESTDIR ?=
# systemd units (systemd also reads /usr/local/lib/systemd/system); a
# packager may give `pkg-config --variable=systemdsystemunitdir systemd`.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# the units' settings files (/etc/memshare/*.conf), whatever the prefix
SYSCONFDIR ?= /etc
VERSION := 0.1.0
BUILD ?= build
BIN := bin
CC ?= cc
PKG_CONFIG ?= pkg-config

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation \
          -D_GNU_SOURCE -DMEMSHARE_VERSION='"$(VERSION)"' -Isrc/common -MMD -MP
LDLIBS += -lm
ifeq ($(SANITIZE),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  BUILD := $(BUILD)-san
  # sanitized tools never replace the ones in bin/
  BIN := $(BUILD)/bin
endif

# Required libraries.
REQUIRED_LIBS := jansson libxxhash libnbd fuse3 gnutls libmicrohttpd
CFLAGS += -pthread $(shell $(PKG_CONFIG) --cflags $(REQUIRED_LIBS))
LDLIBS += -pthread $(shell $(PKG_CONFIG) --libs $(REQUIRED_LIBS))

# libcurl (GnuTLS build, as the rest) for msgmc's etcd state backend;
# --as-needed: only msgmc loads it.
CFLAGS += $(shell $(PKG_CONFIG) --cflags libcurl)
LDLIBS += -Wl,--push-state,--as-needed $(shell $(PKG_CONFIG) --libs libcurl) -Wl,--pop-state

# OpenBLAS (cblas_sgemm) for msballoon's neural networks, required.  Its own
# pkg-config name, so that Debian's netlib reference cblas is never the one
# linked.  Debian's single-threaded build when it is installed
# (libopenblas-serial-dev): the pthread build starts a thread pool as it is
# loaded and spins it for about 0.1 s of CPU at every start of the program,
# even when one thread is asked for; the run path makes the loader take the
# serial build rather than the one the libopenblas.so.0 alternative names.
# --as-needed: only the programs that call it load it.
OPENBLAS_SERIAL_PC := /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-serial/pkgconfig
OPENBLAS_PKG_CONFIG := env PKG_CONFIG_PATH=$(OPENBLAS_SERIAL_PC):$(PKG_CONFIG_PATH) $(PKG_CONFIG)
ifneq ($(shell $(OPENBLAS_PKG_CONFIG) --exists openblas && echo yes),yes)
  $(error OpenBLAS not found (pkg-config openblas): install libopenblas-dev, see scripts/install-deps)
endif
CFLAGS += $(shell $(OPENBLAS_PKG_CONFIG) --cflags openblas)
LDLIBS += -Wl,--push-state,--as-needed $(shell $(OPENBLAS_PKG_CONFIG) --libs openblas) -Wl,--pop-state \
          -Wl,-rpath,$(shell $(OPENBLAS_PKG_CONFIG) --variable=libdir openblas)

# Optional backends: compiled in when their library is present; otherwise the
# driver reports at run time which dependency the build lacked.
ifeq ($(shell $(PKG_CONFIG) --exists libvirt && echo yes),yes)
  CFLAGS += -DHAVE_LIBVIRT $(shell $(PKG_CONFIG) --cflags libvirt)
  LDLIBS += $(shell $(PKG_CONFIG) --libs libvirt)
endif
ifeq ($(shell $(PKG_CONFIG) --exists xencontrol xenstore && echo yes),yes)
  CFLAGS += -DHAVE_XEN $(shell $(PKG_CONFIG) --cflags xencontrol xenstore)
  LDLIBS += $(shell $(PKG_CONFIG) --libs xencontrol xenstore)
endif
# libfabric: msrswap's one-sided RDMA path (serve --fabric, fabric:// remotes)
ifeq ($(shell $(PKG_CONFIG) --exists libfabric && echo yes),yes)
  CFLAGS += -DHAVE_LIBFABRIC $(shell $(PKG_CONFIG) --cflags libfabric)
  LDLIBS += $(shell $(PKG_CONFIG) --libs libfabric)
endif
ifeq ($(shell $(PKG_CONFIG) --exists libibverbs && echo yes),yes)
  CFLAGS += -DHAVE_IBVERBS $(shell $(PKG_CONFIG) --cflags libibverbs)
  LDLIBS += $(shell $(PKG_CONFIG) --libs libibverbs)
endif

TOOLS := $(foreach d,$(wildcard src/ms*),$(if $(wildcard $(d)/*.c),$(notdir $(d))))
COMMON_SRC := $(wildcard src/common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
COMMON_LIB := $(BUILD)/libmemshare.a
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC := $(wildcard tests/workload/*.c)
# memhog (the lab's checksummed guest workload) also runs on the host
HELPER_BIN := $(HELPER_SRC:tests/workload/%.c=$(BUILD)/workload/%) $(BUILD)/workload/memhog

.SECONDARY:
.PHONY: all check install uninstall clean demo demo-wss test-programs units
all: $(TOOLS:%=$(BIN)/%) $(HELPER_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(COMMON_LIB): $(COMMON_OBJ)
	$(AR) rcs $@ $^

# Each tool is every .c file of its directory, linked with the common library.
objs_of = $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/$(1)/*.c))
# Unit tests may link any tool's parts except its main().
tool_parts = $(filter-out %/main.o,$(patsubst %.c,$(BUILD)/%.o,$(wildcard $(TOOLS:%=src/%/*.c))))
.SECONDEXPANSION:
$(BIN)/%: $$(call objs_of,$$*) $(COMMON_LIB)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/tap.h $(COMMON_LIB) $$(tool_parts)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(TOOLS:%=-Isrc/%) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(COMMON_LIB) $(LDLIBS)

# Test workloads are plain programs with no memshare code, linked statically
# so that their own footprint (a few pages) does not blur a measured working set.
$(BUILD)/workload/%: tests/workload/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< -lm
$(BUILD)/workload/memhog: tests/lab/guest/memhog.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< -lm

test-programs: all $(UNIT_BIN)

check: test-programs
	BUILD=$(BUILD) BIN=$(BIN) tests/run

demo: all
	scripts/demo

# the first demo: mswss measuring two processes, no root needed
demo-wss: all
	scripts/demo-wss

# The units with this installation's paths in them.
UNIT_IN := $(wildcard systemd/*.service.in)
UNITS := $(UNIT_IN:systemd/%.in=$(BUILD)/systemd/%)
UNIT_CONFS := $(wildcard systemd/*.conf)
units: $(UNITS)
$(BUILD)/systemd/%: systemd/%.in FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@.tmp && mv $@.tmp $@
.PHONY: FORCE
FORCE:

install: all units
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 755 $(TOOLS:%=bin/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/
	for t in $(TOOLS); do install -m 644 completions/memshare.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t; done
	install -m 644 completions/_memshare $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_memshare
	install -d $(DESTDIR)$(PREFIX)/share/memshare/scenarios
	install -m 644 src/msballoon/scenarios/*.json $(DESTDIR)$(PREFIX)/share/memshare/scenarios/
	install -d $(DESTDIR)$(PREFIX)/share/memshare/scenarios/traces
	install -m 644 src/msballoon/scenarios/traces/*.jsonl src/msballoon/scenarios/traces/README.md \
	  $(DESTDIR)$(PREFIX)/share/memshare/scenarios/traces/
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/memshare
	install -m 644 $(UNITS) $(DESTDIR)$(SYSTEMDUNITDIR)/
# (an operator's settings are never overwritten; uninstall removes them only unchanged)
	for f in $(UNIT_CONFS); do t=$(DESTDIR)$(SYSCONFDIR)/memshare/$${f#systemd/}; \
	  [ -e "$$t" ] || install -m 644 "$$f" "$$t"; done

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(PREFIX)/bin/%) $(TOOLS:%=$(DESTDIR)$(PREFIX)/share/man/man1/%.1) \
	  $(DESTDIR)$(PREFIX)/share/man/man7/memshare.7 $(TOOLS:%=$(DESTDIR)$(PREFIX)/share/bash-completion/completions/%) \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_memshare
	rm -rf $(DESTDIR)$(PREFIX)/share/memshare
	rm -f $(UNIT_IN:systemd/%.in=$(DESTDIR)$(SYSTEMDUNITDIR)/%)
	for f in $(UNIT_CONFS); do t=$(DESTDIR)$(SYSCONFDIR)/memshare/$${f#systemd/}; \
	  ! cmp -s "$$f" "$$t" || rm -f "$$t"; done
	-rmdir $(DESTDIR)$(SYSCONFDIR)/memshare 2>/dev/null

clean:
	rm -rf bin build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Fuzz targets (libFuzzer, clang): `make fuzz FUZZ_SECONDS=60` runs each one.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))
TOOL_SRC := $(filter-out %/main.c,$(wildcard $(TOOLS:%=src/%/*.c)))
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(COMMON_SRC) $(TOOL_SRC)
	@mkdir -p $(dir $@)
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE -DMEMSHARE_VERSION='"$(VERSION)"' -Isrc/common $(TOOLS:%=-Isrc/%) \
	  $(filter-out -Werror -MMD -MP -O2 -g -std=gnu11,$(CFLAGS)) -fsanitize=fuzzer,address,undefined \
	  -o $@ $< $(COMMON_SRC) $(TOOL_SRC) $(LDLIBS)
.PHONY: fuzz
fuzz: $(FUZZ_TARGETS)
	for t in $(FUZZ_TARGETS); do n=$${t##*/fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done
