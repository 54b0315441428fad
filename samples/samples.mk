# samples: real crash dumps of the Debian kernel with ground truth, in
# $(CACHE)/samples/<release>/ (see samples/README.md). The factory keeps its
# own stamps (hashes of its inputs), so this rule always runs it and a rerun
# with nothing changed only checks them. SAMPLES_ONLY=run1,run2 limits the
# runs; SAMPLES_JOBS=N boots N guests at once.
SAMPLES_JOBS ?= 2
.PHONY: samples
samples:
	$(PYTHON) samples/factory.py --cache $(CACHE) --build $(BUILD) --jobs $(SAMPLES_JOBS) \
		$(if $(SAMPLES_ONLY),--only $(SAMPLES_ONLY))
