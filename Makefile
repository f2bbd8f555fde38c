# Two commands do all the set-up (see README.md):
#   make lab    create .venv, install everything, open the course in JupyterLab
#   make test   create or reuse .venv, install everything, run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: lab test release solutions clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# JupyterLab refuses to run as root (as in many containers) unless told it may.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# Unit tests, every solution notebook under nbval, every student notebook, release --check.
test: $(STAMP)
	MPLBACKEND=Agg OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) --dist loadfile \
		--nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
		tests solutions

# For authors: regenerate notebooks/ from solutions/, or re-run the solutions to save outputs.
release: $(STAMP)
	$(PY) -m course_utils release

solutions: $(STAMP)
	$(PY) -m course_utils execute

clean:
	rm -rf $(VENV) .pytest_cache
