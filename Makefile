# The README's commands: `make demo` (`make demo-yolo11`: its ultralytics variant) and `make test`. All build .venv from the pinned constraints.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.yolo-attn-installed

.PHONY: venv demo demo-yolo11 test clean-venv

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) "setuptools<81" wheel
	$(PIP) --no-build-isolation -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/yolo-attn demo

demo-yolo11: $(STAMP)
	$(VENV)/bin/yolo-attn demo --model yolo11n-cbam

test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder tests

clean-venv:
	rm -rf $(VENV)
