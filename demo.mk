# demo, install and the IDE test dependencies (README.md says how to use them).

# The sample run the demo serves (samples/factory.py run id) and the dump of it it picks.
DEMO_RUN ?= skb-slab-frag-l5
DAP_DIR := tests/dap
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/vmcore-gdbserver

.PHONY: dap-deps

# Installs what is missing, builds, makes (or reuses) one sample, then a scripted gdb session.
demo: deps
	@echo "demo: building vmcore-gdbserver in $(BUILD)/"
	$(MAKE) --no-print-directory all
	@echo "demo: making (or reusing) the sample run $(DEMO_RUN) in $(CACHE)/samples/"
	$(MAKE) --no-print-directory samples SAMPLES_ONLY=$(DEMO_RUN)
	tests/demo/demo.sh --build $(BUILD) --cache $(CACHE) --run $(DEMO_RUN)

# The debug adapter the DAP test drives, exactly as pinned by the lockfile. Install scripts
# are skipped: they only build an optional native terminal helper the test does not use.
# Debian's npm package is installed only when no npm is on PATH: a nodejs built with its own
# npm (not Debian's) conflicts with it.
dap-deps: $(DAP_DIR)/node_modules/.package-lock.json
$(DAP_DIR)/node_modules/.package-lock.json: $(DAP_DIR)/package.json $(DAP_DIR)/package-lock.json | deps
	@command -v npm >/dev/null || { echo "dap-deps: installing npm"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends npm; }
	cd $(DAP_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

# Binary, man page, and the gdb scripts in one folder, so that one line loads them:
#   source $(DATADIR)/gdbscripts/vmcore_gdb.py
install: $(BUILD)/vmcore-gdbserver
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/gdbscripts
	install -m 755 $(BUILD)/vmcore-gdbserver $(DESTDIR)$(PREFIX)/bin/vmcore-gdbserver
	install -m 644 stub/vmcore-gdbserver.1 $(DESTDIR)$(MANDIR)/man1/vmcore-gdbserver.1
	cd gdbscripts && find . -name '*.py' -not -path '*/__pycache__/*' -not -path './tests/*' \
		-exec install -D -m 644 {} $(abspath $(DESTDIR)$(DATADIR))/gdbscripts/{} \;
	@echo "install: in gdb, load the helpers with: source $(DATADIR)/gdbscripts/vmcore_gdb.py"
