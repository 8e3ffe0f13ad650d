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
from mlx.utils import tree_map
from mlx_lm import load
from mlx_lm.generate import generate_step
from mlx_lm.models.cache import make_prompt_cache
from mlx_lm.sample_utils import make_sampler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--through-turns", action="store_true")
    ap.add_argument("--float32", action="store_true", help="run in float32 (much faster on CPU with a system BLAS)")
    ap.add_argument("--chat", action="store_true", help="start each sample with the chat template's opening of a user turn (the model writes the question and the answer itself)")
    ap.add_argument("--temp", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=1, help="sample this many stories at once (a CPU reads the weights once per step for all of them)")
    a = ap.parse_args()
    mx.random.seed(a.seed)
    model, tok = load(a.model)
    if a.float32:
        model.update(tree_map(lambda p: p.astype(mx.float32) if p.dtype in (mx.float16, mx.bfloat16) else p, model.parameters()))
    if a.batch > 1:
        stories = batched(model, tok, a)
    else:
        stories = one_by_one(model, tok, a)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n\n".join(stories) + "\n")


def prompt_ids(tok, a):
    """BOS, or with --chat the template's text up to where a user's message would go."""
    if not a.chat:
        return [tok.bos_token_id]
    text = tok.apply_chat_template([{"role": "user", "content": "\x00"}], tokenize=False, add_generation_prompt=False)
    return tok.encode(text.split("\x00")[0], add_special_tokens=False)


def batched(model, tok, a):
    """a.batch sequences per forward pass, temperature-1 sampling with mx.random.categorical."""
    stories = []
    for s0 in range(0, a.n, a.batch):
        b = min(a.batch, a.n - s0)
        cache = make_prompt_cache(model)
        x = mx.array([prompt_ids(tok, a)] * b)
        out = [[] for _ in range(b)]
        done = [False] * b
        for _ in range(a.tokens):
            logits = model(x, cache=cache)[:, -1, :].astype(mx.float32)
            t = mx.random.categorical(logits / a.temp)
            mx.eval(t)
            ids = t.tolist()
            for i, v in enumerate(ids):
                if not a.through_turns and v in (tok.eos_token_id, tok.bos_token_id):
                    done[i] = True
                if not done[i]:
                    out[i].append(v)
            if all(done):
                break
            x = t[:, None]
        head = tok.decode(prompt_ids(tok, a)) if a.chat else ""
        stories += [(head + tok.decode(o)).strip() for o in out]
    return stories


def one_by_one(model, tok, a):
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
    return stories


if __name__ == "__main__":
    main()
