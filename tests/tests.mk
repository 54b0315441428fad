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

# Format integration helpers: libkdumpfile cross-check and the dump_convert driver.
unit-bins: $(BUILD)/tests/xcheck_kdumpfile $(BUILD)/tests/convert_dump
$(BUILD)/tests/xcheck_kdumpfile: tests/integration/xcheck_kdumpfile.c $(BUILD)/libmemmodel.a $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -Imemmodel -o $@ $< $(BUILD)/libmemmodel.a -lkdumpfile $(LIBS)
$(BUILD)/tests/convert_dump: tests/integration/convert_dump.c $(BUILD)/libmemmodel.a $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -Imemmodel -o $@ $< $(BUILD)/libmemmodel.a $(LIBS)
