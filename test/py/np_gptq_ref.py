"""Independent reference for src/mlx/gptq.ts: the numpy GPTQ of the development prototype
(bench/py/gptq_proto.py `gptq(..., search=True)`: float64 inverse and step search, float32 updates).

Usage: np_gptq_ref.py IN.json, IN = {"rows", "cols", "w": [rows·cols], "h": [cols·cols], "damp",
"formats": [[bits, group_size], ...]}. Prints [{"decoded": [rows·cols]} per format].
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "py"))
from gptq_proto import gptq  # noqa: E402


def main():
    d = json.load(open(sys.argv[1]))
    rows, cols = d["rows"], d["cols"]
    w = np.array(d["w"], np.float32).reshape(rows, cols)
    h = np.array(d["h"], np.float32).reshape(cols, cols).astype(np.float64)
    out = []
    for bits, g in d["formats"]:
        _, _, _, decoded = gptq(w, h, bits, g, d["damp"], 128, search=True)
        out.append({"decoded": decoded.ravel().tolist()})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
