# The two commands of the README: `make export` and `make test`. Both install first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= export

.PHONY: install export test bench bench-full clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $@

export: install
	$(VENV)/bin/st-export -o $(OUT) --force

test: install
	$(PY) -m pytest -q

bench: export
	$(PY) -m benchmarks.bench --export $(OUT) --quick

bench-full: export
	$(PY) -m benchmarks.bench --export $(OUT)

clean:
	rm -rf $(OUT) .pytest_cache
