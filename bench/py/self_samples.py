"""Data-free probe text: stories sampled from the 16-bit source model itself, from BOS.

    python bench/py/self_samples.py MODEL_DIR OUT.txt [--n 150] [--tokens 256] [--seed 0] [--through-turns]

The model's weights are the only input (no dataset): the text is what the model itself predicts,
at temperature 1, so KL(source ‖ quantized) on it measures fidelity where the source is in its own
distribution. Used to check data-free choices (docs/allocation.md §6) without the evaluation texts.
Samples are joined with blank lines; deterministic for a seed. --through-turns: do not stop at EOS/BOS
(a chat model's sample then spans several turns it writes itself, special tokens kept as text,
which its tokenizer maps back to the same ids).
"""
import argparse

import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generate_step
from mlx_lm.sample_utils import make_sampler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--through-turns", action="store_true")
    a = ap.parse_args()
    mx.random.seed(a.seed)
    model, tok = load(a.model)
    sampler = make_sampler(temp=1.0)
    stories = []
    for _ in range(a.n):
        prompt = mx.array([tok.bos_token_id])
        ids = []
        for (t, _), _ in zip(generate_step(prompt, model, sampler=sampler), range(a.tokens)):
            t = int(t)
            if not a.through_turns and t in (tok.eos_token_id, tok.bos_token_id):  # a new story would start
                break
            ids.append(t)
        stories.append(tok.decode(ids).strip())
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n\n".join(stories) + "\n")


if __name__ == "__main__":
    main()
