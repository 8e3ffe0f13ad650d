"""Data-free development signal: KL(source ‖ variant) on the model's own samples (bench/py/self_samples.py),
for several quantization variants in one process (the source's log-probs computed once).

    python bench/py/dev_kl.py SOURCE SAMPLES.txt [--seq-len 256] [--windows 16] VARIANT [VARIANT ...]

A VARIANT is either a directory (a quantized model mlx-lm loads, e.g. a swan output) or a spec
"name:RULE;RULE;..." where RULE is "PATTERN=BITS/GROUP" (PATTERN a substring of the module path,
"*" every quantizable module, first match wins, BITS 0 = keep float): the source is quantized in
memory with mx.quantize round-to-nearest (MLX's CPU rules). Example:
    "emb-only:embed_tokens=4/64"   "all4:*=4/64"   "lin-only:embed_tokens=0/0;*=4/64"
Never point it at an evaluation text (../shared/fixtures/text): the samples are the only text.
Prints one JSON line per variant: {"variant", "kl", "kl_se", "top1"}; with --paired, every variant after
the first also gets "paired_diff" / "paired_se": the mean per-token KL difference to the first variant
and its standard error over tokens (the same windows, so most of the noise cancels).
"""
import argparse
import json
import math
import os
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_map
from mlx_lm import load
from mlx_lm.utils import dequantize_model


def f32(model):
    model.update(tree_map(lambda p: p.astype(mx.float32) if p.dtype in (mx.float16, mx.bfloat16) else p, model.parameters()))
    return model


def spec_model(source, spec):
    model, _ = load(source)
    rules = []
    for r in spec.split(";"):
        pat, fmt = r.split("=")
        b, g = (int(x) for x in fmt.split("/"))
        rules.append((pat, b, g))

    def pred(path, m):
        if not hasattr(m, "to_quantized"):
            return False
        for pat, b, g in rules:
            if pat == "*" or pat in path:
                if b == 0 or m.weight.shape[-1] % g:
                    return False
                return {"bits": b, "group_size": g}
        return False

    nn.quantize(model, class_predicate=pred)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("samples")
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--paired", action="store_true", help="also report each variant's per-token KL difference to the first")
    a = ap.parse_args()
    if "fixtures" + os.sep + "text" in os.path.abspath(a.samples):
        sys.exit("dev_kl: refusing an evaluation text; use the model's own samples")
    src, tok = load(a.source)
    f32(src)
    ids = tok.encode(open(a.samples, encoding="utf-8").read())
    n = min(a.windows, len(ids) // a.seq_len)
    data = np.asarray(ids[: n * a.seq_len], dtype=np.int32).reshape(n, a.seq_len)

    def lp(model, b):
        x = model(mx.array(b[:, :-1])).astype(mx.float32)
        return x - mx.logsumexp(x, axis=-1, keepdims=True)

    ref = []
    for s in range(0, n, a.batch):
        q = lp(src, data[s : s + a.batch])
        mx.eval(q)
        ref.append(q)
    del src
    first = None
    for v in a.variants:
        if os.path.isdir(v):
            model, _ = load(v)
            name = v
        else:
            name, spec = v.split(":", 1)
            model = spec_model(a.source, spec)
        f32(model)
        model = dequantize_model(model)
        kls, agree = [], 0
        for i, s in enumerate(range(0, n, a.batch)):
            p = lp(model, data[s : s + a.batch])
            q = ref[i]
            kl = (mx.exp(q) * (q - p)).sum(-1)
            same = (mx.argmax(q, -1) == mx.argmax(p, -1)).sum()
            mx.eval(kl, same)
            kls.append(np.array(kl).reshape(-1))
            agree += int(same.item())
        k = np.concatenate(kls).astype(np.float64)
        row = {"variant": name, "kl": float(k.mean()), "kl_se": float(k.std(ddof=1) / math.sqrt(k.size)), "top1": agree / k.size, "tokens": int(k.size)}
        if a.paired:
            if first is None:
                first = k
            else:
                d = k - first
                row.update(paired_diff=float(d.mean()), paired_se=float(d.std(ddof=1) / math.sqrt(d.size)))
        print(json.dumps(row), flush=True)
        del model
        mx.clear_cache()


if __name__ == "__main__":
    main()
