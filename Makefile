# Two entry points do all the set-up on a fresh clone (Python 3.11, CPU, offline apart from package registries):
#   make book   create .venv, install the project with its pinned dependencies, build the HTML book into _build/html
#   make test   the same set-up, then the whole test suite
# Both are idempotent: the venv is only reinstalled when pyproject.toml changes, and the book build reuses
# the execution cache of unchanged chapters.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp's name carries a hash of pyproject.toml, so editing the dependencies triggers a reinstall.
DEPS_HASH := $(shell sha256sum pyproject.toml | cut -c1-12)
STAMP  := $(VENV)/.installed-$(DEPS_HASH)

.PHONY: venv book test data browser axe pdf sandbox postgres bench clean-book clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# left by a venv made before jsonschema was held below 4.25 (pyproject.toml says why it costs seconds)
	@$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax 2>/dev/null || true
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cnnbook)" >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

# -W turns every Sphinx warning into an error, -n reports broken cross-references,
# --keep-going lists all of them before failing. scripts/execute_book.py first runs the chapters that are
# not in the execution cache on every core (each chapter trains on one thread), so the build finds them cached.
# The execution cache keys on the notebooks' text, not on CNNBOOK_MODE, so each mode builds into its own
# folder with its own cache: budget (the default) into _build/html, full into _build/full/_build/html.
BOOK_OUT := $(if $(filter full,$(CNNBOOK_MODE)),_build/full,.)
book: $(STAMP) data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/execute_book.py --cache $(BOOK_OUT)/_build/.jupyter_cache
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter-book build . --all -W -n --keep-going --path-output $(BOOK_OUT)

test: $(STAMP) data browser axe sandbox postgres
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n auto --dist loadscope

# The widget tests drive Debian's Chromium headless with Playwright (Playwright's own browser
# download does not work offline). Installed once, as root or through sudo.
# poppler-utils gives pdftotext, with which the PDF test reads the book's PDF.
browser:
	@if [ ! -x /usr/bin/chromium ] || ! command -v pdftotext >/dev/null; then \
	  echo "Installing Debian's chromium and poppler-utils for the browser and PDF tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium poppler-utils >/dev/null; \
	fi

# axe-core (the accessibility test's rule engine), pinned, from npm into the git-ignored node_modules/;
# the test injects this local file into each page, so it runs without a network.
AXE_VERSION := 4.14.1
AXE_STAMP := node_modules/.axe-core-$(AXE_VERSION)
axe: $(AXE_STAMP)

$(AXE_STAMP):
	npm install --no-save --no-package-lock --no-audit --no-fund axe-core@$(AXE_VERSION)
	@grep -q '"version": "$(AXE_VERSION)"' node_modules/axe-core/package.json
	@touch $@

# One PDF of the built book (run make book first), in the order of _toc.yml: _build/pdf/book.pdf.
pdf: $(STAMP) browser
	$(BIN)/python scripts/make_pdf.py

# The real Fashion-MNIST, offline: Debian's dataset-fashion-mnist installs the four IDX files that
# torchvision reads (cnnbook.data.load_fashion_mnist unpacks them into the data folder). Installed once.
data:
	@if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo "Installing Debian's dataset-fashion-mnist (the real Fashion-MNIST) for the chapters and tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi

# The autograder runs every student's kernel in a bubblewrap sandbox (autograder/grader_sandbox.py);
# the integrity tests grade crafted submissions in it. Installed once, as root or through sudo.
sandbox:
	@if ! command -v bwrap >/dev/null; then \
	  echo "Installing bubblewrap for the isolated autograder"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap >/dev/null; \
	fi

# The class grading tests start a real PostgreSQL (initdb + pg_ctl, as a non-root user, in a temporary
# folder) as the gradebook of `python -m autograder grade`. Installed once, as root or through sudo.
postgres:
	@if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && ! command -v initdb >/dev/null; then \
	  echo "Installing Debian's postgresql for the class grading tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/models.py

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV)
