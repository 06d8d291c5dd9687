# lockfix developer commands. Everything installs into the repo (.venv, .tools), nothing global.
PYTHON ?= python3
# make test (and so CI) runs the suite on the lowest Python pyproject.toml allows and on the newest.
PYTHON_LOWEST ?= 3.11
PYTHON_NEWEST ?= 3.13
VENV := .venv
PY := $(VENV)/bin/python
UV_OLD := 0.10.9
UV_NEW := 0.13.9
TOOLS := .tools/uv-$(UV_OLD)/bin/uv .tools/uv-$(UV_NEW)/bin/uv

.PHONY: all venv tools test test-one demo lint bench clean

all: test

$(PY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(PY)

venv: $(PY)

# Real uv binaries from PyPI: an old one that writes the broken locks, a current one
# that writes the reference locks and validates lockfix's output.
.tools/uv-%/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools/uv-$* uv==$*
	test -x $@

tools: $(TOOLS)

# The suite on the lowest Python pyproject.toml allows and on the newest, at once, each in
# its own .venv-3.X (see scripts/ci.sh). CI runs this.
test: tools
	bash scripts/ci.sh $(PYTHON_LOWEST) $(PYTHON_NEWEST)

# The suite once, in .venv (quicker while developing), over 4 processes as in scripts/ci.sh.
test-one: venv tools
	$(PY) -m compileall -q src fixtures
	$(PY) -m pytest -q -n 4 --dist loadfile

# ruff; mypy (config in pyproject.toml: strict on the I/O-free packages); the import contract
# (import-linter, [tool.importlinter] in pyproject.toml).
lint: venv
	$(PY) -m ruff check src tests fixtures
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

# Repairs the bundled broken torch/nvidia lock against the fixture index on loopback.
demo: venv
	$(PY) -m fixtures.demo

bench: venv tools
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .venv-3.* .tools build dist .pytest_cache .ruff_cache
