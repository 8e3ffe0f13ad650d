"""Prototype (development tool, not product code): GPTQ in MLX's affine format on swan's plan, with the
input covariance H = Σ x xᵀ measured on tokens the model wrote itself (issue #10, docs/allocation.md §8).

    python bench/py/gptq_proto.py SOURCE TOKENS.json PLAN_DIR OUT_DIR [--damp 0.01]
        [--keep PATTERN ...] [--search] [--best-of-plan] [--hessians CACHE.npz] [--block 128]

TOKENS.json: the windows `scripts/mlx_imatrix.py --self N --dump-tokens FILE` wrote (never an
evaluation text). PLAN_DIR: a swan output directory; every tensor it quantizes (a `.scales` entry)
is re-quantized from SOURCE with GPTQ at that tensor's bits / group size (its config.json
"quantization" entry, else the default), and OUT_DIR is PLAN_DIR with those tensors replaced: an
mlx-lm-loadable quantized model, so bench/py/dev_kl.py measures it like any swan output.
--keep PATTERN (substring of the module path) keeps that tensor as PLAN_DIR has it (e.g.
`embed_tokens`: GPTQ for the linears only).

H: the source in float32 through mlx-lm, hooks on nn.Linear and Embedding.as_linear (the tied head),
as scripts/mlx_imatrix.py; modules called on the same input object (q/k/v, gate/up) share one H.

GPTQ (Frantar et al. 2022): damp = --damp · mean(diag H) added to the diagonal, U = upper Cholesky
factor of H⁻¹, columns in order, lazy batch updates of --block columns. Groups are `group_size`
consecutive input columns of a row; a group's scale and bias are fixed when its first column is
reached, from the error-updated weights, by MLX's RTN rule (src/mlx/affine.ts, 'metal' rules: bias
at the group's largest-magnitude edge, scale = edge / round(edge / ((max − min)/n)), both rounded to
bf16). Each weight then gets the code whose exact bf16 decode rT(rT(s·q) + b) is nearest (as swan's
writer does), and its error is fed forward to the later columns. Only the codes differ from RTN.
--search: each group's scale/bias by swan's step search instead (edge bias kept; column weights
diag H capped at 100× its mean, as `--imatrix`), on the error-updated weights.
--best-of-plan: per tensor, GPTQ's result only where its tr(E H Eᵀ) (E = W − Ŵ) is below PLAN_DIR's.
"""
import argparse
import glob
import json
import os
import shutil
import sys
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_map
from mlx_lm import load


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- H from the model's own tokens
def hessians(source, windows):
    model, _ = load(source)
    model.update(tree_map(lambda p: p.astype(mx.float32) if mx.issubdtype(p.dtype, mx.floating) else p, model.parameters()))
    mx.eval(model.parameters())
    names = {}
    for path, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)) and getattr(m, "weight", None) is not None and m.weight.ndim == 2:
            names[id(m)] = f"{path}.weight"
    sums, alias, state = {}, {}, {"x": None, "name": None, "step": {}}

    def add(module, x):
        name = names.get(id(module))
        if name is None:
            return
        if x is state["x"]:  # the same input object as the previous call: q/k/v, gate/up
            alias[name] = state["name"]
            return
        state["x"], state["name"] = x, name
        x2 = x.astype(mx.float32).reshape(-1, x.shape[-1])
        state["step"][name] = x2.T @ x2

    linear_call, as_linear = nn.Linear.__call__, nn.Embedding.as_linear

    def linear(self, x):
        add(self, x)
        return linear_call(self, x)

    def embedding_as_linear(self, x):
        add(self, x)
        return as_linear(self, x)

    nn.Linear.__call__, nn.Embedding.as_linear = linear, embedding_as_linear
    tokens = 0
    try:
        for w in windows:
            state["step"] = {}
            model(mx.array(w)[None])
            mx.eval(list(state["step"].values()))
            for k, v in state["step"].items():
                a = np.array(v).astype(np.float64)
                sums[k] = sums[k] + a if k in sums else a
            state["x"] = None
            tokens += len(w)
    finally:
        nn.Linear.__call__, nn.Embedding.as_linear = linear_call, as_linear
    return sums, alias, tokens


# ---------------------------------------------------------------- MLX affine pieces (numpy)
def to_bf16(x):
    """Round float32 to the nearest bfloat16 (ties to even), returned as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return r.view(np.float32)


def round_half_away(t):
    return np.sign(t) * np.floor(np.abs(t) + np.float32(0.5))


def rtn_params(wg, n):
    """MLX RTN scale/bias ('metal' rules) of groups wg [rows, g] (float32), rounded to bf16."""
    f = np.float32
    wmin = wg.min(axis=1)
    wmax = np.maximum(wg.max(axis=1), f(0))  # the Metal kernel starts w_max at 0
    s0 = np.maximum((wmax - wmin) / f(n), f(1e-7)).astype(f)
    neg = np.abs(wmin) > np.abs(wmax)
    s0 = np.where(neg, s0, -s0)
    edge = np.where(neg, wmin, wmax).astype(f)
    q0 = round_half_away((edge / s0).astype(f))
    ok = q0 != 0
    scale = np.where(ok, edge / np.where(ok, q0, 1), s0).astype(f)
    bias = np.where(ok, edge, 0).astype(f)
    return to_bf16(scale), to_bf16(bias)


def searched_params(wg, n, c):
    """swan's `--rounding search` of a group's step (src/mlx/rounding-search.ts, approximately), weights c
    per column: bias at the largest-magnitude edge, 11 steps (other end − edge)/(n + δ), δ ∈ [−1, 1], each
    with its least-squares step for its codes, the best refined 4 times; kept only when its weighted
    error (bf16-rounded, nearest decode) beats MLX RTN's."""
    wg = wg.astype(np.float64)
    wmin, wmax = wg.min(axis=1), np.maximum(wg.max(axis=1), 0)
    neg = np.abs(wmin) > np.abs(wmax)
    edge, other = np.where(neg, wmin, wmax), np.where(neg, wmax, wmin)
    r = wg - edge[:, None]

    def ls_step(step):
        step = np.where(step == 0, 1e-30, step)
        q = np.clip(np.rint(r / step[:, None]), 0, n)
        den = (c * q * q).sum(axis=1)
        st = np.where(den > 0, (c * r * q).sum(axis=1) / np.where(den > 0, den, 1), step)
        err = (c * (r - st[:, None] * q) ** 2).sum(axis=1)
        return st, err

    best_s, best_e = None, None
    for delta in np.linspace(-1, 1, 11):
        st, err = ls_step((other - edge) / (n + delta))
        if best_s is None:
            best_s, best_e = st, err
        else:
            better = err < best_e
            best_s, best_e = np.where(better, st, best_s), np.where(better, err, best_e)
    for _ in range(4):
        st, err = ls_step(best_s)
        better = err < best_e
        best_s, best_e = np.where(better, st, best_s), np.where(better, err, best_e)
    s, b = to_bf16(best_s.astype(np.float32)), to_bf16(edge.astype(np.float32))
    s0, b0 = rtn_params(wg.astype(np.float32), n)
    wf = wg.astype(np.float32)

    def exact_err(s, b):
        _, d = nearest_code(wf, s[:, None], b[:, None], n)
        return (c * (wf - d).astype(np.float64) ** 2).sum(axis=1)

    keep = exact_err(s, b) < exact_err(s0, b0)
    return np.where(keep, s, s0), np.where(keep, b, b0)


def decode(s, b, q):
    return to_bf16(to_bf16(s * q) + b)


def nearest_code(w, s, b, n):
    """Per row: the code in [0, n] whose bf16 decode is nearest to w (the neighbours checked)."""
    q = np.clip(np.rint((w - b) / s), 0, n)
    best_q, best_d = q, decode(s, b, q)
    best_e = np.abs(w - best_d)
    for dq in (-1, 1):
        c = np.clip(q + dq, 0, n)
        d = decode(s, b, c)
        e = np.abs(w - d)
        better = e < best_e
        best_q, best_d, best_e = np.where(better, c, best_q), np.where(better, d, best_d), np.where(better, e, best_e)
    return best_q, best_d


# ---------------------------------------------------------------- GPTQ
def gptq(W, H, bits, g, damp, block, search=False):
    """W [rows, cols] float32 (bf16 values), H [cols, cols] float64 → codes, scales, biases, dequantized."""
    W = W.astype(np.float32).copy()
    rows, cols = W.shape
    n = (1 << bits) - 1
    H = H.copy()
    cw = np.minimum(np.diag(H), 100 * np.mean(np.diag(H)))  # swan's imatrix cap (IMATRIX_CLIP)
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H[np.diag_indices(cols)] += damp * np.mean(np.diag(H))
    Hinv = np.linalg.inv(H)
    U = np.linalg.cholesky((Hinv + Hinv.T) / 2).T.astype(np.float32)  # upper: H⁻¹ = UᵀU
    Q = np.zeros((rows, cols), np.uint8)
    D = np.zeros((rows, cols), np.float32)
    S = np.zeros((rows, cols // g), np.float32)
    B = np.zeros((rows, cols // g), np.float32)
    s = b = None
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].copy()
        E1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            j = i1 + i
            if j % g == 0:  # groups never straddle a block (block is a multiple of every group size)
                s, b = searched_params(W1[:, i : i + g], n, cw[j : j + g]) if search else rtn_params(W1[:, i : i + g], n)
                S[:, j // g], B[:, j // g] = s, b
            w = W1[:, i]
            q, d = nearest_code(w, s, b, n)
            Q[:, j], D[:, j] = q, d
            e = (w - d) / U1[i, i]
            W1[:, i:] -= np.outer(e, U1[i, i:])
            E1[:, i] = e
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return Q, S, B, D


def pack(Q, bits):
    """Codes [rows, cols] → MLX's packed uint32 words, an LSB-first bit stream per row."""
    rows, cols = Q.shape
    bitsarr = ((Q[:, :, None].astype(np.uint32) >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    by = np.packbits(bitsarr.reshape(rows, cols * bits), axis=1, bitorder="little")
    return np.ascontiguousarray(by).view("<u4")


def weighted_err(W, D, H):
    E = (W - D).astype(np.float64)
    return float(np.einsum("ij,jk,ik->", E, H, E))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("tokens")
    ap.add_argument("plan")
    ap.add_argument("out")
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--keep", action="append", default=[])
    ap.add_argument("--best-of-plan", action="store_true", help="per tensor, keep PLAN_DIR's rounding where its tr(EHEᵀ) is not above GPTQ's")
    ap.add_argument("--search", action="store_true", help="each group's step by swan's search (weights diag H, capped), not MLX RTN")
    ap.add_argument("--hessians", help="cache of H (npz): read when it exists, else written")
    a = ap.parse_args()
    if a.block % 128:
        sys.exit("gptq_proto: --block must be a multiple of 128 (no group may straddle a block)")
    t0 = time.time()
    if a.hessians and os.path.exists(a.hessians):
        z = np.load(a.hessians, allow_pickle=False)
        meta = json.loads(str(z["__meta__"]))
        sums = {k: z[k] for k in z.files if k != "__meta__"}
        alias, tokens = meta["alias"], meta["tokens"]
    else:
        windows = json.load(open(a.tokens))
        sums, alias, tokens = hessians(a.source, windows)
        if a.hessians:
            np.savez(a.hessians, __meta__=json.dumps({"alias": alias, "tokens": tokens}), **sums)
    log(f"H: {len(sums)} distinct inputs ({len(alias)} shared), {tokens} tokens, {time.time() - t0:.1f} s")

    cfg = json.load(open(os.path.join(a.plan, "config.json")))
    qcfg = cfg["quantization"]
    shards = sorted(glob.glob(os.path.join(a.plan, "*.safetensors")))
    src = {}
    for f in sorted(glob.glob(os.path.join(a.source, "*.safetensors"))):
        src.update(mx.load(f))
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.plan):
        if not f.endswith(".safetensors"):
            shutil.copy(os.path.join(a.plan, f), os.path.join(a.out, f))
    t1 = time.time()
    stats = []
    for shard in shards:
        tensors = mx.load(shard)
        for key in sorted(k for k in tensors if k.endswith(".scales")):
            mod = key[: -len(".scales")]
            if any(p in mod for p in a.keep):
                continue
            e = qcfg.get(mod, qcfg)
            bits, g = e["bits"], e["group_size"]
            wname = mod + ".weight"
            hname = wname if wname in sums else alias.get(wname)
            hname = alias.get(hname, hname)
            if hname not in sums:
                sys.exit(f"gptq_proto: no H for {wname}")
            H = sums[hname]
            Wsrc = np.array(src[wname].astype(mx.float32))
            tt = time.time()
            Q, S, B, D = gptq(Wsrc, H, bits, g, a.damp, a.block, a.search)
            # the same tensor's weighted error under the plan's own output (swan's rounding), for reference
            Dplan = np.array(mx.dequantize(tensors[mod + ".weight"], tensors[key].astype(mx.float32), tensors[mod + ".biases"].astype(mx.float32), group_size=g, bits=bits))
            eg, ep = weighted_err(Wsrc, D, H), weighted_err(Wsrc, Dplan, H)
            stats.append({"tensor": mod, "bits": bits, "group_size": g, "h_err_gptq": eg, "h_err_plan": ep, "seconds": time.time() - tt})
            log(f"{mod} {bits}/{g}: tr(EHEᵀ) gptq/plan = {eg / ep:.3f} ({time.time() - tt:.1f} s)")
            if a.best_of_plan and ep <= eg:
                stats[-1]["kept_plan"] = True
                continue
            dt = tensors[key].dtype
            tensors[mod + ".weight"] = mx.array(pack(Q, bits))
            tensors[key] = mx.array(S).astype(dt)
            tensors[mod + ".biases"] = mx.array(B).astype(dt)
            chk = np.array(mx.dequantize(tensors[mod + ".weight"], tensors[key].astype(mx.float32), tensors[mod + ".biases"].astype(mx.float32), group_size=g, bits=bits))
            ref = np.repeat(S, g, axis=1) * Q + np.repeat(B, g, axis=1)
            if not np.array_equal(chk, ref):  # the packing, checked through real MLX
                sys.exit(f"gptq_proto: {mod}: MLX's dequantize differs from scale·q + bias")
        mx.save_safetensors(os.path.join(a.out, os.path.basename(shard)), tensors, metadata={"format": "mlx"})
    json.dump({"damp": a.damp, "block": a.block, "keep": a.keep, "search": a.search, "best_of_plan": a.best_of_plan, "tokens": tokens, "tensors": stats}, open(os.path.join(a.out, "gptq-stats.json"), "w"), indent=1)
    tot_g = sum(min(s["h_err_gptq"], s["h_err_plan"]) if a.best_of_plan else s["h_err_gptq"] for s in stats)
    tot_p = sum(s["h_err_plan"] for s in stats)
    log(f"{sum(1 for s in stats if s.get('kept_plan'))} kept from the plan; {len(stats)} tensors in {time.time() - t1:.1f} s; Σ tr(EHEᵀ) gptq/plan = {tot_g / tot_p:.3f}")


if __name__ == "__main__":
    main()
