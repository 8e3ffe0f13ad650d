"""Compare two MLX model directories tensor by tensor (names, dtypes, shapes, raw bytes) and their
config.json quantization blocks. Prints a JSON report."""
import glob
import json
import os
import sys

import mlx.core as mx
import numpy as np


def tensors(d):
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "model*.safetensors"))):
        out.update(mx.load(f))
    return out


def raw(a):
    # bf16 has no numpy dtype: compare bit patterns through a same-size integer view
    if a.dtype in (mx.bfloat16, mx.float16):
        a = a.view(mx.uint16)
    return np.array(a).tobytes()


def main(a_dir, b_dir):
    a, b = tensors(a_dir), tensors(b_dir)
    diffs = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            diffs.append({"name": k, "problem": "missing in " + ("first" if k not in a else "second")})
            continue
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            diffs.append({"name": k, "problem": f"{x.dtype}{x.shape} vs {y.dtype}{y.shape}"})
        elif raw(x) != raw(y):
            diffs.append({"name": k, "problem": "bytes differ"})
    ca = json.load(open(os.path.join(a_dir, "config.json")))
    cb = json.load(open(os.path.join(b_dir, "config.json")))
    report = {
        "tensors": len(a),
        "diffs": diffs,
        "quantization_equal": ca.get("quantization") == cb.get("quantization"),
        "quantization_config_equal": ca.get("quantization_config") == cb.get("quantization_config"),
        "config_equal": ca == cb,
        "config_a": ca,
        "config_b": cb,
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
