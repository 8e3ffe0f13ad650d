"""Fit the damage model's role weights from per-class KL on the model's own samples (dev_kl.py output).

    python bench/py/fit_roles.py MANIFEST.json DEV_KL.jsonl MODEL_DIR [--bits 4 --group 64]

For each class c quantized alone (dev_kl variants named by role: attn_q, ..., embedding), the damage
model predicts KL_c ∝ role_c · Σ_{i∈c} rel_error_i · depth_i · (1 + β·S_i) · (params_i·share_i / 2^20)^γ;
the fitted role_c = KL_c / that sum, scaled so that attn_q = 1. Data-free: the KLs come from text the
source model generated itself.
"""
import json
import sys

ROLE_OF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_o", "gate_proj": "mlp_gate", "up_proj": "mlp_up", "down_proj": "mlp_down", "embed_tokens": "embedding"}


def main():
    man = json.load(open(sys.argv[1]))
    kls = {}
    for line in open(sys.argv[2]):
        r = json.loads(line)
        kls[r["variant"]] = r["kl"]
    bits = int(sys.argv[sys.argv.index("--bits") + 1]) if "--bits" in sys.argv else 4
    group = int(sys.argv[sys.argv.index("--group") + 1]) if "--group" in sys.argv else 64
    cfg = json.load(open(sys.argv[3] + "/config.json"))
    share = cfg["num_attention_heads"] / cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    L = man["total_layers"]
    k = max(1, -(-L // 8))
    sums = {}
    for sh in man["shards"].values():
        for name, t in sh["tensors"].items():
            role = next((v for key, v in ROLE_OF.items() if key in name), None)
            if role is None:
                continue
            c = next((c for c in t.get("candidates", []) if c["bits"] == bits and c["group_size"] == group), None)
            if c is None:
                continue
            layer = t.get("layer")
            depth = 1.5 if layer is not None and (layer < k or layer >= L - k) else 1.0
            sh_ = share if role in ("attn_k", "attn_v") else 1
            base = depth * (1 + (t.get("composite_score") or 0)) * (t["num_params"] * sh_ / 2**20) ** 0.5
            sums[role] = sums.get(role, 0) + c["rel_error"] * base
    raw = {r: kls[r] / sums[r] for r in sums if r in kls}
    q = raw.get("attn_q", 1)
    out = {r: round(v / q, 3) for r, v in raw.items()}
    print(json.dumps({"kl": {r: kls[r] for r in raw}, "fitted_roles": out, "sum_classes": sum(kls[r] for r in raw), "all": kls.get("all")}, indent=1))


if __name__ == "__main__":
    main()
