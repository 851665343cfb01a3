# The build is Meson + Ninja; this file only gives it the usual entry points.
BUILD ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build asan-build demo check check-asan bench lint install clean

all: build

deps:
	@scripts/setup-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: deps build
	@examples/demo/run-demo $(BUILD)

# The suite on the plain build and again under AddressSanitizer and
# UndefinedBehaviorSanitizer, with one summary line for both.
check: deps build asan-build
	@scripts/check $(BUILD) $(ASAN_BUILD) 2>&1

asan-build: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false

check-asan: deps asan-build
	tests/run $(ASAN_BUILD)

# Benchmarks (bench/run) in their own optimised build, as a user would run
# them.  They print one table; they are not tests and never fail on a figure.
bench: deps $(BENCH_BUILD)/build.ninja
	ninja -C $(BENCH_BUILD)
	@bench/run $(BENCH_BUILD)

$(BENCH_BUILD)/build.ninja:
	meson setup $(BENCH_BUILD) --buildtype=release

lint:
	cppcheck --enable=warning,style,performance,portability --error-exitcode=1 \
		--inline-suppr -q -Iinclude -Isrc -Itests/targets src bench
	clang-format --dry-run --Werror $$(git ls-files 'src/*.[ch]' 'include/*.h' 'bench/*.[ch]')

install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX)
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD)
