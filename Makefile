# Two commands do all set-up on a fresh machine (see README):
#   make demo   - install, prepare the default models offline, ingest sample_corpus/, ask a question
#   make test   - install, prepare the models (GGUF, ONNX export) into .cache/test-models, run
#                 the whole test suite (real embedder and real GGUF included)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_INDEX ?= .rag-demo
DEMO_QUESTION ?= What does the K in Q4_K_M stand for?
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
export HF_HUB_OFFLINE := 1

.PHONY: setup setup-bench demo test lint clean bench-retrieval bench-qa bench-speed

setup: $(STAMP)

# torch first, and pinned: the CPU build on this machine's disk, never a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[models,test,ocr,postgres,ray,mcp,watch,multilingual]"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(BIN)/rag models --fetch
	$(BIN)/rag ingest sample_corpus --index $(DEMO_INDEX)
	$(BIN)/rag ask "$(DEMO_QUESTION)" --index $(DEMO_INDEX)
	@echo
	@echo "Try more: $(BIN)/rag ask \"How long is the context window of Llama 2?\" --index $(DEMO_INDEX)"

# The tests use the model files set-up prepares: the assembled GGUF and the ONNX exports.
test: setup
	RAG_CACHE=$(CURDIR)/.cache/test-models $(BIN)/rag models --fetch
	RAG_TEST_CACHE=$(CURDIR)/.cache/test-models $(BIN)/python -m pytest

# Benchmarks read ../shared/eval (override with EVAL=DIR); the other candidate LLMs come from
# the `bench` extra. Each bench is also a plain script: .venv/bin/python bench/NAME.py --help
EVAL ?= ../shared/eval
BENCH_ARGS ?=

setup-bench: setup
	$(BIN)/python -m pip install --quiet -e ".[models,test,bench]"

bench-retrieval: setup
	$(BIN)/python bench/retrieval.py --data $(EVAL)/scifact $(BENCH_ARGS)

bench-qa: setup-bench
	$(BIN)/python bench/qa.py --data $(EVAL) $(BENCH_ARGS)

bench-speed: setup
	$(BIN)/python bench/speed.py $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check ragcli tests bench

clean:
	rm -rf $(DEMO_INDEX) .cache .pytest_cache
