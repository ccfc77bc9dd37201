# The two commands of the README:
#   make lab    install what the course needs (binedu + the `lab` extra), then open JupyterLab
#               on notebooks/ at the first notebook
#   make test   install what the tests need too (the `test` extra), then run the whole suite
# scripts/install.sh does the installing: it checks the Python version first (3.10+), takes
# PyTorch's CPU build on Linux when its index can be reached (TORCH_INDEX=default for the
# usual index, or TORCH_INDEX=<URL>), and says which torch build it installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_INDEX ?= auto
INSTALL := PYTHON="$(PYTHON)" VENV="$(VENV)" TORCH_INDEX="$(TORCH_INDEX)" bash scripts/install.sh
INSTALL_INPUTS := pyproject.toml constraints.txt scripts/install.sh

.PHONY: lab test install install-lab browser lint clean docs

# everything (lab + test): what `make test` and development need
install: $(VENV)/.installed-test

# only the course: no pytest, playwright, ruff or hypothesis
install-lab: $(VENV)/.installed-lab

$(VENV)/.installed-lab: $(INSTALL_INPUTS)
	$(INSTALL) lab
	touch $@

# the test install is a superset of the lab one, so it counts as both
$(VENV)/.installed-test: $(INSTALL_INPUTS)
	$(INSTALL) lab,test
	touch $@ $(VENV)/.installed-lab

# JupyterLab serves notebooks/ and opens the first notebook; root must allow itself explicitly
lab: install-lab
	$(BIN)/jupyter lab notebooks/01_why_one_bit.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

# Debian's chromium for tests/test_browser.py (playwright drives it; no browser download).
# Where it cannot be installed the browser tests skip, except in CI (CI=true) where they fail.
browser:
	bash scripts/install-browser.sh

lint: install
	$(BIN)/ruff check binedu tests bench scripts

# the documentation site (Sphinx + MyST-NB, notebooks executed and cached) in docs/_build/html
docs: install
	$(BIN)/python docs/build.py

test: lint browser docs
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
