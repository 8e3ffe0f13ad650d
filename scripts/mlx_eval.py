"""Perplexity (and KL vs a source model) of MLX / HF models through real mlx-lm.

Windowing protocol (documented in docs/eval.md):
  1. tokens = tokenizer.encode(whole text)  (BOS added when the tokenizer adds it by default)
  2. cut into non-overlapping windows of seq_len tokens; the tail shorter than seq_len is dropped
  3. if samples < number of windows: choose `samples` windows with numpy default_rng(seed), kept in
     text order; otherwise use every window
  4. per window: float32 logits of w[:-1], cross-entropy against w[1:]; no context across windows
  5. PPL = exp(mean CE over all scored tokens); stderr = PPL * std(CE, ddof=1) / sqrt(N)
  6. --vs SRC: mean over the same tokens of KL(P_src || P_model), natural log
Prints one JSON object on stdout.
"""
import argparse
import json
import math
import sys

import mlx.core as mx
import numpy as np
from mlx_lm import load


def windows(tokens, seq_len, samples, seed):
    n = len(tokens) // seq_len
    if n == 0:
        raise SystemExit(f"text has {len(tokens)} tokens, fewer than --seq-len {seq_len}")
    idx = np.arange(n)
    if 0 < samples < n:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))
    arr = np.asarray(tokens[: n * seq_len], dtype=np.int32).reshape(n, seq_len)
    return arr[idx]


def log_probs(model, batch):
    logits = model(mx.array(batch[:, :-1])).astype(mx.float32)
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--text", required=True)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--vs", default=None)
    a = ap.parse_args()

    model, tok = load(a.model)
    ref = load(a.vs)[0] if a.vs else None
    with open(a.text, encoding="utf-8") as f:
        tokens = tok.encode(f.read())
    data = windows(tokens, a.seq_len, a.samples, a.seed)
    ce_all, kl_sum, kl_n = [], 0.0, 0
    for s in range(0, len(data), a.batch):
        b = data[s : s + a.batch]
        lp = log_probs(model, b)
        targets = mx.array(b[:, 1:])
        ce = -mx.take_along_axis(lp, targets[..., None], axis=-1).squeeze(-1)
        ce_all.append(np.array(ce).reshape(-1))
        if ref is not None:
            lq = log_probs(ref, b)
            kl = (mx.exp(lq) * (lq - lp)).sum(axis=-1)
            kl_sum += float(kl.sum())
            kl_n += kl.size
    ce = np.concatenate(ce_all).astype(np.float64)
    ppl = math.exp(ce.mean())
    out = {
        "model": a.model,
        "text": a.text,
        "seq_len": a.seq_len,
        "windows": int(len(data)),
        "tokens_scored": int(ce.size),
        "ppl": ppl,
        "ppl_stderr": ppl * ce.std(ddof=1) / math.sqrt(ce.size),
        "mean_ce": float(ce.mean()),
    }
    if ref is not None:
        out["kl"] = kl_sum / kl_n
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
