# Convenience wrapper around Meson/Ninja.  See README.md.
BUILD      ?= build
MESON_OPTS ?=
VAR        ?= var
ORIGIN_IMG ?= $(VAR)/origin.img
CACHE_IMG  ?= $(VAR)/cache.img
BLKCACHE    = $(BUILD)/cli/blkcache

.PHONY: all deps build test vm-test run clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: deps build
	tests/run.sh $(BUILD)

# The VM tests (tests/vm/README.md): builds the VM image once into
# /var/tmp/blkcache-vm, then boots a qemu TCG guest per tests/vm/test-*.sh.
vm-test: deps build
	tests/vm/run-all.sh $(BUILD)

run: deps build
	@mkdir -p $(VAR)
	@if [ ! -e $(ORIGIN_IMG) ]; then truncate -s 1G $(ORIGIN_IMG); fi
	@if [ ! -e $(CACHE_IMG) ]; then truncate -s 256M $(CACHE_IMG); \
	  $(BLKCACHE) format --cache $(CACHE_IMG) --origin $(ORIGIN_IMG); fi
	@echo "NBD URI: nbd://127.0.0.1:10809/  and  nbd+unix:///?socket=$(abspath $(VAR))/nbd.sock"
	@echo "Try:     nbdinfo nbd://127.0.0.1:10809/   or   qemu-io -f raw -c 'read -v 0 512' nbd://127.0.0.1:10809/"
	exec $(BLKCACHE) serve --cache $(CACHE_IMG) --origin $(ORIGIN_IMG) \
	  --socket $(VAR)/nbd.sock --tcp 127.0.0.1:10809 --control $(VAR)/control.sock

clean:
	rm -rf $(BUILD)
