#!/usr/bin/env bash
# Creates (once) the Python venv with real mlx + mlx-lm that tests and `swan eval` use.
# Location: $SWAN_VENV, default <repo>/.venv. Re-installs when scripts/requirements.txt changes.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SWAN_VENV:-$repo/.venv}"
req="$repo/scripts/requirements.txt"
stamp="$venv/.swan-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
python="${PYTHON:-python3}"
echo "swan: creating Python venv for mlx-lm at $venv" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
cp "$req" "$stamp"
echo "swan: venv ready" >&2
