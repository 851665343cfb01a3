# The build is Meson + Ninja; this file only gives it the usual entry points.
BUILD ?= build
ASAN_BUILD ?= build-asan
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build asan-build demo check check-asan lint install clean

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

lint:
	cppcheck --enable=warning,style,performance,portability --error-exitcode=1 \
		--inline-suppr -q -Iinclude -Isrc src
	clang-format --dry-run --Werror $$(git ls-files 'src/*.[ch]' 'include/*.h')

install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX)
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
