# vmcore-gdbserver: `make demo` and `make check` do everything on a fresh Debian 12 machine.
# Each folder adds its own rules in <folder>/<folder>.mk; this file holds what they share.

BUILD ?= build
CC ?= cc
CLANG ?= clang
PYTHON ?= /usr/bin/python3
CACHE ?= $(HOME)/.cache/vmcore-gdbserver
PREFIX ?= /usr/local

STD_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g
OPT_CFLAGS ?= -O2
SAN_CFLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LIBS := -ldw -lelf -lz -ldeflate -llzo2 -lsnappy -lzstd

# Debian packages the build, the tests, the samples and the benchmarks need.
DEB_PACKAGES := build-essential clang libdw-dev libelf-dev zlib1g-dev libdeflate-dev liblzo2-dev libsnappy-dev \
	libzstd-dev libcmocka-dev gdb python3 python3-pytest qemu-system-x86 kexec-tools \
	busybox-static makedumpfile crash libkdumpfile-dev python3-drgn cpio zstd xz-utils jq \
	linux-image-amd64 linux-headers-amd64 lldb nodejs linux-source-6.1

.PHONY: all deps check demo samples unit integration fuzz-short clean install bench
all: $(BUILD)/vmcore-gdbserver

# Install what is missing; quiet when nothing is.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

include memmodel/memmodel.mk
include stub/stub.mk
include tests/tests.mk
include samples/samples.mk
include gdbscripts/gdbscripts.mk
include bench/bench.mk
include demo.mk

check: deps dap-deps
	$(MAKE) all unit-bins fuzz-bins
	$(MAKE) samples
	$(PYTHON) tests/run --build $(BUILD) --cache $(CACHE)

clean:
	rm -rf $(BUILD)
