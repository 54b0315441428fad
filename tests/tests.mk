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
