"""Load a reference model directory and a quantized one with mlx-lm (strict weights), run the same
tokens through both in float32, and print JSON: the relative RMS gap of the logits
‖a − b‖ / ‖a‖, the largest absolute gap, and the share of positions whose top-1 token agrees."""
import json
import sys

import mlx.core as mx
import mlx.nn as nn
from mlx_lm import load
from mlx_lm.utils import dequantize_model


def logits(path, tokens):
    model, _ = load(path)
    # Quantized matmul on CPU is slow: the dequantized weights give the same numbers in float32.
    model = dequantize_model(model)
    model.set_dtype(mx.float32)
    return model(tokens).astype(mx.float32)


def main(ref, other, n):
    tokens = mx.array([[(7 * i + 3) % 500 + 1 for i in range(int(n))]])
    a, b = logits(ref, tokens), logits(other, tokens)
    rel = (mx.sqrt(mx.sum((a - b) ** 2)) / mx.sqrt(mx.sum(a * a))).item()
    top = mx.mean((mx.argmax(a, axis=-1) == mx.argmax(b, axis=-1)).astype(mx.float32)).item()
    json.dump({"rel_rms": rel, "max_abs": mx.max(mx.abs(a - b)).item(), "top1_agree": top, "finite": bool(mx.all(mx.isfinite(b)).item())}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else 32)
