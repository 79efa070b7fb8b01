# The two set-up commands of README.md:
#   make demo   install what is missing, then run the main job
#   make test   install what is missing, then the lint gates and the whole test suite
VENV := .venv
PFH := $(VENV)/bin/pfharness

.PHONY: setup demo test test-fast test-matrix test-debug lint clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PFH) run --module B -- sysbench cpu run

# Gates, as in CI: ruff (lint and format), mypy on the package, shellcheck on every shell script.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	shellcheck -s sh vm/*.sh tests/guest/*.sh
	shellcheck scripts/*.sh

test: lint
	$(VENV)/bin/python -m pytest -ra -m "not network"

# The kernel matrix (5.10, 6.1, 6.1-rt, 6.12, 7.2): fetches Debian's kernels into the cache (KERNELS.md).
test-matrix: setup
	$(VENV)/bin/python -m pytest -ra -m network

# The exactness and hostile suites on Debian 6.1 built with KASAN, lockdep, UBSAN, DEBUG_ATOMIC_SLEEP and
# more (scripts/build-debug-kernel.sh: about 19 min once on 2 cores, then cached). Not part of make test.
test-debug: setup
	release=$$(bash scripts/build-debug-kernel.sh | tail -n 1) && \
	PFHARNESS_KERNEL_RELEASE=$$release $(VENV)/bin/python -m pytest -ra tests/test_exact_and_safe.py tests/test_hostile_vm.py

test-fast: setup
	$(VENV)/bin/python -m pytest -ra -m "not vm and not kbuild and not wheel and not network"

clean:
	rm -rf out .pytest_cache
