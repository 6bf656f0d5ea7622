"""Test oracle: the mask straight from the schema's definition, by loops
over (i, k).  Shares nothing with the scheduler except the seeded random
choices, which are part of the tool's output by definition (passed in)."""


def oracle_mask(pd: dict, rand_keys=None, rand_blocks=None):
    """pd: a schema-v1 pattern dict; rand_keys[i]: the random keys of query i;
    rand_blocks[qb]: the random key blocks of query block qb."""
    import numpy as np
    N = pd["seq_len"]
    m = np.zeros((N, N), dtype=bool)
    glob = set(pd.get("global_tokens", []))
    blk = pd.get("blocks")
    if blk:
        B = blk["block"]
        for gb in blk.get("global_blocks", []):
            glob |= {t for t in range(N) if t // B == gb}
    win, grid, spans = pd.get("window"), pd.get("grid"), pd.get("spans")
    for i in range(N):
        for k in range(N):
            ok = i in glob or k in glob
            if win:
                D = win.get("dilation", 1)
                delta = k - i
                if -win["left"] * D <= delta <= win["right"] * D and delta % D == 0:
                    ok = True
            if grid:
                g0 = len(pd.get("global_tokens", []))
                if i >= g0 and k >= g0:
                    ri, ci = divmod(i - g0, grid["width"])
                    rk, ck = divmod(k - g0, grid["width"])
                    if abs(ri - rk) <= grid["radius_h"] and abs(ci - ck) <= grid["radius_w"]:
                        ok = True
            if rand_keys is not None and k in rand_keys[i]:
                ok = True
            if blk:
                B = blk["block"]
                wb = blk.get("window_blocks", 0)
                qb, kb = i // B, k // B
                # window_blocks w: the query block and w//2 before, (w-1)//2 after
                if wb and qb - wb // 2 <= kb <= qb + (wb - 1) // 2:
                    ok = True
                if rand_blocks is not None and kb in rand_blocks[qb]:
                    ok = True
            if spans is not None and spans[i][0] <= k <= spans[i][1]:
                ok = True
            if pd.get("causal") and k > i:
                ok = False
            m[i, k] = ok
    return m


def oracle_for_pattern(pd: dict, p):
    """``oracle_mask`` of pattern dict ``pd`` with the parsed pattern ``p``'s
    random choices (the seeded draws are the tool's by definition; the rest of
    the mask is built independently here)."""
    from scheduler.pattern import block_random, random_keys
    rk = rb = None
    if p.random and p.random["keys_per_query"]:
        rk = [set(r) for r in random_keys(p.seq_len, p.random["keys_per_query"],
                                          p.random["seed"]).tolist()]
    if p.blocks and p.blocks["random_blocks"]:
        rb = [set(r) for r in block_random(p).tolist()]
    return oracle_mask(pd, rk, rb)
