# ferry — thin wrapper around meson/ninja.
#   make          build (release-ish, with debug info)
#   make test     install missing packages, build, run every test (plain, ASan+UBSan, and
#                 the threaded ones under ThreadSanitizer)
#   make demo     install missing packages, build, run the demo
#   make test-nested  the KVM and e2e tests where the host has no /dev/kvm, in a
#                 QEMU machine with nested KVM (slow; scripts/nested-kvm.sh)
#   make tsan     the unit tests and the threaded e2e tests under ThreadSanitizer
#   make bench    run the benchmarks
#   make fuzz     run the libFuzzer targets (clang), 60 s each; make fuzz-long: an hour each
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
# What ThreadSanitizer runs: every unit test, and the e2e tests whose ferry
# processes use the most threads at once.
TSAN_TESTS ?= unit,e2e_migrate,e2e_faults,e2e_handoff,e2e_channels,e2e_postcopy,e2e_recover,e2e_local,e2e_qmp,e2e_verbs

.PHONY: all deps build asan tsan-build tsan test test-nested demo bench fuzz fuzz-long format clean

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja:
	@meson setup $(BUILD) --buildtype=debugoptimized >/dev/null

$(ASAN_BUILD)/build.ninja:
	@meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null

$(TSAN_BUILD)/build.ninja:
	@meson setup $(TSAN_BUILD) --buildtype=debugoptimized -Db_sanitize=thread \
		-Db_lundef=false >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD)

tsan-build: deps $(TSAN_BUILD)/build.ninja
	@ninja -C $(TSAN_BUILD)

test: build asan tsan-build
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		./scripts/test.sh $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)=$(TSAN_TESTS)

tsan: tsan-build
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ./scripts/test.sh $(TSAN_BUILD)=$(TSAN_TESTS)

# One emulated CPU: with one per host core the emulator itself went wrong
# now and then (README); and five times the time each test may take.
test-nested: build
	@./scripts/nested-kvm.sh --smp 1 meson test -C $(BUILD) --no-rebuild --suite kvm --suite e2e \
		--timeout-multiplier 5 --print-errorlogs

demo: build
	@./scripts/demo.sh $(BUILD)

bench: build
	@./scripts/deps.sh bench
	@./bench/run-all.sh $(BUILD)
	@./bench/report

# libFuzzer with ASan+UBSan, 60 s per target (FUZZ_SECONDS to change);
# fuzz-long: an hour each.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = stream state workload xbzrle compress apply recv wire parse control incoming tls
fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=3600

fuzz: deps
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz --buildtype=debug \
		-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C build-fuzz
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$t && cp tests/fuzz/corpus/$$t/* build-fuzz/corpus-$$t/ && \
		build-fuzz/tests/libfuzzer_$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$t || exit 1; \
	done

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz
