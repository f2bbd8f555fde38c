# Two commands do all the set-up (see README.md):
#   make lab    create .venv, install everything, open the course in JupyterLab
#   make test   create or reuse .venv, install everything, run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: lab test test-browser release solutions clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	@# -qq: errors only (pip would repeat setuptools' "editable installation" notice for `-e .`).
	$(PY) -m pip install -qq -r requirements.txt
	touch $(STAMP)

# Serves the course root and opens notebooks/00_welcome.ipynb; solutions/ opens read-only.
# The settings are in jupyter_config/jupyter_lab_config.py (no news prompt, no TCP warning).
# JupyterLab refuses to run as root (as in many containers) unless told it may.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --config=jupyter_config/jupyter_lab_config.py $(if $(filter 0,$(shell id -u)),--allow-root)

# Unit tests, every solution notebook under nbval, every student notebook, release --check.
# (Not the browser test: that one needs Chromium; see test-browser.)
test: $(STAMP)
	MPLBACKEND=Agg OMP_NUM_THREADS=1 COURSE_PROGRESS=text $(PY) -m pytest -n $(JOBS) --dist loadfile \
		--nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
		--ignore=tests/browser tests solutions

# Optional, for contributors (Debian or Ubuntu: apt-get install chromium chromium-driver): JupyterLab
# in headless Chromium, as a learner sees it; screenshots go to $(SHOTS).
SHOTS ?= build/browser-screenshots
test-browser: $(STAMP)
	$(PY) -m pip install -qq -r requirements-browser.txt
	SCREENSHOTS=$(SHOTS) $(PY) -m pytest -q -p no:randomly -p no:xdist tests/browser

# For authors: regenerate notebooks/ from solutions/, or re-run the solutions to save outputs.
release: $(STAMP)
	$(PY) -m course_utils release

solutions: $(STAMP)
	$(PY) -m course_utils execute

clean:
	rm -rf $(VENV) .pytest_cache
