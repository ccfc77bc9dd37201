#!/usr/bin/env bash
# Create the virtual environment and install binedu into it, editable, with the extras
# given as $1 ("lab" for `make lab`, "lab,test" for `make test`). Called by the Makefile.
#
# Environment (the Makefile passes them through):
#   PYTHON       the interpreter that creates the venv (default python3); 3.10 or newer
#   VENV         the venv folder (default .venv)
#   TORCH_INDEX  where torch comes from:
#                  auto (default)  on Linux, PyTorch's CPU-only index when it answers within
#                                  5 seconds (a ~1.7 GB venv instead of ~6 GB with CUDA);
#                                  otherwise, and on macOS, the usual package index
#                  default         the usual package index (on Linux that is PyPI's CUDA build,
#                                  about 3 GB to download: the script warns before it)
#                  <URL>           that index, e.g. https://download.pytorch.org/whl/cu126
# constraints.txt pins torch for this path only; `pip install binedu` needs any torch>=2.2.
set -euo pipefail

EXTRAS="${1:?usage: scripts/install.sh EXTRAS (e.g. lab or lab,test)}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_INDEX="${TORCH_INDEX:-auto}"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
MIN_PYTHON="3.10"

say() { echo "install: $*" >&2; }

# Said before torch comes from the usual index on Linux, where that is the CUDA build.
warn_cuda_build() {
    [ "$(uname -s)" = Linux ] || return 0
    say "WARNING: $1, so torch comes from the usual package index. On Linux that is"
    say "  the CUDA build: about 3 GB to download (torch and a dozen nvidia-* packages) and about"
    say "  6 GB in $VENV, none of it used on a machine without an NVIDIA GPU. To avoid it, stop now"
    say "  (Ctrl-C) and either run again once $TORCH_CPU_INDEX can be reached, or"
    say "  point TORCH_INDEX at a mirror of PyTorch's CPU wheels (make lab TORCH_INDEX=<URL>), or install"
    say "  the CPU build first: $VENV/bin/python -m pip install torch --index-url $TORCH_CPU_INDEX"
    if [ -t 0 ] && [ -t 2 ]; then
        say "  Continuing in 10 seconds."
        sleep 10
    fi
}

# 1. A new enough Python, checked before anything is created.
python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; }
if [ -x "$VENV/bin/python" ]; then
    if ! python_ok "$VENV/bin/python"; then
        say "$VENV was made with Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), binedu needs $MIN_PYTHON or newer."
        say "Remove it (make clean) and run again with a newer Python, e.g. make lab PYTHON=python3.12"
        exit 1
    fi
else
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        say "$PYTHON was not found. binedu needs Python $MIN_PYTHON or newer: install one"
        say "(python.org, your package manager, Homebrew: brew install python@3.12, or conda)"
        say "and run again with it, e.g. make lab PYTHON=python3.12"
        exit 1
    fi
    if ! python_ok "$PYTHON"; then
        say "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'), binedu needs $MIN_PYTHON or newer."
        say "Install a newer Python (python.org, your package manager, Homebrew: brew install python@3.12,"
        say "or conda) and run again with it, e.g. make lab PYTHON=python3.12"
        exit 1
    fi
    say "creating $VENV with $PYTHON ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

if [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = x86_64 ]; then
    say "note: PyTorch publishes no wheels for Intel Macs after torch 2.2, and constraints.txt"
    say "pins a newer one. If pip cannot find torch, use the conda environment (README, Run with conda)."
fi

# 2. torch first, from the index chosen above: the CPU build by default on Linux.
index=""
case "$TORCH_INDEX" in
    auto)
        if [ "$(uname -s)" = Linux ]; then
            # The probe runs in a daemon thread joined for 6 s: urllib's timeout does not
            # cover a DNS lookup that hangs, the join does.
            if "$VENV/bin/python" - "$TORCH_CPU_INDEX/torch/" <<'EOF'
import sys, threading, urllib.request

reached = []


def probe() -> None:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5):
            reached.append(True)
    except Exception:
        pass


thread = threading.Thread(target=probe, daemon=True)
thread.start()
thread.join(6)
sys.exit(0 if reached else 1)
EOF
            then
                index="$TORCH_CPU_INDEX"
            else
                warn_cuda_build "PyTorch's CPU index ($TORCH_CPU_INDEX) cannot be reached"
            fi
        fi
        ;;
    default | none | "") warn_cuda_build "TORCH_INDEX=$TORCH_INDEX" ;;
    *) index="$TORCH_INDEX" ;;
esac
if [ -n "$index" ]; then
    say "installing torch from $index"
    if ! "${PIP[@]}" install -c constraints.txt --index-url "$index" torch; then
        warn_cuda_build "installing torch from $index failed"
    fi
fi

# 3. binedu itself, editable, with its extras; pip shows its progress.
say "installing binedu[$EXTRAS] (editable) and its dependencies"
"${PIP[@]}" install -c constraints.txt -e ".[$EXTRAS]"

# 4. Say which torch this is.
"$VENV/bin/python" - <<'EOF'
import torch

build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
print(f"install: torch {torch.__version__}, {build} build (cuda available now: {torch.cuda.is_available()})")
EOF
