# The two set-up commands of README.md:
#   make demo   install what is missing, then run the main job
#   make test   install what is missing, then the lint gates, the whole test suite on the default
#               kernel and the core suite on the other kernels of the matrix (KERNELS.md)
VENV := .venv
PFH := $(VENV)/bin/pfharness
# The kernels `make test` runs the core suite on besides the default one (6.1, the full suite's): 7.2, the
# newest (per-VMA locks, sid's toolchain), so that .ci/run stays well under 30 minutes on a fresh machine;
# `make test-matrix` runs all five (KERNELS.md, "The core suite and CI").
MATRIX ?= 7.2

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
	bash scripts/test-matrix.sh $(MATRIX)

# The kernel matrix (5.10, 6.1, 6.1-rt, 6.12, 7.2): the fetch tests against Debian's archive, then the
# core suite on every kernel, 6.1 included (KERNELS.md).
test-matrix: setup
	$(VENV)/bin/python -m pytest -ra -m network
	bash scripts/test-matrix.sh

# The exactness and hostile suites on Debian 6.1 built with KASAN, lockdep, UBSAN, DEBUG_ATOMIC_SLEEP and
# more (scripts/build-debug-kernel.sh: about 19 min once on 2 cores, then cached). Not part of make test.
test-debug: setup
	release=$$(bash scripts/build-debug-kernel.sh | tail -n 1) && \
	PFHARNESS_KERNEL_RELEASE=$$release $(VENV)/bin/python -m pytest -ra tests/test_exact_and_safe.py tests/test_hostile_vm.py \
	  tests/test_course_vm.py

test-fast: setup
	$(VENV)/bin/python -m pytest -ra -m "not vm and not kbuild and not wheel and not network"

clean:
	rm -rf out .pytest_cache
