# stub: the RSP server over memmodel. Objects are built by the generic rules of memmodel.mk;
# the lines below add the stub headers as prerequisites and a library for tests and fuzzers.
STUB_SRCS := $(wildcard stub/*.c)
STUB_HDRS := $(wildcard stub/*.h)
STUB_LIB_SRCS := $(filter-out stub/main.c,$(STUB_SRCS))

$(STUB_SRCS:%.c=$(BUILD)/%.o) $(STUB_SRCS:%.c=$(BUILD)/san/%.o): $(STUB_HDRS)

$(BUILD)/vmcore-gdbserver: $(STUB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libmemmodel.a
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/san/vmcore-gdbserver: $(STUB_SRCS:%.c=$(BUILD)/san/%.o) $(BUILD)/san/libmemmodel.a
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS)

# Everything but main, sanitized, for the unit tests (tests/unit/test_rsp*.c, test_stub*.c).
$(BUILD)/san/libstub.a: $(STUB_LIB_SRCS:%.c=$(BUILD)/san/%.o)
	@mkdir -p $(@D)
	ar rcs $@ $^

STUB_UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_rsp*.c tests/unit/test_stub*.c))
$(foreach t,$(STUB_UNIT_TESTS),$(eval TEST_EXTRA_OBJS_$(t:test_%=%) := $(BUILD)/san/libstub.a $(BUILD)/san/libmemmodel.a))
$(STUB_UNIT_TESTS:%=$(BUILD)/tests/%): $(BUILD)/san/libstub.a $(STUB_HDRS)

# Fuzz target over the stub (tests/fuzz/fuzz_rsp.c): the generic rule of tests/tests.mk
# compiles memmodel; the stub sources are added here.
FUZZ_EXTRA_SRCS_rsp := $(STUB_LIB_SRCS)
$(BUILD)/fuzz/fuzz_rsp: $(STUB_LIB_SRCS) $(STUB_HDRS)

# The kernel's gdb scripts for the dumped release (Debian linux-source), with constants.py
# generated as `make scripts_gdb` does, configured by that kernel's linux-headers package.
LINUX_SOURCE_TARBALL ?= $(firstword $(wildcard /usr/src/linux-source-*.tar.xz))
LINUX_SCRIPTS_GDB_RELEASE ?= 6.1.0-56-amd64
LINUX_SCRIPTS_GDB_DIR := $(CACHE)/linux-scripts-gdb/$(LINUX_SCRIPTS_GDB_RELEASE)
.PHONY: linux-scripts-gdb
linux-scripts-gdb: $(LINUX_SCRIPTS_GDB_DIR)/vmlinux-gdb.py

$(LINUX_SCRIPTS_GDB_DIR)/vmlinux-gdb.py:
	sh tests/integration/linux_scripts_gdb.sh "$(LINUX_SOURCE_TARBALL)" \
		$(LINUX_SCRIPTS_GDB_RELEASE) "$(LINUX_SCRIPTS_GDB_DIR)"
