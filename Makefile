# ferry — thin wrapper around meson/ninja.
#   make          build (release-ish, with debug info)
#   make test     install missing packages, build, run every test (plain + ASan/UBSan)
#   make demo     install missing packages, build, run the demo
#   make bench    run the benchmarks
#   make fuzz     run the libFuzzer targets (clang), 60 s each
BUILD      ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build asan test demo bench fuzz format clean

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja:
	@meson setup $(BUILD) --buildtype=debugoptimized >/dev/null

$(ASAN_BUILD)/build.ninja:
	@meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD)

test: build asan
	@./scripts/test.sh $(BUILD) $(ASAN_BUILD)

demo: build
	@./scripts/demo.sh $(BUILD)

bench: build
	@./scripts/deps.sh bench
	@./bench/run-all.sh $(BUILD)
	@./bench/report

# libFuzzer with ASan+UBSan, 60 s per target (FUZZ_SECONDS to change).
FUZZ_SECONDS ?= 60
fuzz: deps
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz --buildtype=debug \
		-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C build-fuzz
	@for t in stream state workload xbzrle compress apply; do \
		mkdir -p build-fuzz/corpus-$$t && cp tests/fuzz/corpus/$$t/* build-fuzz/corpus-$$t/ && \
		build-fuzz/tests/libfuzzer_$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$t || exit 1; \
	done

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
