# The two commands of the README:
#   make lab    install what is needed, then open JupyterLab on notebooks/ at the first notebook
#   make test   install what is needed, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_INDEX ?=
PIP_FLAGS := -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

.PHONY: lab test install browser lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_FLAGS) -e ".[test]"
	touch $@

# JupyterLab serves notebooks/ and opens the first notebook; root must allow itself explicitly
lab: install
	$(BIN)/jupyter lab notebooks/01_why_one_bit.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

# Debian's chromium for tests/test_browser.py (playwright drives it; no browser download)
browser:
	bash scripts/install-browser.sh

lint: install
	$(BIN)/ruff check binedu tests bench

test: lint browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
