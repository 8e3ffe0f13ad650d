#!/usr/bin/env bash
# Creates (once) the Python venv that `npm run bench` uses for its baseline: the reference's own
# operations in torch (CPU) plus numpy. Kept apart from the mlx venv (.venv) because torch from PyPI
# is large (on Linux x86-64 it pulls the CUDA runtime wheels too, several GB) and only the benchmark
# needs it. Location: $SWAN_BENCH_VENV, default <repo>/.venv-bench.
# If torch cannot be installed, the venv still gets numpy and the baseline falls back to it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SWAN_BENCH_VENV:-$repo/.venv-bench}"
stamp="$venv/.swan-bench"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ]; then
  exit 0
fi
python="${PYTHON:-python3}"
echo "swan: creating the benchmark venv at $venv" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy==2.4.6 >&2
if "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off torch >&2; then
  "$venv/bin/python" -c 'import torch; print("swan: torch", torch.__version__, "threads", torch.get_num_threads())' >&2
else
  echo "swan: torch could not be installed; the baseline will use numpy" >&2
fi
touch "$stamp"
