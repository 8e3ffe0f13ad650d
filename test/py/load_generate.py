"""Load an MLX model directory with mlx-lm (strict weights) and continue a prompt greedily.
Prints JSON: the generated text and the module types that ended up quantized."""
import json
import sys

import mlx.nn as nn
from mlx_lm import generate, load
from mlx_lm.models.switch_layers import QuantizedSwitchLinear


def main(path, prompt, max_tokens):
    model, tok = load(path)  # load_weights(strict=True) inside
    quantized = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding, QuantizedSwitchLinear)):
            quantized[name] = {"bits": m.bits, "group_size": m.group_size, "mode": getattr(m, "mode", "affine")}
    text = generate(model, tok, prompt, max_tokens=int(max_tokens))
    json.dump({"text": text, "quantized": quantized}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
