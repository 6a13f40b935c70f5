# Two commands for a newcomer: `make demo` and `make test`. Neither reads standard input.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv system-packages bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Xvfb gives the GUI tests a real X display (Tk comes with CPython); the virtual tape library
# formats its tapes with mkfs.ext4 and mounts them (root, loop devices); pytarchive packs
# folders with GNU tar and zstd.
system-packages:
	@test -x /usr/sbin/mkfs.ext4 || test -x /sbin/mkfs.ext4 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs >/dev/null; }
	@command -v zstd >/dev/null 2>&1 && command -v tar >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd tar >/dev/null; }
	@command -v Xvfb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth >/dev/null; \
	  else \
	    echo "Xvfb is missing: run 'sudo apt-get install xvfb xauth' (GUI tests need it)" >&2; exit 1; \
	  fi; }

demo: venv
	$(PY) -m demo

# Four workers: the tests mostly wait on real processes, so they overlap well on two cores.
test: venv system-packages lint
	$(PY) -m pytest -q -n 4 --dist load

# Real errors and the typing rule (ruff check), and the layout ruff format gives (`ruff format .` fixes it).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: venv
	$(PY) -m bench.sim
	@if [ "$$(id -u)" = 0 ]; then $(PY) -m bench.pytarchive; else echo "bench.pytarchive skipped: needs root"; fi

clean:
	rm -rf $(VENV) .pytest_cache
