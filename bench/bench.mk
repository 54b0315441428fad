# bench: `make bench` measures vmcore-gdbserver beside crash, drgn and libkdumpfile on the samples
# and rewrites bench/RESULTS.md and bench/results.json (see bench/run).
BENCH_TOOLS := $(BUILD)/bench/lkdf_bench $(BUILD)/bench/decompress_limit $(BUILD)/bench/rsp_bulk
BENCH_FLAGS ?=
.PHONY: bench-tools

bench-tools: $(BENCH_TOOLS) $(BUILD)/tests/xcheck_kdumpfile

$(BUILD)/bench/lkdf_bench: bench/lkdf_bench.c bench/checksum.h
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -o $@ $< -lkdumpfile

$(BUILD)/bench/decompress_limit: bench/decompress_limit.c bench/checksum.h
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -o $@ $< -ldeflate -llzo2 -lsnappy -lzstd

$(BUILD)/bench/rsp_bulk: bench/rsp_bulk.c bench/checksum.h
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -o $@ $<

bench: deps
	$(MAKE) all bench-tools
	$(MAKE) samples
	$(PYTHON) bench/run --build $(BUILD) --cache $(CACHE) $(BENCH_FLAGS)
