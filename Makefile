# flow_policy: two commands from a fresh Debian machine.
#   make demo   collect demos in the MuJoCo sim through ROS, convert, train, evaluate, report
#   make test   lint + the whole test suite (installs everything first)
#   make test ROS2_TOOLS_DIR=../shared/ros2-tools   also installs the upstream `ros2` CLI,
#               launch and launch_ros from that folder, so the launch tests run (.ci/run does)
.PHONY: setup demo demo-quick test test-fast lint format bench clean

VENV ?= .venv
PY := $(VENV)/bin/python
# Every local run keeps ROS traffic on this machine (see config/fastdds_localhost.xml).
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_localhost.xml
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH))
export MUJOCO_GL ?= egl
# flow_policy_node sets it too, but only for code that imports it before torch (see its __init__).
export GOMP_SPINCOUNT ?= 10000
ifdef ROS2_TOOLS_DIR
export ROS2_TOOLS_DIR
endif

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/bin/flow-policy demo --out runs/demo

demo-quick: setup
	$(VENV)/bin/flow-policy demo --quick --out runs/demo-quick

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build install log runs
