#!/usr/bin/env bash
# Installs reasoner into ./.venv from the environment lock of the engine that fits this machine
# (requirements/cpu.lock or requirements/gpu.lock: every package pinned, every file's hash checked),
# then provisions the embedded model. Idempotent: a second run only checks. Used by `make demo` and
# `make test`. Fails loudly when the lock and pyproject.toml disagree (refresh with `make lock`).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  engine=gpu
else
  engine=cpu
fi
lock="requirements/$engine.lock"

stamp="$VENV/.reasoner-installed-$engine"
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "install.sh: the lock is for CPython 3.11; run with PYTHON=python3.11 (or remove $VENV made by another)" >&2
    exit 1
  }
  "$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r "$lock"
  # Anything an earlier install left that the lock does not pin goes (the engine's torchvision
  # wheels among them: built for another torch, they break `import transformers` models).
  unlocked=$("$VENV/bin/python" scripts/lockfile.py unlocked "$engine")
  if [ -n "$unlocked" ]; then
    # shellcheck disable=SC2086 # one package name per word
    "$VENV/bin/python" -m pip uninstall --quiet --yes $unlocked
  fi
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  "$VENV/bin/python" -c "import vllm, transformers; from transformers import LlamaForCausalLM" 2>/dev/null \
    || { echo "install.sh: the engine does not import; see the output above" >&2; exit 1; }
  touch "$stamp"
fi
"$VENV/bin/python" scripts/lockfile.py check-pyproject "$engine"
"$VENV/bin/python" scripts/lockfile.py check-installed "$engine"

"$VENV/bin/reasoner" models --provision >/dev/null
