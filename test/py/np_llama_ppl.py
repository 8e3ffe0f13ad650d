"""Independent reference for `swan eval`: the same windowing protocol, run another way.

Usage: np_llama_ppl.py <hf-llama-dir> <ids.bin> <seq_len> <samples> <seed> [--tail]

- ids: uint16 little-endian token ids from the fixture (text/*.tok512.bin, [BOS] + llama2.c
  encode(text)), not the HF tokenizer that mlx_eval.py uses;
- weights: read straight from model.safetensors (own parser, bf16/f16/f32), not through mlx;
- forward: a plain numpy float64 Llama (RMSNorm, rotate-half RoPE, GQA causal attention, SwiGLU,
  tied or untied head), not mlx-lm's model code;
- windows: mlx_eval.py's rule (non-overlapping, tail dropped, default_rng(seed).choice(n, samples)
  sorted; samples 0 = all). --tail also scores the last partial window, which is the fixture
  README's protocol (its 5.0486 for stories260K on TinyStories).
Prints {"ppl", "mean_ce", "tokens_scored", "windows", "window_ce": [mean CE per window]}.
"""
import json
import math
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        if t["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif t["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2")
        elif t["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        else:
            raise SystemExit(f"unsupported dtype {t['dtype']} for {name}")
        out[name] = arr.astype(np.float64).reshape(t["shape"])
    return out


class Llama:
    def __init__(self, d):
        cfg = json.load(open(os.path.join(d, "config.json")))
        self.w = read_safetensors(os.path.join(d, "model.safetensors"))
        self.L = cfg["num_hidden_layers"]
        self.H = cfg["num_attention_heads"]
        self.KV = cfg.get("num_key_value_heads", self.H)
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // self.H
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def norm(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x, T):
        inv = 1.0 / self.theta ** (np.arange(0, self.hd, 2) / self.hd)
        f = np.outer(np.arange(T), inv)
        cos, sin = np.cos(np.concatenate([f, f], -1)), np.sin(np.concatenate([f, f], -1))
        h = self.hd // 2
        rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
        return x * cos + rot * sin

    def logits(self, ids, tap=None):
        """Logits of one window; tap(weight name, input) sees the input of every linear layer."""
        tap = tap or (lambda name, x: None)
        T = len(ids)
        w = self.w
        x = w["model.embed_tokens.weight"][ids]
        mask = np.triu(np.full((T, T), -np.inf), 1)

        def linear(name, h):
            tap(name, h)
            return h @ w[name].T

        for i in range(self.L):
            p = f"model.layers.{i}."
            h = self.norm(x, w[p + "input_layernorm.weight"])
            q = linear(p + "self_attn.q_proj.weight", h).reshape(T, self.H, self.hd).transpose(1, 0, 2)
            k = linear(p + "self_attn.k_proj.weight", h).reshape(T, self.KV, self.hd).transpose(1, 0, 2)
            v = linear(p + "self_attn.v_proj.weight", h).reshape(T, self.KV, self.hd).transpose(1, 0, 2)
            q, k = self.rope(q, T), self.rope(k, T)
            rep = self.H // self.KV
            k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(self.hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            a = (s / s.sum(-1, keepdims=True)) @ v
            x = x + linear(p + "self_attn.o_proj.weight", a.transpose(1, 0, 2).reshape(T, self.H * self.hd))
            h = self.norm(x, w[p + "post_attention_layernorm.weight"])
            g = linear(p + "mlp.gate_proj.weight", h)
            u = linear(p + "mlp.up_proj.weight", h)
            x = x + linear(p + "mlp.down_proj.weight", (g / (1 + np.exp(-g))) * u)
        head = "lm_head.weight" if "lm_head.weight" in w else "model.embed_tokens.weight"
        return linear(head, self.norm(x, w["model.norm.weight"]))


def main():
    d, ids_file, seq_len, samples, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    tail = "--tail" in sys.argv[6:]
    ids = np.fromfile(ids_file, dtype="<u2").astype(np.int64)
    n = len(ids) // seq_len
    idx = np.arange(n)
    if 0 < samples < n:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))
    wins = [ids[i * seq_len : (i + 1) * seq_len] for i in idx]
    if tail and len(ids) > n * seq_len + 1:
        wins.append(ids[n * seq_len :])
    m = Llama(d)
    ce_all, per = [], []
    for win in wins:
        z = m.logits(win[:-1])
        z = z - z.max(-1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        ce = -lp[np.arange(len(win) - 1), win[1:]]
        ce_all.append(ce)
        per.append(float(ce.mean()))
    ce = np.concatenate(ce_all)
    print(json.dumps({"ppl": math.exp(ce.mean()), "mean_ce": float(ce.mean()), "tokens_scored": int(ce.size), "windows": len(wins), "window_ce": per}))


if __name__ == "__main__":
    main()
