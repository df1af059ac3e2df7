# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# one BLAS thread per process: Spark already gives each core its own task
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test check-env bench clean

check-env:
	@scripts/check_env.sh $(PYTHON)

$(STAMP): pyproject.toml
	@scripts/check_env.sh $(PYTHON)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[dev,plot]"
	@touch $(STAMP)

demo: check-env $(STAMP)
	$(VPY) jobs/train_local.py --config conf/demo.toml

test: check-env $(STAMP)
	$(VPY) -m pytest tests

clean:
	rm -rf out build .pytest_cache
