# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# one BLAS thread per process: Spark already gives each core its own task
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo demo-graph test check-env bench clean

check-env:
	@scripts/check_env.sh $(PYTHON)

$(STAMP): pyproject.toml setup.py native/w2vspark_native.c
	@scripts/check_env.sh $(PYTHON)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[dev,plot]"
	@touch $(STAMP)

DEMO := ./spark-submit.sh --master 'local[2]'
demo: check-env $(STAMP)
	$(DEMO) jobs/build_vocab.py --config conf/demo.toml
	$(DEMO) jobs/train.py --config conf/demo.toml
	$(DEMO) jobs/export.py --config conf/demo.toml
	$(DEMO) jobs/evaluate.py --config conf/demo.toml
	@echo
	@echo "model:   out/demo/model/        (Spark ML Word2VecModel layout + w2vspark.json)"
	@echo "exports: out/demo/export/       (vectors.txt, vectors.bin, vectors.tsv, metadata.tsv)"
	@echo "report:  out/demo/report/report.md  plots: out/demo/report/loss.png, out/demo/report/words.png"

# Graph embeddings: a planted-community graph -> random walks -> vocabulary -> training -> node classification
# and link prediction, all in local mode (conf/graph.toml).
demo-graph: check-env $(STAMP)
	$(VPY) -m w2vspark.graphs --nodes 2000 --communities 10 --out out/graph/input
	$(DEMO) jobs/walks.py --config conf/graph.toml
	$(DEMO) jobs/build_vocab.py --config conf/graph.toml
	$(DEMO) jobs/train.py --config conf/graph.toml
	$(DEMO) jobs/evaluate.py --config conf/graph.toml
	@echo
	@echo "walks:  out/graph/walks/   model: out/graph/model/   report: out/graph/report/report.md"

test: check-env $(STAMP)
	$(VPY) -m pytest tests

# The peer benchmark (not part of `make test`): BENCH_CORPUS is a text file, one sentence a line; without it
# the Debian corpus is built once (bench/debian_corpus.py, apt-get download) and cached in bench/cache/corpus.
bench: check-env $(STAMP)
	$(VPY) bench/run_bench.py $(if $(BENCH_CORPUS),--corpus "$(BENCH_CORPUS)") $(BENCH_ARGS)

clean:
	rm -rf out build .pytest_cache
