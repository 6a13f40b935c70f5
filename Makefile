# Two commands for a newcomer: `make demo` and `make test`. Neither reads standard input.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LTFS_TARBALL := vendor/ltfs-2.4.8.4-7c01479.tar.xz
LTFS_SHA256 := 6676d4896eea3d0d7f931c1e8421d7986c9182a2c0d0956a4e2d8f68c2c2171a
LTFS := build/ltfs
# What building the reference LTFS needs (Debian 12), and what its binaries need to run.
LTFS_PACKAGES := xz-utils build-essential automake autoconf libtool pkg-config libfuse-dev libxml2-dev \
  libicu-dev icu-devtools uuid-dev libfuse2

.PHONY: demo test lint venv system-packages ltfs bench clean

# The LD_PRELOAD shim that lets the real mtx and tapeinfo reach the virtual library's SCSI model.
SCSI_SHIM := build/tapelib/libscsishim.so

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Xvfb gives the GUI tests a real X display (Tk comes with CPython); pytarchive packs folders
# with GNU tar and zstd; Debian's mtx package gives the real mtx and tapeinfo; the LTFS packages
# build the reference LTFS, which the virtual tape library's cartridges are written by.
system-packages:
	@command -v zstd >/dev/null 2>&1 && command -v tar >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd tar >/dev/null; }
	@test -x /usr/sbin/mtx && test -x /usr/sbin/tapeinfo || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mtx >/dev/null; }
	@command -v systemd-analyze >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
	@command -v Xvfb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth >/dev/null; \
	  else \
	    echo "Xvfb is missing: run 'sudo apt-get install xvfb xauth' (GUI tests need it)" >&2; exit 1; \
	  fi; }
	@dpkg -s $(LTFS_PACKAGES) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(LTFS_PACKAGES) >/dev/null; \
	  else \
	    echo "the LTFS build needs: sudo apt-get install $(LTFS_PACKAGES)" >&2; exit 1; \
	  fi; }

# The reference LTFS, built once from the vendored source (checked against its sha256) with its
# `file` tape backend as the default, where a cartridge is a folder: the real mkltfs, ltfs and ltfsck.
$(LTFS)/.built: $(LTFS_TARBALL) sim/tapelib/ltfsbuild/build.sh sim/tapelib/ltfsbuild/icu-config
	sh sim/tapelib/ltfsbuild/build.sh $(LTFS_TARBALL) $(LTFS_SHA256) $(LTFS)

ltfs: system-packages $(LTFS)/.built

$(SCSI_SHIM): sim/tapelib/scsi/shim.c
	@mkdir -p $(dir $@)
	cc -shared -fPIC -O2 -Wall -o $@ $< -ldl

demo: venv system-packages ltfs $(SCSI_SHIM)
	$(PY) -m demo

# Four workers: the tests mostly wait on real processes, so they overlap well on two cores.
test: venv system-packages ltfs lint $(SCSI_SHIM)
	$(PY) -m pytest -q -n 4 --dist load

# Real errors and the typing rule (ruff check), and the layout ruff format gives (`ruff format .` fixes it).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: venv system-packages ltfs $(SCSI_SHIM)
	$(PY) -m bench.sim_qumulo
	@if [ "$$(id -u)" = 0 ]; then $(PY) -m bench.pytarchive; else echo "bench.pytarchive skipped: needs root"; fi

clean:
	rm -rf $(VENV) .pytest_cache build
