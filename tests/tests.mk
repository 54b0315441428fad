# tests: rules added by the tests work.
# Unit tests: tests/unit/test_<name>.c, one cmocka binary each, built with sanitizers.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
.PHONY: unit-bins fuzz-bins
unit-bins: $(UNIT_BINS) $(BUILD)/san/vmcore-gdbserver

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/san/libmemmodel.a $(wildcard tests/unit/*.h) $(MEMMODEL_HDRS) $(STUB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(SAN_CFLAGS) -Imemmodel -Istub -o $@ $< $(filter-out %.c,$(BUILD)/san/libmemmodel.a) $(TEST_EXTRA_OBJS_$*) -lcmocka $(LIBS)

# Fuzz targets: tests/fuzz/fuzz_<name>.c, libFuzzer with clang.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
fuzz-bins: $(FUZZ_BINS)

# Integration entry point into the kernel layer (tests/integration/kernel_probe.c), optimised for bench figures.
unit-bins: $(BUILD)/tests/kernel_probe
$(BUILD)/tests/kernel_probe: tests/integration/kernel_probe.c $(BUILD)/libmemmodel.a $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -Imemmodel -o $@ $< $(BUILD)/libmemmodel.a $(LIBS)

# Fuzz rule: memmodel sources built by clang with libFuzzer and sanitizers into each target;
# FUZZ_EXTRA_SRCS_<name> adds sources (e.g. stub files) for one target.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(MEMMODEL_SRCS) $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -Imemmodel -Istub -o $@ $< $(MEMMODEL_SRCS) $(FUZZ_EXTRA_SRCS_$*) $(LIBS)

# Format integration helper: the libkdumpfile cross-check.
unit-bins: $(BUILD)/tests/xcheck_kdumpfile
$(BUILD)/tests/xcheck_kdumpfile: tests/integration/xcheck_kdumpfile.c $(BUILD)/libmemmodel.a $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -Imemmodel -o $@ $< $(BUILD)/libmemmodel.a -lkdumpfile $(LIBS)

# Long runs of issue 7: a ten-minute soak, minutes of fuzzing per target, and valgrind.
.PHONY: soak fuzz check-all valgrind-unit
SOAK_SECONDS ?= 600
FUZZ_SECONDS ?= 180
soak: all
	VMCORE_SOAK_SECONDS=$(SOAK_SECONDS) $(PYTHON) tests/run --build $(BUILD) --cache $(CACHE) \
		--only integration -k "hostile_clients"
	@cat $(BUILD)/tests/soak.txt

fuzz: fuzz-bins
	$(PYTHON) tests/run --build $(BUILD) --cache $(CACHE) --only fuzz --fuzz-seconds $(FUZZ_SECONDS)

# Valgrind cannot run ASan binaries: the unit tests are rebuilt plainly in $(BUILD)/vg, and the
# server's integration tests run the plain binary under valgrind.
VG := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
VG_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/vg/%)
$(BUILD)/libstub.a: $(STUB_LIB_SRCS:%.c=$(BUILD)/%.o)
	ar rcs $@ $^
$(BUILD)/vg/test_%: tests/unit/test_%.c $(BUILD)/libmemmodel.a $(BUILD)/libstub.a $(wildcard tests/unit/*.h) $(MEMMODEL_HDRS) $(STUB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) -O0 -Imemmodel -Istub -o $@ $< $(subst /san/,/,$(TEST_EXTRA_OBJS_$*)) $(BUILD)/libmemmodel.a -lcmocka $(LIBS)
valgrind-unit: $(VG_UNIT_BINS)
	@fail=0; for t in $(VG_UNIT_BINS); do $(VG) $$t || fail=1; done; exit $$fail

check-all: check valgrind-unit
	VMCORE_GDBSERVER_WRAP="$(VG)" $(PYTHON) tests/run --build $(BUILD) --cache $(CACHE) \
		--only integration -k "stub_gdb or hostile_dumps"
