"""Independent reference for `swan imatrix`: the same statistic computed by a plain numpy float64
Llama (np_llama_ppl.Llama: own safetensors reader, own forward; its `tap` sees each linear
layer's input), not by mlx-lm.

Usage: np_imatrix_ref.py <hf-llama-dir> (--text FILE --seq-len N | --tokens windows.json) [--covariance]
  --text: tokens from the HF tokenizer (transformers), cut into windows of N (tail kept when >= 2);
  --tokens: the windows as JSON lists (what mlx_imatrix.py --dump-tokens wrote).
Prints {"tokens": T, "entries": {"<weight name>": [mean of x_j^2 over every token]}} for every
linear input: q/k/v (input norm), o_proj (attention output), gate/up (post-attention norm),
down (SiLU(gate)·up) and the head (final norm; the embedding's name when tied).
--covariance adds "covariance": {"<weight name>": E[x xᵀ] row-major, flat} for every linear input.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from np_llama_ppl import Llama  # noqa: E402


def main():
    d = sys.argv[1]
    args = sys.argv[2:]
    covariance = "--covariance" in args
    args = [a for a in args if a != "--covariance"]
    if args[0] == "--text":
        from transformers import AutoTokenizer

        text, seq_len = open(args[1], encoding="utf-8").read(), int(args[3])
        ids = AutoTokenizer.from_pretrained(d).encode(text)
        windows = [ids[i : i + seq_len] for i in range(0, len(ids), seq_len) if len(ids[i : i + seq_len]) >= 2]
    else:
        windows = json.load(open(args[1]))
    m = Llama(d)
    sums, counts, outer = {}, {}, {}

    def tap(name, x):
        sums[name] = sums.get(name, 0) + (x * x).sum(0)
        counts[name] = counts.get(name, 0) + x.shape[0]
        if covariance:
            outer[name] = outer.get(name, 0) + x.T @ x

    for win in windows:
        m.logits(np.array(win, dtype=np.int64), tap)
    out = {"tokens": sum(len(w) for w in windows), "entries": {k: (sums[k] / counts[k]).tolist() for k in sums}}
    if covariance:
        out["covariance"] = {k: (outer[k] / counts[k]).ravel().tolist() for k in outer}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
