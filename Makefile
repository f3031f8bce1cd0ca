# The two commands of the README, each doing all of its own set-up on a fresh machine:
#   make demo   - train on scikit-learn's digits and print the comparison table
#   make test   - ruff check, the test suite, then the documentation with warnings as errors
#                 (what .ci/run runs)
# and `make docs`, which builds the documentation (docs/_build/html) the same way.
# A virtual environment is created in .venv.  torch is installed first, pinned to 2.13.0
# (on this project's CPU machines that resolves to the CPU wheel; elsewhere point pip at the
# CPU index, `PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make test`, since a
# plain `pip install torch` may pull several GB of CUDA packages); then the package.  Set
# TORCH_SPEC to change that pin, e.g. `make test TORCH_SPEC="torch"` on a GPU machine.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
DOCS_STAMP = $(VENV)/.installed-docs

.PHONY: demo test docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sklearn_bnn demo

# The docs build is part of the test: it fails on any Sphinx warning (-W) and runs every
# gallery example.  About 30-50 s from a clean docs/ on 2 cores (the pytest run takes a few
# minutes).  Cross-links to other projects' documentation are switched off here
# (SKLEARN_BNN_INTERSPHINX=0) so that the result does not depend on their sites being up.
test: $(DOCS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	SKLEARN_BNN_INTERSPHINX=0 $(MAKE) -C docs html PYTHON=$(abspath $(BIN))/python

# The documentation (docs/_build/html); same as `make -C docs html` inside the venv.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(MAKE) -C docs html PYTHON=$(abspath $(BIN))/python

clean:
	rm -rf $(VENV) build *.egg-info
	$(MAKE) -C docs clean
