"""Load each MLX model directory with mlx-lm (strict weights) and run 4 tokens through it.
Prints JSON: per directory, whether every logit is finite (or the load error)."""
import json
import sys

import mlx.core as mx
from mlx_lm import load


def check(path):
    try:
        model, _ = load(path)  # load_weights(strict=True) inside
        logits = model(mx.array([[1, 2, 3, 4]]))
        return {"dir": path, "finite": bool(mx.all(mx.isfinite(logits)).item()), "shape": list(logits.shape)}
    except Exception as e:  # reported, and the test fails on it
        return {"dir": path, "error": f"{type(e).__name__}: {e}"}


if __name__ == "__main__":
    json.dump([check(p) for p in sys.argv[1:]], sys.stdout)
