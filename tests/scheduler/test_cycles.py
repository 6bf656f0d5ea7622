# amaranth: UnusedElaboratable=no
"""The cycle estimate's latency constants are the hardware's."""

from hw.config import preset
from hw.merge import MergeUnit, merge_params
from hw.pe import PE
from hw.top import FEED, MERGE_INPUT_LATENCY, top_geometry
from scheduler import cycles


def test_latency_constants_match_the_rtl():
    cfg = preset("small")
    mu = MergeUnit(**merge_params(cfg), min_head_dim=top_geometry(cfg)["min_head_dim"])
    assert cycles.MERGE_LATENCY == MERGE_INPUT_LATENCY + mu.emit_latency
    assert cycles.FEED_LATENCY == FEED
    assert cycles.PE_WS_EXTRA == PE.ws_lead
