# The two set-up commands: `make demo` and `make test` (see README.md).
BUILD ?= build
BUILD_SANITIZE ?= build-sanitize
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
# Extra `key=value` overrides for the demo run, e.g. `make demo DEMO_ARGS=train.epochs=1`.
DEMO_ARGS ?=
# ccache hits across clones (CI builds in a fresh clone): paths relative to the checkout, and the
# build folder left out of the hash of -g compiles.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: deps build demo test test-sanitize fresh-check install bench clean

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD) $(DEMO_ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite built with AddressSanitizer + UBSan in its own folder (CUDA off: nvcc code is
# checked by the normal build). Any sanitizer report fails the test that triggered it; the
# sanitizer_canary_* cases prove the sanitizers are live.
$(BUILD_SANITIZE)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SANITIZE) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_SANITIZE=ON -DLOWBIT_CUDA=OFF

test-sanitize: deps $(BUILD_SANITIZE)/CMakeCache.txt
	cmake --build $(BUILD_SANITIZE) -j $(JOBS)
	cd $(BUILD_SANITIZE) && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# The README's two commands on a fresh Debian 12 root (slow; not part of CI). Needs root.
fresh-check:
	bash scripts/fresh-check.sh

install: build
	cmake --install $(BUILD)

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SANITIZE)
