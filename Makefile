# docmill — `make install` is idempotent and fast when nothing changed.
SHELL := /bin/bash
PYTHON := /usr/bin/python3
VENV := .venv
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= ./data

# Debian packages: LibreOffice (with the UNO bridge), fonts incl. metric-compatible ones
# for Office documents, Python, the reference tools the tests and benchmarks compare to,
# and redis-server for the distributed-mode tests (the tests start their own on loopback).
APT_PACKAGES := python3 python3-venv python3-uno ca-certificates curl redis-server \
	libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui \
	fonts-liberation2 fonts-dejavu-core fonts-crosextra-carlito fonts-crosextra-caladea \
	fonts-noto-core fonts-noto-cjk \
	poppler-utils qpdf ghostscript img2pdf time

.PHONY: install system-packages run test lint bench clean

install: system-packages $(STAMP)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@# LibreOffice's UNO bridge comes from Debian: expose only it to the venv.
	@mkdir -p $(VENV)/uno
	@ln -sf /usr/lib/python3/dist-packages/uno.py /usr/lib/python3/dist-packages/unohelper.py $(VENV)/uno/
	@printf '%s\n%s\n' "$(CURDIR)/$(VENV)/uno" /usr/lib/libreoffice/program \
		> $$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/docmill_uno.pth
	@touch $(STAMP)

run: install
	$(VENV)/bin/docmill serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: install
	$(VENV)/bin/ruff check docmill tests bench

test: install lint
	$(VENV)/bin/pytest -q

bench: install
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .ruff_cache
