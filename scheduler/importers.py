"""Importers: Hugging Face Longformer / BigBird configs and DeepSpeed
sparsity configs to schema-v1 pattern dicts.

:func:`detect_and_convert` is applied by :func:`scheduler.pattern.parse_pattern`
to every loaded JSON object, so ``salo compile config.json`` accepts these
files directly.  A schema-v1 field given next to the imported ones
(``seq_len``, ``head_dim``, ``heads``, ``global_tokens``, ``causal``)
overrides what the importer derived (e.g. a shorter ``seq_len``).

* Hugging Face Longformer (``model_type: longformer``): ``attention_window``
  w (an int or one per layer; the first layer's is used) is w/2 keys on each
  side; ``max_position_embeddings`` minus the RoBERTa padding offset
  (``pad_token_id + 1``) is N; global attention is input dependent in HF, we
  use the usual CLS token 0.
* Hugging Face BigBird (``model_type: big_bird``,
  ``attention_type: block_sparse``): ``block_size`` B, 3 sliding blocks,
  the first and last block global (ITC), ``num_random_blocks`` random blocks;
  ``original_full`` gives a dense pattern.
* DeepSpeed ``SparsityConfig`` JSON (an object with ``mode``, optionally
  inside ``sparse_attention``): modes ``dense``, ``bigbird``, ``bslongformer``;
  needs ``seq_len`` and ``head_dim`` added (DeepSpeed's config has neither);
  ``attention: unidirectional`` is causal.
"""

from __future__ import annotations

__all__ = ["detect_and_convert", "from_hf_longformer", "from_hf_bigbird", "from_deepspeed"]

_OVERRIDES = ("seq_len", "head_dim", "heads", "global_tokens", "causal", "name")


def _pattern_error(msg):
    from .pattern import PatternError
    return PatternError(msg)


def _req(d, key, what):
    if key not in d:
        raise _pattern_error(f"{what} field '{key}' is missing")
    return d[key]


def _apply_overrides(out: dict, src: dict) -> dict:
    for k in _OVERRIDES:
        if k in src:
            out[k] = src[k]
    return out


def from_hf_longformer(c: dict) -> dict:
    """Hugging Face ``LongformerConfig`` fields -> pattern dict."""
    w = _req(c, "attention_window", "Longformer config")
    if isinstance(w, list):
        w = w[0]
    if not isinstance(w, int) or w < 0 or w % 2:
        raise _pattern_error(f"Longformer config field 'attention_window' = {w!r} is invalid: "
                             "allowed an even integer >= 0 (or a list of them)")
    hidden = _req(c, "hidden_size", "Longformer config")
    heads = _req(c, "num_attention_heads", "Longformer config")
    n = _req(c, "max_position_embeddings", "Longformer config") - (c.get("pad_token_id", 1) + 1)
    out = {"name": "hf-longformer", "seq_len": n, "head_dim": hidden // heads, "heads": heads,
           "window": {"left": w // 2, "right": w // 2}, "global_tokens": [0]}
    return _apply_overrides(out, c)


def from_hf_bigbird(c: dict) -> dict:
    """Hugging Face ``BigBirdConfig`` fields -> pattern dict."""
    hidden = _req(c, "hidden_size", "BigBird config")
    heads = _req(c, "num_attention_heads", "BigBird config")
    n = c.get("seq_len", _req(c, "max_position_embeddings", "BigBird config"))
    out = {"name": "hf-bigbird", "seq_len": n, "head_dim": hidden // heads, "heads": heads}
    if c.get("attention_type", "block_sparse") == "original_full":
        out["window"] = {"left": n, "right": n}
    else:
        B = c.get("block_size", 64)
        nb = -(-n // B)
        out["blocks"] = {"block": B, "window_blocks": 3, "global_blocks": sorted({0, nb - 1}),
                         "random_blocks": c.get("num_random_blocks", 3),
                         "seed": c.get("seed", 0)}
    return _apply_overrides(out, c)


def from_deepspeed(c: dict) -> dict:
    """DeepSpeed sparsity config (``mode`` ...) plus ``seq_len``/``head_dim`` -> pattern."""
    outer = c
    if "sparse_attention" in c:
        c = dict(c["sparse_attention"], **{k: v for k, v in c.items() if k != "sparse_attention"})
    mode = c.get("mode")
    for k in ("seq_len", "head_dim"):
        if k not in c:
            raise _pattern_error(f"DeepSpeed sparsity config needs field '{k}' added "
                                 "(DeepSpeed's config does not contain it)")
    n = c["seq_len"]
    out = {"name": f"deepspeed-{mode}", "seq_len": n, "head_dim": c["head_dim"],
           "heads": c.get("heads", c.get("num_heads", 1)),
           "causal": c.get("attention", "bidirectional") == "unidirectional"}
    B = c.get("block", 16)
    nb = -(-n // B) if isinstance(n, int) and isinstance(B, int) and B > 0 else 1
    if mode == "dense":
        out["window"] = {"left": n, "right": n}
    elif mode == "bigbird":
        out["blocks"] = {"block": B, "window_blocks": c.get("num_sliding_window_blocks", 3),
                         "global_blocks": list(range(c.get("num_global_blocks", 1))),
                         "random_blocks": c.get("num_random_blocks", 1), "seed": c.get("seed", 0)}
    elif mode == "bslongformer":
        starts = c.get("global_block_indices", [0])
        ends = c.get("global_block_end_indices")
        gb = set()
        for i, s in enumerate(starts):
            e = ends[i] if ends else s + 1
            gb.update(range(s, min(e, nb)))
        out["blocks"] = {"block": B, "window_blocks": c.get("num_sliding_window_blocks", 3),
                         "global_blocks": sorted(gb)}
    else:
        raise _pattern_error(f"DeepSpeed sparsity config field 'mode' = {mode!r} is not "
                             "supported: allowed 'dense', 'bigbird', 'bslongformer'")
    return _apply_overrides(out, {k: v for k, v in outer.items() if k in _OVERRIDES
                                  and k not in ("seq_len", "head_dim")})


def detect_and_convert(data: dict) -> dict:
    """Return ``data`` unchanged if it is a schema-v1 pattern, else the
    converted pattern of a recognised foreign config."""
    mt = data.get("model_type")
    if mt == "longformer":
        return from_hf_longformer(data)
    if mt in ("big_bird", "bigbird"):
        return from_hf_bigbird(data)
    if "sparse_attention" in data or ("mode" in data and "block" in data):
        return from_deepspeed(data)
    return data
