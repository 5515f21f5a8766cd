"""`cached_forward`: features are computed once per sample and never rewritten, and a mixed batch counts per sample."""

import torch

from modalign.encoders.base import EncoderOutput
from modalign.encoders.cache import FeatureCache, cached_forward


def tower(batch_offset: float):
    """A tower whose output depends, slightly, on the batch around each sample, as BLAS blocking can."""

    def compute(keys):
        pooled = torch.tensor([[float(int(k)) + batch_offset] for k in keys])  # [B, 1]
        return lambda: EncoderOutput(tokens=pooled[:, None], pooled=pooled)

    return compute


def test_a_sample_keeps_its_first_features_in_a_mixed_batch(tmp_path):
    cache = FeatureCache(tmp_path)
    first = cached_forward(cache, ["1", "2"], tower(0.0)(["1", "2"]))
    assert first.pooled[:, 0].tolist() == [1.0, 2.0] and (cache.hits, cache.misses) == (0, 2)
    # "2" comes back beside a new sample; the batch is computed again, but "2" is served as first seen
    mixed = cached_forward(cache, ["2", "3"], tower(0.5)(["2", "3"]))
    assert mixed.pooled[:, 0].tolist() == [2.0, 3.5] and (cache.hits, cache.misses) == (1, 3)
    # and so it stays, in memory and for another process reading the directory
    assert cached_forward(cache, ["2"], tower(9.0)(["2"])).pooled.item() == 2.0
    assert cached_forward(FeatureCache(tmp_path), ["2", "3"], tower(9.0)(["2", "3"])).pooled[:, 0].tolist() == [
        2.0,
        3.5,
    ]


def test_a_sample_twice_in_one_batch_is_stored_once():
    cache = FeatureCache()
    out = cached_forward(
        cache,
        ["4", "4"],
        lambda: EncoderOutput(tokens=torch.tensor([[[4.0]], [[4.25]]]), pooled=torch.tensor([[4.0], [4.25]])),
    )
    assert out.pooled[:, 0].tolist() == [4.0, 4.0] and len(cache) == 1
