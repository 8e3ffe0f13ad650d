"""Independent numpy reference for the swan metric and kernel tests.

Usage: metrics_ref.py <manifest.json>
The manifest lists cases {name, kind, rows, cols, offset, dtype} stored in one little-endian binary
file (manifest["data"]). Prints one JSON object {name: result} on stdout. Kinds:
  eigvalsh     float64 n×n symmetric -> {"eig": ascending eigenvalues}
  svd          float32 -> {"s": exact singular values (float64 SVD), "rsvd": torch.svd_lowrank's
               algorithm in float64 with numpy's Householder QR and its own sketch (q=256, niter=2),
               "c_ref": concentration as the reference computes it}
  kurtosis     float32 -> {"kurtosis": population excess kurtosis in float64}
  error_proxy  float32 -> {"nrmse": 4-bit g128 asymmetric RTN with float32 ops, float64 sums}
"""
import json
import sys

import numpy as np


def concentration(s):
    s = np.asarray(s, dtype=np.float64)
    e = s * s
    total = e.sum()
    if total < 1e-12:
        return 0.0
    t = max(1, len(s) // 10)
    return float(e[:t].sum() / total)


def svd_lowrank_values(a, q=256, niter=2, seed=0):
    """torch.svd_lowrank(A, q, niter) singular values: transposed branch (n > q), Householder QR."""
    rng = np.random.default_rng(seed)
    m, n = a.shape
    at = a.T
    r = rng.standard_normal((m, q))
    qb = np.linalg.qr(at @ r)[0]
    for _ in range(niter):
        qb = np.linalg.qr(a @ qb)[0]
        qb = np.linalg.qr(at @ qb)[0]
    b_t = a @ qb
    return np.linalg.svd(b_t, compute_uv=False)


def rtn_nrmse(w, bits=4, group=128):
    w = np.asarray(w, dtype=np.float32)
    rows, cols = w.shape
    padded = -(-cols // group) * group
    wp = np.zeros((rows, padded), dtype=np.float32)
    wp[:, :cols] = w
    g = wp.reshape(rows, padded // group, group)
    mn = g.min(axis=-1, keepdims=True)
    mx = g.max(axis=-1, keepdims=True)
    scale = np.maximum((mx - mn) / np.float32(2**bits - 1), np.float32(1e-12))
    q = np.clip(np.round((g - mn) / scale), 0, 2**bits - 1).astype(np.float32)
    what = q * scale + mn
    err = (what - g).astype(np.float64)
    g64 = g.astype(np.float64)
    return float(np.sqrt(np.mean(err * err)) / np.sqrt(np.mean(g64 * g64)))


def kurtosis(w):
    x = np.asarray(w, dtype=np.float64).ravel()
    d = x - x.mean()
    var = np.mean(d * d)
    return float(np.mean((d / np.sqrt(var)) ** 4) - 3.0)


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    raw = open(manifest["data"], "rb").read()
    out = {}
    for case in manifest["cases"]:
        dt = np.float64 if case.get("dtype") == "f64" else np.float32
        rows, cols = case["rows"], case["cols"]
        a = np.frombuffer(raw, dtype=dt, count=rows * cols, offset=case["offset"]).reshape(rows, cols)
        kind = case["kind"]
        if kind == "eigvalsh":
            out[case["name"]] = {"eig": np.linalg.eigvalsh(a.astype(np.float64)).tolist()}
        elif kind == "svd":
            a64 = a.astype(np.float64)
            s = np.linalg.svd(a64, compute_uv=False)
            res = {"s": s.tolist()}
            if min(rows, cols) > 512:
                rs = svd_lowrank_values(a64)
                res["rsvd"] = rs.tolist()
                res["c_ref"] = concentration(rs)
                res["c_exact_top256"] = concentration(s[:256])
            else:
                res["c_ref"] = concentration(s)
            res["c_full"] = concentration(s)
            out[case["name"]] = res
        elif kind == "kurtosis":
            out[case["name"]] = {"kurtosis": kurtosis(a)}
        elif kind == "error_proxy":
            out[case["name"]] = {"nrmse": rtn_nrmse(a)}
        else:
            raise SystemExit(f"unknown kind {kind}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
