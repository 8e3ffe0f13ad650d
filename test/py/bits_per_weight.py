"""Load an MLX model directory with mlx-lm and print JSON: mlx-lm's own bits per weight and bytes."""
import json
import sys

from mlx.utils import tree_reduce
import mlx.core as mx
from mlx_lm import load
from mlx_lm.utils import compute_bits_per_weight


def main(path):
    model, _ = load(path)
    nbytes = tree_reduce(lambda acc, x: acc + x.nbytes if isinstance(x, mx.array) else acc, model, 0)
    json.dump({"bpw": compute_bits_per_weight(model), "bytes": nbytes}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
