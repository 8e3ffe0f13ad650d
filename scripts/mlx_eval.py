"""Perplexity (and KL vs a source model) of MLX / HF models through real mlx-lm.

    python scripts/mlx_eval.py MODEL [MODEL ...] --text FILE [--seq-len 512] [--samples 64]
        [--seed 123] [--batch 8] [--vs SOURCE] [--compute-dtype float32|model] [--progress]
        [--dequantize auto|on|off]

Windowing protocol (docs/eval.md has the full text and the reasons):
  1. tokens = tokenizer.encode(whole text)  (BOS added when the tokenizer adds it by default; no EOS)
  2. cut into non-overlapping windows of seq_len tokens; the tail shorter than seq_len is dropped
  3. if 0 < samples < number of windows: choose `samples` windows with
     numpy.random.default_rng(seed).choice(n, samples, replace=False), kept in text order;
     otherwise (samples = 0 or >= n) use every window
  4. per window: float32 logits of w[:-1], cross-entropy against w[1:]; no context across windows,
     so the first token of each window is never scored
  5. PPL = exp(mean CE over all scored tokens); ppl_stderr = PPL * std(CE, ddof=1) / sqrt(N)
     (the same estimator as mlx_lm.perplexity); ppl_stderr_windows = PPL * std(window mean CE) / sqrt(W),
     the more honest error of a subset of windows
  6. --vs SOURCE: per scored token KL(P_source || P_model) = sum_v p_s(v) (log p_s(v) - log p_m(v)),
     natural log, averaged over the same tokens; top1_agree = share of tokens whose argmax agrees.
     The source's own PPL on the same windows is reported under "source".

Speed (docs/eval.md, "Cost"): on MLX's CPU backend quantized matmuls are slow, so by default
(--dequantize auto) quantized layers are dequantized once after loading (mlx_lm.utils.dequantize_model,
after the float32 cast, so the weights are exactly what the quantized kernels decode) and run as
float matmuls; on a GPU (Metal) the quantized kernels are kept. The fast BLAS for those float
matmuls is the caller's business (swan eval preloads the system OpenBLAS on Linux).

Several models are evaluated in one process (one start-up, one tokenisation per distinct tokenizer,
the source's log-probs computed once and kept while they fit in --cache-mb).

Output: one JSON object on stdout: {"protocol": {...}, "source": {...}?, "results": [{...}, ...]};
with a single MODEL the keys of its result are also repeated at the top level.
Errors: one line "mlx_eval: error: ..." on stderr and exit status 2.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
from mlx.utils import tree_map  # noqa: E402
from mlx_lm import load  # noqa: E402
from mlx_lm.utils import dequantize_model  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")


class EvalError(Exception):
    pass


def fail(msg):
    sys.stderr.write(f"mlx_eval: error: {msg}\n")
    sys.exit(2)


def windows(tokens, seq_len, samples, seed):
    n = len(tokens) // seq_len
    if n == 0:
        raise EvalError(f"the text has {len(tokens)} tokens, fewer than --seq-len {seq_len}")
    idx = np.arange(n)
    if 0 < samples < n:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))
    arr = np.asarray(tokens[: n * seq_len], dtype=np.int32).reshape(n, seq_len)
    return arr[idx], idx, n


def want_dequantize(mode):
    """auto: only where the quantized kernels are the slow path (MLX's CPU backend)."""
    if mode == "auto":
        return mx.default_device() == mx.cpu
    return mode == "on"


def load_model(path, compute_dtype, dequantize=False):
    if not os.path.isdir(path):
        raise EvalError(f"{path}: not a directory")
    try:
        model, tok = load(path)
    except Exception as e:  # mlx-lm raises many kinds; the message is what the user needs
        raise EvalError(f"{path}: mlx-lm cannot load it: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    if compute_dtype == "float32":
        # Float params (norms, float layers, scales, biases) to float32: activations then run in
        # float32, so the numbers measure the weights, not bf16 activation rounding (and the CPU
        # kernels are faster in float32). Dequantized weights are unchanged: bf16/f16 -> f32 is exact.
        model.update(tree_map(lambda p: p.astype(mx.float32) if p.dtype in (mx.float16, mx.bfloat16) else p, model.parameters()))
    if dequantize:
        # After the cast: scale·q + bias is decoded in the scales' dtype, as the quantized matmul does.
        model = dequantize_model(model)
        mx.eval(model.parameters())
    return model, tok


def blas_name():
    """Which BLAS serves MLX's CPU float matmuls: a preloaded system OpenBLAS, or the bundled one."""
    pre = os.environ.get("LD_PRELOAD", "")
    return "openblas (preloaded)" if "openblas" in pre else "bundled"


def tokenizer_key(path):
    h = hashlib.sha256()
    for f in TOKENIZER_FILES:
        p = os.path.join(path, f)
        if os.path.exists(p):
            with open(p, "rb") as fh:
                h.update(f.encode() + b"\0" + fh.read() + b"\0")
    return h.hexdigest()


def log_probs(model, batch):
    logits = model(mx.array(batch[:, :-1])).astype(mx.float32)
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def summarize(path, ce, windows_used):
    ce = ce.astype(np.float64)
    ppl = math.exp(ce.mean())
    out = {
        "model": path,
        "windows": int(windows_used),
        "tokens_scored": int(ce.size),
        "ppl": ppl,
        "ppl_stderr": ppl * ce.std(ddof=1) / math.sqrt(ce.size) if ce.size > 1 else float("nan"),
        "mean_ce": float(ce.mean()),
    }
    # Window-level standard error: tokens of one window are not independent, and windows differ far
    # more than tokens suggest (stories260K on TinyStories: sd of a window's mean CE ~0.39 nats).
    if windows_used > 1:
        wm = ce.reshape(windows_used, -1).mean(axis=1)
        out["ppl_stderr_windows"] = ppl * wm.std(ddof=1) / math.sqrt(windows_used)
        # Per-window mean CE, in window order: lets a caller compute paired errors between models.
        out["window_ce"] = [round(float(x), 7) for x in wm]
    return out


class Evaluator:
    def __init__(self, a):
        self.a = a
        with open(a.text, encoding="utf-8") as f:
            self.text = f.read()
        self.token_cache = {}  # tokenizer key -> ids
        self.src_cache = {}  # batch start -> source log-probs (mx.array)
        self.src_cache_bytes = 0

    def tokens(self, path, tok):
        key = tokenizer_key(path)
        if key not in self.token_cache:
            self.token_cache[key] = tok.encode(self.text)
        return self.token_cache[key]

    def bar(self, label, done, total, t0):
        """One-line progress bar of a model's windows, with rate and time left."""
        if not self.a.progress:
            return
        width = 24
        filled = int(width * done / total) if total else width
        el = time.time() - t0
        rate = el / done if done else 0.0
        left = rate * (total - done)
        msg = f"mlx_eval: {label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} windows, {rate:.2f} s/window, {int(left // 60)}m{int(left % 60):02d}s left"
        if sys.stderr.isatty():
            self.progress(msg)
        elif done == total or done % max(1, total // 4) == 0:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def progress(self, msg, final=False):
        if not self.a.progress:
            return
        if sys.stderr.isatty() and not final:
            sys.stderr.write(f"\r\x1b[K{msg}")
        else:
            if sys.stderr.isatty():
                sys.stderr.write("\r\x1b[K")
            if final:
                sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def run_one(self, label, path, loaded=None, ref=None, fill_cache=False):
        """CE (and KL against the source model `ref` when given) of one model on the windows."""
        t0 = time.time()
        model, tok = loaded or load_model(path, self.a.compute_dtype, self.dequantize)
        ids = self.tokens(path, tok)
        if self.data is None:
            self.data, self.idx, self.n_windows = windows(ids, self.a.seq_len, self.a.samples, self.a.seed)
            self.ids = ids
        elif ids != self.ids:
            raise EvalError(f"{path}: its tokenizer gives other ids for the text than {self.first}; the models cannot be compared on the same windows")
        vocab = None
        ce_all, kl_all, agree = [], [], 0
        for s in range(0, len(self.data), self.a.batch):
            b = self.data[s : s + self.a.batch]
            lp = log_probs(model, b)
            targets = mx.array(b[:, 1:])
            ce = -mx.take_along_axis(lp, targets[..., None], axis=-1).squeeze(-1)
            if fill_cache:
                self.keep_source_lp(s, lp)
            if ref is not None:
                lq = self.source_lp(ref, s, b)
                if lq.shape[-1] != lp.shape[-1]:
                    raise EvalError(f"{path}: vocabulary {lp.shape[-1]} differs from the source's {lq.shape[-1]}")
                kl = (mx.exp(lq) * (lq - lp)).sum(axis=-1)
                same = (mx.argmax(lq, axis=-1) == mx.argmax(lp, axis=-1)).sum()
                mx.eval(ce, kl, same)
                kl_all.append(np.array(kl).reshape(-1))
                agree += int(same.item())
            else:
                mx.eval(ce)
            ce_all.append(np.array(ce).reshape(-1))
            vocab = lp.shape[-1]
            self.bar(label, min(s + self.a.batch, len(self.data)), len(self.data), t0)
        r = summarize(path, np.concatenate(ce_all), len(self.data))
        r["vocab"] = int(vocab)
        if ref is not None:
            kl = np.concatenate(kl_all).astype(np.float64)
            r["kl"] = float(kl.mean())
            r["kl_stderr"] = float(kl.std(ddof=1) / math.sqrt(kl.size)) if kl.size > 1 else float("nan")
            r["top1_agree"] = agree / kl.size
        r["seconds"] = round(time.time() - t0, 2)
        self.progress(f"mlx_eval: {label} {os.path.basename(path.rstrip('/'))}: ppl {r['ppl']:.4f}" + (f", kl {r['kl']:.5f}" if "kl" in r else "") + f" ({r['seconds']} s)", final=True)
        del model
        if loaded is None:
            mx.clear_cache()
        return r

    def source_lp(self, ref, s, b):
        if s in self.src_cache:
            return self.src_cache[s]
        lq = log_probs(ref, b)
        self.keep_source_lp(s, lq)
        return lq

    def keep_source_lp(self, s, lq):
        mx.eval(lq)
        if self.src_cache_bytes + lq.nbytes <= self.a.cache_mb * 2**20:
            self.src_cache[s] = lq
            self.src_cache_bytes += lq.nbytes

    def run(self):
        a = self.a
        self.data = None
        self.dequantize = want_dequantize(a.dequantize)
        self.first = a.vs or a.models[0]
        out = {"protocol": self.protocol(), "results": []}
        ref = None
        total = len(a.models) + (1 if a.vs else 0)
        if a.vs:
            # The source is scored like any model (its own PPL on the windows), then kept for KL.
            loaded = load_model(a.vs, a.compute_dtype, self.dequantize)
            out["source"] = self.run_one(f"1/{total} (source)", a.vs, loaded=loaded, fill_cache=True)
            ref = loaded[0]
        for i, m in enumerate(a.models):
            out["results"].append(self.run_one(f"{i + 1 + (1 if a.vs else 0)}/{total}", m, ref=ref))
        out["protocol"].update(
            {
                "windows_available": int(self.n_windows),
                "windows_used": int(len(self.data)),
                "text_tokens": len(self.ids),
                "window_indices_head": [int(x) for x in self.idx[:8]],
            }
        )
        if len(a.models) == 1:
            out = {**out["results"][0], "text": a.text, "seq_len": a.seq_len, **out}
        return out

    def protocol(self):
        a = self.a
        return {
            "text": a.text,
            "seq_len": a.seq_len,
            "samples": a.samples,
            "seed": a.seed,
            "batch": a.batch,
            "compute_dtype": a.compute_dtype,
            "dequantized": self.dequantize,
            "blas": blas_name(),
            "windowing": "tokenizer.encode(whole text), non-overlapping seq_len windows, tail dropped, "
            "samples windows by numpy default_rng(seed).choice without replacement kept in text order, "
            "first token of each window not scored",
            "kl": "mean over scored tokens of KL(P_source || P_model), nats",
            "mlx": mx.__version__,
            "mlx_lm": __import__("mlx_lm").__version__,
        }


def main():
    ap = argparse.ArgumentParser(description="perplexity / KL of MLX models through mlx-lm (protocol: docs/eval.md)")
    ap.add_argument("models", nargs="+", metavar="MODEL")
    ap.add_argument("--text", required=True)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--samples", type=int, default=64, help="windows to score; 0 = all")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vs", default=None, help="source model: KL of each model against it on the same windows")
    ap.add_argument("--compute-dtype", choices=["model", "float32"], default="float32", help="float32 (default): float params cast to float32; model: as stored")
    ap.add_argument("--cache-mb", type=float, default=1024, help="memory for the source's cached log-probs")
    ap.add_argument("--progress", action="store_true", help="progress on stderr")
    ap.add_argument("--dequantize", choices=["auto", "on", "off"], default="auto", help="run quantized layers as float matmuls of their dequantized weights (auto: on the CPU backend)")
    a = ap.parse_args()
    if a.seq_len < 2:
        fail(f"--seq-len must be at least 2 (got {a.seq_len})")
    if a.samples < 0:
        fail(f"--samples must be 0 (all windows) or positive (got {a.samples})")
    if a.batch < 1:
        fail(f"--batch must be positive (got {a.batch})")
    if not os.path.isfile(a.text):
        fail(f"{a.text}: no such text file")
    try:
        out = Evaluator(a).run()
    except EvalError as e:
        fail(str(e))
    except UnicodeDecodeError as e:
        fail(f"{a.text}: not UTF-8 text ({e.reason} at byte {e.start})")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
