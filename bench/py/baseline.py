"""Python baseline for `npm run bench`: the reference analyzer's four metric operations, timed per
operation on generated matrices.

    svd                 torch.svd_lowrank(W, q=256, niter=2) (torch.linalg.svd when min(m, n) <= 512)
    kurtosis            population excess kurtosis of all entries
    output_sensitivity  32 unit-norm Gaussian probes, uniform noise of width range/16, ||(W+E)X - WX|| / ||WX||
    error_proxy         asymmetric min-max RTN, 4 bits, groups of 128 along rows, zero-padded, NRMSE

With torch missing, the same algorithms run in numpy (svd_lowrank re-implemented step for step:
Gaussian sketch, Householder QR via numpy.linalg.qr, niter=2 power iterations, SVD of the small B).

Input (argv[1]): JSON {"shapes": [{"label", "rows", "cols", "measure_rows", "repeats"}], "seed", "impl"},
or {"model": DIR, "seed"}: the reference analyzer's work on a real checkpoint (model_main below).
Output: one JSON object per line on stdout; the first describes the runtime.
Matrices: w = z * exp(a z') * norm (z, z' standard normal, a = 0.3), float32, seeded; same distribution
as the TypeScript side, not the same values (timings do not depend on the values).
"""
import json
import math
import os
import resource
import sys
import time

import numpy as np

try:
    if os.environ.get("SWAN_BENCH_IMPL") == "numpy":
        raise ImportError("numpy requested")
    import torch

    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

TAIL = 0.3
RANK = 256
NITER = 2
PROBES = 32


def generate(rows, cols, seed):
    rng = np.random.default_rng(seed)
    out = np.empty((rows, cols), dtype=np.float32)
    norm = np.float32(math.exp(-TAIL * TAIL) / math.sqrt(cols))
    step = max(1, (1 << 24) // cols)  # bounded temporaries: ~64 MiB at a time
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        z = rng.standard_normal((r1 - r0, cols), dtype=np.float32)
        s = rng.standard_normal((r1 - r0, cols), dtype=np.float32)
        np.multiply(s, TAIL, out=s)
        np.exp(s, out=s)
        np.multiply(z, s, out=z)
        np.multiply(z, norm, out=out[r0:r1])
    return out


def concentration(s):
    e = s.astype(np.float64) ** 2
    t = max(1, len(e) // 10)
    total = e.sum()
    return float(e[:t].sum() / total) if total >= 1e-12 else 0.0


# ---- torch: the reference's operations ---------------------------------------------------------


def t_svd(w):
    m, n = w.shape
    k = min(RANK, m, n)
    if min(m, n) <= 2 * RANK:
        s = torch.linalg.svd(w, full_matrices=False).S
    else:
        _, s, _ = torch.svd_lowrank(w, q=k, niter=NITER)
    return concentration(s.numpy())


def t_kurtosis(w):
    x = w.flatten()
    mean = x.mean()
    d = x - mean
    std = d.pow(2).mean().sqrt()
    return float(((d / std) ** 4).mean() - 3)


def t_output(w):
    m, n = w.shape
    p = min(PROBES, n)
    x = torch.randn(n, p)
    x = x / (x.norm(dim=0, keepdim=True) + 1e-8)
    r = w.max() - w.min()
    e = (torch.rand_like(w) * 2 - 1) * (r / 32)
    y = w @ x
    yn = (w + e) @ x
    return float((yn - y).norm() / (y.norm() + 1e-8))


def t_error(w, bits=4, group=128):
    m, n = w.shape
    pad = (-n) % group
    wp = torch.nn.functional.pad(w, (0, pad)) if pad else w
    g = wp.reshape(-1, group)
    mn = g.min(dim=1, keepdim=True).values
    mx = g.max(dim=1, keepdim=True).values
    qmax = 2**bits - 1
    scale = ((mx - mn) / qmax).clamp(min=1e-12)
    q = ((g - mn) / scale).round().clamp(0, qmax)
    err = q * scale + mn - g
    return float(err.pow(2).mean().sqrt() / g.pow(2).mean().sqrt())


# ---- numpy: the same algorithms --------------------------------------------------------------


def n_svd(w, rng):
    m, n = w.shape
    k = min(RANK, m, n)
    if min(m, n) <= 2 * RANK:
        return concentration(np.linalg.svd(w, compute_uv=False))
    # torch.svd_lowrank's branch for n > q: the basis of W^T, then B_t = W Q.
    r = rng.standard_normal((m, k), dtype=np.float32)
    q, _ = np.linalg.qr(w.T @ r)
    for _ in range(NITER):
        q, _ = np.linalg.qr(w @ q)
        q, _ = np.linalg.qr(w.T @ q)
    b_t = w @ q
    _, s, _ = np.linalg.svd(b_t, full_matrices=False)
    return concentration(s)


def n_kurtosis(w):
    x = w.reshape(-1)
    mean = x.mean(dtype=np.float64)
    d = x - np.float32(mean)
    std = math.sqrt(float(np.mean(d * d, dtype=np.float64)))
    return float(np.mean((d / np.float32(std)) ** 4, dtype=np.float64) - 3)


def n_output(w, rng):
    m, n = w.shape
    p = min(PROBES, n)
    x = rng.standard_normal((n, p), dtype=np.float32)
    x = x / (np.linalg.norm(x, axis=0, keepdims=True) + np.float32(1e-8))
    r = w.max() - w.min()
    e = (rng.random(w.shape, dtype=np.float32) * 2 - 1) * (r / 32)
    y = w @ x
    yn = (w + e) @ x
    return float(np.linalg.norm(yn - y) / (np.linalg.norm(y) + 1e-8))


def n_error(w, bits=4, group=128):
    m, n = w.shape
    pad = (-n) % group
    wp = np.pad(w, ((0, 0), (0, pad))) if pad else w
    g = wp.reshape(-1, group)
    mn = g.min(axis=1, keepdims=True)
    mx = g.max(axis=1, keepdims=True)
    qmax = 2**bits - 1
    scale = np.maximum((mx - mn) / qmax, np.float32(1e-12))
    q = np.clip(np.round((g - mn) / scale), 0, qmax)
    err = q * scale + mn - g
    return float(math.sqrt(float(np.mean(err * err, dtype=np.float64))) / math.sqrt(float(np.mean(g * g, dtype=np.float64))))


def proc_busy():
    """Seconds of CPU all processes used so far (/proc/stat, USER_HZ = 100), or None off Linux."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        return (f[0] + f[1] + f[2] + sum(f[5:8])) / 100.0
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed(fn, *args):
    t0 = time.perf_counter()
    v = fn(*args)
    return v, time.perf_counter() - t0


def four_metrics(w, rng):
    """(svd concentration, kurtosis, output delta, error NRMSE) and the seconds of each, torch or numpy."""
    if HAVE_TORCH:
        runs = [timed(t_svd, w), timed(t_kurtosis, w), timed(t_output, w), timed(t_error, w)]
    else:
        runs = [timed(n_svd, w, rng), timed(n_kurtosis, w), timed(n_output, w, rng), timed(n_error, w)]
    return tuple(v for v, _ in runs), tuple(t for _, t in runs)


SAFETENSORS_DTYPES = {"BF16": "bf16", "F16": np.float16, "F32": np.float32}
MIN_TENSOR_PARAMS = 1024


def read_tensors(model_dir):
    """Every tensor of a checkpoint as float32, one at a time, in shard-name then file order (the reference's order up to its index file)."""
    shards = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    for shard in shards:
        path = os.path.join(model_dir, shard)
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
        for name, t in header.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            kind = SAFETENSORS_DTYPES.get(t["dtype"])
            if kind is None:
                continue
            raw = data[a:b]
            if kind == "bf16":
                w = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                w = raw.view(kind).astype(np.float32)
            yield name, t["shape"], w.reshape(t["shape"])


def reduce_2d(w):
    """The reference's 2-D view: 3-D experts (E<=4 stacked, else 4 sampled slices), >=4-D flattened (shape[0], -1)."""
    if w.ndim == 2:
        return w
    if w.ndim == 3:
        e = w.shape[0]
        if e > 4:
            w = w[[int(i) for i in np.floor(np.linspace(0, e - 1, 4, dtype=np.float32))]]
        return w.reshape(-1, w.shape[-1])
    return w.reshape(w.shape[0], -1)


def model_main(spec):
    """
    What the reference analyzer does per tensor of a real checkpoint (swan-reference.md 1.2-1.3):
    read it as float32; 1-D or [1, N]: no metrics; fewer than 1024 weights: no metrics; else the
    2-D reduction and all four metrics (protected tensors, the embedding included). Timed end to end
    (reading included), with per-metric seconds, CPU seconds and peak RSS.
    """
    seed = int(spec.get("seed", 1))
    runtime(seed)
    rng = np.random.default_rng(seed + 1)
    warm_up(rng)
    sums = {"svd": 0.0, "kurtosis": 0.0, "output_sensitivity": 0.0, "error_proxy": 0.0}
    scored = skipped = 0
    b0, c0, t0 = proc_busy(), cpu_seconds(), time.perf_counter()
    for _name, shape, w_np in read_tensors(spec["model"]):
        if len(shape) <= 1 or (len(shape) == 2 and min(shape) == 1) or w_np.size < MIN_TENSOR_PARAMS:
            skipped += 1
            continue
        w_np = np.ascontiguousarray(reduce_2d(w_np))
        w = torch.from_numpy(w_np) if HAVE_TORCH else w_np
        _, secs = four_metrics(w, rng)
        for k, v in zip(sums, secs):
            sums[k] += v
        scored += 1
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    b1 = proc_busy()
    other = max(0.0, (b1 - b0 - cpu) / wall) if b0 is not None and b1 is not None else None
    print(json.dumps({"kind": "model", "scored": scored, "skipped": skipped, "seconds": sums, "wall": wall, "cpu": cpu,
                      "other_cores": other, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def runtime(seed):
    """Seed the draws and print the runtime line."""
    impl = "torch" if HAVE_TORCH else "numpy"
    info = {"kind": "runtime", "impl": impl, "python": sys.version.split()[0], "numpy": np.__version__}
    if HAVE_TORCH:
        torch.manual_seed(seed)
        info.update(torch=torch.__version__, threads=torch.get_num_threads(), mkl=bool(torch.backends.mkl.is_available()))
    else:
        info.update(threads=os.cpu_count())
    print(json.dumps(info), flush=True)


def warm_up(rng):
    """First calls pay for library initialisation and thread-pool start."""
    warm = generate(640, 768, 1)
    if HAVE_TORCH:
        wt = torch.from_numpy(warm)
        t_svd(wt), t_kurtosis(wt), t_output(wt), t_error(wt)
    else:
        n_svd(warm, rng), n_kurtosis(warm), n_output(warm, rng), n_error(warm)


def main():
    spec = json.loads(sys.argv[1])
    if "model" in spec:
        model_main(spec)
        return
    seed = int(spec.get("seed", 1))
    runtime(seed)
    rng = np.random.default_rng(seed + 1)
    warm_up(rng)
    for i, sh in enumerate(spec["shapes"]):
        rows = int(sh.get("measure_rows") or sh["rows"])
        cols = int(sh["cols"])
        w_np = generate(rows, cols, seed * 1000 + i)
        w = torch.from_numpy(w_np) if HAVE_TORCH else w_np
        runs = []
        for _ in range(int(sh.get("repeats", 1))):
            b0, c0, t0 = proc_busy(), cpu_seconds(), time.perf_counter()
            (svd, kurt, delta, nrmse), (ts, tk, to, te) = four_metrics(w, rng)
            wall = time.perf_counter() - t0
            cpu = cpu_seconds() - c0
            b1 = proc_busy()
            other = max(0.0, (b1 - b0 - cpu) / wall) if b0 is not None and b1 is not None else None
            runs.append({
                "seconds": {"svd": ts, "kurtosis": tk, "output_sensitivity": to, "error_proxy": te},
                "total": ts + tk + to + te,
                "wall": wall,
                "cpu": cpu,
                "other_cores": other,
                "values": {"svd_concentration": svd, "kurtosis": kurt, "output_delta": delta, "error_nrmse": nrmse},
            })
        del w, w_np
        runs.sort(key=lambda r: r["total"])
        med = runs[len(runs) // 2]
        out = {"kind": "shape", "label": sh["label"], "rows": int(sh["rows"]), "cols": cols, "measured_rows": rows,
               "repeats": len(runs), "totals": [r["total"] for r in runs], **med,
               "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
