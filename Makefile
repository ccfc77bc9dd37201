# The two commands of the README:
#   make lab    install what the course needs (binedu + the `lab` extra), then open JupyterLab
#               on notebooks/ at the first notebook
#   make test   install what the tests need too (the `test` extra), then lint, type-check and
#               run the whole suite; the browser tests need a Chromium, which it installs
#               system-wide only with consent (scripts/install-browser.sh)
# scripts/install.sh does the installing: it checks the Python version first (3.10+), takes
# PyTorch's CPU build on Linux when its index can be reached (TORCH_INDEX=default for the
# usual index, or TORCH_INDEX=<URL>), and says which torch build it installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_INDEX ?= auto
INSTALL := PYTHON="$(PYTHON)" VENV="$(VENV)" TORCH_INDEX="$(TORCH_INDEX)" bash scripts/install.sh
INSTALL_INPUTS := pyproject.toml constraints.txt scripts/install.sh

.PHONY: lab test about-test install install-lab browser lint typecheck dist clean release docs

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

# Debian's chromium for tests/test_browser.py (playwright drives it; no browser download),
# system-wide with apt-get as root, only with consent: BINEDU_INSTALL_BROWSER=1 (or CI=true)
# says yes, BINEDU_INSTALL_BROWSER=0 no, otherwise it asks. Without a browser the browser
# tests skip, except in CI (CI=true) where they fail.
browser:
	bash scripts/install-browser.sh

lint: install typecheck
	$(BIN)/ruff check binedu tests bench scripts teacher docs setup.py

# mypy at the strictness stated in pyproject.toml ([tool.mypy]); it must find no error
typecheck: install
	$(BIN)/mypy -p binedu

# the sdist and the wheel (with the notebooks, see setup.py) in dist/, checked by twine
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# what `make test` installs, and where, said before anything is installed
about-test:
	@echo "make test installs: binedu (editable) with its lab and test extras into $(VENV)/ (about 1.7 GB"
	@echo "  with the CPU build of torch it takes on Linux; nothing else goes outside $(VENV)/ except:)"
	@echo "  Debian's chromium for the browser tests, system-wide with apt-get as root, only when no"
	@echo "  Chromium/Chrome is found and you agree (it asks; BINEDU_INSTALL_BROWSER=1 or CI=true: yes,"
	@echo "  BINEDU_INSTALL_BROWSER=0: no, and the browser tests skip)."

# the documentation site (Sphinx + MyST-NB, notebooks executed and cached) in docs/_build/html
docs: install
	$(BIN)/python docs/build.py

test: about-test lint browser docs
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis *.egg-info build dist

# the student notebooks (no answers, no hidden tests) into OUT; see teacher/README.md
release: install-lab ; $(BIN)/python -m teacher release $(or $(OUT),release)
