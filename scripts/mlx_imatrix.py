"""Importance matrix of a model through real mlx-lm: per linear layer, the mean square of each input
channel over the calibration tokens (llama.cpp's imatrix statistic, E[x_j^2]).

    python scripts/mlx_imatrix.py MODEL OUT.json (--text FILE | --self N) [--seq-len 512]
        [--seed 0] [--temperature 1.0] [--batch 16] [--covariance FILE] [--dump-tokens FILE] [--progress]

Calibration tokens:
  --text FILE  the tokenizer's encoding of the whole file (BOS as the tokenizer adds it), cut into
               windows of --seq-len tokens (the tail too, when it has 2 tokens or more);
  --self N     N tokens the model writes itself: each sequence starts from the chat template's
               generation prompt for an empty user turn (BOS alone when the tokenizer has no chat
               template), sampled at --temperature (0: greedy), --batch sequences at a time with
               mx.random.seed(seed + round), up to --seq-len tokens or an EOS (the rest of a row is
               dropped); no outside text is read.
Every window is then run once through the model in float32, and each nn.Linear's input (and the
input of a tied embedding used as the output layer, Embedding.as_linear) is accumulated as the sum
of x_j^2 over tokens. Any architecture mlx-lm loads works: the hook is on the module classes, not on
a model's code. (Stacked-expert layers of MoE models are not nn.Linear and are not recorded.)

Output JSON: {"format": "swan-imatrix", "version": 1, "model_type", "calibration": {...},
"tokens": T, "entries": {"<mlx weight name>": {"shape": [out, in], "count": tokens seen,
"mean_sq": [in floats]}}}. --dump-tokens writes the windows as JSON lists (for tests).

--covariance FILE also records each layer input's full second moment E[x xᵀ] (in × in, float32) for
GPTQ (src/mlx/gptq.ts) in a safetensors FILE (metadata format "swan-imatrix-covariance"), one tensor
per distinct input: modules called on the same input object in a forward pass (q/k/v, gate/up) share
it, keyed by the first one's weight name. Each JSON entry then also has "covariance": that key, and
the JSON "covariance_file": FILE's base name (it must stay beside the JSON). Sizes grow as in²: 0.4 GB
for SmolLM2-135M, ~20 GB for a 7B model.
Errors: one line "mlx_imatrix: error: ..." on stderr and exit status 2.
"""
import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from mlx.utils import tree_map  # noqa: E402
from mlx_lm import load  # noqa: E402


def fail(msg):
    sys.stderr.write(f"mlx_imatrix: error: {msg}\n")
    sys.exit(2)


class Recorder:
    """Sums of x^2 per input channel, keyed by the module's weight name."""

    def __init__(self, model, covariance=False):
        self.covariance = covariance
        self.cov = {}  # input key -> float64 numpy sum of x xᵀ
        self.cov_key = {}  # weight name -> input key
        self.last = (None, None)  # (input object, its key) of the latest call in this window
        self.pending = []  # (key, x xᵀ as mx) of this window, added in float64 after it
        self.names = {}
        for path, m in model.named_modules():
            if isinstance(m, (nn.Linear, nn.Embedding)) and getattr(m, "weight", None) is not None and m.weight.ndim == 2:
                self.names[id(m)] = f"{path}.weight"
        self.sums = {}
        self.counts = {}
        self.shapes = {}

    def add(self, module, x):
        name = self.names.get(id(module))
        if name is None:
            return
        x_in = x
        x = x.astype(mx.float32)
        s = mx.sum(x * x, axis=tuple(range(x.ndim - 1)))
        n = 1
        for d in x.shape[:-1]:
            n *= d
        self.sums[name] = self.sums[name] + s if name in self.sums else s
        self.counts[name] = self.counts.get(name, 0) + n
        self.shapes[name] = list(module.weight.shape)
        if self.covariance:
            shared = self.last[0] is x_in
            key = self.last[1] if shared else name
            if self.cov_key.setdefault(name, key) != key:
                fail(f"{name}: shares its input with another layer in one window and not in another; cannot record one covariance")
            self.last = (x_in, key)
            if not shared:
                x2 = x.reshape(-1, x.shape[-1])
                self.pending.append((key, x2.T @ x2))

    def end_window(self):
        """Add this window's x xᵀ sums in float64 (float32 within a window of --seq-len tokens)."""
        import numpy as np

        for key, m in self.pending:
            a = np.array(m).astype(np.float64)
            self.cov[key] = self.cov[key] + a if key in self.cov else a
        self.pending = []
        self.last = (None, None)

    def install(self):
        rec = self
        linear_call = nn.Linear.__call__
        as_linear = nn.Embedding.as_linear

        def linear(self, x):
            rec.add(self, x)
            return linear_call(self, x)

        def embedding_as_linear(self, x):
            rec.add(self, x)
            return as_linear(self, x)

        nn.Linear.__call__ = linear
        nn.Embedding.as_linear = embedding_as_linear


def write_replacing(path, write):
    """write(tmp) into a new file beside `path`, created exclusively (never an existing file), then
    renamed over `path` (which the caller, src/eval/imatrix.ts, checked is absent or swan's)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".swan-imatrix-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 → what open() would have given
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def text_windows(tok, path, seq_len):
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    ids = tok.encode(text)
    if len(ids) < 2:
        fail(f"{path}: fewer than 2 tokens")
    return [ids[i : i + seq_len] for i in range(0, len(ids), seq_len) if len(ids[i : i + seq_len]) >= 2]


def self_windows(model, tok, n, seq_len, seed, temperature, batch, progress):
    """Sample `batch` sequences at a time (one KV cache, same prompt) until n tokens are made."""
    from mlx_lm.models.cache import make_prompt_cache

    if getattr(tok, "chat_template", None):
        prompt = tok.apply_chat_template([{"role": "user", "content": ""}], add_generation_prompt=True)
    else:
        bos = tok.bos_token_id
        if bos is None:
            fail("the tokenizer has neither a chat template nor a BOS token to start from")
        prompt = [bos]
    if len(prompt) >= seq_len:
        fail(f"the chat template's prompt has {len(prompt)} tokens, not fewer than --seq-len {seq_len}")
    eos = set(tok.eos_token_ids) if getattr(tok, "eos_token_ids", None) else {tok.eos_token_id}
    windows, made, rnd = [], 0, 0
    while made < n:
        mx.random.seed(seed + rnd)
        rnd += 1
        b = min(batch, -(-(n - made) // (seq_len - len(prompt))))
        steps = min(seq_len - len(prompt), -(-(n - made) // b))
        cache = make_prompt_cache(model)
        logits = model(mx.array([prompt] * b), cache=cache)[:, -1, :]
        cols = []
        for _ in range(steps):
            t = mx.argmax(logits, axis=-1) if temperature == 0 else mx.random.categorical(logits * (1.0 / temperature))
            cols.append(t)
            logits = model(t[:, None], cache=cache)[:, -1, :]
            mx.eval(logits)
        rows = mx.stack(cols, axis=1).tolist()
        for r in rows:
            out = []
            for t in r:
                out.append(t)
                if t in eos:
                    break
            made += len(out)
            windows.append(list(prompt) + out)
        if progress:
            sys.stderr.write(f"\rgenerated {min(made, n)}/{n} tokens")
        if rnd > 100 * max(1, n):
            fail("the model ends every sequence at once; no tokens to calibrate on")
    if progress:
        sys.stderr.write("\n")
    return windows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--self", type=int, dest="self_tokens")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--covariance")
    ap.add_argument("--dump-tokens")
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args()
    if a.seq_len < 2:
        fail("--seq-len must be at least 2")
    if a.self_tokens is not None and a.self_tokens < 1:
        fail("--self needs a positive number of tokens")
    try:
        model, tok = load(a.model)
    except Exception as e:  # mlx-lm's own message names what it cannot load
        fail(f"{a.model}: mlx-lm cannot load it: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    model.update(tree_map(lambda p: p.astype(mx.float32) if mx.issubdtype(p.dtype, mx.floating) else p, model.parameters()))
    mx.eval(model.parameters())

    if a.text is not None:
        windows = text_windows(tok, a.text, a.seq_len)
        calibration = {"text": os.path.basename(a.text), "seq_len": a.seq_len}
    else:
        windows = self_windows(model, tok, a.self_tokens, a.seq_len, a.seed, a.temperature, max(1, a.batch), a.progress)
        calibration = {"self_tokens": a.self_tokens, "seed": a.seed, "temperature": a.temperature, "seq_len": a.seq_len}

    rec = Recorder(model, covariance=a.covariance is not None)
    rec.install()
    for i, w in enumerate(windows):
        model(mx.array(w)[None])
        mx.eval(list(rec.sums.values()) + [m for _, m in rec.pending])
        rec.end_window()
        if a.progress:
            sys.stderr.write(f"\rforward {i + 1}/{len(windows)}")
    if a.progress:
        sys.stderr.write("\n")
    if not rec.sums:
        fail(f"{a.model}: no linear layer saw an input")

    entries = {}
    for name in sorted(rec.sums):
        c = rec.counts[name]
        entries[name] = {"shape": rec.shapes[name], "count": c, "mean_sq": [float(v) for v in (rec.sums[name] / c).tolist()]}
        if a.covariance:
            entries[name]["covariance"] = rec.cov_key[name]
    out = {
        "format": "swan-imatrix",
        "version": 1,
        "model_type": getattr(model, "model_type", None),
        "calibration": calibration,
        "tokens": sum(len(w) for w in windows),
        "entries": entries,
    }
    if a.covariance:
        # Written first: the JSON that names it appears only once it is complete.
        out["covariance_file"] = os.path.basename(a.covariance)
        if os.path.dirname(os.path.abspath(a.covariance)) != os.path.dirname(os.path.abspath(a.out)):
            fail("--covariance must be beside the output JSON")
        tensors = {k: mx.array((v / rec.counts[k]).astype("float32")) for k, v in rec.cov.items()}
        meta = {"format": "swan-imatrix-covariance", "tokens": str(out["tokens"])}
        write_replacing(a.covariance, lambda tmp: mx.save_safetensors(tmp, tensors, metadata=meta))

    def write_json(tmp):
        with open(tmp, "w") as f:
            json.dump(out, f)

    write_replacing(a.out, write_json)
    if a.dump_tokens:
        json.dump(windows, open(a.dump_tokens, "w"))


if __name__ == "__main__":
    main()
