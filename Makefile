# The two commands README.md promises. Both set everything up on a fresh machine.
PYTHON ?= python3

.PHONY: demo test test-soak bench lint lock
# Without an NVIDIA GPU, `make demo` adds PyTorch's CPU wheel index: its torch 2.14.1+cpu and torchvision
# 0.29.1+cpu satisfy the lock's torch==2.14.1 / torchvision==0.29.1 (a local version label matches a pin
# without one) and bring no CUDA libraries. Set CPU_INDEX= (empty) to keep PyPI's CUDA wheels. An index that
# does not answer within 10 s is left out (pip would otherwise retry it for every package of the environment).
CPU_INDEX ?= https://download.pytorch.org/whl/cpu

demo:  ## install, build the embedded demo benchmark on first use, run it, print the ranked table
	$(PYTHON) -m pip install -q 'tox>=4.28'
	@if [ -n "$(CPU_INDEX)" ] && ! (command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1) \
		&& ! $(PYTHON) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" "$(CPU_INDEX)/" >/dev/null 2>&1; then \
		echo "no NVIDIA GPU found, but $(CPU_INDEX) does not answer: PyPI's wheels (pip would retry it for every package)"; \
		$(PYTHON) -m tox -e demo; \
	elif [ -n "$(CPU_INDEX)" ] && ! (command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1); then \
		echo "no NVIDIA GPU found: PyTorch's CPU wheels from $(CPU_INDEX)"; \
		PIP_EXTRA_INDEX_URL="$(CPU_INDEX) $$PIP_EXTRA_INDEX_URL" $(PYTHON) -m tox -e demo; \
	else \
		$(PYTHON) -m tox -e demo; \
	fi

test:  ## install and run the test suite (CPU); installs Chromium for the browser test when it can
	bash scripts/system-deps.sh
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox

test-soak:  ## the soak-style tests the default run leaves out (the README chain at full iterations, SIGKILL soak, long property runs)
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e soak

bench:  ## pytest-benchmark speed figures (CPU)
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e bench

lint:
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e lint

lock:  ## refresh requirements/lock.txt (the pinned versions tox tests and demos with) to the newest allowed
	$(PYTHON) -m pip install -q 'tox>=4.28' && $(PYTHON) -m tox -e lock
