"""Run real MLX affine quantize/dequantize on a batch of matrices (one process for all cases).

Usage: mlx_quantize.py DIR
  DIR/cases.json: [{"name", "dtype": "F32"|"F16"|"BF16", "rows", "cols", "bits", "group",
                    "offset", "mode"?}]  (mode: affine when absent; offset: byte offset of the raw little-endian weights in DIR/input.bin)
Writes DIR/output.bin and DIR/output.json: per case the byte ranges of wq (uint32), scales,
biases and the mx.dequantize result (raw bits of the case dtype; fp modes: uint8 scales, no biases,
dequantized to the case dtype).
"""

import json
import os
import sys

import mlx.core as mx
import numpy as np

mx.set_default_device(mx.cpu)

DT = {"F32": (mx.float32, np.uint32, mx.uint32, 4), "F16": (mx.float16, np.uint16, mx.uint16, 2),
      "BF16": (mx.bfloat16, np.uint16, mx.uint16, 2)}


def load(raw, dtype, rows, cols):
    mdt, npbits, mxbits, size = DT[dtype]
    bits = np.frombuffer(raw, dtype=npbits, count=rows * cols).reshape(rows, cols)
    return mx.array(bits).view(mdt)  # reinterpret the raw bits, no conversion


def raw_bits(a, dtype):
    _, _, mxbits, _ = DT[dtype]
    return np.array(a.view(mxbits)).tobytes()


def main():
    d = sys.argv[1]
    cases = json.load(open(os.path.join(d, "cases.json")))
    data = open(os.path.join(d, "input.bin"), "rb").read()
    out = bytearray()
    meta = []

    def put(b):
        start = len(out)
        out.extend(b)
        return [start, len(b)]

    for c in cases:
        size = DT[c["dtype"]][3]
        raw = data[c["offset"]: c["offset"] + c["rows"] * c["cols"] * size]
        w = load(raw, c["dtype"], c["rows"], c["cols"])
        mode = c.get("mode", "affine")
        if mode != "affine":
            wq, scales = mx.quantize(w, mode=mode)
            deq = mx.dequantize(wq, scales, mode=mode, dtype=w.dtype)
            mx.eval(wq, scales, deq)
            assert wq.dtype == mx.uint32 and scales.dtype == mx.uint8 and deq.dtype == w.dtype
            meta.append({"name": c["name"], "wq": put(np.array(wq).tobytes()), "scales": put(np.array(scales).tobytes()),
                         "deq": put(raw_bits(deq, c["dtype"]))})
            continue
        wq, scales, biases = mx.quantize(w, group_size=c["group"], bits=c["bits"])
        deq = mx.dequantize(wq, scales, biases, group_size=c["group"], bits=c["bits"])
        mx.eval(wq, scales, biases, deq)
        assert wq.dtype == mx.uint32 and scales.dtype == w.dtype and deq.dtype == w.dtype
        meta.append({
            "name": c["name"],
            "wq": put(np.array(wq).tobytes()),
            "scales": put(raw_bits(scales, c["dtype"])),
            "biases": put(raw_bits(biases, c["dtype"])),
            "deq": put(raw_bits(deq, c["dtype"])),
        })
    open(os.path.join(d, "output.bin"), "wb").write(bytes(out))
    json.dump({"mlx": mx.__version__, "device": str(mx.default_device()), "cases": meta},
              open(os.path.join(d, "output.json"), "w"))


if __name__ == "__main__":
    main()
