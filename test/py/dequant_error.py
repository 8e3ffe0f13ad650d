"""Relative reconstruction error of every quantized layer of an MLX directory, through MLX itself.

Usage: dequant_error.py MLX_DIR HF_DIR
For each module with .scales: mx.dequantize(weight, scales, biases, group_size, bits) (bits and group
from config.json as mlx-lm reads them) against the HF source weight cast to the scales' dtype.
Prints JSON {module: ||W - deq||^2 / ||W||^2}.
"""
import glob
import json
import os
import sys

import mlx.core as mx
import numpy as np


def load_all(d):
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        out.update(mx.load(f))
    return out


def main(mlx_dir, hf_dir):
    q = json.load(open(os.path.join(mlx_dir, "config.json")))["quantization"]
    qw = load_all(mlx_dir)
    src = load_all(hf_dir)
    res = {}
    for k in qw:
        if not k.endswith(".scales"):
            continue
        m = k[: -len(".scales")]
        own = q.get(m) if isinstance(q.get(m), dict) else {}
        bits = own.get("bits", q["bits"])
        group = own.get("group_size", q["group_size"])
        s, b = qw[k], qw[m + ".biases"]
        deq = mx.dequantize(qw[m + ".weight"], s, b, group_size=group, bits=bits)
        w = src[m + ".weight"].astype(s.dtype)
        wn = np.array(w.astype(mx.float32), dtype=np.float64)
        dn = np.array(deq.astype(mx.float32), dtype=np.float64)
        res[m] = float(((wn - dn) ** 2).sum() / (wn**2).sum())
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
