# Every target installs what it needs: a fresh machine runs `make demo` or `make test` directly.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
APT_PKGS := g++ verilator iverilog yosys postgresql

.PHONY: all install apt demo test test-thorough bench clean

all: install

apt:
	@missing=""; for t in g++ verilator iverilog yosys; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	  else \
	    echo "missing system tools:$$missing"; \
	    echo "run: sudo apt-get install -y $(APT_PKGS)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is required ($(PY) not found)"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,hw,generate]'
	touch $(STAMP)

install: apt $(STAMP)

demo: install
	$(BIN)/python -m allo_ext.demo

test: install
	$(BIN)/python -m pytest -n 2 -q

test-thorough: install
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -n 2 -q

bench: install
	$(BIN)/pip install -q -e '.[bench]'  # the peers bench/frontend.py compares against (ONNX Runtime, IREE)
	$(BIN)/allo-ext bench all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
