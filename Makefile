# Two commands do all set-up on a fresh machine with Python 3.11:  make demo  |  make test
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: the CPU build on local disk, never a CUDA download
	# ros2: the ROS 2 wheels (rclpy) for the ROS bridge tests; they bootstrap through a .pth file at
	# interpreter start, so they must be present before pytest starts, not installed mid-run.
	# torchdyn brings PyPI's torchvision, which cannot load beside the CPU torch; it stays installed, as
	# in a plain `pip install -e .`: robocl treats it as absent (robocl/_torchvision.py), and the tests
	# run where users do.
	$(BIN)/python -m pip install -q -e '.[dev,ros2]'
	# mbrl-lib, a peer of robocl-bench suite=planner: mbrl 0.2.0 pins hydra-core==1.0.3 (and omegaconf<2.1),
	# which fails on Python 3.11, so it goes in without its pins beside robocl's hydra-core; what it imports
	# that robocl lacks (termcolor) is in the dev extras.
	# (its wheel also installs a top-level `tests` package: the suite imports its helpers as `conftest`, never
	# as `tests.conftest`)
	$(BIN)/python -m pip install -q --no-deps mbrl==0.2.0
	touch $(STAMP)

demo: $(STAMP)  ## the main job: the default simulation experiment
	$(BIN)/robocl-run experiment=ugv_continual

test: $(STAMP)  ## the fast test suite (slow experiments excluded)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)  ## everything, slow experiments included
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache
