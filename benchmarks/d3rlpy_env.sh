#!/usr/bin/env bash
# Create (or reuse) the separate virtualenv used for the d3rlpy side of the speed benchmark.
#
#   bash benchmarks/d3rlpy_env.sh            # -> prints the path of the venv's python
#
# The venv lives in <repo>/.venv-d3rlpy (git-ignored by `.venv-*/`). It is kept apart from the
# project's .venv because d3rlpy 2.8.1 pins gymnasium==1.0.0 and pulls in PyTorch.
#
# torch is installed FIRST and pinned to the CPU wheel (an unpinned `torch` would resolve to a
# multi-GB CUDA build); d3rlpy is installed second so pip keeps the torch that is already there.
# Idempotent: if the venv already imports the pinned versions, nothing is installed.
set -euo pipefail

TORCH_VERSION="${ARMFARM_BENCH_TORCH:-2.13.0}"
D3RLPY_VERSION="${ARMFARM_BENCH_D3RLPY:-2.8.1}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${D3RLPY_VENV:-$REPO_ROOT/.venv-d3rlpy}"
PY="$VENV/bin/python"

log() { echo "[d3rlpy_env] $*" >&2; }

check() {
    "$PY" - "$TORCH_VERSION" "$D3RLPY_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
import torch, d3rlpy
want_torch, want_d3 = sys.argv[1], sys.argv[2]
assert torch.__version__.split("+")[0] == want_torch, torch.__version__
assert d3rlpy.__version__ == want_d3, d3rlpy.__version__
EOF
}

if [[ -x "$PY" ]] && check; then
    log "reusing $VENV (torch==$TORCH_VERSION, d3rlpy==$D3RLPY_VERSION)"
    echo "$PY"
    exit 0
fi

if [[ ! -x "$PY" ]]; then
    BASE_PY="${PYTHON:-}"
    if [[ -z "$BASE_PY" ]]; then
        # Prefer the interpreter the project's own venv was built from.
        if [[ -f "$REPO_ROOT/.venv/pyvenv.cfg" ]]; then
            home="$(sed -n 's/^home *= *//p' "$REPO_ROOT/.venv/pyvenv.cfg")"
            for cand in "$home/python3" "$home/python"; do
                [[ -x "$cand" ]] && { BASE_PY="$cand"; break; }
            done
        fi
        BASE_PY="${BASE_PY:-python3}"
    fi
    log "creating $VENV with $BASE_PY"
    "$BASE_PY" -m venv "$VENV"
fi

log "installing torch==$TORCH_VERSION (CPU wheel) first"
"$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
pip_log="$(mktemp)"
trap 'rm -f "$pip_log" "${constraints:-}"' EXIT
pip_install() {
    # pip's warnings about local index folders are noise here; show the log only on failure.
    if ! "$PY" -m pip install --quiet "$@" >"$pip_log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$pip_log" >&2 || true
        log "ERROR: pip install $* failed"
        exit 1
    fi
}
pip_install "torch==$TORCH_VERSION"
log "installing d3rlpy==$D3RLPY_VERSION"
# Keep the torch above: constrain it so the resolver cannot swap it for another build.
constraints="$(mktemp)"
echo "torch==$TORCH_VERSION" >"$constraints"
pip_install -c "$constraints" "d3rlpy==$D3RLPY_VERSION"

if ! check; then
    log "ERROR: $VENV does not import torch==$TORCH_VERSION and d3rlpy==$D3RLPY_VERSION after install"
    "$PY" -c "import torch, d3rlpy; print(torch.__version__, d3rlpy.__version__)" >&2 || true
    exit 1
fi
log "ready: $VENV"
echo "$PY"
