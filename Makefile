# The two set-up commands of README.md:
#   make demo   install what is missing, then run the main job
#   make test   install what is missing, then run the whole test suite
VENV := .venv
PFH := $(VENV)/bin/pfharness

.PHONY: setup demo test test-fast clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PFH) run --module B -- sysbench cpu run

test: setup
	$(VENV)/bin/python -m pytest -ra

test-fast: setup
	$(VENV)/bin/python -m pytest -ra -m "not vm and not kbuild"

clean:
	rm -rf out .pytest_cache
