# The two commands README.md promises. Both set everything up on a fresh machine.
PYTHON ?= python3

.PHONY: demo test bench lint lock
demo:  ## install, build the embedded demo benchmark on first use, run it, print the ranked table
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e demo

test:  ## install and run the test suite (CPU); installs Chromium for the browser test when it can
	bash scripts/system-deps.sh
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox

bench:  ## pytest-benchmark speed figures (CPU)
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e bench

lint:
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e lint

lock:  ## refresh requirements/lock.txt (the pinned versions tox tests and demos with) to the newest allowed
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e lock
