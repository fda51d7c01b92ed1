# vmferry: thin wrapper over Meson.  `make demo` and `make check` install
# what is missing first (scripts/install-deps).
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?=

.PHONY: all build build-asan deps demo check check-fast bench fuzz install clean

all: build

deps:
	@scripts/install-deps

# reconfigure when the list of sources changes (meson.build reads it)
$(BUILD)/.sources: FORCE
	@mkdir -p $(BUILD)
	@ls src/*/*.c tests/*.c fuzz/fuzz-*.c 2>/dev/null > $(BUILD)/.sources.new; \
	if ! cmp -s $(BUILD)/.sources.new $(BUILD)/.sources; then \
	  mv $(BUILD)/.sources.new $(BUILD)/.sources; touch meson.build; \
	else rm -f $(BUILD)/.sources.new; fi
FORCE:

build: $(BUILD)/.sources
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) -Dwerror=true $(MESON_OPTS) >/dev/null
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

build-asan: $(BUILD)/.sources
	@test -f $(ASAN_BUILD)/build.ninja || meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug $(MESON_OPTS) >/dev/null
	@touch $(ASAN_BUILD)/.stamp; ninja -C $(ASAN_BUILD) >/dev/null || ninja -C $(ASAN_BUILD)

demo: deps build
	@scripts/demo $(BUILD)

check: deps build build-asan
	@UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  tests/run-all $(BUILD) $(ASAN_BUILD)

bench: deps build
	@bench/run $(BUILD)/vmferry

fuzz: deps
	@scripts/fuzz

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
