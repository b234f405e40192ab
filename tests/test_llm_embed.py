"""Embedders: the hashing fallback (always) and the packaged MiniLM model (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from tutor.llm.embed import EMBEDDERS, HashingEmbedder, SentenceEmbedder, cosine, get_embedder


def test_hashing_is_normalised_stable_and_sees_overlap() -> None:
    emb = HashingEmbedder(dim=256)
    texts = ["Maya has 12 apples.", "Maya has 12 apples!", "Solve for x: 3x + 4 = 19"]
    vecs = emb.encode(texts)
    assert vecs.shape == (3, 256) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vecs, HashingEmbedder(dim=256).encode(texts))
    sims = cosine(vecs, vecs)
    assert sims[0, 1] > 0.9
    assert sims[0, 2] < 0.3
    assert emb.encode([]).shape == (0, 256)


def test_registry() -> None:
    assert set(EMBEDDERS) == {"hashing", "minilm"}
    assert isinstance(get_embedder(None), HashingEmbedder)
    assert isinstance(get_embedder("minilm"), SentenceEmbedder)
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("bert")


@pytest.mark.slow
def test_minilm_from_the_package_ranks_paraphrases_first() -> None:
    emb = SentenceEmbedder()
    vecs = emb.encode(["be ready for fractions", "adding fractions with unlike denominators", "place value"])
    assert vecs.shape == (3, 384)
    sims = cosine(vecs[:1], vecs[1:])[0]
    assert sims[0] > sims[1] + 0.2
