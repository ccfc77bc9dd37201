# The two commands of the README:
#   make lab    install what is needed, then open JupyterLab on notebooks/
#   make test   install what is needed, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_INDEX ?=
PIP_FLAGS := -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

.PHONY: lab test install lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_FLAGS) -e ".[test]"
	touch $@

lab: install
	$(BIN)/jupyter lab notebooks/

lint: install
	$(BIN)/ruff check binedu tests bench

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
