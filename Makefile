# make demo : set up everything, train a DCGAN on Fashion-MNIST on the CPU, write its pictures
# make test : set up everything, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FMNIST := /usr/share/datasets/fashion-mnist
DEMO_OUT ?= runs/demo

.PHONY: demo test env data browser lint bench clean

# The package alone (what `make demo` needs), then the extras the tests use (export, studio, notebooks, dev):
# the demo starts training about 20 s sooner on a fresh clone, and `make test` adds the extras to the same venv.
$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.core
	$(PY) -m pip install --quiet -e '.[dev,export,notebooks,studio,studio-test]'
	touch $@

env: $(VENV)/.installed

# Fashion-MNIST from Debian's dataset-fashion-mnist where apt exists (else ganforge downloads it when online);
# the photographs of Debian's mate-backgrounds for the super-resolution preset srgan-cpu (data mate-nature).
MATE   := /usr/share/backgrounds/mate/nature
data:
	@if [ ! -f $(FMNIST)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	fi
	@if [ ! -d $(MATE) ] && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq mate-backgrounds; \
	fi

# Chromium for the studio's browser tests (Playwright drives Debian's build; its own download is not used).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	fi

demo: $(VENV)/.core data
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/ganforge train --config fmnist-demo --out $(DEMO_OUT)
	@echo "Pictures: $(DEMO_OUT)/samples.png, $(DEMO_OUT)/progress.gif, $(DEMO_OUT)/losses.png"

test: env data browser
	$(PY) -m pytest -q

lint: env
	$(VENV)/bin/ruff check .

bench: env data
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
