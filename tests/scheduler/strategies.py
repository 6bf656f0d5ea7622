"""Hypothesis strategies for random schema-v1 patterns (small N)."""

from hypothesis import strategies as st


@st.composite
def patterns(draw, max_n=48):
    """A random pattern dict mixing every part of the schema."""
    two_d = draw(st.booleans()) and draw(st.booleans())
    pd = {"head_dim": draw(st.sampled_from([1, 3, 4, 8]))}
    if two_d:
        h, w = draw(st.integers(1, 6)), draw(st.integers(1, 7))
        ng = draw(st.integers(0, 2))
        pd["seq_len"] = h * w + ng
        pd["grid"] = {"height": h, "width": w, "radius_h": draw(st.integers(0, 2)),
                      "radius_w": draw(st.integers(0, 3))}
        pd["global_tokens"] = list(range(ng))
    else:
        n = draw(st.integers(1, max_n))
        pd["seq_len"] = n
        if draw(st.booleans()):
            pd["window"] = {"left": draw(st.integers(0, 9)), "right": draw(st.integers(0, 9)),
                            "dilation": draw(st.integers(1, 4))}
        if draw(st.booleans()):
            pd["global_tokens"] = sorted(draw(st.sets(st.integers(0, n - 1), max_size=3)))
    n = pd["seq_len"]
    if draw(st.integers(0, 3)) == 0:
        pd["random"] = {"keys_per_query": draw(st.integers(0, min(3, n))),
                        "seed": draw(st.integers(0, 100))}
    if draw(st.integers(0, 3)) == 0 and not two_d:
        B = draw(st.integers(1, 12))
        nb = -(-n // B)
        pd["blocks"] = {"block": B, "window_blocks": draw(st.integers(0, 3)),
                        "global_blocks": sorted(draw(st.sets(st.integers(0, nb - 1),
                                                             max_size=1))),
                        "random_blocks": draw(st.integers(0, min(2, nb))),
                        "seed": draw(st.integers(0, 100))}
    if draw(st.integers(0, 3)) == 0:
        spans = []
        for _ in range(n):
            a = draw(st.integers(0, n - 1))
            spans.append([a, min(n - 1, a + draw(st.integers(0, 6)))])
        pd["spans"] = spans
    pd["causal"] = draw(st.booleans())
    return pd
