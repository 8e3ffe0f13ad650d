"""All the mlx-lm checks of one architecture family in one process (tests/families-mlx.test.ts):
  compare   swan --uniform 4-bit vs mlx_lm.convert 4-bit, tensor by tensor (compare_mlx_dirs.py);
  load      each SWAN/budget output loads with strict weights and generates; its quantized modules;
  logits    the uniform 8-bit output's logits against the bf16 source's (logits_gap.py).
Usage: family_check.py HF U4 CONVERT4 U8 OUT... ; prints JSON."""
import json
import sys

import mlx.nn as nn
from mlx_lm import generate, load
from mlx_lm.models.switch_layers import QuantizedSwitchLinear

from compare_mlx_dirs import tensors, raw
from logits_gap import logits
import mlx.core as mx


def compare(a_dir, b_dir):
    a, b = tensors(a_dir), tensors(b_dir)
    diffs = [k for k in sorted(set(a) | set(b)) if k not in a or k not in b or a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or raw(a[k]) != raw(b[k])]
    ca = json.load(open(f"{a_dir}/config.json"))
    cb = json.load(open(f"{b_dir}/config.json"))
    return {"tensors": len(a), "diffs": diffs, "quantization_a": ca.get("quantization"), "quantization_b": cb.get("quantization"), "config_equal": ca == cb}


def load_run(path):
    model, tok = load(path)  # load_weights(strict=True) inside
    quantized = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding, QuantizedSwitchLinear)):
            quantized[name] = {"bits": m.bits, "group_size": m.group_size}
    text = generate(model, tok, "Once upon a time", max_tokens=8)
    return {"dir": path, "text": text, "quantized": quantized}


def main(hf, u4, c4, u8, *outs):
    tokens = mx.array([[(7 * i + 3) % 500 + 1 for i in range(32)]])
    a, b = logits(hf, tokens), logits(u8, tokens)
    gap = {
        "rel_rms": (mx.sqrt(mx.sum((a - b) ** 2)) / mx.sqrt(mx.sum(a * a))).item(),
        "top1_agree": mx.mean((mx.argmax(a, axis=-1) == mx.argmax(b, axis=-1)).astype(mx.float32)).item(),
    }
    json.dump({"compare": compare(u4, c4), "loads": [load_run(o) for o in outs], "logits": gap}, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:])
